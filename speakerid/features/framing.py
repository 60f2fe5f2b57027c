"""Cutting a waveform into overlapping analysis frames: DC and rumble removal, pre-emphasis, strided framing,
windows, frame energy, and the level-relative log floor every log-energy uses.

Framing returns a read-only strided *view* of the signal (no copy), so a 10-minute file costs nothing to frame;
the copy happens once, when the window is applied in :mod:`speakerid.features.mfcc`.
"""

from __future__ import annotations

import decimal
import functools

import numpy as np
import scipy.fft
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
    "remove_dc_offset",
    "floored_log",
    "RELATIVE_FLOOR",
    "DC_CUTOFF_HZ",
]

#: Analysis windows :func:`analysis_window` knows.
WINDOWS = ("hamming", "hann", "povey", "rect")

#: Energies are floored at this fraction (-100 dB) of the utterance's largest before the log, so digital silence
#: gives a finite log-energy and a gain applied to the recording shifts every log-energy by the same amount (the
#: features after CMVN do not depend on the level). An absolute floor would clip the quiet frames of a quiet
#: recording and not those of a loud one.
RELATIVE_FLOOR = 1e-10
#: Cut-off of the sub-audio high-pass that removes a DC offset and slow drift or rumble (Hz). Voiced speech starts
#: near 60-80 Hz (a low male F0); at 80 Hz the 4th-order zero-phase filter changes the amplitude by under 0.01 %.
DC_CUTOFF_HZ = 20.0
_DC_ORDER = 4
#: Signal kept on either side of each filtered block (s), and the block length (samples), of the DC high-pass.
_DC_MARGIN_S = 0.5
_DC_BLOCK = 1 << 20


def remove_dc_offset(signal: np.ndarray, sample_rate: int, cutoff_hz: float = DC_CUTOFF_HZ) -> np.ndarray:
    """Remove a DC offset and sub-audio drift (a slow ramp, 5 Hz rumble) with a zero-phase Butterworth high-pass.

    Frame energy, the VAD and c0 measure the sound, not the position of the membrane: a cheap USB microphone's
    2 % offset otherwise dominates the energy of every quiet frame. Kaldi removes the mean of each frame
    (``--remove-dc-offset``, on by default); a 4th-order Butterworth high-pass at ``cutoff_hz`` run forwards and
    backwards also removes drift that varies within a frame, with no phase shift (-3 dB per pass at the cut-off,
    -96 dB at a quarter of it, under 0.01 % at 80 Hz).

    The forward-backward filter's response is the squared magnitude of the digital Butterworth filter (bilinear
    transform with pre-warping, Oppenheim & Schafer, *Discrete-Time Signal Processing*, 3rd ed., sec. 7.3):
    ``|H(w)|^2 = 1 / (1 + (tan(w_c / 2) / tan(w / 2)) ** (2 * order))``, the response
    :func:`scipy.signal.butter` + :func:`scipy.signal.sosfiltfilt` give. It is applied as that real, zero-phase gain
    on :func:`scipy.fft.rfft` blocks of about a minute, each with half a second of signal on either side (mirrored
    at the recording's ends, where the filter's impulse response has decayed by over 200 dB), so memory stays
    bounded on an hour-long file and nothing from :mod:`scipy.signal` (0.6 s to import) is loaded by a command
    that scores one clip. Computed in float32 for float32 input (as the features are), else in float64; the
    result has that dtype.

    Parameters
    ----------
    signal : numpy.ndarray, shape (n_samples,)
    sample_rate : int
        Hz.
    cutoff_hz : float
        -3 dB point of each pass (Hz), below the lowest voice fundamental.

    Returns
    -------
    numpy.ndarray, shape (n_samples,)

    Raises
    ------
    ParameterError
        When ``cutoff_hz`` is not between 0 and the Nyquist frequency.

    Examples
    --------
    >>> t = np.arange(16000) / 16000
    >>> tone = np.sin(2 * np.pi * 200 * t)
    >>> out = remove_dc_offset(tone + 0.1, 16000)
    >>> bool(np.abs(out - tone)[1600:-1600].max() < 1e-3)     # after the edges' 0.1 s transient
    True
    """
    signal = np.asarray(signal)
    if cutoff_hz <= 0 or cutoff_hz >= sample_rate / 2:
        raise ParameterError(f"cutoff_hz must be in (0, {sample_rate / 2:g}) Hz, got {cutoff_hz}")
    dtype = np.float32 if signal.dtype == np.float32 else np.float64
    x = signal.astype(dtype, copy=False)
    out = np.empty(len(x), dtype)
    n = len(x)
    margin = int(np.ceil(_DC_MARGIN_S * sample_rate))
    hop = max(_DC_BLOCK - 2 * margin, margin)
    for start in range(0, n, hop):
        stop = min(start + hop, n)
        lo, hi = max(start - margin, 0), min(stop + margin, n)
        # mirror (even) extension where the block runs past the recording's ends: no step there
        piece = np.pad(x[lo:hi], (margin - (start - lo), margin - (hi - stop)), mode="reflect") if n > 1 \
            else np.full(stop - start + 2 * margin, x[0])
        size = _fast_length(len(piece))
        spectrum = scipy.fft.rfft(piece, size)
        spectrum *= _zero_phase_gain(size, float(sample_rate), float(cutoff_hz), np.dtype(dtype).name)
        out[start:stop] = scipy.fft.irfft(spectrum, size)[margin:margin + stop - start]
    return out


