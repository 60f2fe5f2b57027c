"""speakerid.evaluation.bootstrap: weighted metrics equal speakerid.evaluation.metrics, intervals that resample
speakers cover the population EER of clustered scores (and resampling trials does not), the paired comparison, and
bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from speakerid.evaluation import _bootstrap_sweep as sweep
from speakerid.evaluation import bootstrap, metrics
from speakerid.evaluation.bootstrap import bootstrap_metrics, paired_comparison
from speakerid.exceptions import ParameterError

P_TARGETS = [0.01, 0.1, 0.5]


def _clustered(rng, n_speakers, mu=2.0, sd_target=0.8, sd_nontarget=0.6, n_tar=8, n_non=24):
    """Scores of ``n_speakers`` claimed speakers: target ~ N(mu + a_s, 1), non-target ~ N(b_s, 1) with per-speaker
    offsets a_s ~ N(0, sd_target^2), b_s ~ N(0, sd_nontarget^2): the trials of one speaker are correlated."""
    a, b = rng.normal(0, sd_target, n_speakers), rng.normal(0, sd_nontarget, n_speakers)
    speakers = np.r_[np.repeat(np.arange(n_speakers), n_tar), np.repeat(np.arange(n_speakers), n_non)]
    labels = np.r_[np.ones(n_speakers * n_tar, int), np.zeros(n_speakers * n_non, int)]
    scores = np.where(labels == 1, mu + a[speakers], b[speakers]) + rng.normal(size=len(speakers))
    return scores, labels, speakers


def _score_sets(rng):
    """Varied score sets: ties, separable, inverted, all-tied, tiny."""
    sets = []
    for n, rounding in [(60, None), (500, 1), (3000, None), (3000, 0)]:
        labels = (rng.random(n) < 0.25).astype(int)
        labels[:2] = [0, 1]
        scores = rng.normal(size=n) + 1.5 * labels
        sets.append(scores if rounding is None else np.round(scores, rounding))
        sets[-1] = (sets[-1], labels, rng.integers(0, 12, n))
    sets.append((np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])))
    sets.append((np.array([0.8, 0.9, 0.1, 0.2]), np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])))
    sets.append((np.full(6, 0.5), np.array([0, 1, 0, 1, 0, 1]), np.array([0, 0, 1, 1, 2, 2])))
    sets.append((np.array([-6.0, 5.0, -1.0, 0.0, 4.6, 3.0]), np.array([0, 1, 0, 1, 1, 0]), np.arange(6) % 3))
    return sets


def _weighted(scores, labels, groups, counts, llr=True):
    index, n_groups = bootstrap._group_index(groups, len(scores))
    trials = sweep.prepare(scores, labels, index, n_groups, P_TARGETS)
    out = sweep.replicate_metrics(trials, np.atleast_2d(counts).astype(np.int64), P_TARGETS, llr)
    return {name: values[0] for name, values in out.items()}


def _reference(scores, labels):
    expected = {"eer": metrics.eer(scores, labels), "cllr": metrics.cllr(scores, labels),
                "min_cllr": metrics.min_cllr(scores, labels),
                "nontarget_accept": metrics.far_frr_at(scores, labels, 0.0)[0]}
    for p in P_TARGETS:
        expected[f"min_dcf@{p:g}"] = metrics.min_dcf(scores, labels, p)
        expected[f"act_dcf@{p:g}"] = metrics.act_dcf(scores, labels, p_target=p)
    return expected


def _check_equal(got, expected):
    for name, value in expected.items():
        if name in ("cllr", "min_cllr"):   # sums taken in another order: equal to rounding
            assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
        else:                              # same integer counts, same floating-point operations: bit for bit
            assert got[name] == value, (name, got[name], value)


# ---------------------------------------------------------------------------------------------------------------
# weighted metrics are metrics' metrics
# ---------------------------------------------------------------------------------------------------------------

def test_unit_weights_give_metrics_exactly(rng):
    for scores, labels, groups in _score_sets(rng):
        _check_equal(_weighted(scores, labels, groups, np.ones(len(np.unique(groups)))), _reference(scores, labels))
        # each trial its own group: the same
        _check_equal(_weighted(scores, labels, None, np.ones(len(scores))), _reference(scores, labels))


def test_integer_weights_are_repeated_trials(rng):
    for scores, labels, groups in _score_sets(rng):
        uniques, index = np.unique(groups, return_inverse=True)
        for _ in range(5):
            counts = rng.integers(0, 4, len(uniques))
            counts[index[labels == 1][0]] += 1      # keep both classes
            counts[index[labels == 0][0]] += 1
            # _group_index numbers groups by first appearance, np.unique by sorted value
            first_seen = np.unique(groups, return_index=True)[1]
            order = np.argsort(first_seen)
            repeat = counts[index]
            _check_equal(_weighted(scores, labels, groups, counts[order]),
                         _reference(np.repeat(scores, repeat), np.repeat(labels, repeat)))


def test_point_values_are_metrics_and_inside_their_intervals(rng):
    scores, labels, speakers = _clustered(rng, 40)
    result = bootstrap_metrics(scores, labels, speakers, p_targets=P_TARGETS, n_boot=300)
    expected = _reference(scores, labels)
    assert [k for k in result if isinstance(result[k], dict)] == (
        ["eer", "min_dcf@0.01", "min_dcf@0.1", "min_dcf@0.5", "act_dcf@0.01", "act_dcf@0.1", "act_dcf@0.5", "cllr",
         "min_cllr", "nontarget_accept"])
    for name, value in expected.items():
        assert result[name]["value"] == value, name           # exactly the figures of metrics
        assert result[name]["low"] <= value <= result[name]["high"], name
    assert (result["n_groups"], result["n_target"], result["n_nontarget"]) == (40, 320, 960)
    assert (result["n_boot"], result["confidence"], result["resampled"]) == (300, 0.95, "groups")
    assert "Bolle" in result["method"] and "Efron" in result["method"] and "40 speakers" in result["method"]


def test_llr_false_leaves_out_the_calibration_metrics(rng):
    scores, labels, speakers = _clustered(rng, 30)
    result = bootstrap_metrics(scores, labels, speakers, n_boot=50, llr=False)
    assert [k for k in result if isinstance(result[k], dict)] == ["eer", "min_dcf@0.01", "min_dcf@0.1", "min_cllr"]


def test_seeded_reproducible_and_wider_at_higher_confidence(rng):
    scores, labels, speakers = _clustered(rng, 35)
    first = bootstrap_metrics(scores, labels, speakers, n_boot=200, random_state=3)
    assert first == bootstrap_metrics(scores, labels, speakers, n_boot=200, random_state=3)
    assert first != bootstrap_metrics(scores, labels, speakers, n_boot=200, random_state=4)
    wide = bootstrap_metrics(scores, labels, speakers, n_boot=200, random_state=3, confidence=0.99)
    narrow = bootstrap_metrics(scores, labels, speakers, n_boot=200, random_state=3, confidence=0.5)
    for name in ("eer", "min_dcf@0.01", "cllr"):
        assert narrow[name]["low"] >= first[name]["low"] >= wide[name]["low"]
        assert narrow[name]["high"] <= first[name]["high"] <= wide[name]["high"]


def test_without_groups_trials_are_resampled_and_the_method_says_so(rng):
    scores, labels, _ = _clustered(rng, 30)
    by_trials = bootstrap_metrics(scores, labels, n_boot=100)
    same = bootstrap_metrics(scores, labels, np.arange(len(scores)), n_boot=100)
    assert by_trials["resampled"] == "trials" and by_trials["n_groups"] == len(scores)
    assert "trial bootstrap" in by_trials["method"] and "too narrow" in by_trials["method"]
    assert {k: v for k, v in by_trials.items() if k not in ("method", "resampled")} == {
        k: v for k, v in same.items() if k not in ("method", "resampled")}


def test_resamples_without_both_classes_are_redrawn(rng):
    # all targets belong to one speaker: about a third of the resamples miss it and are drawn again
    scores = np.r_[rng.normal(2, 1, 20), rng.normal(0, 1, 80)]
    labels = np.r_[np.ones(20, int), np.zeros(80, int)]
    groups = np.r_[np.zeros(20, int), np.arange(80) % 8 + 1]
    result = bootstrap_metrics(scores, labels, groups, n_boot=300)
    assert 50 < result["n_redrawn"] < 200
    assert all(np.isfinite([v["low"], v["high"]]).all() for v in result.values() if isinstance(v, dict))


# ---------------------------------------------------------------------------------------------------------------
# coverage: resample speakers, not trials
# ---------------------------------------------------------------------------------------------------------------

def test_speaker_intervals_cover_the_population_eer_and_trial_intervals_do_not():
    """200 clustered score sets (30-60 speakers): population target scores N(2, 1 + 0.8^2), non-target
    N(0, 1 + 0.6^2), so the population EER is Phi(-2 / (sqrt(1.64) + sqrt(1.36))). 95 % intervals that resample
    speakers cover it in 90-99 % of the sets; resampling trials ignores the speaker effects and covers it far
    less often."""
    mu, sd_target, sd_nontarget = 2.0, 0.8, 0.6
    population_eer = norm.cdf(-mu / (np.sqrt(1 + sd_target**2) + np.sqrt(1 + sd_nontarget**2)))
    rng = np.random.default_rng(7)
    covered = {"speakers": 0, "trials": 0}
    for i in range(200):
        scores, labels, speakers = _clustered(rng, int(rng.integers(30, 61)), mu, sd_target, sd_nontarget)
        for unit, groups in (("speakers", speakers), ("trials", None)):
            eer = bootstrap_metrics(scores, labels, groups, n_boot=250, random_state=i, llr=False)["eer"]
            covered[unit] += eer["low"] <= population_eer <= eer["high"]
    assert 180 <= covered["speakers"] <= 198, covered
    assert covered["trials"] <= 170 and covered["trials"] < covered["speakers"] - 20, covered


# ---------------------------------------------------------------------------------------------------------------
# paired comparison
# ---------------------------------------------------------------------------------------------------------------

def test_paired_comparison_finds_no_difference_with_a_noisy_copy():
    """A system against itself plus N(0, 0.05^2) noise, 120 seeded cases: no significant difference in the
    discrimination metrics in >= 90 % of them. (Noise does degrade calibration a little, by convexity of the
    Cllr terms, so the calibration metrics are held to a lower bar.)"""
    rng = np.random.default_rng(11)
    n_cases, not_significant = 120, {}
    for i in range(n_cases):
        scores, labels, speakers = _clustered(rng, int(rng.integers(30, 61)))
        noisy = scores + rng.normal(0, 0.05, len(scores))
        result = paired_comparison(scores, noisy, labels, speakers, n_boot=250, random_state=i)
        for name, figures in result.items():
            if isinstance(figures, dict):
                not_significant[name] = not_significant.get(name, 0) + (not figures["significant"])
                assert figures["better"] is None or figures["significant"]
    for name in ("eer", "min_dcf@0.01", "min_dcf@0.1", "min_cllr"):
        assert not_significant[name] >= 0.9 * n_cases, (name, not_significant)
    for name in ("act_dcf@0.01", "act_dcf@0.1", "cllr", "nontarget_accept"):
        assert not_significant[name] >= 0.8 * n_cases, (name, not_significant)


def test_paired_comparison_finds_a_clearly_better_system(rng):
    scores, labels, speakers = _clustered(rng, 40)
    better = scores + 1.0 * labels          # targets one unit higher: every metric improves
    result = paired_comparison(scores, better, labels, speakers, n_boot=300)
    for name in ("eer", "min_dcf@0.1", "cllr", "min_cllr"):
        figures = result[name]
        assert figures["significant"] and figures["better"] == "b", name
        assert figures["difference"]["high"] < 0
        assert figures["difference"]["value"] == pytest.approx(figures["b"]["value"] - figures["a"]["value"])
    assert result["eer"]["a"] == bootstrap_metrics(scores, labels, speakers, n_boot=300)["eer"]  # same resamples
    assert paired_comparison(better, scores, labels, speakers, n_boot=300)["eer"]["better"] == "a"
    assert result["n_groups"] == 40 and "Bolle" in result["method"]


# ---------------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------------

GOOD = (np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9]), np.array([0, 0, 1, 1, 0, 1]), np.array([0, 0, 1, 1, 2, 2]))


@pytest.mark.parametrize("change, message", [
    ({"scores": [0.1, 0.2]}, "differ in length"),
    ({"labels": [1, 1, 1, 1, 1, 1]}, "only one class"),
    ({"scores": [0.1, np.nan, 0.3, 0.4, 0.5, 0.6]}, "NaN"),
    ({"scores": [0.1, np.inf, 0.3, 0.4, 0.5, 0.6]}, "infinite"),
    ({"groups": [0, 1, 2]}, "groups and scores differ in length: 3 groups, 6 scores"),
    ({"groups": [[0, 1, 2], [0, 1, 2]]}, "1-D"),
    ({"groups": ["a", None, "b", "b", "a", "a"]}, r"missing groups .* positions \[1\]"),
    ({"groups": ["a"] * 6}, "single group"),
    ({"confidence": 1.0}, "confidence"),
    ({"confidence": 0}, "confidence"),
    ({"confidence": float("nan")}, "confidence"),
    ({"confidence": "high"}, "confidence"),
    ({"n_boot": 0}, "n_boot"),
    ({"n_boot": 2.5}, "n_boot"),
    ({"n_boot": True}, "n_boot"),
    ({"p_targets": [0.01, 1.0]}, "p_target"),
    ({"p_targets": []}, "at least one p_target"),
    ({"random_state": "seed"}, "random_state"),
])
def test_bad_input(change, message):
    args = {"scores": GOOD[0], "labels": GOOD[1], "groups": GOOD[2], **change}
    with pytest.raises(ParameterError, match=message):
        bootstrap_metrics(args.pop("scores"), args.pop("labels"), args.pop("groups"), **args)


def test_paired_bad_input_names_the_system():
    scores, labels, groups = GOOD
    with pytest.raises(ParameterError, match="scores_b: scores and labels differ in length"):
        paired_comparison(scores, scores[:4], labels, groups)
    with pytest.raises(ParameterError, match="scores_a: NaN"):
        paired_comparison(np.r_[np.nan, scores[1:]], scores, labels, groups)
    with pytest.raises(ParameterError, match="confidence"):
        paired_comparison(scores, scores, labels, groups, confidence=95)
