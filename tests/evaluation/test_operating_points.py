"""Operating points: minDCF/actDCF against a direct NIST SRE formula on hand cases; the threshold chooser."""

from __future__ import annotations

import numpy as np
import pytest

from speakerid.evaluation.operating_points import choose_threshold, dcf_table, parse_criterion
from speakerid.exceptions import ParameterError


def nist_min_dcf(scores, labels, p_target, c_miss=1.0, c_fa=1.0):
    """The SRE evaluation-plan definition, written out: try every threshold, accept when score >= threshold."""
    scores, labels = np.asarray(scores, float), np.asarray(labels)
    tar, non = scores[labels == 1], scores[labels == 0]
    c_default = min(c_miss * p_target, c_fa * (1 - p_target))
    best = np.inf
    for t in list(np.unique(scores)) + [np.inf]:
        p_miss = np.mean(tar < t)
        p_fa = np.mean(non >= t)
        best = min(best, (c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa) / c_default)
    return best


HAND_CASES = [
    # (scores, labels, minDCF at p = 0.01 worked out by hand)
    ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 0.0),                       # separable
    ([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], 1.0),                       # inverted: best is reject-all
    # a non-target above both targets: accepting it costs 0.99 * 1/4 / 0.01 = 24.75, rejecting all costs 1.0
    ([0.1, 0.2, 0.3, 0.95, 0.6, 0.9], [0, 0, 0, 0, 1, 1], 1.0),
    # 100 non-targets, one (0.75) above a target (0.7): accepting both targets costs 0.99 * 1/100 / 0.01 = 0.99,
    # missing the lower one costs 0.01 * 1/2 / 0.01 = 0.5 (threshold in (0.75, 2.0])
    ([*np.linspace(0, 0.5, 99), 0.75, 0.7, 2.0], [0] * 100 + [1, 1], 0.5),
]


@pytest.mark.parametrize("scores, labels, by_hand", HAND_CASES)
def test_min_dcf_at_p_001_equals_the_nist_formula(scores, labels, by_hand):
    [row] = dcf_table(scores, labels, p_targets=[0.01])
    assert row["min_dcf"] == pytest.approx(nist_min_dcf(scores, labels, 0.01), abs=1e-12)
    assert row["min_dcf"] == pytest.approx(by_hand, abs=1e-12)


def test_min_dcf_equals_the_formula_at_several_priors_on_random_scores(rng):
    scores = np.round(rng.normal(size=300), 1)  # ties on purpose
    labels = (rng.uniform(size=300) < 0.3).astype(int)
    rows = dcf_table(scores, labels, p_targets=[0.01, 0.001, 0.05, 0.5])
    for row in rows:
        assert row["min_dcf"] == pytest.approx(nist_min_dcf(scores, labels, row["p_target"]), abs=1e-9)
        assert row["act_dcf"] >= row["min_dcf"] - 1e-12
    assert [r["p_target"] for r in rows] == [0.01, 0.001, 0.05, 0.5]


def test_act_dcf_uses_the_bayes_threshold_or_the_given_one():
    scores, labels = [-3.0, -1.0, 2.0, 6.0], [0, 0, 1, 1]
    [row] = dcf_table(scores, labels, p_targets=[0.01])
    assert row["act_dcf_threshold"] == pytest.approx(np.log(99))   # 4.595: misses the target at 2.0
    assert row["act_dcf"] == pytest.approx(0.5)
    [row] = dcf_table(scores, labels, p_targets=[0.01], threshold=0.0)
    assert row["act_dcf"] == 0.0


@pytest.mark.parametrize("criterion", ["far=0.01", "far=0.1", "far=0.25", "far=0"])
def test_threshold_by_far_gives_that_far_on_the_same_scores(rng, criterion):
    scores = rng.normal(size=400)
    labels = np.r_[np.ones(100, int), np.zeros(300, int)]
    scores[:100] += 2.0
    choice = choose_threshold(scores, labels, criterion)
    target_far = float(criterion.split("=")[1])
    far = np.mean(scores[labels == 0] >= choice.threshold)
    assert far == choice.far and far <= target_far
    # the lowest such threshold: one non-target more would be accepted just below it
    below = np.max(scores[scores < choice.threshold], initial=-np.inf)
    assert np.mean(scores[labels == 0] >= below) > target_far
    assert choice.frr == np.mean(scores[labels == 1] < choice.threshold)


def test_eer_and_min_dcf_criteria():
    scores, labels = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7], [0, 0, 0, 0, 1, 1]
    assert choose_threshold(scores, labels, "eer").threshold == 0.6
    choice = choose_threshold(scores, labels, "min-dcf:0.5")
    assert choice.threshold == 0.6 and choice.far == 0.0 and choice.frr == 0.0
    assert choice.as_dict()["criterion"] == "min-dcf:0.5" and choice.n_target == 2 and choice.n_nontarget == 4


@pytest.mark.parametrize("bad", ["far", "far=2", "min-dcf:1", "min-dcf:x", "auc", ""])
def test_bad_criteria(bad):
    with pytest.raises(ParameterError, match="criterion must be"):
        parse_criterion(bad)


def test_far_zero_when_a_nontarget_scores_highest_is_a_finite_threshold():
    choice = choose_threshold([0.2, 0.5, 0.9], [1, 1, 0], "far=0")
    assert 0.9 < choice.threshold < 0.9 + 1e-12 and (choice.far, choice.frr) == (0.0, 1.0)
