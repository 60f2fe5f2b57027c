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
