"""Cutting a waveform into overlapping analysis frames: pre-emphasis, strided framing, windows, frame energy.

Framing returns a read-only strided *view* of the signal (no copy), so a 10-minute file costs nothing to frame;
the copy happens once, when the window is applied in :mod:`speakerid.features.mfcc`.
"""

from __future__ import annotations

import decimal
import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from speakerid.exceptions import ParameterError

__all__ = [
    "WINDOWS",
    "preemphasis",
    "frame_count",
    "frame_signal",
    "analysis_window",
    "frame_log_energy",
    "round_half_up",
    "LOG_FLOOR",
]

#: Analysis windows :func:`analysis_window` knows.
WINDOWS = ("hamming", "hann", "povey", "rect")

#: Energies are floored here before the log, so digital silence gives a finite (very low) log-energy.
LOG_FLOOR = 1e-10


def round_half_up(value: float) -> int:
    """Round a float to the nearest integer, halves upwards (as python_speech_features sizes its frames).

    Examples
    --------
    >>> round_half_up(2.5), round(2.5)
    (3, 2)
    """
    return int(decimal.Decimal(float(value)).quantize(decimal.Decimal("1"), rounding=decimal.ROUND_HALF_UP))


def preemphasis(signal: np.ndarray, coeff: float) -> np.ndarray:
    """First-order high-pass ``y[n] = x[n] - coeff * x[n-1]``, with ``y[0] = x[0]``; a new array, same dtype.

    Examples
    --------
    >>> preemphasis(np.array([1.0, 1.0, 1.0]), 0.5)
    array([1. , 0.5, 0.5])
    """
    out = np.array(signal, copy=True)
    if coeff:
        out[1:] -= coeff * signal[:-1]
    return out


def frame_count(n_samples: int, frame_length: int, frame_shift: int, *, pad_end: bool = False) -> int:
    """Number of frames :func:`frame_signal` makes.

    Without ``pad_end`` only whole frames are kept (``1 + (n - L) // shift``; 0 when the signal is shorter than a
    frame). With ``pad_end`` the last partial frame is zero-padded (python_speech_features' rule), and a signal
    shorter than a frame still gives one frame.

    Examples
    --------
    >>> frame_count(16000, 400, 160), frame_count(16000, 400, 160, pad_end=True)
    (98, 99)
    """
    if n_samples < frame_length:
        return 1 if pad_end and n_samples > 0 else 0
    if pad_end:
        return 1 + -(-(n_samples - frame_length) // frame_shift)
    return 1 + (n_samples - frame_length) // frame_shift


def frame_signal(signal: np.ndarray, frame_length: int, frame_shift: int, *, pad_end: bool = False) -> np.ndarray:
    """Overlapping frames of a 1-D signal, shape ``(n_frames, frame_length)``.

    Without ``pad_end`` this is a read-only strided view of ``signal`` (no copy). With ``pad_end`` the signal is
    first zero-padded so that the last frame is full (a copy).

    Examples
    --------
    >>> frame_signal(np.arange(6.0), 3, 2)
    array([[0., 1., 2.],
           [2., 3., 4.]])
    >>> frame_signal(np.arange(6.0), 3, 2, pad_end=True)[-1]
    array([4., 5., 0.])
    """
    if frame_length < 1 or frame_shift < 1:
        raise ParameterError(f"frame_length and frame_shift must be >= 1, got {frame_length}, {frame_shift}")
    signal = np.asarray(signal)
    n_frames = frame_count(len(signal), frame_length, frame_shift, pad_end=pad_end)
    if n_frames == 0:
        raise ParameterError(f"a signal of {len(signal)} samples is shorter than one frame ({frame_length})")
    needed = (n_frames - 1) * frame_shift + frame_length
    if needed > len(signal):
        signal = np.concatenate([signal, np.zeros(needed - len(signal), dtype=signal.dtype)])
    return sliding_window_view(signal[:needed], frame_length)[::frame_shift]


def analysis_window(name: str, length: int, dtype=np.float64) -> np.ndarray:
    """A symmetric analysis window (read-only, cached).

    ``hamming`` and ``hann`` are :func:`numpy.hamming` / :func:`numpy.hanning`; ``povey`` is Kaldi's
    ``hann ** 0.85``; ``rect`` is all ones.

    Examples
    --------
    >>> analysis_window("hamming", 5).round(2)
    array([0.08, 0.54, 1.  , 0.54, 0.08])
    """
    if name not in WINDOWS:
        raise ParameterError(f"window must be one of {WINDOWS}, got {name!r}")
    return _window(name, int(length), np.dtype(dtype).name)


@functools.lru_cache(maxsize=32)
def _window(name: str, length: int, dtype_name: str) -> np.ndarray:
    if name == "hamming":
        win = np.hamming(length)
    elif name == "hann":
        win = np.hanning(length)
    elif name == "povey":
        win = np.hanning(length) ** 0.85
    else:
        win = np.ones(length)
    win = win.astype(dtype_name)
    win.flags.writeable = False
    return win


def frame_log_energy(frames: np.ndarray) -> np.ndarray:
    """Natural log of each frame's energy ``sum(x ** 2)``, floored at :data:`LOG_FLOOR` (never ``-inf``).

    Examples
    --------
    >>> frame_log_energy(np.array([[1.0, 1.0], [0.0, 0.0]])).round(3)
    array([  0.693, -23.026])
    """
    energy = np.einsum("ij,ij->i", frames, frames)
    return np.log(np.maximum(energy, LOG_FLOOR))
