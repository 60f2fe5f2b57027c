"""The machinery every verification metric shares: checking ``(scores, labels)`` at the public edge, and the one
sort of the scores into operating points (:class:`Sweep`) that EER, DCF, Cllr and the curves are read from.

Private to :mod:`speakerid.evaluation`; the public functions are in :mod:`speakerid.evaluation.metrics`.

References
----------
.. [1] N. Brümmer and J. du Preez, "Application-independent evaluation of speaker detection",
       Computer Speech & Language 20(2-3):230-275, 2006 (Cllr, min Cllr via PAV).
.. [3] T. Fawcett and A. Niculescu-Mizil, "PAV and the ROC convex hull", Machine Learning 68:97-106, 2007.
.. [4] NIST Speaker Recognition Evaluation plans (e.g. SRE 2010): detection cost function normalised by
       C_default = min(C_miss * P_target, C_fa * (1 - P_target)).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from speakerid.exceptions import ParameterError

MAX_POSITIONS_SHOWN = 10


# ---------------------------------------------------------------------------------------------------------------
# validation at the public edge
# ---------------------------------------------------------------------------------------------------------------

def positions(mask) -> str:
    where = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in where[:MAX_POSITIONS_SHOWN])
    more = f", ... ({len(where)} in all)" if len(where) > MAX_POSITIONS_SHOWN else ""
    return f"[{shown}{more}]"


def check_trials(scores, labels, *, allow_inf: bool = False):
    """Return ``(scores float64, labels int64)`` or raise :class:`ParameterError` saying what is wrong."""
    try:
        scores = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError("scores must be numbers (could not convert them to floats)") from None
    if scores.ndim != 1:
        raise ParameterError(f"scores must be a 1-D array (one score per trial), got shape {scores.shape}")
    labels_in = np.asarray(labels)
    if labels_in.ndim != 1:
        raise ParameterError(f"labels must be a 1-D array (one label per trial), got shape {labels_in.shape}")
    if len(scores) != len(labels_in):
        raise ParameterError(f"scores and labels differ in length: {len(scores)} scores, {len(labels_in)} labels")
    if len(scores) == 0:
        raise ParameterError("no trials: scores and labels are empty")
    nan = np.isnan(scores)
    if nan.any():
        raise ParameterError(f"NaN scores at positions {positions(nan)}")
    if not allow_inf:
        inf = np.isinf(scores)
        if inf.any():
            raise ParameterError(f"infinite scores at positions {positions(inf)} (only cllr/min_cllr accept "
                                 "infinite log-likelihood ratios; clip the scores first)")
    if labels_in.dtype.kind not in "biuf":
        raise ParameterError(f"labels must be 0 (non-target) or 1 (target), got dtype {labels_in.dtype}")
    bad = (labels_in != 0) & (labels_in != 1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ParameterError(f"labels must be 0 (non-target) or 1 (target); found {labels_in[first]!r} "
                             f"at positions {positions(bad)}")
    labels_out = labels_in.astype(np.int64)
    n_tar = int(labels_out.sum())
    if n_tar == 0 or n_tar == len(labels_out):
        kind = "target (1)" if n_tar else "non-target (0)"
        raise ParameterError(f"only one class in labels: all {len(labels_out)} trials are {kind}; "
                             "need both target and non-target trials")
    return scores, labels_out


def check_cost(p_target, c_miss, c_fa):
    p_target, c_miss, c_fa = float(p_target), float(c_miss), float(c_fa)
    if not 0.0 < p_target < 1.0:
        raise ParameterError(f"p_target must be strictly between 0 and 1, got {p_target}")
    if not (np.isfinite(c_miss) and c_miss > 0 and np.isfinite(c_fa) and c_fa > 0):
        raise ParameterError(f"c_miss and c_fa must be positive and finite, got {c_miss} and {c_fa}")
    return p_target, c_miss, c_fa


# ---------------------------------------------------------------------------------------------------------------
# the one sort every metric shares
# ---------------------------------------------------------------------------------------------------------------

class Sweep(NamedTuple):
    """All operating points, thresholds ascending: the distinct scores, then +inf (reject everything)."""

    thresholds: np.ndarray   # (G + 1,)
    n_miss: np.ndarray       # targets with score < threshold
    n_fa: np.ndarray         # non-targets with score >= threshold
    tar_per_score: np.ndarray  # (G,) target count at each distinct score
    non_per_score: np.ndarray  # (G,) non-target count at each distinct score
    n_tar: int
    n_non: int


def sweep_of(scores: np.ndarray, labels: np.ndarray) -> Sweep:
    order = np.argsort(scores)
    sorted_scores = scores[order]
    sorted_labels = labels[order]
    # `!=` rather than np.diff so that equal infinite scores form one group
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    tar_per = np.add.reduceat(sorted_labels, starts)
    non_per = np.diff(np.r_[starts, len(scores)]) - tar_per
    n_tar, n_non = int(tar_per.sum()), int(non_per.sum())
    n_miss = np.r_[0, np.cumsum(tar_per)]
    n_fa = n_non - np.r_[0, np.cumsum(non_per)]
    thresholds = np.r_[sorted_scores[starts], np.inf]
    return Sweep(thresholds, n_miss, n_fa, tar_per, non_per, n_tar, n_non)


def crossing(thresholds, n_miss, n_fa, n_tar, n_non):
    """Where the piecewise-linear (P_fa, P_miss) curve meets P_miss = P_fa; see :func:`eer`."""
    # sign of P_miss - P_fa in exact integer arithmetic; it never decreases along the sweep
    diff = n_miss * n_non - n_fa * n_tar
    i = int(np.argmax(diff >= 0))      # exists: the last point (reject all) has P_miss = 1, P_fa = 0
    p_miss_i, p_fa_i = n_miss[i] / n_tar, n_fa[i] / n_non
    if diff[i] == 0:
        return float(p_miss_i), float(thresholds[i])
    p_miss_h, p_fa_h = n_miss[i - 1] / n_tar, n_fa[i - 1] / n_non
    d_lo, d_hi = p_miss_h - p_fa_h, p_miss_i - p_fa_i
    alpha = -d_lo / (d_hi - d_lo)
    rate = p_miss_h + alpha * (p_miss_i - p_miss_h)
    # report the real operating point nearer the crossing (smaller worse error); ties go to the lower threshold
    threshold = thresholds[i] if p_miss_i < p_fa_h else thresholds[i - 1]
    return float(rate), float(threshold)


def rates_at(sweep: Sweep, threshold):
    """(P_fa, P_miss) at arbitrary thresholds, by binary search among the operating points."""
    point = np.searchsorted(sweep.thresholds[:-1], threshold, side="left")
    return sweep.n_fa[point] / sweep.n_non, sweep.n_miss[point] / sweep.n_tar


def act_dcf_at(sweep: Sweep, threshold, p_target, c_miss, c_fa) -> float:
    far, frr = rates_at(sweep, threshold)
    weight_miss, weight_fa = p_target * c_miss, (1.0 - p_target) * c_fa
    return float((weight_miss * frr + weight_fa * far) / min(weight_miss, weight_fa))


def check_threshold(threshold):
    threshold = np.asarray(threshold, dtype=np.float64)
    if np.isnan(threshold).any():
        raise ParameterError("threshold must not be NaN")
    return threshold


def pav_llr(sweep: Sweep) -> np.ndarray:
    """Optimal (PAV-calibrated) LLR at each distinct score, ascending; may hold -inf / +inf [1]_, [3]_."""
    sizes = sweep.tar_per_score + sweep.non_per_score
    posterior = np.clip(_isotonic(sweep.tar_per_score / sizes, sizes), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return np.log(posterior) - np.log1p(-posterior) - np.log(sweep.n_tar / sweep.n_non)


def _isotonic(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted non-decreasing least-squares fit of ``values`` by pool-adjacent-violators (Ayer et al., Ann. Math.
    Statist. 26, 1955; the PAV of the BOSARIS toolkit's minCllr). One pass with a stack of pooled blocks; written
    here because scikit-learn's or scipy's isotonic regression costs a second of imports to every ``score``."""
    means, totals, counts = [], [], []
    for value, weight in zip(np.asarray(values, dtype=np.float64).tolist(),
                             np.asarray(weights, dtype=np.float64).tolist()):
        count = 1
        while means and means[-1] > value:  # the new block violates the order: pool it with the previous one
            pooled = totals[-1] + weight
            value = (means.pop() * totals.pop() + value * weight) / pooled
            weight, count = pooled, count + counts.pop()
        means.append(value)
        totals.append(weight)
        counts.append(count)
    return np.repeat(np.array(means, dtype=np.float64), counts)


