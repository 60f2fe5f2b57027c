"""The pieces under batch scoring: TaskRunner (serial / joblib), the feature cache, trial-list scanning."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from speakerid._utils.validation import resolve_jobs
from speakerid.data.trials import read_chunks, scan_trials
from speakerid.exceptions import ManifestError, ParameterError
from speakerid.features import FeatureConfig
from speakerid.features.cache import FeatureCache, cache_key
from speakerid.scoring.parallel import TaskRunner, split_batches


def square_all(offset, batch):
    return [(x * x + offset, os.getpid()) for x in batch]


def fail_on_three(_, batch):
    if 3 in batch:
        raise ValueError("three is bad")
    return batch


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_runner_keeps_order_and_reuses_workers(n_jobs):
    with TaskRunner(n_jobs) as runner:
        first = runner.map(square_all, 1, list(range(50)))
        second = runner.map(square_all, 1, list(range(50)))
        assert runner.map(square_all, 1, []) == []
    assert [v for v, _ in first] == [x * x + 1 for x in range(50)]
    pids = {p for _, p in first + second}
    assert (pids == {os.getpid()}) if n_jobs == 1 else (os.getpid() not in pids and len(pids) <= n_jobs)
    assert runner.description == ("serial" if n_jobs == 1 else "joblib (2 processes)")


def test_runner_errors_propagate_and_bad_options():
    with TaskRunner(2) as runner, pytest.raises(ValueError, match="three is bad"):
        runner.map(fail_on_three, None, list(range(10)))
    with pytest.raises(ParameterError, match="scheduler"):
        TaskRunner(1, scheduler="somewhere")
    with pytest.raises(ParameterError, match="n_jobs"):
        TaskRunner(0)
    assert resolve_jobs(-1) == (os.cpu_count() or 1)


def test_split_batches_covers_everything_in_order():
    for n, k in [(0, 3), (1, 3), (10, 3), (10, 10), (7, 100)]:
        batches = split_batches(list(range(n)), k)
        assert [x for b in batches for x in b] == list(range(n))
        assert all(batches) and len(batches) <= max(k, 1)
        assert max(map(len, batches), default=0) - min(map(len, batches), default=0) <= 1


def _fake_extract(calls):
    def extract(path, config):
        calls.append(path)
        return np.full((3, config.n_ceps), len(calls), dtype=np.float32)
    return extract


def test_feature_cache_keys_hits_and_recovery(tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"x" * 100)
    config = FeatureConfig()
    calls = []
    cache = FeatureCache(tmp_path / "cache", config, extract=_fake_extract(calls))
    first = cache.features(audio)
    np.testing.assert_array_equal(cache.features(audio), first)
    assert (cache.hits, cache.misses, len(calls)) == (1, 1, 1)

    key = cache_key(audio, config)
    assert key != cache_key(audio, FeatureConfig(n_ceps=13))
    os.utime(audio, ns=(0, 10**9))                     # touched: a new key, features extracted again
    assert cache_key(audio, config) != key
    cache.features(audio)
    assert len(calls) == 2

    entry = cache.entry_path(audio)
    entry.write_bytes(b"\x93NUMPY garbage")              # corrupt: ignored, recomputed, rewritten
    assert cache.features(audio)[0, 0] == 3 and np.load(entry, allow_pickle=False)[0, 0] == 3
    with open(entry, "wb") as fh:  # an object-dtype .npy (a pickle inside) is never loaded
        np.lib.format.write_array_header_1_0(fh, {"descr": "|O", "fortran_order": False, "shape": (1,)})
        fh.write(b"\x80\x02}q\x00X\x05\x00\x00\x00meansq\x01K\x00s.")
    assert cache.features(audio)[0, 0] == 4
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".")]


def test_feature_cache_without_folder_or_unwritable(tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"x")
    calls = []
    FeatureCache(None, FeatureConfig(), extract=_fake_extract(calls)).features(audio)
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    cache = FeatureCache(blocked, FeatureConfig(), extract=_fake_extract(calls))
    assert cache.features(audio).shape == (3, 20) and len(calls) == 2
    with pytest.raises(FileNotFoundError):
        cache_key(tmp_path / "missing.wav", FeatureConfig())


def test_scan_and_chunks_keep_values_and_lines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("speaker , path,target,extra\nb, x.wav ,1,007\n,,,\na,y.wav,false,\nb,z.wav,0,z\n")
    assert scan_trials(path, 2) == (3, ["a", "b"], True)
    chunks = list(read_chunks(path, 2))
    assert [list(c.index) for c, _ in chunks] == [[2, 3], [4, 5]]
    first = chunks[0][0]
    assert list(first.columns) == ["speaker", "path", "target", "extra"] and first.loc[2, "extra"] == "007"
    frame = pd.DataFrame({"speaker": ["a", "b"], "path": ["p", "q"], "target": [1, "maybe"]})
    with pytest.raises(ManifestError, match=r"target must be 0 or 1; row\(s\) 1 hold 'maybe'"):
        scan_trials(frame, 10)


def _double_all(shared, batch):
    return [2 * x for x in batch]


def test_local_workers_leave_joblib_parallel_usable():
    # loky keeps one reusable pool per process: the runner's must be one joblib.Parallel can take over
    from joblib import Parallel, delayed

    with TaskRunner(2, None) as runner:
        assert runner.map(_double_all, None, [1, 2, 3]) == [2, 4, 6]
    assert Parallel(n_jobs=2)(delayed(abs)(-i) for i in range(3)) == [0, 1, 2]
    with TaskRunner(2, None) as runner:
        assert runner.map(_double_all, None, [4]) == [8]
