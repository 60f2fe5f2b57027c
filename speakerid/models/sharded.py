"""Map-reduce EM of the UBM on a feature store: statistics per shard of utterances on workers, summed on the driver.

The driver never holds the frames: it has the list of stored entries
(:func:`speakerid.features.feature_store.extract_to_store`), cuts it into shards of about ``shard_frames``
frames (:func:`~speakerid.features.feature_store.make_shards`) and sends shards to the workers of a
:class:`~speakerid._utils.parallel.TaskRunner` (serial, joblib processes or a Dask cluster). Each worker reads its
shard's entries and returns small statistics; the driver adds them and keeps O(model) memory:

1. one pass for the data moments (per-dimension sums and sums of squares: the variance floor), the degenerate-
   frame checks (:func:`~speakerid.models._frame_checks.judge_frames`) and the rows of the seeded initialisation
   subsample (:func:`~speakerid.models.gmm.init_subsample`, drawn by the driver from the frame counts alone);
2. k-means++ seeding on that subsample, on the driver (``max(10000, 40 K)`` frames);
3. per EM iteration, one pass returning each shard's frame log-likelihood and zeroth/first/second-order
   statistics ``[sum r x, sum r, sum r x^2]`` (Dempster, Laird & Rubin 1977; Reynolds et al. 2000), then the
   M-step of :class:`~speakerid.models.gmm.DiagGMM` on the driver.

Frame subsampling (``subsample = s`` keeps every s-th frame of each entry) is Kaldi's ``--subsample`` option of
``train_diag_ubm.sh``: speech frames 10 ms apart are strongly correlated, so EM on a fraction of them gives nearly
the same UBM for a fraction of the time.

Determinism: shards depend on the entries only, every shard's statistics are computed the same way on any worker
(single-threaded BLAS, fixed chunk rows) and the driver adds them in shard order, whatever order they arrive in.
A model is therefore bit-identical with 1 or N joblib workers or on Dask, and a task that Dask re-runs after its
worker died returns the same statistics. Against :meth:`GMMUBM.fit` on the concatenated frames, the only
difference is where chunk sums are cut (float32 rounding, see ``tests/models/test_sharded.py``).
"""

from __future__ import annotations

import threading

import numpy as np

from speakerid._utils.blas import one_blas_thread
from speakerid._utils.parallel import imap_ordered
from speakerid._utils.progress import em_bar
from speakerid._utils.validation import check_random_state
from speakerid.exceptions import ParameterError
from speakerid.features.feature_store import make_shards, read_entry
from speakerid.models import _gmm_math as gm
from speakerid.models._frame_checks import distinct_frames, judge_frames
from speakerid.models.gmm import init_subsample
from speakerid.models.gmm_ubm import GMMUBM, check_collapse

__all__ = ["fit_ubm_sharded", "ordered_reduce", "shard_em_stats", "DEFAULT_SHARD_FRAMES"]

#: Frames per shard unless told otherwise: ~8 minutes of speech at 100 frames/s, 8 MB of float32 frames at
#: D = 39 (a worker holds one shard at a time; the driver one statistics array per shard in flight).
DEFAULT_SHARD_FRAMES = 50_000
#: Shards in flight per worker: enough to keep workers busy between the driver's reductions.
_WINDOW_PER_WORKER = 4
_LOCAL = threading.local()


def _workspace() -> gm.Workspace:
    """This thread's scratch arrays, kept from task to task: a fresh multi-megabyte array per shard costs page
    faults, many more on Dask, whose workers set ``MALLOC_TRIM_THRESHOLD_`` (measured: +30 % CPU per EM pass)."""
    ws = getattr(_LOCAL, "workspace", None)
    if ws is None:
        ws = _LOCAL.workspace = gm.Workspace()
    return ws


