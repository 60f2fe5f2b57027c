"""Who spoke when: windows, labels with an unknown below the threshold, merging neighbours (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from speakerid.evaluation.turns import UNKNOWN, label_windows, merge_windows, stretches_frame, window_bounds
from speakerid.exceptions import ParameterError


@pytest.mark.parametrize("duration, window, hop", [(10.0, 2.0, 1.0), (7.3, 2.0, 0.5), (3.0, 3.0, 1.0),
                                                   (2.1, 2.0, 2.0)])
def test_windows_cover_the_recording(duration, window, hop):
    bounds = window_bounds(duration, window, hop)
    assert bounds[0, 0] == 0.0 and bounds[-1, 1] == pytest.approx(duration)
    assert np.all(np.diff(bounds[:, 0]) <= hop + 1e-9) and np.all(bounds[:, 1] - bounds[:, 0] <= window + 1e-9)


def test_change_of_speaker_lands_within_one_hop():
    duration, change_s, hop = 12.0, 5.3, 1.0
    bounds = window_bounds(duration, 2.0, hop)
    # a window belongs to the speaker who talks for most of it
    in_a = np.clip(change_s - bounds[:, 0], 0, None) / (bounds[:, 1] - bounds[:, 0])
    scores = np.column_stack([in_a * 4 - 1, (1 - in_a) * 4 - 1])
    labels, best = label_windows(scores, ["ann", "bob"], threshold=0.0)
    stretches = merge_windows(bounds, labels, best)
    assert [s.speaker for s in stretches] == ["ann", "bob"]
    assert abs(stretches[0].end_s - change_s) <= hop
    assert stretches[0].start_s == 0.0 and stretches[-1].end_s == duration


def test_unknown_below_threshold_and_unscorable_windows():
    scores = [[3.0, 0.0], [2.5, 0.1], [np.nan, np.nan], [0.2, 0.4], [0.0, 2.0]]
    labels, best = label_windows(scores, ["ann", "bob"], threshold=1.0)
    assert labels == ["ann", "ann", UNKNOWN, UNKNOWN, "bob"]
    stretches = merge_windows(window_bounds(6.0, 2.0, 1.0), labels, best)
    assert [(s.speaker, s.n_windows) for s in stretches] == [("ann", 2), (UNKNOWN, 2), ("bob", 1)]
    assert stretches[0].score == pytest.approx(2.75) and stretches[1].score == pytest.approx(0.4)
    frame = stretches_frame(stretches)
    assert frame["duration_s"].sum() == pytest.approx(6.0) and frame["speaker"].tolist()[1] == UNKNOWN


def test_bad_arguments():
    with pytest.raises(ParameterError, match="0 < hop <= window"):
        window_bounds(10.0, 2.0, 3.0)
    with pytest.raises(ParameterError, match="duration must be positive"):
        window_bounds(0.0)
    with pytest.raises(ParameterError, match="shape"):
        label_windows([[1.0, 2.0]], ["ann"], 0.0)
    with pytest.raises(ParameterError, match="differ in length"):
        merge_windows([[0.0, 2.0]], ["a", "b"], [1.0])
