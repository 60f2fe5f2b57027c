"""train_ubm (speakerid.backends.gmm_ubm): the same UBM with any worker count, a reused feature store."""

from __future__ import annotations

import numpy as np
import pytest

from speakerid.backends.gmm_ubm import train_ubm
from speakerid.exceptions import ParameterError
from speakerid.store import UBM_FILE, ModelStore


def _ubm(model_dir):
    header, arrays = ModelStore(model_dir).load(UBM_FILE)
    return arrays, header


def test_same_ubm_with_one_or_two_workers_and_a_reused_store(synth_corpus, tmp_path):
    settings = dict(n_components=8, max_iter=3, cohort_speakers=0, shard_frames=1500)
    one = train_ubm(tmp_path / "one", synth_corpus.background_csv, n_jobs=1, cache_dir=tmp_path / "cache",
                    **settings)
    assert one["n_extracted"] == one["n_files"] == 24
    two = train_ubm(tmp_path / "two", synth_corpus.background_csv, n_jobs=2, cache_dir=tmp_path / "cache",
                    **settings)
    assert two["n_extracted"] == 0                       # every entry was in the store
    (a, header_a), (b, header_b) = _ubm(tmp_path / "one"), _ubm(tmp_path / "two")
    for name in ("weights", "means", "variances"):
        np.testing.assert_array_equal(a[name], b[name])
    assert header_a["ubm_hash"] == header_b["ubm_hash"]
    assert header_a["n_frames"] == one["n_frames"] > 24 * 100       # clean + 1 noisy copy of 2-3 s files
    assert len(one["em_seconds"]) == one["n_iter"] == 3
    # no temporary store left behind by a run without cache_dir, and the model directory holds whole files only
    three = train_ubm(tmp_path / "three", synth_corpus.background_csv, **settings)
    assert three["n_extracted"] == 24
    assert not [p for p in (tmp_path / "three").rglob("*") if p.name.endswith(".tmp")]


def test_remote_scheduler_needs_a_shared_store(synth_corpus, tmp_path):
    with pytest.raises(ParameterError, match="--cache"):
        train_ubm(tmp_path / "m", synth_corpus.background_csv, scheduler="tcp://127.0.0.1:1", n_components=4)


def test_unusable_background_files_are_left_out_and_listed(synth_corpus, tmp_path):
    """Silence, a steady tone, a 50-ms blip and a broken header among the background: the UBM trains on the others
    (the same model as without them), and each is listed with its reason; all of them unusable is an error."""
    import pandas as pd

    from speakerid.exceptions import AudioError, AudioWarning
    from tests._unusable import unusable_files

    good = pd.read_csv(synth_corpus.background_csv, dtype=str)
    good["path"] = [str((synth_corpus.background_csv.parent / p).resolve()) for p in good["path"]]
    bad = unusable_files(tmp_path / "bad")
    mixed = pd.concat([good, pd.DataFrame({"speaker": [f"bad{i}" for i in range(len(bad))],
                                           "path": [str(p) for p in bad]})], ignore_index=True)
    settings = dict(n_components=8, max_iter=2, cohort_speakers=2, cache_dir=tmp_path / "cache")
    clean = train_ubm(tmp_path / "clean", good, **settings)
    with pytest.warns(AudioWarning, match=r"4 of 28 background file\(s\) left out, listed with the reason in .*: .*(silent|speech)"):
        result = train_ubm(tmp_path / "mixed", mixed, **settings)
    assert (result["n_files"], result["n_refused"], clean["n_refused"]) == (24, 4, 0)
    (a, header_a), (b, header_b) = _ubm(tmp_path / "clean"), _ubm(tmp_path / "mixed")
    np.testing.assert_array_equal(a["means"], b["means"])
    assert header_b["background_speakers"] == header_a["background_speakers"]
    listed = pd.read_csv(tmp_path / "mixed" / "refused-ubm.csv", dtype=str)
    assert sorted(listed["path"]) == sorted(map(str, bad)) and listed["reason"].str.len().min() > 10
    assert not (tmp_path / "clean" / "refused-ubm.csv").exists()
    assert not set(pd.read_csv(tmp_path / "mixed" / "cohort.csv", dtype=str)["path"]) & set(map(str, bad))
    with pytest.raises(AudioError, match=r"none of the 4 background file\(s\) can be used"):
        train_ubm(tmp_path / "none", mixed.tail(4), **settings)
    # a failed rerun leaves the directory's model and its list as they were
    with pytest.raises(AudioError, match="none of the 4"):
        train_ubm(tmp_path / "mixed", mixed.tail(4), **settings)
    assert len(pd.read_csv(tmp_path / "mixed" / "refused-ubm.csv")) == 4
    np.testing.assert_array_equal(_ubm(tmp_path / "mixed")[0]["means"], b["means"])