def _frames(paths, subsample: int, ws: gm.Workspace) -> np.ndarray:
    """The frames of a shard's entries, one after the other, in the workspace's ``frames`` array."""
    arrays = [read_entry(p, subsample) for p in paths]
    out = ws.get("frames", (sum(len(a) for a in arrays), arrays[0].shape[1]))
    return np.concatenate(arrays, axis=0, out=out)


def shard_em_stats(X, center32, pt, rows: int, ws: gm.Workspace | None = None) -> tuple[float, np.ndarray]:
    """A shard's E-step: the summed frame log-likelihood and float64 ``[sum r x, sum r, sum r x^2]`` (K, 2D+1).

    Chunks of ``rows`` frames are added in order, so the result depends on the frames and ``rows`` only.
    """
    ws = gm.Workspace() if ws is None else ws
    ll, stats = 0.0, None
    for a in range(0, len(X), rows):
        part_ll, part = gm.em_stats_chunk(X[a:a + rows], center32, pt, ws)
        ll += part_ll
        stats = part if stats is None else np.add(stats, part, out=stats)
    return ll, stats


def _moments_task(subsample, batch) -> list:
    """Worker: per shard ``(n, sums, squares, lows, highs, [(n_i, distinct_i)...], picked rows)``."""
    out = []
    with one_blas_thread():
        for shard in batch:
            counts, picked = [], []
            sums = squares = lows = highs = None
            for path, picks in shard:
                X = read_entry(path, subsample)
                s, q = gm.moments(X)
                sums, squares = (s, q) if sums is None else (sums + s, squares + q)
                lo, hi = X.min(axis=0), X.max(axis=0)
                lows, highs = (lo, hi) if lows is None else (np.minimum(lows, lo), np.maximum(highs, hi))
                counts.append((len(X), distinct_frames(X)))
                picked.append(X[picks])
            out.append((sum(n for n, _ in counts), sums, squares, lows, highs, counts, np.concatenate(picked)))
    return out


def _em_task(shared, batch) -> list:
    """Worker: per shard ``(log-likelihood sum, statistics)`` under the parameters in ``shared``."""
    pt, center32, subsample, rows = shared
    ws = _workspace()
    with one_blas_thread():
        return [shard_em_stats(_frames(shard, subsample, ws), center32, pt, rows, ws) for shard in batch]


def _collapse_task(shared, batch) -> list:
    """Worker: per shard, for each entry, whether most of its frames go to the floored components."""
    from speakerid.models.gmm import DiagGMM

    (weights, means, variances), floored, subsample = shared
    gmm = DiagGMM.from_params(weights, means, variances, n_jobs=1)
    with one_blas_thread():
        return [[bool(np.isin(gmm.predict(read_entry(p, subsample)), floored).mean() > 0.5) for p in shard]
                for shard in batch]


def ordered_reduce(runner, func, shared, tasks: list, reduce, acc=None):
    """Fold ``reduce(acc, item)`` over the per-task results of ``func(shared, batch)``, in task order.

    Tasks go to ``runner`` (a :class:`~speakerid._utils.parallel.TaskRunner`, or ``None``: in this process) in
    windows of ``4 x workers`` (:func:`~speakerid._utils.parallel.imap_ordered`): at most two windows of results
    exist at once (driver memory: O(window x result size)).
    """
    window = _WINDOW_PER_WORKER * max(1, getattr(runner, "n_workers", 1))
    for item in imap_ordered(runner, func, shared, tasks, window):
        acc = reduce(acc, item)
    return acc


def _add_moments(acc, item):
    if acc is None:
        n, s, q, lo, hi, counts, picked = item
        return [n, s.copy(), q.copy(), lo.copy(), hi.copy(), list(counts), [picked]]
    acc[0] += item[0]
    acc[1] += item[1]
    acc[2] += item[2]
    np.minimum(acc[3], item[3], out=acc[3])
    np.maximum(acc[4], item[4], out=acc[4])
    acc[5].extend(item[5])
    acc[6].append(item[6])
    return acc


