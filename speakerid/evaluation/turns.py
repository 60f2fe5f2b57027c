"""Who spoke when among the enrolled speakers: windows over a long recording, each labelled with the best enrolled
speaker (or ``unknown`` below the threshold), neighbours merged into stretches.

The functions here are pure (arrays in, stretches out);
:meth:`speakerid.verifier.SpeakerVerifier.speaker_turns` scores the windows and calls them, for the ``segments``
command and the web page's per-segment table alike.

Each window stands for the hop-long stretch around its centre (the first from 0 s, the last to the end), so a
change of speaker is placed half-way between the centres of the last window of one speaker and the first window
of the next: within one hop of the true change when the windows on either side are labelled correctly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from speakerid._utils.lazy import lazy_import
from speakerid.exceptions import ParameterError

pd = lazy_import("pandas")

__all__ = ["UNKNOWN", "Stretch", "SpeakerTurns", "window_bounds", "label_windows", "smooth_labels", "merge_windows",
           "stretches_frame"]

#: The label of a stretch whose best enrolled speaker scores below the threshold.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Stretch:
    """A stretch of a recording attributed to one speaker.

    Attributes
    ----------
    start_s, end_s : float
        Seconds from the start of the recording.
    speaker : str
        An enrolled speaker id, or :data:`UNKNOWN`.
    score : float
        Mean over the stretch's windows of the labelled speaker's score (of the best speaker for ``unknown``).
    n_windows : int
    """

    start_s: float
    end_s: float
    speaker: str
    score: float
    n_windows: int


def window_bounds(duration_s: float, window_s: float = 2.0, hop_s: float = 1.0) -> np.ndarray:
    """Start and end (seconds) of the analysis windows over a recording of ``duration_s``.

    Windows start every ``hop_s`` while they fit; a last window ending at the end of the recording is added when
    the hops leave a tail uncovered. A recording shorter than one window is one window.

    Returns
    -------
    numpy.ndarray of float, shape (n_windows, 2)

    Examples
    --------
    >>> window_bounds(5.5, 2.0, 1.0).tolist()
    [[0.0, 2.0], [1.0, 3.0], [2.0, 4.0], [3.0, 5.0], [3.5, 5.5]]
    >>> window_bounds(1.2).tolist()
    [[0.0, 1.2]]
    """
    duration_s, window_s, hop_s = float(duration_s), float(window_s), float(hop_s)
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ParameterError(f"duration must be positive seconds, got {duration_s}")
    if not (math.isfinite(window_s) and window_s > 0 and math.isfinite(hop_s) and 0 < hop_s <= window_s):
        raise ParameterError(f"need window > 0 and 0 < hop <= window (seconds), got window {window_s}, hop {hop_s}")
    if duration_s <= window_s:
        return np.array([[0.0, duration_s]])
    n_full = int(math.floor((duration_s - window_s) / hop_s + 1e-9)) + 1
    starts = np.arange(n_full) * hop_s
    if starts[-1] + window_s < duration_s - 1e-9:
        starts = np.r_[starts, duration_s - window_s]
    return np.column_stack([starts, starts + window_s])


def label_windows(scores, speakers, threshold: float) -> tuple:
    """The best speaker of each window, or :data:`UNKNOWN` when its score is below ``threshold``.

    Parameters
    ----------
    scores : array_like, shape (n_windows, n_speakers)
        Score of each enrolled speaker in each window (higher = more likely); NaN for a window that could not be
        scored (too little speech), which is labelled unknown.
    speakers : sequence of str, length n_speakers
    threshold : float
        The verification threshold of the model directory.

    Returns
    -------
    labels : list of str, length n_windows
    best_scores : numpy.ndarray, shape (n_windows,)

    Examples
    --------
    >>> label_windows([[2.0, 0.1], [0.2, 0.3], [0.0, 1.5]], ["ann", "bob"], threshold=1.0)
    (['ann', 'unknown', 'bob'], array([2. , 0.3, 1.5]))
    """
    scores = np.asarray(scores, dtype=float)
    speakers = list(speakers)
    if scores.ndim != 2 or scores.shape[1] != len(speakers) or not speakers:
        raise ParameterError(f"scores must have shape (n_windows, {len(speakers)} speakers), got {scores.shape}")
    filled = np.where(np.isnan(scores), -np.inf, scores)
    best = np.argmax(filled, axis=1) if len(scores) else np.zeros(0, int)
    best_scores = filled[np.arange(len(scores)), best] if len(scores) else np.zeros(0)
    labels = [speakers[b] if s >= threshold else UNKNOWN for b, s in zip(best, best_scores)]
    return labels, np.where(np.isneginf(best_scores), np.nan, best_scores)


def _edges(bounds: np.ndarray) -> np.ndarray:
    """Where each window's stretch starts and ends: mid-points between neighbouring centres (0 and the end)."""
    centres = bounds.mean(axis=1)
    return np.r_[0.0, (centres[1:] + centres[:-1]) / 2.0, bounds[-1, 1]]


def _runs(labels) -> list:
    """``(first, stop)`` window indices of each run of equal labels."""
    starts = [0] + [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]
    return list(zip(starts, starts[1:] + [len(labels)]))