def dcf_at_points(sweep: Sweep, p_target, c_miss, c_fa):
    """Normalised DCF at every operating point [4]_."""
    weight_miss = p_target * c_miss
    weight_fa = (1.0 - p_target) * c_fa
    dcf = weight_miss * (sweep.n_miss / sweep.n_tar) + weight_fa * (sweep.n_fa / sweep.n_non)
    return dcf / min(weight_miss, weight_fa)


def best_point(dcf, sweep: Sweep) -> int:
    """Index of the lowest cost; ties (to rounding) go to the lowest threshold, whatever the sweep's order."""
    value = float(dcf.min())
    tied = np.flatnonzero(dcf <= value + 1e-12 * max(1.0, abs(value)))
    return int(tied[np.argmin(sweep.thresholds[tied])])


def cllr_bits(tar_llr, tar_count, non_llr, non_count, n_tar, n_non) -> float:
    # log(1 + e^x) via logaddexp: exact for +-inf, no overflow; entries with a zero count are left out
    tar_mask, non_mask = tar_count > 0, non_count > 0
    tar_cost = np.sum(tar_count[tar_mask] * np.logaddexp(0.0, -tar_llr[tar_mask])) / n_tar
    non_cost = np.sum(non_count[non_mask] * np.logaddexp(0.0, non_llr[non_mask])) / n_non
    return float((tar_cost + non_cost) / (2.0 * np.log(2.0)))