def _add_stats(acc, item):
    return (item[0], item[1].copy()) if acc is None else gm.add_stats(acc, item)


def fit_ubm_sharded(model: GMMUBM, entries, runner=None, *, subsample: int = 1,
                    shard_frames: int = DEFAULT_SHARD_FRAMES) -> GMMUBM:
    """Train ``model``'s UBM by map-reduce EM over stored entries; ``model`` (fitted) is returned.

    Parameters
    ----------
    model : GMMUBM
        Its ``n_components``, ``max_iter``, ``tol``, ``random_state`` and ``verbose`` are used.
    entries : list of StoredEntry
        The training frames on disk, in order (clean file, its noisy copies, next file, ...), as returned by
        :func:`~speakerid.features.feature_store.extract_to_store`.
    runner : TaskRunner, optional
        An opened runner whose workers see the entries' folder; ``None`` computes here.
    subsample : int
        Keep every ``subsample``-th frame of each entry (1: all; Kaldi's ``--subsample``).
    shard_frames : int
        Frames per shard (see :func:`~speakerid.features.feature_store.make_shards`); part of what defines the
        sums, so keep it fixed to reproduce a model.

    Returns
    -------
    GMMUBM

    Raises
    ------
    ParameterError
        For fewer frames than components, degenerate frames (constant dimensions, too few distinct frames) or a
        UBM that collapsed onto the variance floor, as :meth:`GMMUBM.fit`.
    """
    model._check_params()
    gmm = model.ubm_estimator()
    gmm._check_params()
    subsample = int(subsample)
    if subsample < 1 or int(shard_frames) < 1:
        raise ParameterError(f"subsample and shard_frames must be integers >= 1, got {subsample}, {shard_frames}")
    if not entries:
        raise ParameterError("no feature arrays given")
    k = int(gmm.n_components)
    lengths = np.array([-(-e.n_frames // subsample) for e in entries], dtype=np.int64)
    n = int(lengths.sum())
    if n < k:
        raise ParameterError(f"{n} frames cannot fit {k} components: give at least {k} frames (ideally "
                             f"10 or more per component) or lower n_components")
    rng = check_random_state(gmm.random_state)
    picks = init_subsample(n, k, rng)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    bounds = np.searchsorted(picks, offsets)
    shards = make_shards(list(entries), int(shard_frames) * subsample)
    paths = [[e.path for e in shard] for shard in shards]
    first = np.cumsum([0] + [len(shard) for shard in shards])   # each shard's first entry
    tasks = [[(e.path, picks[bounds[j]:bounds[j + 1]] - offsets[j]) for j, e in enumerate(shard, start)]
             for shard, start in zip(shards, first)]
    n_seen, sums, squares, lows, highs, counts, picked = ordered_reduce(runner, _moments_task, subsample, tasks,
                                                                        _add_moments)
    names = [e.name for e in entries]
    judge_frames(counts, lows, highs, k, names, "UBM training")
    center, data_var, floor = gmm._data_floor(sums, squares, n_seen)
    params = gmm._seed_params(np.concatenate(picked), center, data_var, floor, rng)
    center32, rows = center.astype(np.float32), gm.chunk_rows(k, len(center), None)

    with em_bar(gmm.max_iter, "UBM EM", gmm.verbose) as bar:
        def e_step(pt):
            stats = ordered_reduce(runner, _em_task, (pt, center32, subsample, rows), paths, _add_stats)
            bar.update(1)
            return stats

        gmm._run_em(e_step, n_seen, len(center), center, floor, params)
    if gmm.floored_components_:
        shared = ((gmm.weights_, gmm.means_, gmm.covariances_), gmm.floored_components_, subsample)
        flags = ordered_reduce(runner, _collapse_task, shared, paths, lambda acc, item: (acc or []) + item)
        check_collapse(gmm, [name for name, flag in zip(names, flags) if flag], n_seen)
    return model.adopt_ubm(gmm)