def smooth_labels(bounds, labels, min_duration_s: float) -> list:
    """Absorb stretches shorter than ``min_duration_s`` into a neighbour (the longer one; the earlier on a tie),
    shortest first, until none is left or one stretch remains: a turn shorter than the window is noise.

    Examples
    --------
    >>> bounds = window_bounds(8.0, 2.0, 1.0)
    >>> smooth_labels(bounds, list("aabaaaa"), 2.0)
    ['a', 'a', 'a', 'a', 'a', 'a', 'a']
    >>> smooth_labels(bounds, list("aaabbbb"), 2.0)
    ['a', 'a', 'a', 'b', 'b', 'b', 'b']
    """
    bounds = np.asarray(bounds, dtype=float).reshape(-1, 2)
    labels = list(labels)
    if len(labels) != len(bounds):
        raise ParameterError(f"bounds and labels differ in length ({len(bounds)}, {len(labels)})")
    if not labels:
        return labels
    edges = _edges(bounds)
    while True:
        runs = _runs(labels)
        lengths = [edges[b] - edges[a] for a, b in runs]
        short = [k for k, length in enumerate(lengths) if length < min_duration_s - 1e-9]
        if len(runs) == 1 or not short:
            return labels
        k = min(short, key=lambda j: (lengths[j], j))
        before = lengths[k - 1] if k > 0 else -1.0
        after = lengths[k + 1] if k + 1 < len(runs) else -1.0
        neighbour = runs[k - 1] if before >= after else runs[k + 1]
        first, stop = runs[k]
        labels[first:stop] = [labels[neighbour[0]]] * (stop - first)


def merge_windows(bounds, labels, window_scores) -> list:
    """Merge consecutive windows with the same label into :class:`Stretch` es.

    Parameters
    ----------
    bounds : array_like, shape (n_windows, 2)
        :func:`window_bounds`' start and end of each window, in time order.
    labels : sequence of str, length n_windows
    window_scores : array_like, shape (n_windows,)
        The score behind each label (NaN allowed).

    Returns
    -------
    list of Stretch
        Covering the recording from 0 to the end of the last window without gaps or overlaps; a window stands
        for the time between the mid-points of its centre and its neighbours' centres.

    Examples
    --------
    >>> bounds = window_bounds(6.0, 2.0, 1.0)
    >>> [(s.start_s, s.end_s, s.speaker) for s in merge_windows(bounds, list("aabbb"), [1.0] * 5)]
    [(0.0, 2.5, 'a'), (2.5, 6.0, 'b')]
    """
    bounds = np.asarray(bounds, dtype=float).reshape(-1, 2)
    window_scores = np.asarray(window_scores, dtype=float)
    labels = list(labels)
    if not (len(bounds) == len(labels) == len(window_scores)):
        raise ParameterError(f"bounds, labels and scores differ in length ({len(bounds)}, {len(labels)}, "
                             f"{len(window_scores)})")
    if not len(bounds):
        return []
    edges = _edges(bounds)
    stretches, first = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[first]:
            part = window_scores[first:i]
            score = float(np.nanmean(part)) if np.isfinite(part).any() else math.nan
            stretches.append(Stretch(float(edges[first]), float(edges[i]), labels[first], score, i - first))
            first = i
    return stretches


def stretches_frame(stretches) -> pd.DataFrame:
    """The stretches as a table: ``start_s``, ``end_s``, ``duration_s``, ``speaker``, ``score``, ``n_windows``.

    Examples
    --------
    >>> stretches_frame([Stretch(0.0, 2.5, "ann", 1.2, 2)])[["start_s", "duration_s", "speaker"]].values.tolist()
    [[0.0, 2.5, 'ann']]
    """
    frame = pd.DataFrame([(s.start_s, s.end_s, s.end_s - s.start_s, s.speaker, s.score, s.n_windows)
                          for s in stretches],
                         columns=["start_s", "end_s", "duration_s", "speaker", "score", "n_windows"])
    return frame


@dataclass(frozen=True)
class SpeakerTurns:
    """Who spoke when in one recording (:meth:`speakerid.verifier.SpeakerVerifier.speaker_turns`).

    Attributes
    ----------
    stretches : list of Stretch
    notes : list of str
        Per stretch, why it could not be scored ("silent", the audio error), else "".
    threshold : float
        The threshold below which a stretch is ``unknown``.
    window_s, hop_s, duration_s : float
    """

    stretches: list
    notes: list
    threshold: float
    window_s: float
    hop_s: float
    duration_s: float

    def rows(self) -> list:
        """One dict per stretch: ``index`` (from 1), ``start_s``, ``end_s``, ``best`` (``unknown`` below the
        threshold), ``score`` (None when not scored) and ``note`` (why not)."""
        return [{"index": i + 1, "start_s": round(s.start_s, 2), "end_s": round(s.end_s, 2), "best": s.speaker,
                 "score": None if math.isnan(s.score) else s.score, "note": note}
                for i, (s, note) in enumerate(zip(self.stretches, self.notes))]
