"""Evaluation metrics for verification trials: EER, DET/ROC curves, minDCF/actDCF, Cllr, FAR thresholds.

Every function takes ``scores`` (higher means "more likely the claimed speaker") and ``labels`` (1 = target
trial, 0 = non-target trial). A trial is *accepted* when ``score >= threshold``; a miss is a rejected target
trial, a false alarm an accepted non-target trial. Scores are sorted once (O(n log n)), so a million trials take
a fraction of a second.

References
----------
.. [1] N. Brümmer and J. du Preez, "Application-independent evaluation of speaker detection",
       Computer Speech & Language 20(2-3):230-275, 2006 (Cllr, min Cllr via PAV).
.. [2] N. Brümmer and E. de Villiers, "The BOSARIS toolkit: theory, algorithms and code for surviving the
       new DCF", arXiv:1304.2865, 2013 (ROCCH, ROCCH-EER, normalised DCF).
.. [3] T. Fawcett and A. Niculescu-Mizil, "PAV and the ROC convex hull", Machine Learning 68:97-106, 2007.
.. [4] NIST Speaker Recognition Evaluation plans (e.g. SRE 2010): detection cost function normalised by
       C_default = min(C_miss * P_target, C_fa * (1 - P_target)).
"""

from __future__ import annotations

import numpy as np

from speakerid.data.trials import read_score_file
from speakerid.evaluation._sweep import (
    act_dcf_at,
    best_point,
    check_cost,
    check_threshold,
    check_trials,
    cllr_bits,
    crossing,
    dcf_at_points,
    pav_llr,
    rates_at,
    sweep_of,
)
from speakerid.exceptions import ParameterError

__all__ = [
    "eer", "det_curve", "rates", "roc", "min_dcf", "act_dcf", "bayes_threshold", "cllr", "min_cllr",
    "threshold_at_far", "far_frr_at", "summary",
]

# ---------------------------------------------------------------------------------------------------------------
# curves
# ---------------------------------------------------------------------------------------------------------------

def det_curve(scores, labels):
    """All operating points of a score set: thresholds ascending, with the miss and false-alarm rates.

    Parameters
    ----------
    scores : array_like of float, shape (n_trials,)
    labels : array_like of {0, 1}, shape (n_trials,)
        1 for target trials, 0 for non-target trials.

    Returns
    -------
    thresholds : numpy.ndarray, shape (n_distinct_scores + 1,)
        The distinct scores ascending, then ``inf``. The first point accepts every trial
        (P_miss = 0, P_fa = 1), the last rejects every trial (P_miss = 1, P_fa = 0).
    p_miss : numpy.ndarray
        Fraction of target trials with ``score < threshold`` (non-decreasing).
    p_fa : numpy.ndarray
        Fraction of non-target trials with ``score >= threshold`` (non-increasing).

    Examples
    --------
    >>> t, p_miss, p_fa = det_curve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    >>> t.tolist(), p_miss.tolist(), p_fa.tolist()
    ([0.1, 0.35, 0.4, 0.8, inf], [0.0, 0.0, 0.5, 0.5, 1.0], [1.0, 0.5, 0.5, 0.0, 0.0])
    """
    sweep = sweep_of(*check_trials(scores, labels))
    return sweep.thresholds, sweep.n_miss / sweep.n_tar, sweep.n_fa / sweep.n_non


#: Alias of :func:`det_curve`.
rates = det_curve


def roc(scores, labels, drop_intermediate: bool = True):
    """ROC curve, matching :func:`sklearn.metrics.roc_curve` for binary 0/1 labels.

    Parameters
    ----------
    scores, labels : array_like
        See :func:`det_curve`.
    drop_intermediate : bool
        Drop operating points that lie on a straight segment between their neighbours, as scikit-learn does
        (the plotted curve and its area are unchanged).

    Returns
    -------
    fpr : numpy.ndarray
        False-positive (false-alarm) rate, non-decreasing from 0 to 1.
    tpr : numpy.ndarray
        True-positive rate = 1 - P_miss, non-decreasing from 0 to 1.
    thresholds : numpy.ndarray
        Decreasing; the first is ``inf`` (accept nothing).

    Examples
    --------
    >>> fpr, tpr, t = roc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    >>> fpr.tolist(), tpr.tolist(), t.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0], [inf, 0.8, 0.4, 0.35, 0.1])
    """
    sweep = sweep_of(*check_trials(scores, labels))
    fps = sweep.n_fa[::-1]
    tps = (sweep.n_tar - sweep.n_miss)[::-1]
    thresholds = sweep.thresholds[::-1]
    keep = np.ones(len(thresholds), dtype=bool)
    if drop_intermediate and len(thresholds) > 3:
        # like scikit-learn: never drop the first real threshold nor the prepended (0, 0) / inf point
        corner = (np.diff(fps[1:], 2) != 0) | (np.diff(tps[1:], 2) != 0)
        keep[2:-1] = corner
    return fps[keep] / sweep.n_non, tps[keep] / sweep.n_tar, thresholds[keep]


