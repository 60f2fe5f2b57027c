"""The calibration's quality measures (speakerid.scoring.quality)."""

import numpy as np
import pytest

from speakerid.evaluation.fusion import LinearFusion
from speakerid.evaluation.metrics import cllr, min_cllr
from speakerid.exceptions import ModelFormatError, ParameterError
from speakerid.scoring.quality import MEASURES, QualityInputs


def _trials(rng, n, enroll_s, test_s):
    """S-normed-like scores: non-targets N(0, 1) whatever the durations, targets further out the more speech
    both sides hold (the mean grows with log duration), so one affine calibration cannot fit every duration."""
    labels = np.r_[np.ones(n // 5), np.zeros(n - n // 5)].astype(int)
    strength = 1.2 * np.log1p(np.minimum(enroll_s, 3 * test_s))
    scores = rng.normal(0, 1, (n, 2)) + np.where(labels == 1, strength, 0.0)[:, None]
    return scores, labels


def _conditions(rng, n=3000):
    out = {}
    for name, (enroll_s, test_s) in {"short": (3.0, 0.5), "long": (20.0, 8.0)}.items():
        scores, labels = _trials(rng, n, enroll_s, test_s)
        out[name] = (scores, labels, np.full(n, enroll_s), np.full(n, test_s))
    return out


@pytest.mark.parametrize("interactions, tolerance", [(False, 0.05), (True, 0.03)])
def test_durations_as_quality_measures_calibrate_every_duration(interactions, tolerance):
    """Learned on pooled short and long trials, the scores-only fusion is miscalibrated in each group; with the
    durations as quality measures each group's LLRs are calibrated (Cllr close to its minimum): the offsets
    alone nearly, with the products of scores and durations (the slope follows too) closer still."""
    rng = np.random.default_rng(0)
    train, test = _conditions(rng), _conditions(rng)
    pooled = [np.concatenate([c[i] for c in train.values()]) for i in range(4)]
    plain = LinearFusion().fit(pooled[0], pooled[1])
    quality = QualityInputs(["a", "b"], interactions=interactions).fit(pooled[2], pooled[3])
    aware = LinearFusion().fit(quality.transform(pooled[0], pooled[2], pooled[3]), pooled[1])
    for name, (scores, labels, enroll_s, test_s) in test.items():
        floor = min_cllr(scores @ [1.0, 1.0], labels)
        with_quality = cllr(aware.transform(quality.transform(scores, enroll_s, test_s)), labels)
        without = cllr(plain.transform(scores), labels)
        assert with_quality - floor < tolerance, name
        assert without - floor > 0.05, name           # the pooled calibration is wrong for this group


def test_columns_clipping_and_round_trip():
    quality = QualityInputs(["x", "y"], interactions=True).fit([1.0, 2.0, 4.0, 8.0], [0.5, 1.0, 2.0, 4.0])
    assert quality.names == ["x", "y", "log enroll_speech_s", "log test_speech_s", "x x log enroll_speech_s",
                             "y x log enroll_speech_s", "x x log test_speech_s", "y x log test_speech_s"]
    scores = np.array([[1.0, -2.0], [0.5, 0.5]])
    made = quality.transform(scores, [2.0, 3600.0], 1.0)
    assert made.shape == (2, 8)
    np.testing.assert_array_equal(made[:, :2], scores)
    np.testing.assert_allclose(made[:, 4:6], scores * made[:, [2]])    # score x centred log duration
    # a 1-hour enrollment is read as the longest seen in training (1-s..8-s), not extrapolated
    low, high = quality.range_["enroll_speech_s"]
    assert made[1, 2] == pytest.approx(high - quality.reference_["enroll_speech_s"])
    assert high < np.log(8.0) + 1e-9 and low > np.log(1.0) - 1e-9
    offsets = QualityInputs(["x", "y"]).fit([1.0, 2.0], [1.0, 2.0])
    assert offsets.transform(scores, 1.0, 1.0).shape == (2, 4)
    again = QualityInputs.from_dict(quality.to_dict())
    np.testing.assert_array_equal(again.transform(scores, [2.0, 3.0], [0.2, 9.0]),
                                  quality.transform(scores, [2.0, 3.0], [0.2, 9.0]))


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(measures=["snr_db"]), "unknown quality measures"),
    (lambda d: d.pop("reference_log_s"), "missing field 'reference_log_s'"),
    (lambda d: d["range_log_s"].update({MEASURES[0]: [2.0, 1.0]}), r"range_log_s.enroll_speech_s must be \[low, high\]"),
    (lambda d: d["range_log_s"].update({MEASURES[1]: [0.5, 0.5, 9]}), "range_log_s.test_speech_s"),
    (lambda d: d["range_log_s"].update({MEASURES[1]: "abc"}), "range_log_s.test_speech_s"),
    (lambda d: d["range_log_s"].update({MEASURES[1]: [True, True]}), "range_log_s.test_speech_s"),
    (lambda d: d["reference_log_s"].update({MEASURES[1]: float("nan")}), "reference_log_s.test_speech_s"),
    (lambda d: d["reference_log_s"].update({MEASURES[0]: True}), "reference_log_s.enroll_speech_s"),
    (lambda d: d.update(interactions="no"), "'interactions' must be true or false"),
    (lambda d: d.update(systems="gmm-ubm"), "'systems' must be a non-empty list"),
])
def test_a_damaged_quality_block_names_the_file(change, match):
    data = QualityInputs(["x"]).fit([1.0, 2.0], [1.0, 2.0]).to_dict()
    change(data)
    with pytest.raises(ModelFormatError, match=f"m/fusion.json: bad quality-measure settings.*{match}"):
        QualityInputs.from_dict(data, source="m/fusion.json")


@pytest.mark.parametrize("seconds", [[-1.0], [float("nan")], [float("inf")]])
def test_bad_durations_are_refused(seconds):
    quality = QualityInputs(["x"]).fit([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ParameterError, match="test_speech_s must be finite, non-negative seconds"):
        quality.transform(np.zeros((1, 1)), [1.0], seconds)
    with pytest.raises(ParameterError, match=r"shape \(n_trials, 1\)"):
        quality.transform(np.zeros((1, 2)), [1.0], [1.0])
