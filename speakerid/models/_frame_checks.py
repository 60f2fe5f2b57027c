"""Model-level guards against degenerate training frames: repeated frames, constant dimensions.

A mixture trained on near-identical frames (a constant signal, a tone, digital silence that got past the VAD)
puts components with floor-sized variances on them, and a speaker enrolled from such frames then "matches"
anything that lands near them with huge likelihood ratios. The file-level speech check in ``features`` refuses
such recordings early; these checks hold whatever frames an estimator is given directly.
"""

from __future__ import annotations

import warnings

import numpy as np

from speakerid.exceptions import ParameterError

__all__ = ["DegenerateFramesWarning", "distinct_frames", "check_training_frames", "judge_frames", "MIN_DISTINCT_FRACTION"]

#: An array whose distinct frames are fewer than this fraction of its frames is reported (speech: ~1.0).
MIN_DISTINCT_FRACTION = 0.5
_SHOWN = 5


class DegenerateFramesWarning(UserWarning):
    """Training or enrollment frames are partly degenerate (repeated frames); the model is still built."""


def distinct_frames(X) -> int:
    """Number of distinct rows of a 2-D array (exact equality), in O(n D).

    Rows are hashed by two random projections; two different rows collide only if both projections agree
    exactly, which for real-valued frames does not happen in practice.

    >>> distinct_frames(np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 2.0]]))
    2
    """
    X = np.asarray(X, dtype=np.float64)
    if len(X) == 0:
        return 0
    proj = np.random.default_rng(0).standard_normal((X.shape[1], 2))
    keys = X @ proj
    return int(len(np.unique(keys.view(np.dtype((np.void, 16))).ravel())))


def _name(names, i) -> str:
    return str(names[i]) if names is not None else f"array {i}"


def check_training_frames(frames_list, n_components: int, names=None, what: str = "training",
                          strict: bool = False) -> dict:
    """Refuse or report degenerate frames before a mixture is fitted to them.

    Parameters
    ----------
    frames_list : list of arrays (n_frames_i, D)
        The frames, one array per file (or per noisy copy of a file).
    n_components : int
        Components to fit: fewer distinct frames than ``2 * n_components`` cannot support them.
    names : list of str, optional
        What to call each array in messages (file names); default ``array i``.
    what : str
        The operation, for messages ("UBM training", "enrollment", ...).
    strict : bool
        Refuse (instead of warning about) arrays made mostly of repeated frames: for enrollment, where one
        such file is a large part of the speaker's data.

    Returns
    -------
    dict
        ``n_frames``, ``n_distinct`` (summed over arrays) and ``repeated`` (names of arrays whose distinct
        frames are below :data:`MIN_DISTINCT_FRACTION` of their frames).

    Raises
    ------
    ParameterError
        When a feature dimension is constant over all frames (its variance is zero: every density would be
        degenerate), or when there are fewer than ``2 * n_components`` distinct frames; the message names the
        arrays with the fewest distinct frames; with ``strict``, when any array is mostly repeated frames.

    Warns
    -----
    DegenerateFramesWarning
        Naming the arrays made mostly of repeated frames, when the rest of the data still suffices.
    """
    counts = [(len(X), distinct_frames(X)) for X in frames_list]
    lows = np.min([np.min(X, axis=0) for X in frames_list], axis=0)
    highs = np.max([np.max(X, axis=0) for X in frames_list], axis=0)
    return judge_frames(counts, lows, highs, n_components, names, what, strict)


def judge_frames(counts, lows, highs, n_components: int, names=None, what: str = "training",
                 strict: bool = False) -> dict:
    """:func:`check_training_frames` from measurements: ``counts`` ``[(n_frames, n_distinct), ...]`` per array
    and the per-dimension minimum ``lows`` and maximum ``highs`` over all of them (what map-reduce training
    collects on its workers, :mod:`speakerid.models.sharded`). Same errors, warnings and result."""
    n_frames = sum(n for n, _ in counts)
    n_distinct = sum(u for _, u in counts)
    repeated = [i for i, (n, u) in enumerate(counts) if u < MIN_DISTINCT_FRACTION * n]
    worst = sorted(range(len(counts)), key=lambda i: counts[i][1])[:_SHOWN]
    listing = ", ".join(f"{_name(names, i)} ({counts[i][1]} distinct of {counts[i][0]})" for i in worst)
    if n_distinct < 2 * int(n_components):
        raise ParameterError(f"{what}: only {n_distinct} distinct frames among {n_frames} cannot support "
                             f"{n_components} components (need at least {2 * int(n_components)}): {listing}; "
                             f"give more speech or fewer components")
    lows, highs = np.asarray(lows), np.asarray(highs)
    scale = np.maximum(np.maximum(np.abs(lows), np.abs(highs)), 1.0)
    constant = np.flatnonzero(highs.astype(np.float64) - lows <= 1e-6 * scale)
    if len(constant):
        raise ParameterError(f"{what}: feature dimension(s) {constant[:10].tolist()} are constant over all "
                             f"{n_frames} frames (zero variance; first value {float(lows[constant[0]]):.6g}): the "
                             f"frames are not speech features ({listing})")
    if repeated:
        shown = ", ".join(f"{_name(names, i)} ({counts[i][1]} distinct of {counts[i][0]})" for i in repeated[:_SHOWN])
        more = f" and {len(repeated) - _SHOWN} more" if len(repeated) > _SHOWN else ""
        text = (f"{what}: {len(repeated)} of {len(counts)} inputs are mostly repeated frames (constant signal or "
                f"digital silence?): {shown}{more}")
        if strict:
            raise ParameterError(text)
        warnings.warn(text, DegenerateFramesWarning, stacklevel=4)
    return {"n_frames": int(n_frames), "n_distinct": int(n_distinct),
            "repeated": [_name(names, i) for i in repeated]}
