"""speakerid.evaluation.metrics: hand-computed small cases, brute-force cross-checks, scikit-learn agreement, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from speakerid.evaluation import metrics
from speakerid.exceptions import ParameterError

# A small case worked by hand. Sorted: 0.1 non, 0.3 tar, 0.5 non, 0.6 tar, 0.9 tar.
# Operating points (threshold: P_miss, P_fa): 0.1: 0, 1 | 0.3: 0, 1/2 | 0.5: 1/3, 1/2 | 0.6: 1/3, 0 |
# 0.9: 2/3, 0 | inf: 1, 0.
HAND_SCORES = [0.6, 0.1, 0.9, 0.5, 0.3]
HAND_LABELS = [1, 0, 1, 0, 1]


def brute_force_points(scores, labels):
    """Operating points by direct counting, one threshold at a time (O(n^2), independent of the sweep)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels)
    tar, non = scores[labels == 1], scores[labels == 0]
    thresholds = np.r_[np.unique(scores), np.inf]
    p_miss = np.array([np.mean(tar < t) for t in thresholds])
    p_fa = np.array([np.mean(non >= t) for t in thresholds])
    return thresholds, p_miss, p_fa


def brute_force_eer(scores, labels):
    """Crossing of the piecewise-linear DET curve with P_miss = P_fa, segment by segment."""
    _, p_miss, p_fa = brute_force_points(scores, labels)
    for k in range(len(p_miss) - 1):
        d0, d1 = p_miss[k] - p_fa[k], p_miss[k + 1] - p_fa[k + 1]
        if d0 == 0:
            return p_miss[k]
        if d0 < 0 <= d1:
            a = -d0 / (d1 - d0)
            return p_miss[k] + a * (p_miss[k + 1] - p_miss[k])
    raise AssertionError("no crossing")


def random_trials(rng, n=200, levels=None, shift=1.0):
    labels = (rng.random(n) < 0.3).astype(int)
    labels[:2] = [0, 1]
    scores = rng.normal(size=n) + shift * labels
    if levels is not None:  # quantise to create many ties
        scores = np.round(scores * levels) / levels
    return scores, labels


# ---------------------------------------------------------------------------------------------------------------
# EER
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scores, labels, expected", [
    ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 0.0),            # separable
    ([0.8, 0.9, 0.1, 0.2], [0, 0, 1, 1], 1.0),            # inverted
    ([0.5] * 6, [0, 1, 0, 1, 1, 0], 0.5),                 # all ties
    (HAND_SCORES, HAND_LABELS, 1 / 3),
    ([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1], 0.25),           # crossing inside a slanted (tied) segment
    ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.5),
])
def test_eer_hand_cases(scores, labels, expected):
    assert metrics.eer(scores, labels) == pytest.approx(expected, abs=1e-12)


