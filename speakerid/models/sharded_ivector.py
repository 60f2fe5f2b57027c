"""Map-reduce i-vector training on a feature store: Baum-Welch statistics and T-matrix EM per shard on workers.

The i-vector counterpart of :mod:`speakerid.models.sharded` (same shards, same runners, same fixed reduction
order, so the same model with any number of workers or on Dask):

1. one pass over shards of stored entries: each worker cuts its entries into segments
   (:func:`~speakerid.models.clipvec.segment_frames`), computes their zeroth- and centred first-order Baum-Welch
   statistics against the UBM (:func:`~speakerid.models.ivector.baum_welch_stats`) and writes them to the store
   (one ``.npz`` per shard, atomically, named by the UBM, the segmentation and the shard's entries: a rerun
   reuses them); it returns only sums (occupancy, spread of the statistics) and the frame checks;
2. per T-matrix EM iteration (Dehak et al. 2011; Kenny et al. 2005/2008, see :mod:`speakerid.models.ivector`),
   each worker reads its shard's statistics and returns the M-step sums ``A_c = sum N_uc E[ww']``,
   ``C = sum F^_u E[w]'``, ``sum E[ww']`` and the log-likelihood; the driver adds them in shard order, solves
   the M-step and broadcasts the new T (K x D x R: O(model) on the driver);
3. a last pass returns the i-vectors; LDA, WCCN and PLDA are then fitted on the driver
   (:meth:`~speakerid.models.ivector_system.IVectorSystem.fit_backend`): their input is R numbers per segment,
   not frames (about 30 times less than the 1.5-s segments' frames at R = 200, D = 39).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from speakerid._utils.blas import one_blas_thread
from speakerid._utils.files import atomic_write
from speakerid._utils.progress import em_bar
from speakerid.exceptions import ParameterError
from speakerid.features.feature_store import make_shards, read_entry
from speakerid.models._frame_checks import distinct_frames, judge_frames
from speakerid.models.clipvec import segment_frames
from speakerid.models.gmm import DiagGMM
from speakerid.models.ivector import TotalVariability, baum_welch_stats
from speakerid.models.ivector_system import IVectorSystem
from speakerid.models.sharded import DEFAULT_SHARD_FRAMES, ordered_reduce

__all__ = ["fit_ivector_sharded"]


def _ubm_arrays(ubm: DiagGMM) -> tuple:
    return ubm.weights_, ubm.means_, ubm.covariances_


def _stats_path(folder, ubm_arrays, segment_length, top_c, shard) -> Path:
    digest = hashlib.sha256()
    for array in ubm_arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    digest.update(f"{segment_length}\0{top_c}\0".encode())
    digest.update("\0".join(path for path, _ in shard).encode())
    key = digest.hexdigest()[:40]
    return Path(folder) / "baum-welch" / key[:2] / f"{key}.npz"


def _load_stats(path):
    with np.load(path, allow_pickle=False) as data:
        return data["N"], data["F"], data["owner"]


def _bw_task(shared, batch) -> list:
    """Worker: per shard, write (or find) its segments' statistics; return
    ``(stats path, segments per entry, counts, lows, highs, sum N (K,), sum of whitened F^2)``."""
    ubm_arrays, top_c, segment_length, folder = shared
    ubm = DiagGMM.from_params(*ubm_arrays, n_jobs=1)
    out = []
    with one_blas_thread():
        for shard in batch:
            path = _stats_path(folder, ubm_arrays, segment_length, top_c, shard)
            segments, owner = [], []
            for position, (entry, _) in enumerate(shard):
                parts = segment_frames(read_entry(entry), segment_length)
                segments.extend(parts)
                owner.extend([position] * len(parts))
            counts = [(len(s), distinct_frames(s)) for s in segments]
            lows = np.min([s.min(axis=0) for s in segments], axis=0)
            highs = np.max([s.max(axis=0) for s in segments], axis=0)
            try:
                N, F, _ = _load_stats(path)
            except (OSError, ValueError, KeyError, EOFError):
                N, F = baum_welch_stats(ubm, segments, top_c, n_jobs=1)
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_write(path, "wb") as fh:
                    np.savez(fh, N=N, F=F, owner=np.asarray(owner, dtype=np.int64))
            whitened = F / np.sqrt(ubm.covariances_)
            out.append((str(path), np.bincount(owner, minlength=len(shard)), counts, lows, highs, N.sum(axis=0),
                        float(np.sum(whitened * whitened))))
    return out


def _tv(shared) -> TotalVariability:
    T, variances, batch_size = shared
    return TotalVariability.from_params(T, variances, batch_size=batch_size, n_jobs=1)


def _tv_em_task(shared, batch) -> list:
    """Worker: per shard ``(log-likelihood, A (K, R, R), C (K*D, R), sum E[ww'])`` under the current T."""
    tv = _tv(shared)
    with one_blas_thread():
        out = []
        for path in batch:
            N, F, _ = _load_stats(path)
            out.append(tv._e_step(N, tv._whiten(F)))
        return out


def _ivector_task(shared, batch) -> list:
    """Worker: per shard, the raw i-vectors (n_segments, R) of its segments."""
    tv = _tv(shared)
    with one_blas_thread():
        return [tv.transform(*_load_stats(path)[:2]) for path in batch]


def _add_sums(acc, item):
    if acc is None:
        return [item[0]] + [np.array(part, copy=True) for part in item[1:]]
    acc[0] += item[0]
    for total, part in zip(acc[1:], item[1:]):
        total += part
    return acc


class _SegmentNames:
    """``names[i]``: the name of the stored entry segment ``i`` was cut from (for frame-check messages)."""

    def __init__(self, entries, entry_of_segment):
        self._entries, self._of = entries, entry_of_segment

    def __getitem__(self, i):
        return self._entries[int(self._of[i])].name


def fit_ivector_sharded(system: IVectorSystem, ubm: DiagGMM, entries, labels, runner=None, *,
                        segment_length: int, work_dir, shard_frames: int = DEFAULT_SHARD_FRAMES):
    """Train ``system`` (T matrix, then LDA/WCCN/PLDA) by map-reduce over stored entries; returns
    ``(system, segment labels)``.

    Parameters
    ----------
    system : IVectorSystem
        Its ``rank``, ``max_iter``, ``top_c``, ``batch_size``, ``random_state``, ``verbose`` and back-end
        settings are used.
    ubm : DiagGMM
        The fitted UBM of the Baum-Welch statistics.
    entries : list of StoredEntry
        The training sessions on disk (:func:`~speakerid.features.feature_store.extract_to_store`).
    labels : sequence
        The speaker of every manifest file (``labels[entry.file_index]`` labels an entry's segments).
    runner : TaskRunner, optional
        An opened runner whose workers see ``work_dir`` and the entries; ``None`` computes here.
    segment_length : int
        Frames per segment (0: whole entries).
    work_dir : str or os.PathLike
        Where the per-shard statistics are written (the feature store's folder).
    shard_frames : int
        Frames per shard.

    Raises
    ------
    ParameterError
        For degenerate frames (as :meth:`IVectorSystem.fit`) or a back end without enough speakers/sessions.
    """
    system._check_params()
    if not entries:
        raise ParameterError("no utterances given")
    k, d = ubm.means_.shape
    system.tv_ = tv = TotalVariability(rank=system.rank, max_iter=system.max_iter, batch_size=system.batch_size,
                                       random_state=system.random_state, verbose=system.verbose)
    tv._check_params(k, d)
    top_c = int(system.top_c) if system.top_c and system.top_c < k else None
    shards = make_shards(list(entries), int(shard_frames))
    first = np.cumsum([0] + [len(shard) for shard in shards])
    tasks = [[(e.path, int(start + i)) for i, e in enumerate(shard)] for shard, start in zip(shards, first)]
    shared = (_ubm_arrays(ubm), top_c, int(segment_length), os.fspath(work_dir))

    def collect(acc, item):
        acc = acc or {"paths": [], "per_entry": [], "counts": [], "lows": [], "highs": [], "N": 0.0, "F2": 0.0}
        path, per_entry, counts, lows, highs, n_sum, f2 = item
        acc["paths"].append(path)
        acc["per_entry"].append(per_entry)
        acc["counts"].extend(counts)
        acc["lows"].append(lows)
        acc["highs"].append(highs)
        acc["N"] = acc["N"] + n_sum
        acc["F2"] += f2
        return acc

    pass1 = ordered_reduce(runner, _bw_task, shared, tasks, collect)
    segments_per_entry = np.concatenate(pass1["per_entry"])
    entry_of_segment = np.repeat(np.arange(len(entries)), segments_per_entry)
    n = len(entry_of_segment)
    judge_frames(pass1["counts"], np.min(pass1["lows"], axis=0), np.max(pass1["highs"], axis=0), 1,
                 _SegmentNames(entries, entry_of_segment), "i-vector training")
    tv.variances_ = np.asarray(ubm.covariances_, dtype=np.float64)
    # this process's share (the start, the M-steps, the back end) under one BLAS thread, as the workers' E-steps:
    # the model then does not depend on the BLAS threads of the process that trains it (a resumed training's
    # fresh process and an uninterrupted one's differed by 1e-9 in T, which the back end's LDA amplified)
    with one_blas_thread():
        return _em_and_back_end(system, tv, ubm, entries, labels, runner, pass1, n, k, d, entry_of_segment)


def _em_and_back_end(system, tv, ubm, entries, labels, runner, pass1, n, k, d, entry_of_segment):
    """The T-matrix EM from the first pass's statistics, the training i-vectors and the back end."""
    occupancy = np.asarray(pass1["N"], dtype=np.float64)
    tv._start(occupancy, (pass1["F2"] / (n * k * d)) / max(float(occupancy.sum()) / (n * k), 1e-10))
    paths = pass1["paths"]
    with em_bar(tv.max_iter, "T-matrix EM", tv.verbose) as bar:
        def e_step():
            sums = tuple(ordered_reduce(runner, _tv_em_task, (tv.T_, tv.variances_, tv.batch_size), paths, _add_sums))
            bar.update(1)
            return sums

        tv._run_em(e_step, n)
    ivectors = ordered_reduce(runner, _ivector_task, (tv.T_, tv.variances_, tv.batch_size), paths,
                              lambda acc, item: (acc or []) + [item])
    system.ubm_ = ubm
    system.train_ivectors_ = np.concatenate(ivectors)
    labels = np.asarray(labels)[[entries[i].file_index for i in entry_of_segment]]
    system.fit_backend(system.train_ivectors_, labels)
    return system, labels
