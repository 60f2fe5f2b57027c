"""The weighted sweep behind :mod:`speakerid.evaluation.bootstrap`: a system's trials sorted once, then the metrics
of many resamples at a time, each resample given as how often every group (speaker) was drawn.

A trial of a group drawn ``k`` times counts ``k`` times. Each replicate's weighted miss / false-alarm counts at the
operating points are cumulative sums of those weights in score order; the metrics are read from them with the
integer counts and floating-point operations of :mod:`speakerid.evaluation._sweep`, so unit weights give
:func:`~speakerid.evaluation.metrics.eer`, ``min_dcf`` and ``act_dcf`` bit for bit (Cllr and minCllr are sums
taken in another order: equal to rounding). Private to :mod:`speakerid.evaluation`.

References
----------
.. [1] N. Brümmer and J. du Preez, "Application-independent evaluation of speaker detection", Computer Speech &
       Language 20(2-3):230-275, 2006 (minCllr by PAV).
.. [2] T. Fawcett and A. Niculescu-Mizil, "PAV and the ROC convex hull", Machine Learning 68:97-106, 2007.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from speakerid.evaluation import metrics


class Trials(NamedTuple):
    """One system's trials sorted by score, and what every replicate's weighted sweep is read from.

    Operating point ``k`` accepts the trials scoring at least the ``k``-th distinct score (the last point rejects
    all), as :func:`speakerid.evaluation.metrics.det_curve`.
    """

    tar_group: np.ndarray    # (n_target,) group of each target trial, scores ascending
    non_group: np.ndarray    # (n_nontarget,)
    tar_below: np.ndarray    # (n_points,) target trials scoring below each operating point
    non_below: np.ndarray    # (n_points,)
    runs: np.ndarray         # operating points starting a run of one-class scores (and the last point)
    fixed: dict              # name -> operating point of a fixed threshold (Bayes thresholds, LLR 0)
    tar_cost: np.ndarray     # (n_groups,) sum of log(1 + e^-s) over a group's target trials (Cllr)
    non_cost: np.ndarray     # (n_groups,) sum of log(1 + e^s) over a group's non-target trials
    largest_group: int       # trials in the largest group


def prepare(scores, labels, group_index, n_groups: int, p_targets) -> Trials:
    """Sort checked ``scores`` (float, shape (n_trials,)) with their 0/1 ``labels`` and ``group_index`` (int in
    [0, n_groups), shape (n_trials,)); ``p_targets`` fix the Bayes thresholds of actDCF."""
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_labels, sorted_groups = scores[order], labels[order], group_index[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    tar_per = np.add.reduceat(sorted_labels, starts)
    non_per = np.diff(np.r_[starts, len(scores)]) - tar_per
    # A DCF minimum is where a run of one-class scores starts or ends (in a run of targets P_miss only grows, in a
    # run of non-targets P_fa only falls) and PAV never splits such a run: both need the counts there only.
    kind = np.where(non_per == 0, 1, np.where(tar_per == 0, 0, 2))
    run_start = np.r_[True, (kind[1:] != kind[:-1]) | (kind[1:] == 2)]
    distinct = sorted_scores[starts]
    fixed = {"zero": int(np.searchsorted(distinct, 0.0, side="left"))}
    for p in p_targets:
        fixed[p] = int(np.searchsorted(distinct, metrics.bayes_threshold(p), side="left"))
    is_tar = labels == 1
    return Trials(
        tar_group=sorted_groups[sorted_labels == 1], non_group=sorted_groups[sorted_labels == 0],
        tar_below=np.r_[0, np.cumsum(tar_per)], non_below=np.r_[0, np.cumsum(non_per)],
        runs=np.r_[np.flatnonzero(run_start), len(starts)], fixed=fixed,
        tar_cost=np.bincount(group_index[is_tar], np.logaddexp(0.0, -scores[is_tar]), minlength=n_groups),
        non_cost=np.bincount(group_index[~is_tar], np.logaddexp(0.0, scores[~is_tar]), minlength=n_groups),
        largest_group=int(np.bincount(group_index).max()))


def metric_names(p_targets, llr: bool) -> list:
    """The metrics of a result, in order; ``llr=False`` leaves out those that read the scores as LLRs."""
    names = ["eer"] + [f"min_dcf@{p:g}" for p in p_targets]
    if llr:
        names += [f"act_dcf@{p:g}" for p in p_targets] + ["cllr"]
    return names + ["min_cllr"] + (["nontarget_accept"] if llr else [])


def draw(rng, n_replicates: int, n_groups: int) -> np.ndarray:
    """(n_replicates, n_groups) counts: how often each group is drawn in ``n_groups`` draws with replacement."""
    picks = rng.integers(0, n_groups, size=(n_replicates, n_groups))
    picks += n_groups * np.arange(n_replicates)[:, None]
    return np.bincount(picks.ravel(), minlength=n_replicates * n_groups).reshape(n_replicates, n_groups)


def _cumulative(counts: np.ndarray, trial_groups: np.ndarray) -> np.ndarray:
    """(R, n + 1): each replicate's summed weight of the first 0, 1, ..., n trials in score order (counts' type)."""
    out = np.zeros((counts.shape[0], len(trial_groups) + 1), dtype=counts.dtype)
    np.cumsum(np.take(counts, trial_groups, axis=1), axis=1, out=out[:, 1:])
    return out


def replicate_metrics(trials: Trials, counts: np.ndarray, p_targets, llr: bool, *,
                      with_min_cllr: bool = True) -> dict:
    """Every metric of each replicate: ``{name: (R,) values}`` for ``counts`` of shape (R, n_groups).

    The arithmetic (integer counts, then the same floating-point operations) is that of
    :mod:`speakerid.evaluation._sweep`, so unit weights reproduce :func:`metrics.eer`, ``min_dcf`` and ``act_dcf``
    bit for bit.
    """
    # 32-bit sums when no replicate can reach 2**31 (twice as fast); products of counts are taken in 64 bits
    small = int(counts.sum(axis=1).max()) * trials.largest_group < 2**31
    counts_sum = counts.astype(np.int32 if small else np.int64)
    cum_tar = _cumulative(counts_sum, trials.tar_group)
    cum_non = _cumulative(counts_sum, trials.non_group)
    rows = np.arange(len(counts))
    n_tar, n_non = cum_tar[:, -1].astype(np.int64), cum_non[:, -1].astype(np.int64)

    def at(points):     # (n_miss, n_fa) of each replicate at its own operating point, shape (R,)
        return (cum_tar[rows, trials.tar_below[points]].astype(np.int64),
                n_non - cum_non[rows, trials.non_below[points]])

    out = {"eer": weighted_eer(at, n_tar, n_non, len(trials.tar_below) - 1)}
    # (R, n_runs + 1): every replicate at the same points (np.take: several times faster than fancy indexing)
    n_miss = np.take(cum_tar, trials.tar_below[trials.runs], axis=1)
    n_fa = n_non[:, None] - np.take(cum_non, trials.non_below[trials.runs], axis=1)
    p_miss, p_fa = n_miss / n_tar[:, None], n_fa / n_non[:, None]
    dcf, part = np.empty_like(p_miss), np.empty_like(p_miss)
    for p in p_targets:     # (weight_miss * p_miss + weight_fa * p_fa) / min(...), as _sweep.dcf_at_points
        weight_miss, weight_fa = p * 1.0, (1.0 - p) * 1.0
        np.multiply(p_miss, weight_miss, out=dcf)
        dcf += np.multiply(p_fa, weight_fa, out=part)
        dcf /= min(weight_miss, weight_fa)
        best = dcf.min(axis=1)
        # metrics' tie rule: the lowest threshold within 1e-12 of the minimum (points are in threshold order)
        tied = dcf <= (best + 1e-12 * np.maximum(1.0, np.abs(best)))[:, None]
        out[f"min_dcf@{p:g}"] = dcf[rows, np.argmax(tied, axis=1)]
    if llr:
        for p in p_targets:
            weight_miss, weight_fa = p * 1.0, (1.0 - p) * 1.0
            miss, fa = at(np.full(len(rows), trials.fixed[p]))
            out[f"act_dcf@{p:g}"] = (weight_miss * (miss / n_tar) + weight_fa * (fa / n_non)) / min(weight_miss,
                                                                                                     weight_fa)
        out["cllr"] = ((counts @ trials.tar_cost) / n_tar + (counts @ trials.non_cost) / n_non) / (2.0 * np.log(2.0))
        out["nontarget_accept"] = at(np.full(len(rows), trials.fixed["zero"]))[1] / n_non
    if with_min_cllr:
        out["min_cllr"] = weighted_min_cllr(np.diff(n_miss, axis=1), -np.diff(n_fa, axis=1), n_tar, n_non)
    return out


def weighted_eer(at, n_tar, n_non, last: int) -> np.ndarray:
    """EER of each replicate, as :func:`speakerid.evaluation._sweep.crossing`: the first operating point with
    P_miss >= P_fa (found by bisection: the sign of P_miss - P_fa never decreases along the sweep) and the
    straight line from the point before it."""
    def sign(point):
        n_miss, n_fa = at(point)
        return n_miss * n_non - n_fa * n_tar

    low, high = np.ones(len(n_tar), np.int64), np.full(len(n_tar), last, np.int64)  # point 0 has P_miss < P_fa
    while (low < high).any():
        middle = (low + high) // 2
        reached = sign(middle) >= 0
        high = np.where(reached, middle, high)
        low = np.where(reached, low, middle + 1)
    (miss_i, fa_i), (miss_h, fa_h) = at(high), at(high - 1)
    p_miss_i, p_fa_i, p_miss_h, p_fa_h = miss_i / n_tar, fa_i / n_non, miss_h / n_tar, fa_h / n_non
    d_lo, d_hi = p_miss_h - p_fa_h, p_miss_i - p_fa_i
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = -d_lo / (d_hi - d_lo)
        rate = p_miss_h + alpha * (p_miss_i - p_miss_h)
    return np.where(miss_i * n_non - fa_i * n_tar == 0, p_miss_i, rate)


def weighted_min_cllr(tar_runs: np.ndarray, non_runs: np.ndarray, n_tar: np.ndarray,
                      n_non: np.ndarray) -> np.ndarray:
    """minCllr of each replicate from its (R, n_runs) target / non-target counts per run of one-class scores.

    One weighted PAV for all replicates: replicate ``r``'s posteriors are shifted by ``2 r``, so that no block
    pools across replicates; the pooled blocks' posteriors are then taken from their exact integer counts.
    """
    sizes = (tar_runs + non_runs).ravel()
    kept = np.flatnonzero(sizes)
    replicate, tar, size = kept // tar_runs.shape[1], tar_runs.ravel()[kept], sizes[kept]
    try:    # PAV in compiled code: SciPy's (>= 1.12), else scikit-learn's
        from scipy.optimize import isotonic_regression

        fitted = isotonic_regression(tar / size + 2.0 * replicate, weights=size.astype(np.float64)).x
    except ImportError:
        from sklearn.isotonic import isotonic_regression

        fitted = isotonic_regression(tar / size + 2.0 * replicate, sample_weight=size.astype(np.float64))
    starts = np.flatnonzero(np.r_[True, (fitted[1:] != fitted[:-1]) | (replicate[1:] != replicate[:-1])])
    tar_block, size_block, owner = np.add.reduceat(tar, starts), np.add.reduceat(size, starts), replicate[starts]
    non_block = size_block - tar_block
    with np.errstate(divide="ignore", invalid="ignore"):
        posterior = tar_block / size_block
        llr = np.log(posterior) - np.log1p(-posterior) - np.log(n_tar[owner] / n_non[owner])
        tar_cost = np.where(tar_block > 0, tar_block * np.logaddexp(0.0, -llr), 0.0)
        non_cost = np.where(non_block > 0, non_block * np.logaddexp(0.0, llr), 0.0)
    n = len(n_tar)
    return ((np.bincount(owner, tar_cost, minlength=n) / n_tar + np.bincount(owner, non_cost, minlength=n) / n_non)
            / (2.0 * np.log(2.0)))