# ---------------------------------------------------------------------------------------------------------------
# scalar metrics
# ---------------------------------------------------------------------------------------------------------------

def eer(scores, labels, return_threshold: bool = False, *, convex_hull: bool = False):
    """Equal error rate: where the miss rate equals the false-alarm rate.

    Convention (default, ``convex_hull=False``): the operating points ``(P_fa(t), P_miss(t))`` for every
    distinct score ``t`` and for ``t = inf`` are joined by straight lines (each segment is reachable by choosing
    at random between its two thresholds) and the EER is where this curve crosses ``P_miss = P_fa``. So it is
    0.0 for separable scores, 1.0 (100 %) for perfectly inverted scores and 0.5 when all scores tie.

    With ``convex_hull=True`` the same crossing is taken on the ROC convex hull instead: the ROCCH-EER of the
    BOSARIS toolkit [2]_, computed by PAV [3]_. The hull lies on or below the interpolated curve, so
    ROCCH-EER <= EER; they are equal whenever the crossing is on a hull segment (e.g. separable scores, all ties),
    but a system that ranks backwards has a ROCCH-EER of 0.5, because the hull of any ROC includes the chance
    diagonal.

    Parameters
    ----------
    scores : array_like of float, shape (n_trials,)
    labels : array_like of {0, 1}, shape (n_trials,)
    return_threshold : bool
        Also return a threshold: that of the real operating point next to the crossing with the smaller
        ``max(P_miss, P_fa)`` (accept when ``score >= threshold``; ``inf`` means reject everything).
    convex_hull : bool
        Use the ROC convex hull (ROCCH-EER) instead of the interpolated empirical curve.

    Returns
    -------
    float, or (float, float) with ``return_threshold``
        The EER as a fraction in [0, 1].

    Examples
    --------
    >>> eer([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])            # separable
    0.0
    >>> eer([0.8, 0.9, 0.1, 0.2], [0, 0, 1, 1])            # inverted
    1.0
    >>> eer([0.5, 0.5, 0.5, 0.5], [0, 0, 1, 1])            # all ties
    0.5
    >>> eer([0.8, 0.9, 0.1, 0.2], [0, 0, 1, 1], convex_hull=True)
    0.5
    >>> eer([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], return_threshold=True)
    (0.0, 0.8)
    """
    sweep = sweep_of(*check_trials(scores, labels))
    if convex_hull:
        llr = pav_llr(sweep)
        vertex = np.flatnonzero(np.r_[True, llr[1:] != llr[:-1]])   # first distinct score of each PAV block
        vertex = np.r_[vertex, len(llr)]                               # ... and the reject-all point
        result = crossing(sweep.thresholds[vertex], sweep.n_miss[vertex], sweep.n_fa[vertex],
                           sweep.n_tar, sweep.n_non)
    else:
        result = crossing(sweep.thresholds, sweep.n_miss, sweep.n_fa, sweep.n_tar, sweep.n_non)
    return result if return_threshold else result[0]


def min_dcf(scores, labels, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0,
            return_threshold: bool = False):
    """Minimum normalised detection cost over all thresholds (NIST SRE convention [4]_).

    ``DCF(t) = c_miss * p_target * P_miss(t) + c_fa * (1 - p_target) * P_fa(t)``, divided by
    ``min(c_miss * p_target, c_fa * (1 - p_target))``, the cost of the better of "accept all" and "reject all".
    Hence 0 for separable scores and at most 1.

    Parameters
    ----------
    scores, labels : array_like
        See :func:`det_curve`.
    p_target : float
        Prior probability of a target trial, in (0, 1).
    c_miss, c_fa : float
        Costs of a miss and of a false alarm, positive.
    return_threshold : bool
        Also return the threshold reaching the minimum (the lowest one, if several do).

    Returns
    -------
    float, or (float, float) with ``return_threshold``

    Examples
    --------
    >>> min_dcf([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])
    0.0
    >>> min_dcf([0.5, 0.5, 0.5, 0.5], [0, 0, 1, 1])
    1.0
    >>> round(min_dcf([0.1, 0.3, 0.2, 0.9], [0, 0, 1, 1], p_target=0.5), 6)
    0.5
    """
    p_target, c_miss, c_fa = check_cost(p_target, c_miss, c_fa)
    sweep = sweep_of(*check_trials(scores, labels))
    dcf = dcf_at_points(sweep, p_target, c_miss, c_fa)
    best = best_point(dcf, sweep)
    value = float(dcf[best])
    return (value, float(sweep.thresholds[best])) if return_threshold else value