def test_eer_contract_is_exact():
    assert metrics.eer([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 0.0
    assert metrics.eer([0.8, 0.9, 0.1, 0.2], [0, 0, 1, 1]) == 1.0
    assert metrics.eer([3.0] * 4, [1, 0, 1, 0]) == 0.5


def test_eer_threshold():
    assert metrics.eer([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], return_threshold=True) == (0.0, 0.8)
    assert metrics.eer(HAND_SCORES, HAND_LABELS, return_threshold=True) == (pytest.approx(1 / 3), 0.6)
    assert metrics.eer([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1], return_threshold=True) == (0.25, 0.5)
    # the inverted case crosses at P_miss = P_fa = 1, reached at the lowest non-target score
    assert metrics.eer([0.8, 0.9, 0.1, 0.2], [0, 0, 1, 1], return_threshold=True) == (1.0, 0.8)


@pytest.mark.parametrize("levels", [None, 2, 10])
def test_eer_matches_brute_force(rng, levels):
    for _ in range(5):
        scores, labels = random_trials(rng, n=120, levels=levels)
        assert metrics.eer(scores, labels) == pytest.approx(brute_force_eer(scores, labels), abs=1e-12)


def test_eer_bounded_by_operating_points(rng):
    scores, labels = random_trials(rng, n=500, levels=4)
    _, p_miss, p_fa = brute_force_points(scores, labels)
    value, threshold = metrics.eer(scores, labels, return_threshold=True)
    assert np.min((p_miss + p_fa) / 2) - 1e-12 <= value <= np.min(np.maximum(p_miss, p_fa)) + 1e-12
    far, frr = metrics.far_frr_at(scores, labels, threshold)
    assert max(far, frr) == pytest.approx(np.min(np.maximum(p_miss, p_fa)))


def test_eer_invariant_under_monotone_transform(rng):
    scores, labels = random_trials(rng)
    assert metrics.eer(np.exp(scores), labels) == metrics.eer(scores, labels)


def test_rocch_eer():
    assert metrics.eer([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], convex_hull=True) == 0.0
    assert metrics.eer([0.8, 0.9, 0.1, 0.2], [0, 0, 1, 1], convex_hull=True) == 0.5
    assert metrics.eer([0.5] * 4, [0, 0, 1, 1], convex_hull=True) == 0.5
    # hull of the hand case joins (P_fa, P_miss) = (0, 1/3) and (1/2, 0): crosses the diagonal at 1/5
    assert metrics.eer(HAND_SCORES, HAND_LABELS, convex_hull=True) == pytest.approx(0.2)


def test_rocch_eer_never_above_eer(rng):
    for levels in (None, 3):
        scores, labels = random_trials(rng, n=300, levels=levels, shift=0.5)
        assert metrics.eer(scores, labels, convex_hull=True) <= metrics.eer(scores, labels) + 1e-12


# ---------------------------------------------------------------------------------------------------------------
# curves
# ---------------------------------------------------------------------------------------------------------------

def test_det_curve_hand_case():
    t, p_miss, p_fa = metrics.det_curve(HAND_SCORES, HAND_LABELS)
    np.testing.assert_array_equal(t, [0.1, 0.3, 0.5, 0.6, 0.9, np.inf])
    np.testing.assert_allclose(p_miss, [0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(p_fa, [1, 0.5, 0.5, 0, 0, 0])
    assert metrics.rates is metrics.det_curve


@pytest.mark.parametrize("levels", [None, 3])
def test_det_curve_matches_brute_force(rng, levels):
    scores, labels = random_trials(rng, n=150, levels=levels)
    got = metrics.det_curve(scores, labels)
    for a, b in zip(got, brute_force_points(scores, labels)):
        np.testing.assert_allclose(a, b)
    t, p_miss, p_fa = got
    assert (np.diff(t) > 0).all() and (np.diff(p_miss) >= 0).all() and (np.diff(p_fa) <= 0).all()
    assert (p_miss[0], p_fa[0], p_miss[-1], p_fa[-1]) == (0.0, 1.0, 1.0, 0.0)


@pytest.mark.parametrize("levels", [None, 2, 5])
@pytest.mark.parametrize("drop_intermediate", [True, False])
def test_roc_matches_sklearn(rng, levels, drop_intermediate):
    scores, labels = random_trials(rng, n=300, levels=levels)
    ours = metrics.roc(scores, labels, drop_intermediate=drop_intermediate)
    theirs = roc_curve(labels, scores, drop_intermediate=drop_intermediate)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b)


@pytest.mark.parametrize("scores, labels", [
    ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]),
    ([0.5] * 4, [0, 1, 0, 1]),
    ([1.0, 2.0, 3.0], [False, True, True]),
    ([3, 1, 2, 2, 5, 5, 5], [1, 0, 1, 0, 1, 0, 1]),
])
def test_roc_matches_sklearn_edge_cases(scores, labels):
    for drop in (True, False):
        for a, b in zip(metrics.roc(scores, labels, drop), roc_curve(labels, scores, drop_intermediate=drop)):
            np.testing.assert_allclose(a, b)


# ---------------------------------------------------------------------------------------------------------------
# detection costs
# ---------------------------------------------------------------------------------------------------------------

def brute_force_min_dcf(scores, labels, p_target, c_miss, c_fa):
    _, p_miss, p_fa = brute_force_points(scores, labels)
    dcf = c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa
    return dcf.min() / min(c_miss * p_target, c_fa * (1 - p_target))


def test_min_dcf_hand_case():
    # p_target = 0.5, unit costs: normalised DCF = P_miss + P_fa; best is 1/3 + 0 at threshold 0.6
    assert metrics.min_dcf(HAND_SCORES, HAND_LABELS, p_target=0.5, return_threshold=True) == (1 / 3, 0.6)
    # ties go to the lowest threshold: at p_target = 0.6, 0.3 costs 0.4 * 1/2 and 0.6 costs 0.6 * 1/3
    assert metrics.min_dcf(HAND_SCORES, HAND_LABELS, 0.6, return_threshold=True) == (pytest.approx(0.5), 0.3)
    # p_target = 0.01: normalise by 0.01; accept-at-0.6 costs 0.01/3 / 0.01 = 1/3
    assert metrics.min_dcf(HAND_SCORES, HAND_LABELS) == pytest.approx(1 / 3)
    assert metrics.min_dcf([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 0.0
    assert metrics.min_dcf([0.8, 0.9, 0.1, 0.2], [0, 0, 1, 1]) == 1.0


@pytest.mark.parametrize("p_target, c_miss, c_fa", [(0.01, 1, 1), (0.5, 1, 1), (0.05, 10, 1), (0.9, 1, 3)])
def test_min_dcf_matches_brute_force(rng, p_target, c_miss, c_fa):
    scores, labels = random_trials(rng, n=250, levels=6)
    value, threshold = metrics.min_dcf(scores, labels, p_target, c_miss, c_fa, return_threshold=True)
    assert value == pytest.approx(brute_force_min_dcf(scores, labels, p_target, c_miss, c_fa))
    assert 0.0 <= value <= 1.0
    assert metrics.act_dcf(scores, labels, threshold, p_target, c_miss, c_fa) == pytest.approx(value)


def test_act_dcf_hand_and_bayes_threshold():
    llrs, labels = [-3.0, -1.0, 2.0, 6.0], [0, 0, 1, 1]
    assert metrics.act_dcf(llrs, labels, p_target=0.5) == 0.0
    # Bayes threshold at p_target = 0.01 is log(99) ~ 4.6: one miss of two -> 0.01 * 0.5 / 0.01
    assert metrics.bayes_threshold(0.01) == pytest.approx(np.log(99))
    assert metrics.act_dcf(llrs, labels) == pytest.approx(0.5)
    assert metrics.act_dcf(llrs, labels, threshold=-2.0, p_target=0.5) == pytest.approx(0.5)
    assert metrics.bayes_threshold(0.5, c_miss=1, c_fa=2) == pytest.approx(np.log(2))


def test_act_dcf_never_below_min_dcf(rng):
    scores, labels = random_trials(rng, n=300)
    floor = metrics.min_dcf(scores, labels)
    for threshold in (None, -1.0, 0.0, 0.7, 3.0):
        assert metrics.act_dcf(scores, labels, threshold) >= floor - 1e-12


# ---------------------------------------------------------------------------------------------------------------
# Cllr
# ---------------------------------------------------------------------------------------------------------------

def test_cllr_hand_cases():
    assert metrics.cllr([0.0, 0.0, 0.0], [0, 1, 1]) == pytest.approx(1.0)
    expected = (np.log2(1 + np.exp(-3.0)) + (np.log2(1 + np.exp(-2.0)) + np.log2(1 + np.exp(1.0))) / 2) / 2
    assert metrics.cllr([-2.0, 1.0, 3.0], [0, 0, 1]) == pytest.approx(expected)
    assert metrics.cllr([-np.inf, np.inf], [0, 1]) == 0.0
    assert metrics.cllr([np.inf, np.inf], [0, 1]) == np.inf
    assert metrics.cllr([-800.0, 800.0], [0, 1]) == 0.0          # no overflow
    assert metrics.cllr([800.0, -800.0], [0, 1]) == pytest.approx(800 / np.log(2))


def test_min_cllr_hand_case():
    # PAV of the labels in score order [0, 1, 0, 1, 1] -> posteriors [0, 1/2, 1/2, 1, 1]; empirical prior 3/5,
    # so LLRs [-inf, -log 1.5, -log 1.5, inf, inf]
    expected = (np.log2(2.5) / 3 + np.log2(5 / 3) / 2) / 2
    assert metrics.min_cllr(HAND_SCORES, HAND_LABELS) == pytest.approx(expected)
    assert metrics.min_cllr([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 0.0
    assert metrics.min_cllr([0.8, 0.9, 0.1, 0.2], [0, 0, 1, 1]) == pytest.approx(1.0)
    assert metrics.min_cllr([0.5] * 4, [0, 0, 1, 1]) == pytest.approx(1.0)
    assert metrics.min_cllr([-np.inf, 0.0, np.inf, np.inf], [0, 1, 0, 1]) == pytest.approx(
        metrics.min_cllr([-1.0, 0.0, 1.0, 1.0], [0, 1, 0, 1]))


def test_min_cllr_bounds_cllr_and_is_rank_based(rng):
    scores, labels = random_trials(rng, n=400, levels=8)
    value = metrics.min_cllr(scores, labels)
    assert 0.0 < value < 1.0
    for scale, offset in ((1.0, 0.0), (3.0, -1.0), (0.2, 2.0)):
        assert metrics.cllr(scale * scores + offset, labels) >= value
    assert metrics.min_cllr(np.tanh(scores), labels) == pytest.approx(value)


# ---------------------------------------------------------------------------------------------------------------
# thresholds, rates, summary
# ---------------------------------------------------------------------------------------------------------------

def test_threshold_at_far_hand_case():
    scores, labels = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7], [0, 0, 0, 0, 1, 1]
    assert metrics.threshold_at_far(scores, labels, 0.25) == 0.4
    assert metrics.threshold_at_far(scores, labels, 0.3) == 0.4
    assert metrics.threshold_at_far(scores, labels, 0.0) == 0.6
    assert metrics.threshold_at_far(scores, labels, 1.0) == 0.1
    assert metrics.threshold_at_far([0.1, 0.9], [1, 0], 0.0) == np.inf


def test_threshold_at_far_is_lowest_admissible(rng):
    scores, labels = random_trials(rng, n=400, levels=10)
    thresholds = np.unique(scores)
    for far in (0.0, 0.01, 0.1, 0.5):
        t = metrics.threshold_at_far(scores, labels, far)
        assert metrics.far_frr_at(scores, labels, t)[0] <= far
        lower = thresholds[thresholds < t]
        if len(lower):
            assert metrics.far_frr_at(scores, labels, lower[-1])[0] > far


def test_far_frr_at():
    scores, labels = [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]
    assert metrics.far_frr_at(scores, labels, 0.4) == (0.5, 0.5)
    assert metrics.far_frr_at(scores, labels, 0.35) == (0.5, 0.0)
    assert metrics.far_frr_at(scores, labels, -np.inf) == (1.0, 0.0)
    far, frr = metrics.far_frr_at(scores, labels, np.array([0.0, 0.35, 0.81]))
    np.testing.assert_allclose(far, [1.0, 0.5, 0.0])
    np.testing.assert_allclose(frr, [0.0, 0.0, 1.0])


def test_summary_agrees_with_the_functions(rng):
    scores, labels = random_trials(rng, n=300)
    s = metrics.summary(scores, labels, p_target=0.05)
    assert s["n_target"] == labels.sum() and s["n_nontarget"] == (labels == 0).sum()
    assert (s["eer"], s["eer_threshold"]) == metrics.eer(scores, labels, return_threshold=True)
    assert (s["min_dcf"], s["min_dcf_threshold"]) == metrics.min_dcf(scores, labels, 0.05, return_threshold=True)
    assert s["min_cllr"] == pytest.approx(metrics.min_cllr(scores, labels))
    assert "act_dcf" not in s and "cllr" not in s

    s = metrics.summary(scores, labels, p_target=0.05, threshold=0.5)
    assert s["act_dcf"] == pytest.approx(metrics.act_dcf(scores, labels, 0.5, 0.05))
    assert (s["far"], s["frr"]) == metrics.far_frr_at(scores, labels, 0.5)
    assert "cllr" not in s

    s = metrics.summary(scores, labels, llr=True)
    assert s["act_dcf_threshold"] == pytest.approx(np.log(99))
    assert s["act_dcf"] == pytest.approx(metrics.act_dcf(scores, labels))
    assert s["cllr"] == pytest.approx(metrics.cllr(scores, labels))
    assert all(isinstance(v, (int, float)) for v in s.values())


def test_million_trials_match_the_gaussian_eer():
    """A million trials (speed is benchmarked in bench/, never timed here): the EER of two unit Gaussians d' = 2
    apart is Phi(-1), and minCllr is between 0 and 1."""
    rng = np.random.default_rng(7)
    n = 1_000_000
    labels = (rng.random(n) < 0.1).astype(np.int8)
    scores = rng.normal(size=n) + 2.0 * labels
    assert metrics.eer(scores, labels) == pytest.approx(0.1587, abs=0.003)
    assert 0.0 < metrics.min_cllr(scores, labels) < 1.0


# ---------------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------------

ALL_METRICS = [metrics.eer, metrics.det_curve, metrics.roc, metrics.min_dcf, metrics.act_dcf, metrics.cllr,
               metrics.min_cllr, metrics.summary, lambda s, y: metrics.threshold_at_far(s, y, 0.1),
               lambda s, y: metrics.far_frr_at(s, y, 0.0)]


@pytest.mark.parametrize("func", ALL_METRICS)
@pytest.mark.parametrize("scores, labels, message", [
    ([0.1, 0.2, 0.3], [1, 1, 1], "only one class"),
    ([0.1, 0.2, 0.3], [0, 0, 0], "only one class"),
    ([0.1, np.nan, 0.3, np.nan], [0, 1, 0, 1], r"NaN scores at positions \[1, 3\]"),
    ([0.1, 0.2, 0.3], [0, 1], "differ in length"),
    ([], [], "no trials"),
    ([[0.1, 0.2], [0.3, 0.4]], [0, 1], "1-D"),
    ([0.1, 0.2, 0.3], [0, 1, 2], "labels must be 0"),
    ([0.1, 0.2, 0.3], ["a", "b", "a"], "labels must be 0"),
    (["x", "y"], [0, 1], "scores must be numbers"),
])
def test_bad_trials(func, scores, labels, message):
    with pytest.raises(ParameterError, match=message):
        func(scores, labels)


def test_many_nan_positions_are_summarised():
    scores = np.full(50, np.nan)
    scores[0] = 1.0
    with pytest.raises(ParameterError, match=r"\.\.\. \(49 in all\)"):
        metrics.eer(scores, np.r_[1, np.zeros(49, int)])


def test_infinite_scores_only_for_llr_costs():
    with pytest.raises(ParameterError, match="infinite scores at positions"):
        metrics.eer([0.0, np.inf], [0, 1])
    assert metrics.cllr([0.0, np.inf], [0, 1]) == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs, message", [
    ({"p_target": 0.0}, "p_target"), ({"p_target": 1.5}, "p_target"),
    ({"c_miss": 0}, "c_miss"), ({"c_fa": -1}, "c_fa"), ({"c_fa": np.inf}, "c_fa"),
])
def test_bad_costs(kwargs, message):
    for func in (metrics.min_dcf, metrics.act_dcf, metrics.summary):
        with pytest.raises(ParameterError, match=message):
            func([0.1, 0.9], [0, 1], **kwargs)


def test_bad_far_and_threshold():
    with pytest.raises(ParameterError, match="far"):
        metrics.threshold_at_far([0.1, 0.9], [0, 1], 1.5)
    with pytest.raises(ParameterError, match="NaN"):
        metrics.far_frr_at([0.1, 0.9], [0, 1], np.nan)
    with pytest.raises(ParameterError, match="NaN"):
        metrics.act_dcf([0.1, 0.9], [0, 1], threshold=np.nan)


def test_trial_metrics_of_a_score_file_is_its_summary(rng, tmp_path):
    import pandas as pd

    scores, labels = random_trials(rng, n=60)
    frame = pd.DataFrame({"speaker": "s", "path": [f"t{i}.wav" for i in range(len(scores))], "target": labels,
                          "score": scores, "error": ""})
    frame.loc[3, ["score", "error"]] = [np.nan, "file not found"]
    keep = np.arange(len(scores)) != 3
    assert metrics.trial_metrics(frame, p_target=0.05) == metrics.summary(scores[keep], labels[keep], 0.05)
    path = tmp_path / "scored.csv"
    frame.assign(score=[repr(float(s)) if k else "" for s, k in zip(scores, keep)]).to_csv(path, index=False)
    assert metrics.trial_metrics(path, p_target=0.05) == metrics.summary(scores[keep], labels[keep], 0.05)
    assert metrics.trial_metrics(frame.drop(columns="target")) is None          # nothing to measure against
    assert metrics.trial_metrics(frame.assign(target=1)) is None                # one class only
