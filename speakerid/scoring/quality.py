"""Quality measures of a trial for the fused system's calibration: how much speech each side holds.

A score's meaning depends on how much speech it rests on: target scores grow with the speech of both sides, and
the S-norm cohort's spread does not follow them, so one affine map from scores to LLR, learned on development
trials of mixed durations, is over-confident for some durations and under-confident for others. The fusion
therefore also takes quality measures as inputs (quality measure functions, Mandasari et al. [1]_; quality
measures as fusion inputs as in FoCal, Brümmer [2]_): the log speech seconds of the enrollment and of the test,
each centred on the development trials' median and clipped to the range they covered (a 1-hour test is read as the
longest development test, not extrapolated)::

    llr = b + sum_i w_i s_i + sum_q v_q q          q = clip(log(seconds), lo_q, hi_q) - log(median_q)

With ``interactions=True`` each score times each measure is an input too (the slope then follows the durations
as well); the default system uses the offsets alone, the choice its development suite supported (README,
"Calibration by speech duration"). :class:`QualityInputs` turns the systems' scores and the two durations into
the input matrix, on which :class:`~speakerid.evaluation.fusion.LinearFusion` is fitted and applied as usual.
The speech seconds are those the first system's front end keeps (speech frames times the frame shift): noise
the speech detector takes for speech lengthens them.

References
----------
.. [1] M. I. Mandasari, R. Saeidi, M. McLaren and D. A. van Leeuwen, "Quality measure functions for calibration
       of speaker recognition systems in various duration conditions", IEEE Trans. Audio, Speech and Language
       Processing 21(11), 2425-2438, 2013.
.. [2] N. Brümmer, "FoCal Multi-class: toolkit for evaluation, fusion and calibration of multi-class recognition
       scores", 2007 (quality measures as fusion inputs).
"""

from __future__ import annotations

import math

import numpy as np

from speakerid.exceptions import ModelFormatError, ParameterError

__all__ = ["MEASURES", "QualityInputs"]

#: The quality measures, in the order of the input matrix: speech seconds of the enrollment, of the test.
MEASURES = ("enroll_speech_s", "test_speech_s")
#: Shortest speech a measure is taken as (a side with less was refused by the front end anyway).
MIN_SPEECH_S = 0.1


class QualityInputs:
    """The fusion's input matrix from the systems' scores and each trial's speech durations.

    Parameters
    ----------
    systems : list of str
        The score columns, in order.
    interactions : bool
        Also the products of each score with each measure (the calibration's slope follows the durations);
        ``False`` (the default) gives offsets only.
    """

    def __init__(self, systems, *, interactions: bool = False):
        self.systems = [str(s) for s in systems]
        self.interactions = bool(interactions)

    def fit(self, enroll_s, test_s) -> QualityInputs:
        """Learn the reference (median) and the clipping range (1st and 99th percentiles) of each log duration,
        from the development trials' durations (seconds, shape (n_trials,) each)."""
        self.reference_, self.range_ = {}, {}
        for name, seconds in zip(MEASURES, (enroll_s, test_s)):
            logs = np.log(np.maximum(_seconds(seconds, name), MIN_SPEECH_S))
            self.reference_[name] = float(np.median(logs))
            low, high = np.percentile(logs, [1, 99])
            self.range_[name] = (float(low), float(high))
        return self

    @property
    def names(self) -> list[str]:
        """Column names of :meth:`transform`'s matrix."""
        names = list(self.systems) + [f"log {m}" for m in MEASURES]
        if self.interactions:
            names += [f"{s} x log {m}" for m in MEASURES for s in self.systems]
        return names

    def transform(self, matrix, enroll_s, test_s) -> np.ndarray:
        """The input matrix (n_trials, len(names)) of score ``matrix`` (n_trials, n_systems) and the durations
        (seconds; broadcast to n_trials)."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.systems):
            raise ParameterError(f"need a score matrix of shape (n_trials, {len(self.systems)}), "
                                 f"got {matrix.shape}")
        columns = [matrix]
        logs = []
        for name, seconds in zip(MEASURES, (enroll_s, test_s)):
            low, high = self.range_[name]
            value = np.log(np.maximum(_seconds(seconds, name), MIN_SPEECH_S))
            logs.append(np.broadcast_to(np.clip(value, low, high) - self.reference_[name], (len(matrix),)))
        columns.append(np.column_stack(logs))
        if self.interactions:
            columns += [matrix * q[:, None] for q in logs]
        return np.column_stack(columns)

    def to_dict(self) -> dict:
        return {"measures": list(MEASURES), "systems": self.systems, "interactions": self.interactions,
                "reference_log_s": self.reference_, "range_log_s": {k: list(v) for k, v in self.range_.items()}}

    @classmethod
    def from_dict(cls, data: dict, source: str = "fusion.json") -> QualityInputs:
        """The inputs saved by :meth:`to_dict`; :class:`ModelFormatError` naming ``source`` and the field when
        malformed."""
        def fail(reason):
            raise ModelFormatError(f"{source}: bad quality-measure settings ({reason})")

        if not isinstance(data, dict):
            fail(f"expected an object, got {type(data).__name__}")
        for key in ("measures", "systems", "interactions", "reference_log_s", "range_log_s"):
            if key not in data:
                fail(f"missing field {key!r}")
        if data["measures"] != list(MEASURES):
            fail(f"unknown quality measures {data['measures']!r}, expected {list(MEASURES)}")
        systems = data["systems"]
        if not isinstance(systems, list) or not systems or not all(isinstance(x, str) for x in systems):
            fail(f"'systems' must be a non-empty list of names, got {systems!r}")
        if not isinstance(data["interactions"], bool):
            fail(f"'interactions' must be true or false, got {data['interactions']!r}")
        made = cls(systems, interactions=data["interactions"])
        made.reference_, made.range_ = {}, {}
        references, ranges = (data[k] if isinstance(data[k], dict) else {} for k in ("reference_log_s", "range_log_s"))
        for m in MEASURES:
            reference, span = references.get(m), ranges.get(m)
            if not _number(reference):
                fail(f"reference_log_s.{m} must be a finite number, got {reference!r}")
            if not (isinstance(span, list) and len(span) == 2 and all(map(_number, span)) and span[0] <= span[1]):
                fail(f"range_log_s.{m} must be [low, high] with finite low <= high, got {span!r}")
            made.reference_[m], made.range_[m] = float(reference), (float(span[0]), float(span[1]))
        return made


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _seconds(seconds, name: str) -> np.ndarray:
    values = np.asarray(seconds, dtype=np.float64)
    if not np.isfinite(values).all() or (values < 0).any():
        raise ParameterError(f"{name} must be finite, non-negative seconds")
    return values
