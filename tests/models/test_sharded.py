"""Map-reduce UBM EM (speakerid.models.sharded): shard statistics add up, worker counts and Dask give the same
model, a worker killed mid-iteration changes nothing."""

from __future__ import annotations

import os

import numpy as np
import pytest

from speakerid._utils.parallel import TaskRunner
from speakerid.exceptions import ParameterError
from speakerid.features.feature_store import StoredEntry, _write
from speakerid.models import _gmm_math as gm
from speakerid.models import sharded
from speakerid.models.gmm import DiagGMM
from speakerid.models.gmm_ubm import GMMUBM
from speakerid.models.sharded import fit_ubm_sharded, ordered_reduce, shard_em_stats

K, D = 8, 6


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """40 seeded 'utterances' (150-400 frames, 4 clusters) stored as entries; ``(arrays, entries)``."""
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("store")
    centres = rng.normal(scale=4.0, size=(4, D))
    arrays, entries = [], []
    for i in range(40):
        n = int(rng.integers(150, 400))
        X = (centres[rng.integers(0, 4, n)] + rng.normal(size=(n, D))).astype(np.float32)
        path = folder / f"{i}.npy"
        _write(path, X)
        arrays.append(X)
        entries.append(StoredEntry(str(path), n, i, 0, f"utt{i}"))
    return arrays, entries


def _params(model):
    return np.concatenate([model.ubm_.weights_, model.ubm_.means_.ravel(), model.ubm_.covariances_.ravel()])


def test_two_shards_add_up_to_the_whole():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1000, D)).astype(np.float32)
    gmm = DiagGMM(n_components=K, max_iter=2, random_state=0, n_jobs=1).fit(X)
    center = gmm._center()
    pt, c32 = gm.transposed32(gm.param_matrix(gmm.weights_, gmm.means_, gmm.covariances_, center)), \
        center.astype(np.float32)
    whole_ll, whole = shard_em_stats(X, c32, pt, rows=200)
    ll_a, a = shard_em_stats(X[:600], c32, pt, rows=200)
    ll_b, b = shard_em_stats(X[600:], c32, pt, rows=200)
    # chunk boundaries coincide (600 = 3 x 200): the same float32 blocks, added in the same order
    np.testing.assert_array_equal(a + b, whole)
    assert ll_a + ll_b == pytest.approx(whole_ll, rel=1e-12)
    # zeroth order sums to the number of frames; first order / zeroth = the component means' estimate
    assert whole[:, D].sum() == pytest.approx(1000, rel=1e-5)
    _, c = shard_em_stats(X[:333], c32, pt, rows=200)          # other boundaries: equal within float32 rounding
    _, d = shard_em_stats(X[333:], c32, pt, rows=200)
    np.testing.assert_allclose(c + d, whole, rtol=1e-5, atol=1e-4)


def test_ordered_reduce_keeps_task_order():
    def concat(shared, batch):
        return [[shared + x] for x in batch]

    with TaskRunner(n_jobs=1) as runner:
        assert ordered_reduce(runner, concat, 10, list(range(7)), lambda acc, item: (acc or []) + item) == \
            [10 + i for i in range(7)]
    assert ordered_reduce(None, concat, 0, [3, 1], lambda acc, item: (acc or []) + item) == [3, 1]


def test_sharded_fit_matches_in_memory_fit(stored):
    arrays, entries = stored
    reference = GMMUBM(n_components=K, max_iter=5, random_state=0).fit(arrays)
    model = fit_ubm_sharded(GMMUBM(n_components=K, max_iter=5, random_state=0), entries, None, shard_frames=3000)
    # same subsample and seeding; only the chunk boundaries of the float32 sums differ
    np.testing.assert_allclose(model.ubm_.means_, reference.ubm_.means_, rtol=0, atol=1e-4)
    np.testing.assert_allclose(model.ubm_.covariances_, reference.ubm_.covariances_, rtol=1e-4)
    np.testing.assert_allclose(model.ubm_.log_likelihood_history_, reference.ubm_.log_likelihood_history_,
                               rtol=1e-6)


def test_same_model_with_one_or_two_workers_and_on_dask(stored):
    _, entries = stored

    def fit(**runner):
        with TaskRunner(**runner) as r:
            return fit_ubm_sharded(GMMUBM(n_components=K, max_iter=4, random_state=3), entries, r,
                                   shard_frames=2500)

    serial = fit(n_jobs=1)
    joblib2 = fit(n_jobs=2)
    dask2 = fit(n_jobs=2, scheduler="local")
    # the reduction order is fixed and each shard is computed the same way anywhere: bit-identical
    np.testing.assert_array_equal(_params(serial), _params(joblib2))
    np.testing.assert_array_equal(_params(serial), _params(dask2))
    assert serial.ubm_hash_ == joblib2.ubm_hash_ == dask2.ubm_hash_


def test_subsample_keeps_every_nth_frame(stored):
    arrays, entries = stored
    model = fit_ubm_sharded(GMMUBM(n_components=K, max_iter=3, random_state=0), entries, None, subsample=3)
    reference = GMMUBM(n_components=K, max_iter=3, random_state=0).fit([X[::3] for X in arrays])
    np.testing.assert_allclose(model.ubm_.means_, reference.ubm_.means_, atol=1e-4)
    with pytest.raises(ParameterError, match="subsample"):
        fit_ubm_sharded(GMMUBM(n_components=K), entries, None, subsample=0)


def test_degenerate_frames_refused_by_name(tmp_path):
    X = np.tile(np.arange(D, dtype=np.float32), (500, 1))
    _write(tmp_path / "c.npy", X)
    with pytest.raises(ParameterError, match="constant.wav"):
        fit_ubm_sharded(GMMUBM(n_components=K), [StoredEntry(str(tmp_path / "c.npy"), 500, 0, 0, "constant.wav")])


_original_em_task = sharded._em_task


def _kill_once_em_task(shared, batch):
    """``_em_task`` that kills its worker process the first time any worker runs it (a marker file says so)."""
    *shared, marker = shared
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return _original_em_task(tuple(shared), batch)


def test_killed_dask_worker_is_retried_with_the_same_result(stored, tmp_path, monkeypatch):
    """A worker dies inside an EM iteration's statistics; Dask reruns its shards elsewhere: same model."""
    _, entries = stored
    reference = fit_ubm_sharded(GMMUBM(n_components=K, max_iter=3, random_state=0), entries, None,
                                shard_frames=2500)
    marker = str(tmp_path / "killed")

    def em_task(shared, batch):
        return _kill_once_em_task((*shared, marker), batch)

    monkeypatch.setattr(sharded, "_em_task", em_task)   # (the workers import this module by its name)
    with TaskRunner(n_jobs=2, scheduler="local") as runner:
        model = fit_ubm_sharded(GMMUBM(n_components=K, max_iter=3, random_state=0), entries, runner,
                                shard_frames=2500)
    assert os.path.exists(marker)            # a worker did die in the middle of the first iteration
    np.testing.assert_array_equal(_params(model), _params(reference))
