"""The training feature store (speakerid.features.feature_store): entries per file and noisy copy, resumed runs."""

from __future__ import annotations

import os

import numpy as np
import pytest

from speakerid._utils.parallel import TaskRunner
from speakerid.features import FeatureConfig
from speakerid.features.cache import FeatureCache
from speakerid.features.feature_store import entry_path, extract_to_store, make_shards, read_entry
from speakerid.features.pipeline import file_sessions


@pytest.fixture
def paths(synth_corpus):
    from speakerid.data.manifests import read_manifest

    return read_manifest(synth_corpus.background_csv)["path"].tolist()[:6]


def test_entries_hold_the_clean_frames_and_the_seeded_noisy_copies(paths, tmp_path):
    config = FeatureConfig()
    entries, extracted = extract_to_store(paths, config, tmp_path, n_augment=2, random_state=7)
    assert extracted == len(paths)
    assert [(e.file_index, e.copy) for e in entries] == [(i, j) for i in range(len(paths)) for j in range(3)]
    sessions, _ = file_sessions(paths[4], config, 2, [7, 4])     # file 4's copies are seeded [7, 4]
    for entry, frames in zip(entries[12:15], sessions):
        np.testing.assert_array_equal(read_entry(entry), frames)
        assert entry.n_frames == len(frames)
    # the clean entry is the scoring cache's own entry: scoring with the same folder reuses it
    assert FeatureCache(tmp_path, config).entry_path(paths[4]) == entry_path(tmp_path, paths[4], config)
    assert entries[12].path == str(entry_path(tmp_path, paths[4], config))
    # another seed makes other noisy entries, never the same clean one twice
    other, _ = extract_to_store(paths[:1], config, tmp_path, n_augment=1, random_state=8)
    assert other[0].path == entries[0].path and other[1].path != entries[1].path


def test_a_rerun_extracts_only_what_is_missing(paths, tmp_path):
    config = FeatureConfig()
    first, extracted = extract_to_store(paths, config, tmp_path, n_augment=1, random_state=0)
    assert extracted == len(paths)
    again, extracted = extract_to_store(paths, config, tmp_path, n_augment=1, random_state=0)
    assert extracted == 0 and again == first
    # an interrupted run: one noisy entry never written, another cut short, a temp file left behind
    os.unlink(first[3].path)
    with open(first[8].path, "r+b") as fh:
        fh.truncate(40)
    open(os.path.join(os.path.dirname(first[0].path), ".left-over.tmp"), "wb").close()
    resumed, extracted = extract_to_store(paths, config, tmp_path, n_augment=1, random_state=0)
    assert extracted == 2                       # files 1 and 4, nothing else
    assert resumed == first
    np.testing.assert_array_equal(read_entry(resumed[8]), file_sessions(paths[4], config, 1, [0, 4])[0][0])


def test_workers_make_the_same_entries(paths, tmp_path):
    config = FeatureConfig()
    serial, _ = extract_to_store(paths, config, tmp_path / "a", n_augment=1, random_state=0)
    with TaskRunner(n_jobs=2) as runner:
        parallel, _ = extract_to_store(paths, config, tmp_path / "b", n_augment=1, random_state=0, runner=runner)
    assert [e.n_frames for e in serial] == [e.n_frames for e in parallel]
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(read_entry(a), read_entry(b))
    assert read_entry(serial[0], subsample=4).shape[0] == -(-serial[0].n_frames // 4)


def test_a_missing_file_is_one_audio_error(tmp_path):
    from speakerid.exceptions import AudioError

    with pytest.raises(AudioError, match="gone.wav"):
        extract_to_store([tmp_path / "gone.wav"], FeatureConfig(), tmp_path / "store")


def test_shards_do_not_depend_on_workers(paths, tmp_path):
    entries, _ = extract_to_store(paths, FeatureConfig(), tmp_path)
    shards = make_shards(entries, 500)
    assert [e for shard in shards for e in shard] == entries
    assert all(sum(e.n_frames for e in s) <= 500 or len(s) == 1 for s in shards)
    assert len(make_shards(entries, 10**9)) == 1
