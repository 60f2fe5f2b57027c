"""Utterance-level statistics: one fixed-length vector per clip (mean and standard deviation of every feature
dimension over its frames), the input of the MLP and Siamese models.
"""

from __future__ import annotations

import numpy as np

from speakerid.exceptions import ParameterError

__all__ = ["utterance_stats", "clip_vector", "clip_vectors"]


def _check_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 2 or frames.shape[0] == 0 or frames.shape[1] == 0:
        raise ParameterError(f"expected a non-empty frames x dims array, got shape {frames.shape}")
    if not np.issubdtype(frames.dtype, np.number) or np.iscomplexobj(frames):
        raise ParameterError(f"expected real-valued features, got dtype {frames.dtype}")
    if not np.all(np.isfinite(frames)):
        raise ParameterError("features hold NaN or infinity")
    return frames


def utterance_stats(frames) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation of each dimension over the frames, as float32.

    Examples
    --------
    >>> mean, std = utterance_stats(np.array([[0.0, 1.0], [2.0, 1.0]]))
    >>> mean, std
    (array([1., 1.], dtype=float32), array([1., 0.], dtype=float32))
    """
    frames = _check_frames(frames)
    mean = frames.mean(axis=0, dtype=np.float64)
    std = np.sqrt(np.mean(np.square(frames - mean), axis=0))
    return mean.astype(np.float32), std.astype(np.float32)


def clip_vector(frames) -> np.ndarray:
    """One vector per clip: ``[mean, std]`` of every feature dimension, shape ``(2 * dims,)`` float32.

    A one-frame clip has a zero standard deviation.

    Examples
    --------
    >>> clip_vector(np.array([[0.0, 1.0], [2.0, 1.0]]))
    array([1., 1., 1., 0.], dtype=float32)
    """
    mean, std = utterance_stats(frames)
    return np.concatenate([mean, std])


def clip_vectors(clips) -> np.ndarray:
    """Stack :func:`clip_vector` of several clips (each frames x dims, same dims): shape ``(n_clips, 2 * dims)``.

    Examples
    --------
    >>> clip_vectors([np.zeros((5, 3)), np.ones((2, 3))]).shape
    (2, 6)
    """
    vectors = [clip_vector(clip) for clip in clips]
    if not vectors:
        raise ParameterError("clip_vectors needs at least one clip")
    dims = {len(v) for v in vectors}
    if len(dims) > 1:
        raise ParameterError(f"clips have different feature dimensions: {sorted(d // 2 for d in dims)}")
    return np.stack(vectors)
