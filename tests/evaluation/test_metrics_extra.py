"""speakerid.evaluation.metrics, beyond test_metrics.py: more scikit-learn cross-checks, the ROC and summary hand
cases, and the error contract shown as a doctest.

>>> from speakerid.evaluation import metrics
>>> metrics.eer([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), metrics.eer([0.8, 0.9, 0.1, 0.2], [0, 0, 1, 1])
(0.0, 1.0)
>>> metrics.eer([0.5, 0.5, 0.5, 0.5], [0, 0, 1, 1])
0.5
>>> metrics.eer([0.1, 0.2, 0.3], [1, 1, 1])
Traceback (most recent call last):
...
speakerid.exceptions.ParameterError: only one class in labels: all 3 trials are target (1); need both target and non-target trials
>>> metrics.min_dcf([0.1, float("nan"), 0.3], [0, 1, 1])
Traceback (most recent call last):
...
speakerid.exceptions.ParameterError: NaN scores at positions [1]
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import det_curve as sk_det_curve
from sklearn.metrics import roc_auc_score, roc_curve

from speakerid.evaluation import metrics
from speakerid.exceptions import ParameterError

HAND_SCORES = [0.6, 0.1, 0.9, 0.5, 0.3]   # sorted: 0.1 non, 0.3 tar, 0.5 non, 0.6 tar, 0.9 tar
HAND_LABELS = [1, 0, 1, 0, 1]


def random_trials(rng, n=300, levels=None, shift=1.0):
    labels = (rng.random(n) < 0.3).astype(int)
    labels[:2] = [0, 1]
    scores = rng.normal(size=n) + shift * labels
    if levels is not None:
        scores = np.round(scores * levels) / levels
    return scores, labels


def eer_from_sklearn(scores, labels):
    """EER by interpolating scikit-learn's ROC points (all of them) where FNR = FPR."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    fnr = 1.0 - tpr
    diff = fnr - fpr                      # decreasing along scikit-learn's (descending-threshold) order
    k = int(np.flatnonzero(diff <= 0)[0])
    if diff[k] == 0 or k == 0:
        return float(fnr[k])
    alpha = diff[k - 1] / (diff[k - 1] - diff[k])
    return float(fnr[k - 1] + alpha * (fnr[k] - fnr[k - 1]))


def test_roc_hand_case():
    # thresholds descending: inf (0, 0) | 0.9 (0, 1/3) | 0.6 (0, 2/3) | 0.5 (1/2, 2/3) | 0.3 (1/2, 1) | 0.1 (1, 1)
    fpr, tpr, thresholds = metrics.roc(HAND_SCORES, HAND_LABELS, drop_intermediate=False)
    np.testing.assert_array_equal(thresholds, [np.inf, 0.9, 0.6, 0.5, 0.3, 0.1])
    np.testing.assert_allclose(fpr, [0, 0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1])
    # (0, 1/3) is collinear but, as in scikit-learn, the first real threshold is never dropped
    _, _, thresholds = metrics.roc(HAND_SCORES, HAND_LABELS)
    np.testing.assert_array_equal(thresholds, [np.inf, 0.9, 0.6, 0.5, 0.3, 0.1])
    fpr, tpr, thresholds = metrics.roc([0.1, 0.2, 0.3, 0.4, 0.9], [0, 1, 1, 1, 1])
    np.testing.assert_array_equal(thresholds, [np.inf, 0.9, 0.2, 0.1])   # 0.4, 0.3 lie on (0, 1/4)-(0, 1)


def test_summary_hand_case():
    s = metrics.summary(HAND_SCORES, HAND_LABELS, p_target=0.5, llr=True)
    assert s["n_target"] == 3 and s["n_nontarget"] == 2
    assert s["eer"] == pytest.approx(1 / 3) and s["eer_threshold"] == 0.6
    assert (s["min_dcf"], s["min_dcf_threshold"]) == (pytest.approx(1 / 3), 0.6)
    # Bayes threshold at p_target = 0.5 is 0: every trial accepted -> P_fa = 1, P_miss = 0
    assert s["act_dcf_threshold"] == 0.0 and s["act_dcf"] == pytest.approx(1.0)
    assert s["far"] == 1.0 and s["frr"] == 0.0


@pytest.mark.parametrize("levels", [None, 3, 10])
def test_eer_matches_sklearn_roc_interpolation(rng, levels):
    for _ in range(4):
        scores, labels = random_trials(rng, levels=levels)
        assert metrics.eer(scores, labels) == pytest.approx(eer_from_sklearn(scores, labels), abs=1e-12)


@pytest.mark.parametrize("levels", [None, 4])
def test_det_curve_contains_sklearn_det_points(rng, levels):
    scores, labels = random_trials(rng, levels=levels)
    fpr, fnr, thresholds = sk_det_curve(labels, scores)
    ours_t, ours_miss, ours_fa = metrics.det_curve(scores, labels)
    at = np.searchsorted(ours_t, thresholds)
    np.testing.assert_array_equal(ours_t[at], thresholds)
    np.testing.assert_allclose(ours_fa[at], fpr)
    np.testing.assert_allclose(ours_miss[at], fnr)


def test_roc_area_matches_sklearn_auc(rng):
    scores, labels = random_trials(rng, levels=5)
    fpr, tpr, _ = metrics.roc(scores, labels)
    area = np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)  # trapezoids (np.trapezoid needs numpy 2)
    assert area == pytest.approx(roc_auc_score(labels, scores))


@pytest.mark.parametrize("levels", [None, 3])
def test_min_cllr_equals_cllr_after_sklearn_isotonic_calibration(rng, levels):
    scores, labels = random_trials(rng, n=400, levels=levels)
    posterior = IsotonicRegression(increasing=True, y_min=0.0, y_max=1.0).fit(scores, labels).predict(scores)
    prior_log_odds = np.log(labels.mean() / (1 - labels.mean()))
    with np.errstate(divide="ignore"):
        llr = np.log(posterior) - np.log1p(-posterior) - prior_log_odds
    assert metrics.min_cllr(scores, labels) == pytest.approx(metrics.cllr(llr, labels), rel=1e-9)


@pytest.mark.parametrize("func", [metrics.eer, metrics.min_dcf, metrics.act_dcf, metrics.cllr, metrics.min_cllr,
                                  metrics.roc, metrics.det_curve, metrics.summary])
def test_one_class_and_nan_messages(func):
    with pytest.raises(ParameterError, match=r"only one class in labels: all 2 trials are non-target"):
        func([0.1, 0.2], [0, 0])
    with pytest.raises(ParameterError, match=r"NaN scores at positions \[0\]"):
        func([np.nan, 0.2], [0, 1])


def test_summary_and_min_dcf_agree_on_the_threshold_of_near_ties():
    scores, labels = [0.1, 0.3, 0.2, 0.6, 0.9, 0.3], [0, 0, 1, 1, 1, 0]
    for p_target in (0.5, 0.6, 0.01):
        value, threshold = metrics.min_dcf(scores, labels, p_target=p_target, return_threshold=True)
        s = metrics.summary(scores, labels, p_target=p_target)
        assert (s["min_dcf"], s["min_dcf_threshold"]) == (value, threshold)
