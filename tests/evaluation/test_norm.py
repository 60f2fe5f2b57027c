"""Score normalisation: the identities each method must satisfy, loops as references, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from speakerid.evaluation.metrics import eer
from speakerid.evaluation.norm import (
    STD_FLOOR,
    cohort_stats,
    leave_out_tnorm,
    normalize_scores,
    snorm,
    tnorm,
    znorm,
    ztnorm,
)
from speakerid.exceptions import ParameterError


@pytest.fixture
def arrays(rng):
    """Random scores and cohorts of consistent shapes: 7 trials, 11 cohort utterances, 5 cohort models."""
    n_trials, n_utts, n_models = 7, 11, 5
    return {
        "scores": rng.normal(size=n_trials),
        "model_cohort": rng.normal(1.0, 2.0, size=(n_trials, n_utts)),
        "test_cohort": rng.normal(-1.0, 0.5, size=(n_trials, n_models)),
        "cohort_cohort": rng.normal(0.5, 1.5, size=(n_models, n_utts)),
    }


# ------------------------------------------------------------------------------------------------- identities

@pytest.mark.parametrize("function", [znorm, tnorm])
@pytest.mark.parametrize("top_n", [None, 4])
def test_normalising_a_cohort_by_its_own_stats_standardises_it(rng, function, top_n):
    cohort = rng.normal(3.0, 2.0, size=(6, 20)) + rng.normal(0, 5, size=(6, 1))
    normalised = np.column_stack([function(cohort[:, j], cohort, top_n) for j in range(cohort.shape[1])])
    if top_n is None:
        np.testing.assert_allclose(normalised.mean(axis=1), 0.0, atol=1e-12)
        np.testing.assert_allclose(normalised.std(axis=1), 1.0, rtol=1e-12)
    else:   # the statistics of the top_n normalised scores of each row are (0, 1)
        top = np.sort(normalised, axis=1)[:, -top_n:]
        np.testing.assert_allclose(top.mean(axis=1), 0.0, atol=1e-12)
        np.testing.assert_allclose(top.std(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("top_n", [None, 3])
def test_snorm_is_the_average_of_znorm_and_tnorm(arrays, top_n):
    s, zc, tc = arrays["scores"], arrays["model_cohort"], arrays["test_cohort"]
    expected = 0.5 * (znorm(s, zc, top_n) + tnorm(s, tc, top_n))
    np.testing.assert_allclose(snorm(s, zc, tc, top_n), expected, rtol=1e-12)
    np.testing.assert_allclose(normalize_scores(s, "snorm", model_cohort=zc, test_cohort=tc, top_n=top_n),
                               expected, rtol=1e-12)


@pytest.mark.parametrize("method", ["znorm", "tnorm", "snorm"])
def test_top_n_of_the_whole_cohort_is_the_plain_method(arrays, method):
    # model_cohort and test_cohort differ in width, so give both the same one here
    arrays = dict(arrays, test_cohort=arrays["model_cohort"] * 0.3 - 1.0)
    full = arrays["model_cohort"].shape[1]
    plain = normalize_scores(**arrays, method=method)
    adaptive = normalize_scores(**arrays, method=method, top_n=full)
    np.testing.assert_allclose(adaptive, plain, rtol=1e-12)


def test_top_n_of_the_whole_cohort_is_plain_ztnorm(rng):
    n = 9   # as many cohort models as cohort utterances, so one top_n covers every cohort
    s, zc, tc, cc = (rng.normal(size=4), rng.normal(size=(4, n)), rng.normal(size=(4, n)),
                     rng.normal(size=(n, n)))
    np.testing.assert_allclose(ztnorm(s, zc, tc, cc, top_n=n), ztnorm(s, zc, tc, cc), rtol=1e-12)


def test_hand_computed_small_case():
    scores = [4.0, 1.0]
    model_cohort = [[0.0, 2.0, 4.0, 6.0], [1.0, 1.0, 3.0, 3.0]]     # means 3, 2; stds sqrt(5), 1
    test_cohort = [[2.0, 4.0], [0.0, 0.0]]                           # means 3, 0; stds 1, 0 (floored)
    z = normalize_scores(scores, "znorm", model_cohort=model_cohort)
    np.testing.assert_allclose(z, [1 / np.sqrt(5), -1.0])
    t = normalize_scores(scores, "tnorm", test_cohort=test_cohort)
    np.testing.assert_allclose(t, [1.0, 1.0 / STD_FLOOR])
    s = normalize_scores(scores, "snorm", model_cohort=model_cohort, test_cohort=test_cohort)
    np.testing.assert_allclose(s, (z + t) / 2)
    # adaptive: the top two of each row, (4, 6) -> mean 5, std 1 and (3, 3) -> mean 3, std floored
    za = normalize_scores(scores, "znorm", model_cohort=model_cohort, top_n=2)
    np.testing.assert_allclose(za, [-1.0, -2.0 / STD_FLOOR])


def test_cohort_stats_floors_the_std_and_selects_the_top():
    mean, std = cohort_stats([[2.0, 2.0, 2.0], [0.0, 10.0, 4.0]], top_n=2)
    np.testing.assert_allclose(mean, [2.0, 7.0])
    np.testing.assert_allclose(std, [STD_FLOOR, 3.0])
    _, std = cohort_stats([[2.0, 2.0]], std_floor=0.5)
    assert std.tolist() == [0.5]
    with pytest.raises(ParameterError, match="std_floor"):
        cohort_stats([[2.0, 2.0]], std_floor=0.0)


def _ztnorm_loop(scores, model_cohort, test_cohort, cohort_cohort, top_n=None):
    def stats(row):
        row = np.sort(np.asarray(row))[::-1][:top_n] if top_n else np.asarray(row)
        return row.mean(), max(row.std(), STD_FLOOR)

    out = []
    for i, score in enumerate(scores):
        mean_z, std_z = stats(model_cohort[i])
        z_score = (score - mean_z) / std_z
        z_cohort = []
        for k in range(len(cohort_cohort)):
            mean_k, std_k = stats(cohort_cohort[k])
            z_cohort.append((test_cohort[i][k] - mean_k) / std_k)
        mean_t, std_t = stats(z_cohort)
        out.append((z_score - mean_t) / std_t)
    return np.array(out)


@pytest.mark.parametrize("top_n", [None, 3])
def test_ztnorm_matches_a_direct_loop(arrays, top_n):
    expected = _ztnorm_loop(**arrays, top_n=top_n)
    np.testing.assert_allclose(ztnorm(**arrays, top_n=top_n), expected, rtol=1e-10)
    np.testing.assert_allclose(normalize_scores(**arrays, method="ZT-norm", top_n=top_n), expected, rtol=1e-10)


def test_none_returns_a_float_copy(arrays):
    raw = np.array([1, 2, 3])
    out = normalize_scores(raw, "none")
    assert out.dtype == np.float64 and out.tolist() == [1.0, 2.0, 3.0]
    assert normalize_scores(raw, None, model_cohort=arrays["model_cohort"]).tolist() == [1.0, 2.0, 3.0]
    out[0] = 99
    assert raw[0] == 1


def test_no_trials_gives_an_empty_result():
    assert normalize_scores([], "znorm", model_cohort=np.zeros((0, 4))).shape == (0,)


# ------------------------------------------------------------------------------------------- it helps

def _offset_trials(rng, n_models=40, n_tests=40, n_cohort=60, model_spread=3.0, test_spread=0.0):
    """Trials whose scores carry an additive offset per model (and optionally per test utterance)."""
    model_offset = rng.normal(0, model_spread, n_models)
    test_offset = rng.normal(0, test_spread, n_tests)
    utt_offset = rng.normal(0, test_spread, n_cohort)        # cohort utterances are test-like
    cohort_model_offset = rng.normal(0, model_spread, n_cohort)
    model_of, test_of = np.meshgrid(np.arange(n_models), np.arange(n_tests), indexing="ij")
    model_of, test_of = model_of.ravel(), test_of.ravel()
    labels = (model_of % 10 == test_of % 10).astype(int)     # 4 test utterances per model are its speaker's
    base = np.where(labels == 1, 2.0, 0.0)
    noise = rng.normal(0, 1, size=(3, len(labels)))
    scores = base + noise[0] + model_offset[model_of] + test_offset[test_of]
    model_cohort = (model_offset[model_of, None] + utt_offset[None, :]
                    + rng.normal(0, 1, (len(labels), n_cohort)))
    test_cohort = (cohort_model_offset[None, :] + test_offset[test_of, None]
                   + rng.normal(0, 1, (len(labels), n_cohort)))
    cohort_cohort = (cohort_model_offset[:, None] + utt_offset[None, :] + rng.normal(0, 1, (n_cohort, n_cohort)))
    return labels, {"scores": scores, "model_cohort": model_cohort, "test_cohort": test_cohort,
                    "cohort_cohort": cohort_cohort}


def test_snorm_lowers_the_eer_of_trials_with_per_model_offsets(rng):
    labels, arrays = _offset_trials(rng)
    before = eer(arrays["scores"], labels)
    after = eer(normalize_scores(**arrays, method="snorm"), labels)
    adaptive = eer(normalize_scores(**arrays, method="snorm", top_n=20), labels)
    assert after < 0.7 * before and adaptive < 0.7 * before, (before, after, adaptive)


def test_ztnorm_removes_model_and_test_offsets(rng):
    labels, arrays = _offset_trials(rng, test_spread=3.0)
    eers = {method: eer(normalize_scores(**arrays, method=method), labels)
            for method in ("none", "znorm", "tnorm", "ztnorm")}
    assert eers["ztnorm"] < min(eers["znorm"], eers["tnorm"]) < eers["none"], eers


# ------------------------------------------------------------------------------------------------ bad input

def test_unknown_method_and_missing_cohorts(arrays):
    with pytest.raises(ParameterError, match="unknown score normalisation 'fnorm'.*znorm"):
        normalize_scores(arrays["scores"], "fnorm")
    with pytest.raises(ParameterError, match="znorm needs model_cohort"):
        normalize_scores(arrays["scores"], "znorm", test_cohort=arrays["test_cohort"])
    with pytest.raises(ParameterError, match="ztnorm needs cohort_cohort"):
        normalize_scores(arrays["scores"], "ztnorm", model_cohort=arrays["model_cohort"],
                         test_cohort=arrays["test_cohort"])


def test_shape_errors_name_the_array_and_its_shape(arrays):
    s, zc, tc, cc = arrays["scores"], arrays["model_cohort"], arrays["test_cohort"], arrays["cohort_cohort"]
    with pytest.raises(ParameterError, match=r"model_cohort has shape \(6, 11\).*one row per trial \(7 rows\)"):
        znorm(s, zc[:6])
    with pytest.raises(ParameterError, match=r"test_cohort must be a 2-D array.*shape \(7,\)"):
        tnorm(s, tc[:, 0])
    with pytest.raises(ParameterError, match=r"scores must be a 1-D array.*shape \(7, 1\)"):
        znorm(s[:, None], zc)
    with pytest.raises(ParameterError, match=r"cohort_cohort has shape \(11, 5\).*one row per cohort model"):
        ztnorm(s, zc, tc, cc.T)
    with pytest.raises(ParameterError, match=r"cohort_cohort has shape \(5, 10\) but model_cohort has shape"):
        ztnorm(s, zc, tc, cc[:, :10])
    with pytest.raises(ParameterError, match="the cohort is empty"):
        znorm(s, np.zeros((7, 0)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_rejected(arrays, bad):
    scores = arrays["scores"].copy()
    scores[3] = bad
    with pytest.raises(ParameterError, match=r"scores holds 1 non-finite value.*index 3"):
        znorm(scores, arrays["model_cohort"])
    cohort = arrays["test_cohort"].copy()
    cohort[2, 1] = bad
    with pytest.raises(ParameterError, match=r"test_cohort holds 1 non-finite value.*\(2, 1\)"):
        normalize_scores(arrays["scores"], "tnorm", test_cohort=cohort)
    with pytest.raises(ParameterError, match="could not convert"):
        znorm(["a"] * 7, arrays["model_cohort"])


def test_top_n_validation(arrays):
    s, zc = arrays["scores"], arrays["model_cohort"]
    for bad in (0, -2):
        with pytest.raises(ParameterError, match="top_n must be >= 1"):
            znorm(s, zc, top_n=bad)
    for bad in (2.5, True, "3"):
        with pytest.raises(ParameterError, match="top_n must be a positive integer"):
            normalize_scores(s, "znorm", model_cohort=zc, top_n=bad)
    with pytest.warns(UserWarning, match="top_n=50 exceeds the 11 columns of model_cohort"):
        clipped = znorm(s, zc, top_n=50)
    np.testing.assert_allclose(clipped, znorm(s, zc))


def test_leave_out_tnorm_equals_tnorm_over_the_other_speakers(rng):
    cohort = rng.normal(3.0, 2.0, size=9)
    own = np.array([0, 4, 8, -1, 4])
    scores = rng.normal(size=len(own))
    expected = []
    for score, index in zip(scores, own):
        others = np.delete(cohort, index) if index >= 0 else cohort
        expected.append((score - others.mean()) / others.std())
    np.testing.assert_allclose(leave_out_tnorm(scores, cohort, own), expected, rtol=1e-12)
    # large scores with a small spread: the centred sums keep the precision (a plain sum of squares would not)
    big_cohort, big_scores = cohort * 1e-3 + 1e8, scores * 1e-3 + 1e8
    expected = [(x - np.delete(big_cohort, i).mean()) / np.delete(big_cohort, i).std() if i >= 0
                else (x - big_cohort.mean()) / big_cohort.std() for x, i in zip(big_scores, own)]
    np.testing.assert_allclose(leave_out_tnorm(big_scores, big_cohort, own), expected, rtol=1e-4)
    constant = leave_out_tnorm([2.0], [1.0, 1.0, 1.0], [0])          # std floored, not a division by zero
    assert np.isfinite(constant).all() and constant[0] == pytest.approx(1.0 / STD_FLOOR)


@pytest.mark.parametrize("cohort, own, match", [
    ([1.0, 2.0], [0], "at least 2 cohort scores"),
    ([1.0, 2.0, 3.0], [3], "one index"),
    ([1.0, 2.0, 3.0], [0, 1], "one index"),
    ([1.0, np.nan, 3.0], [0], "cohort_scores"),
])
def test_leave_out_tnorm_rejects_bad_input(cohort, own, match):
    with pytest.raises(ParameterError, match=match):
        leave_out_tnorm([0.0], cohort, own)


# ------------------------------------------------------------------ open-set identification among N speakers
@pytest.mark.parametrize("n", [1, 10, 100, 1000])
def test_the_open_set_threshold_keeps_the_false_identification_rate_of_one_trial(n):
    """The best of N standard-normal impostor scores passes the raised threshold as often as one impostor score
    passes the verification threshold (2.0: 2.28 %), within the 99.9 % binomial interval of 20,000 draws; the
    unraised threshold lets the best of N pass far more often."""
    from scipy.stats import binomtest, norm

    from speakerid.evaluation.norm import open_set_threshold

    rng = np.random.default_rng(n)
    draws = 20_000
    best = np.concatenate([rng.standard_normal((2_000, n)).max(axis=1) for _ in range(draws // 2_000)])
    raised = open_set_threshold(2.0, n)
    low, high = binomtest(int((best >= raised).sum()), draws).proportion_ci(0.999, method="wilson")
    assert low <= norm.sf(2.0) <= high
    if n >= 10:
        assert (best >= 2.0).mean() > 5 * norm.sf(2.0)
    assert open_set_threshold(2.0, n) == pytest.approx({1: 2.0, 10: 2.834, 100: 3.503, 1000: 4.075}[n], abs=1e-3)


def test_identification_thresholds_are_raised_on_normalised_scales_only():
    from speakerid.evaluation.norm import identification_threshold, open_set_threshold

    assert identification_threshold(2.0, "default", "snorm", 50) == (
        open_set_threshold(2.0, 50), "default; raised for 50 enrolled speakers (Sidak)")
    assert identification_threshold(-0.5, "saved", "none", 50) == (-0.5, "saved")     # raw scores: as they are
    assert identification_threshold(2.0, "saved", "snorm", 1) == (2.0, "saved")
    with pytest.raises(ParameterError, match="n_enrolled must be >= 1"):
        open_set_threshold(2.0, 0)