def bayes_threshold(p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Bayes decision threshold for calibrated LLR scores: ``-log(p_target c_miss / ((1 - p_target) c_fa))``.

    Examples
    --------
    >>> bayes_threshold(0.5)
    0.0
    >>> round(bayes_threshold(0.01), 4)
    4.5951
    """
    p_target, c_miss, c_fa = check_cost(p_target, c_miss, c_fa)
    return float(np.log((1.0 - p_target) * c_fa / (p_target * c_miss)))


def act_dcf(scores, labels, threshold: float | None = None, p_target: float = 0.01, c_miss: float = 1.0,
            c_fa: float = 1.0) -> float:
    """Actual normalised detection cost at one threshold (normalised as in :func:`min_dcf`).

    Parameters
    ----------
    scores, labels : array_like
        See :func:`det_curve`.
    threshold : float, optional
        Accept when ``score >= threshold``. ``None`` treats the scores as calibrated log-likelihood ratios and
        uses the Bayes threshold :func:`bayes_threshold` of the cost parameters.
    p_target, c_miss, c_fa : float
        See :func:`min_dcf`.

    Returns
    -------
    float
        Always ``>= min_dcf`` of the same scores; the difference is the calibration loss.

    Examples
    --------
    >>> act_dcf([-3.0, -1.0, 2.0, 6.0], [0, 0, 1, 1], p_target=0.5)     # Bayes threshold 0
    0.0
    >>> act_dcf([-3.0, -1.0, 2.0, 6.0], [0, 0, 1, 1], threshold=3.0, p_target=0.5)
    0.5
    """
    p_target, c_miss, c_fa = check_cost(p_target, c_miss, c_fa)
    if threshold is None:
        threshold = bayes_threshold(p_target, c_miss, c_fa)
    threshold = float(check_threshold(threshold))
    return act_dcf_at(sweep_of(*check_trials(scores, labels)), threshold, p_target, c_miss, c_fa)


def cllr(llr_scores, labels) -> float:
    """Log-likelihood-ratio cost in bits (Brümmer & du Preez [1]_).

    ``Cllr = (mean_tar log2(1 + e^-s) + mean_non log2(1 + e^s)) / 2`` for natural-log LLRs ``s``. 0 is perfect,
    1 is the cost of always answering LLR = 0; badly calibrated scores can cost far more. Infinite LLRs are
    allowed (an LLR of -inf on a target trial costs infinitely much).

    Examples
    --------
    >>> cllr([0.0, 0.0], [0, 1])
    1.0
    >>> cllr([-np.inf, np.inf], [0, 1])
    0.0
    >>> round(cllr([-2.0, 1.0, 3.0], [0, 0, 1]), 4)
    0.5545
    """
    scores, labels = check_trials(llr_scores, labels, allow_inf=True)
    is_tar = labels == 1
    ones = np.ones(len(scores))
    return cllr_bits(scores[is_tar], ones[is_tar], scores[~is_tar], ones[~is_tar], is_tar.sum(), (~is_tar).sum())


def min_cllr(scores, labels) -> float:
    """Cllr after optimal monotonic calibration: the discrimination part of :func:`cllr` [1]_.

    The scores are mapped to LLRs by pool-adjacent-violators (isotonic regression of the target label on the
    score, tied scores pooled), which may produce infinite LLRs at the extremes; those only ever fall on trials
    of the class they favour, so the result is finite. 0 for separable scores, 1 for useless ones.

    Examples
    --------
    >>> min_cllr([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), min_cllr([0.8, 0.9, 0.1, 0.2], [0, 0, 1, 1])
    (0.0, 1.0)
    """
    sweep = sweep_of(*check_trials(scores, labels, allow_inf=True))
    llr = pav_llr(sweep)
    return cllr_bits(llr, sweep.tar_per_score, llr, sweep.non_per_score, sweep.n_tar, sweep.n_non)


# ---------------------------------------------------------------------------------------------------------------
# thresholds and rates at a threshold
# ---------------------------------------------------------------------------------------------------------------

def threshold_at_far(scores, labels, far: float) -> float:
    """Lowest threshold whose false-alarm rate is at most ``far`` (so the miss rate is as low as it can be).

    Returns one of the scores, or ``inf`` when only rejecting everything is low enough (e.g. ``far=0`` with a
    non-target scoring above every target).

    Examples
    --------
    >>> scores, labels = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7], [0, 0, 0, 0, 1, 1]
    >>> threshold_at_far(scores, labels, 0.25), threshold_at_far(scores, labels, 0.0)
    (0.4, 0.6)
    >>> threshold_at_far(scores, labels, 1.0)
    0.1
    """
    far = float(far)
    if not 0.0 <= far <= 1.0:
        raise ParameterError(f"far must be a rate between 0 and 1, got {far}")
    sweep = sweep_of(*check_trials(scores, labels))
    first_ok = int(np.argmax(sweep.n_fa / sweep.n_non <= far))
    return float(sweep.thresholds[first_ok])


def far_frr_at(scores, labels, threshold):
    """False-acceptance and false-rejection rates at ``threshold`` (accept when ``score >= threshold``).

    ``threshold`` may be a scalar (floats are returned) or an array (arrays are returned).

    Examples
    --------
    >>> far_frr_at([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.4)
    (0.5, 0.5)
    >>> far, frr = far_frr_at([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], [0.0, np.inf])
    >>> far.tolist(), frr.tolist()
    ([1.0, 0.0], [0.0, 1.0])
    """
    threshold = check_threshold(threshold)
    far, frr = rates_at(sweep_of(*check_trials(scores, labels)), threshold)
    if threshold.ndim == 0:
        return float(far), float(frr)
    return far, frr


def summary(scores, labels, p_target: float = 0.01, *, c_miss: float = 1.0, c_fa: float = 1.0,
            threshold: float | None = None, llr: bool = False) -> dict:
    """The usual metrics of one score set in one dict (one sort for all of them).

    Parameters
    ----------
    scores, labels : array_like
        See :func:`det_curve`.
    p_target, c_miss, c_fa : float
        Cost parameters for ``min_dcf`` / ``act_dcf``.
    threshold : float, optional
        When given, ``act_dcf`` and the ``far``/``frr`` at this threshold are reported.
    llr : bool
        The scores are calibrated LLRs: also report ``cllr``, and ``act_dcf`` at the Bayes threshold when no
        ``threshold`` is given.

    Returns
    -------
    dict
        ``n_target``, ``n_nontarget``, ``eer``, ``eer_threshold``, ``min_dcf``, ``min_dcf_threshold``,
        ``min_cllr``, ``p_target``; plus ``act_dcf``, ``act_dcf_threshold``, ``far``, ``frr`` and ``cllr``
        as described above.

    Examples
    --------
    >>> s = summary([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])
    >>> s["eer"], s["min_dcf"], s["n_target"], s["n_nontarget"], "cllr" in s
    (0.0, 0.0, 2, 2, False)
    """
    p_target, c_miss, c_fa = check_cost(p_target, c_miss, c_fa)
    scores, labels = check_trials(scores, labels)
    sweep = sweep_of(scores, labels)
    eer_value, eer_threshold = crossing(sweep.thresholds, sweep.n_miss, sweep.n_fa, sweep.n_tar, sweep.n_non)
    dcf = dcf_at_points(sweep, p_target, c_miss, c_fa)
    best = best_point(dcf, sweep)
    llr_opt = pav_llr(sweep)
    result = {
        "n_target": sweep.n_tar,
        "n_nontarget": sweep.n_non,
        "eer": eer_value,
        "eer_threshold": eer_threshold,
        "min_dcf": float(dcf[best]),
        "min_dcf_threshold": float(sweep.thresholds[best]),
        "min_cllr": cllr_bits(llr_opt, sweep.tar_per_score, llr_opt, sweep.non_per_score,
                               sweep.n_tar, sweep.n_non),
        "p_target": p_target,
    }
    if threshold is None and llr:
        threshold = bayes_threshold(p_target, c_miss, c_fa)
    if threshold is not None:
        threshold = float(check_threshold(threshold))
        far, frr = rates_at(sweep, threshold)
        result["act_dcf_threshold"] = threshold
        result["act_dcf"] = act_dcf_at(sweep, threshold, p_target, c_miss, c_fa)
        result["far"], result["frr"] = float(far), float(frr)
    if llr:
        result["cllr"] = cllr(scores, labels)
    return result


def trial_metrics(scores, p_target: float = 0.01) -> dict | None:
    """:func:`summary` of the scored rows of a score file (CSV path or frame), or ``None`` when it cannot have one.

    Rows without a score or with an error are left out (see :func:`speakerid.data.trials.read_score_file`).

    Returns
    -------
    dict or None
        ``None`` when there is no ``target`` column, or not both target and non-target scored trials.

    Raises
    ------
    ManifestError, ParameterError
        As :func:`speakerid.data.trials.read_score_file`.
    """
    data = read_score_file(scores, require_target=False, all_columns=False)
    if data.labels is None or len(np.unique(data.labels)) < 2:
        return None
    return summary(data.scores, data.labels, p_target)
