"""Frame-level spectral shape features: zero-crossing rate, spectral roll-off, spectral flux and chroma.

Each takes frames (time domain) or a power spectrum ``(n_frames, n_fft // 2 + 1)`` and returns one value
(or 12, for chroma) per frame. :func:`speakerid.features.extract` feeds them the spectrum of the windowed signal
*without* pre-emphasis, so the spectral shape is the signal's own.
"""

from __future__ import annotations

import functools

import numpy as np

from speakerid.exceptions import ParameterError

__all__ = [
    "zero_crossing_rate",
    "spectral_rolloff",
    "spectral_flux",
    "chroma",
    "chroma_filterbank",
    "PITCH_CLASSES",
]

#: Pitch-class order of :func:`chroma` columns (C = 0, A = 9).
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def zero_crossing_rate(frames: np.ndarray) -> np.ndarray:
    """Fraction of adjacent sample pairs in each frame whose signs differ (zero counts as positive).

    A sine of frequency ``f`` sampled at ``sr`` crosses zero ``2 f`` times a second, so its rate is about
    ``2 * f / sr``.

    Examples
    --------
    >>> zero_crossing_rate(np.array([[1.0, -1.0, 1.0, -1.0, 1.0]]))
    array([1.])
    """
    negative = np.signbit(frames)
    crossings = np.count_nonzero(negative[:, 1:] != negative[:, :-1], axis=1)
    return crossings / max(frames.shape[1] - 1, 1)


def spectral_rolloff(power: np.ndarray, sample_rate: int, n_fft: int, fraction: float = 0.85) -> np.ndarray:
    """Frequency (Hz) of the lowest bin at which the cumulative power reaches ``fraction`` of the frame's total.

    A silent frame (no power) gives 0 Hz.

    Examples
    --------
    >>> flat = np.ones((1, 257))
    >>> float(spectral_rolloff(flat, 16000, 512)[0])  # 85 % of the bins lie below bin 218
    6812.5
    """
    if not 0 < fraction <= 1:
        raise ParameterError(f"roll-off fraction must be in (0, 1], got {fraction}")
    cumulative = np.cumsum(power, axis=1, dtype=np.float64)
    reached = cumulative >= fraction * cumulative[:, -1:]
    return np.argmax(reached, axis=1) * (sample_rate / n_fft)


def spectral_flux(power: np.ndarray) -> np.ndarray:
    """Euclidean distance between the magnitude spectra of consecutive frames; the first frame gets 0.

    It is large where the spectrum changes (an onset) and near 0 where the sound is steady.

    Examples
    --------
    >>> spectral_flux(np.array([[0.0, 0.0], [9.0, 16.0], [9.0, 16.0]]))
    array([0., 5., 0.])
    """
    magnitude = np.sqrt(power)
    flux = np.zeros(len(magnitude), dtype=np.result_type(magnitude.dtype, np.float32))
    if len(magnitude) > 1:
        flux[1:] = np.linalg.norm(np.diff(magnitude, axis=0), axis=1)
    return flux


def chroma_filterbank(sample_rate: int, n_fft: int, low_freq_hz: float = 55.0,
                      high_freq_hz: float = 5000.0) -> np.ndarray:
    """Map of FFT bins to the 12 pitch classes, shape ``(n_fft // 2 + 1, 12)`` (read-only, cached).

    A bin at frequency ``f`` sits ``p = 12 * log2(f / 440) + 9`` semitones above C; its power is shared between
    the two nearest pitch classes, linearly in the distance. Bins below ``max(low_freq_hz, 2 bin widths)`` or
    above ``min(high_freq_hz, Nyquist)`` are ignored: there a bin spans several semitones or holds no pitch.
    A bin is narrower than a semitone only above about ``17 * sample_rate / n_fft`` (530 Hz for n_fft 512 at
    16 kHz); below that a pure tone may land on a neighbouring class -- raise ``n_fft`` for finer pitch.

    Examples
    --------
    >>> bank = chroma_filterbank(16000, 512)
    >>> PITCH_CLASSES[int(np.argmax(bank[round(440 * 512 / 16000)]))]
    'A'
    """
    return _chroma_filterbank(int(sample_rate), int(n_fft), float(low_freq_hz), float(high_freq_hz))


@functools.lru_cache(maxsize=16)
def _chroma_filterbank(sample_rate, n_fft, low_hz, high_hz):
    freqs = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)
    low = max(low_hz, 2 * sample_rate / n_fft)
    used = (freqs >= low) & (freqs <= min(high_hz, sample_rate / 2))
    bank = np.zeros((len(freqs), 12))
    pitch = 12 * np.log2(freqs[used] / 440.0) + 9  # fractional semitones above C
    below = np.floor(pitch)
    share_above = pitch - below
    rows = np.flatnonzero(used)
    np.add.at(bank, (rows, below.astype(int) % 12), 1 - share_above)
    np.add.at(bank, (rows, (below.astype(int) + 1) % 12), share_above)
    bank.flags.writeable = False
    return bank


def chroma(power: np.ndarray, sample_rate: int, n_fft: int) -> np.ndarray:
    """Chroma: the power in each of the 12 pitch classes (see :data:`PITCH_CLASSES`), scaled so each frame's
    largest class is 1 (a silent frame stays all zero).

    Examples
    --------
    >>> sr, n_fft = 16000, 512
    >>> t = np.arange(n_fft) / sr
    >>> spectrum = np.abs(np.fft.rfft(np.hanning(n_fft) * np.sin(2 * np.pi * 440 * t))) ** 2
    >>> PITCH_CLASSES[int(np.argmax(chroma(spectrum[None, :], sr, n_fft)))]
    'A'
    """
    bank = chroma_filterbank(sample_rate, n_fft).astype(power.dtype, copy=False)
    classes = power @ bank
    peak = classes.max(axis=1, keepdims=True)
    return classes / np.where(peak > 0, peak, 1)
