"""Cepstral mean and variance normalisation (CMVN), over a whole utterance or a sliding window.

Removing each dimension's mean cancels a fixed channel (microphone, room) in the cepstral domain; dividing by
its standard deviation also evens out loudness and noise differences between recordings.
"""

from __future__ import annotations

import numpy as np

from speakerid.exceptions import ParameterError

__all__ = ["cmvn", "sliding_cmvn", "STD_FLOOR", "RELATIVE_STD_FLOOR"]

#: Absolute last resort under the relative floor, so an all-zero matrix becomes 0 instead of NaN.
STD_FLOOR = 1e-8
#: Standard deviations are floored at this fraction of the RMS value of the whole feature matrix. A column that
#: varies less than that (a tone's cepstra, the deltas of near-identical frames: float rounding, not signal) has
#: its mean removed but is not blown up to unit variance, which would turn rounding noise into confident
#: "speech" features. Real speech columns vary by 1e-1 of the matrix RMS or more.
RELATIVE_STD_FLOOR = 1e-4


def _std_floor(values: np.ndarray) -> float:
    """:data:`RELATIVE_STD_FLOOR` times the RMS value of ``values`` (at least :data:`STD_FLOOR`)."""
    rms = float(np.sqrt(np.mean(np.square(values, dtype=np.float64))))
    return max(RELATIVE_STD_FLOOR * rms, STD_FLOOR)


def _check_frames(features) -> np.ndarray:
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ParameterError(f"CMVN expects a non-empty frames x dims array, got shape {features.shape}")
    if not np.issubdtype(features.dtype, np.floating):
        features = features.astype(np.float64)
    return features


def cmvn(features, *, variance: bool = True) -> np.ndarray:
    """Per-utterance CMVN: subtract each dimension's mean (and divide by its standard deviation).

    Statistics are accumulated in float64; the result keeps the input's float dtype. Standard deviations are
    floored relative to the matrix (:data:`RELATIVE_STD_FLOOR`), so a column of near-identical values is centred,
    not amplified.

    Examples
    --------
    >>> x = np.array([[1.0, 10.0], [5.0, 10.0]])
    >>> cmvn(x)                   # the constant column becomes 0, not NaN
    array([[-1.,  0.],
           [ 1.,  0.]])
    >>> cmvn(np.array([[5.0, 1.0], [5.0 + 1e-6, -1.0]]))[:, 0].round(3)   # rounding noise stays ~0
    array([-0.001,  0.001])
    >>> cmvn(x, variance=False)
    array([[-2.,  0.],
           [ 2.,  0.]])
    """
    features = _check_frames(features)
    mean = features.mean(axis=0, dtype=np.float64)
    out = features - mean.astype(features.dtype)
    if variance:
        std = np.sqrt(np.mean(np.square(out, dtype=np.float64), axis=0))
        out *= (1.0 / np.maximum(std, _std_floor(features))).astype(features.dtype)
    return out


def sliding_cmvn(features, window_frames: int = 301, *, variance: bool = True) -> np.ndarray:
    """CMVN with statistics over a sliding window of ``window_frames`` frames around each frame.

    The window is centred on the frame and kept at full length near the edges by shifting it inwards (Kaldi's
    ``apply-cmvn-sliding --center``); an utterance shorter than the window therefore gets plain :func:`cmvn`.
    Running sums make it O(frames x dims) whatever the window.

    Examples
    --------
    >>> x = np.arange(10.0)[:, None]
    >>> bool(np.allclose(sliding_cmvn(x, 301), cmvn(x)))   # shorter than the window
    True
    >>> sliding_cmvn(x, 3, variance=False)[:, 0]   # a ramp minus its local mean
    array([-1.,  0.,  0.,  0.,  0.,  0.,  0.,  0.,  0.,  1.])
    """
    features = _check_frames(features)
    window_frames = int(window_frames)
    if window_frames < 1:
        raise ParameterError(f"window_frames must be >= 1, got {window_frames}")
    n_frames = features.shape[0]
    width = min(window_frames, n_frames)
    start = np.clip(np.arange(n_frames) - window_frames // 2, 0, n_frames - width)
    stop = start + width
    values = features.astype(np.float64)
    sums = np.zeros((n_frames + 1, features.shape[1]))
    np.cumsum(values, axis=0, out=sums[1:])
    mean = (sums[stop] - sums[start]) / width
    out = values - mean
    if variance:
        np.cumsum(np.square(values), axis=0, out=sums[1:])
        var = (sums[stop] - sums[start]) / width - np.square(mean)
        out /= np.maximum(np.sqrt(np.maximum(var, 0.0)), _std_floor(values))
    return out.astype(features.dtype, copy=False)