@functools.lru_cache(maxsize=16)
def _zero_phase_gain(size: int, sample_rate: float, cutoff_hz: float, dtype_name: str) -> np.ndarray:
    """``|H|^2`` of the order-:data:`_DC_ORDER` digital Butterworth high-pass at the ``rfft`` bins of ``size``."""
    half_angle = np.pi * np.arange(size // 2 + 1) / size            # w / 2 of each bin
    with np.errstate(divide="ignore"):
        ratio = np.tan(np.pi * cutoff_hz / sample_rate) / np.tan(half_angle)
    gain = (1.0 / (1.0 + ratio ** (2 * _DC_ORDER))).astype(dtype_name)
    gain.flags.writeable = False
    return gain


def _fast_length(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n``: a length the FFT handles at full speed."""
    best = 1 << max(n - 1, 0).bit_length()
    power5 = 1
    while power5 < best:
        odd = power5
        while odd < best:  # odd * 2^a with 2^a >= ceil(n / odd)
            best = min(best, odd << (-(-n // odd) - 1).bit_length())
            odd *= 3
        power5 *= 5
    return best


def floored_log(values: np.ndarray, reference: float | None = None) -> np.ndarray:
    """``log(max(values, RELATIVE_FLOOR * reference))``; ``reference`` defaults to ``values.max()``.

    The floor follows the level of the recording (see :data:`RELATIVE_FLOOR`); an all-zero input gets the
    smallest normal float of its dtype as floor, so the result is always finite. Same dtype as ``values``.

    Examples
    --------
    >>> floored_log(np.array([1.0, 0.0])).round(3)
    array([  0.   , -23.026])
    >>> floored_log(np.array([100.0, 0.0])).round(3)           # 100 times the energy: the same shape
    array([  4.605, -18.421])
    """
    values = np.asarray(values)
    if reference is None:
        reference = float(values.max()) if values.size else 0.0
    floor = max(RELATIVE_FLOOR * float(reference), float(np.finfo(values.dtype).tiny))
    return np.log(np.maximum(values, values.dtype.type(floor)))


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
    """Natural log of each frame's energy ``sum(x ** 2)``, floored :data:`RELATIVE_FLOOR` (100 dB) below the
    loudest frame (never ``-inf``, see :func:`floored_log`).

    Examples
    --------
    >>> frame_log_energy(np.array([[1.0, 1.0], [0.0, 0.0]])).round(3)
    array([  0.693, -22.333])
    """
    return floored_log(np.einsum("ij,ij->i", frames, frames))
