"""Feature warping: short-time gaussianisation of each feature over a sliding window.

Pelecanos & Sridharan, "Feature warping for robust speaker verification", Odyssey 2001. Within a window of
``N`` frames centred on frame ``t`` the value ``x[t]`` has (ascending) rank ``r`` in ``1..N``; it is replaced
by the standard-normal quantile ``Phi^-1((r - 1/2) / N)``. Every window's output is therefore a fixed set of
normal quantiles whatever the input's distribution: additive and multiplicative channel effects, and any other
slowly varying monotone distortion, are removed, and the feature follows N(0, 1) over the window.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from speakerid._utils.lazy import lazy_import
from speakerid.exceptions import ParameterError

special = lazy_import("scipy.special")

__all__ = ["feature_warp", "warp_quantiles"]

#: Elements compared at once (frames x dims x window); bounds the temporary boolean arrays to a few MB.
_CHUNK_ELEMENTS = 1 << 22


def warp_quantiles(window_frames: int) -> np.ndarray:
    """The values feature warping gives the ranks ``1..window_frames``: ``Phi^-1((r - 1/2) / N)``.

    Examples
    --------
    >>> np.round(warp_quantiles(3), 4)
    array([-0.9674,  0.    ,  0.9674])
    """
    n = int(window_frames)
    if n < 1:
        raise ParameterError(f"window_frames must be >= 1, got {window_frames}")
    return special.ndtri((np.arange(1, n + 1) - 0.5) / n)


def feature_warp(features, window_frames: int = 301) -> np.ndarray:
    """Warp every column of ``features`` to a standard normal over a sliding window of ``window_frames``.

    The window is centred on each frame and kept at full length near the edges by shifting it inwards (as
    :func:`~speakerid.features.normalize.sliding_cmvn` does); an utterance with fewer frames than the window is
    warped over the whole utterance. Tied values get their mid-rank (the mean of the ranks they share), so a
    constant column becomes 0. Vectorised: comparison counts over strided window views, in chunks of frames.

    Parameters
    ----------
    features : array_like, shape (n_frames, n_dims)
    window_frames : int
        Window length ``N`` (frames, >= 1; 301 frames at a 10 ms shift is about 3 s).

    Returns
    -------
    numpy.ndarray, shape (n_frames, n_dims)
        In the input's float dtype (float64 for integer input).

    Examples
    --------
    >>> x = np.array([[3.0], [1.0], [2.0]])
    >>> np.round(feature_warp(x, 301)[:, 0], 4)   # ranks 3, 1, 2 of 3 -> the normal quantiles of the ranks
    array([ 0.9674, -0.9674,  0.    ])
    >>> bool(np.allclose(feature_warp(np.exp(x)), feature_warp(x)))   # a monotone transform changes nothing
    True
    """
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ParameterError(f"feature_warp expects a non-empty frames x dims array, got shape {features.shape}")
    if not np.issubdtype(features.dtype, np.floating):
        features = features.astype(np.float64)
    if int(window_frames) < 1:
        raise ParameterError(f"window_frames must be >= 1, got {window_frames}")
    return _feature_warp(features, int(window_frames))


def _feature_warp(features: np.ndarray, window_frames: int) -> np.ndarray:
    n_frames, n_dims = features.shape
    width = min(window_frames, n_frames)
    start = np.clip(np.arange(n_frames) - window_frames // 2, 0, n_frames - width)
    windows = sliding_window_view(features, width, axis=0)  # (n_frames - width + 1, n_dims, width), no copy
    out = np.empty(features.shape, dtype=features.dtype)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, n_dims * width))
    for lo in range(0, n_frames, chunk):
        hi = min(lo + chunk, n_frames)
        block = windows[start[lo:hi]]                      # (chunk, n_dims, width)
        centre = features[lo:hi, :, None]
        below = np.count_nonzero(block < centre, axis=2)
        equal = np.count_nonzero(block == centre, axis=2)  # >= 1: the centre value itself
        rank = below + 0.5 * (equal + 1)                   # mid-rank, 1-based
        out[lo:hi] = special.ndtri((rank - 0.5) / width)
    return out
