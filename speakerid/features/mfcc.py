"""Mel filterbanks, the power spectrum of frames, log-mel energies, cepstra (DCT + lifter) and deltas.

The heavy path is one ``rfft`` per block of frames and one matrix product: the squared real and imaginary parts
of the spectrum are multiplied by a filterbank whose rows are duplicated, so ``|X|^2`` is never formed on its own.
Filterbank and DCT matrices are built once per setting (``functools.lru_cache``).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import scipy.fft

from speakerid.exceptions import ParameterError

__all__ = [
    "hz_to_mel",
    "mel_to_hz",
    "mel_filterbank",
    "dct_matrix",
    "lifter_weights",
    "power_spectrum",
    "filterbank_energies",
    "delta",
]

#: Frames per FFT block: big enough to amortise the call, small enough for the block to stay in cache.
BLOCK_FRAMES = 4096
#: Threads used by :func:`scipy.fft.rfft` on blocks of at least this many frames (short clips use one).
_THREADED_MIN_FRAMES = 1024
_FFT_WORKERS = max(1, min(4, os.cpu_count() or 1))


def hz_to_mel(hz):
    """HTK mel scale, ``2595 * log10(1 + hz / 700)``.

    Examples
    --------
    >>> round(float(hz_to_mel(1000.0)), 1)   # 1000 Hz is about 1000 mel
    1000.0
    """
    return 2595 * np.log10(1 + np.asarray(hz) / 700.0)


def mel_to_hz(mel):
    """Inverse of :func:`hz_to_mel`.

    Examples
    --------
    >>> round(float(mel_to_hz(hz_to_mel(440.0))), 6)
    440.0
    """
    return 700 * (10 ** (np.asarray(mel) / 2595.0) - 1)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, low_freq_hz: float = 0.0,
                   high_freq_hz: float | None = None, *, psf_compat: bool = False) -> np.ndarray:
    """Triangular mel filters, shape ``(n_mels, n_fft // 2 + 1)`` (read-only, cached), peak height 1.

    The filter edges are ``n_mels + 2`` points equally spaced on the mel scale from ``low_freq_hz`` to
    ``high_freq_hz`` (Nyquist when ``None``). By default each triangle is evaluated at the exact FFT bin
    frequencies ``k * sample_rate / n_fft``. With ``psf_compat`` the edges are first floored to integer bins
    (``floor((n_fft + 1) * f / sample_rate)``), as python_speech_features does.

    Raises
    ------
    ParameterError
        A filter covers no FFT bin (too many mel filters for the FFT size); not checked with ``psf_compat``.

    Examples
    --------
    >>> fb = mel_filterbank(16000, 512, 26)
    >>> fb.shape, float(fb.max()) <= 1.0
    ((26, 257), True)
    """
    high = sample_rate / 2 if high_freq_hz is None else high_freq_hz
    return _mel_filterbank(int(sample_rate), int(n_fft), int(n_mels), float(low_freq_hz), float(high),
                           bool(psf_compat))


@functools.lru_cache(maxsize=32)
def _mel_filterbank(sample_rate, n_fft, n_mels, low_hz, high_hz, psf_compat):
    mel_points = np.linspace(hz_to_mel(low_hz), hz_to_mel(high_hz), n_mels + 2)
    if psf_compat:
        edges = np.floor((n_fft + 1) * mel_to_hz(mel_points) / sample_rate)
        axis = np.arange(n_fft // 2 + 1, dtype=np.float64)
    else:
        edges = mel_to_hz(mel_points)
        axis = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = np.where((axis >= left) & (axis < centre), (axis - left) / (centre - left), 0.0)
        falling = np.where((axis >= centre) & (axis < right), (right - axis) / (right - centre), 0.0)
    bank = rising + falling
    if not psf_compat:
        empty = np.flatnonzero(bank.max(axis=1) <= 0)
        if len(empty):
            raise ParameterError(f"mel filter(s) {empty.tolist()} cover no FFT bin: {n_mels} mel filters are too "
                                 f"many for n_fft={n_fft} at {sample_rate} Hz (lower n_mels or raise n_fft)")
    bank.flags.writeable = False
    return bank


def dct_matrix(n_in: int, n_out: int, lifter: float = 0.0) -> np.ndarray:
    """Orthonormal DCT-II as a matrix ``(n_in, n_out)``, columns scaled by :func:`lifter_weights` (cached).

    ``x @ dct_matrix(n, k)`` equals ``scipy.fft.dct(x, type=2, norm="ortho")[..., :k]``.

    Examples
    --------
    >>> x = np.arange(4.0)
    >>> bool(np.allclose(x @ dct_matrix(4, 4), scipy.fft.dct(x, norm="ortho")))
    True
    """
    if not 1 <= n_out <= n_in:
        raise ParameterError(f"need 1 <= n_out <= n_in, got n_in={n_in}, n_out={n_out}")
    return _dct_matrix(int(n_in), int(n_out), float(lifter))


@functools.lru_cache(maxsize=32)
def _dct_matrix(n_in, n_out, lifter):
    n = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[:, 0] /= np.sqrt(2.0)
    basis = basis * lifter_weights(n_out, lifter)
    basis.flags.writeable = False
    return basis


def lifter_weights(n_ceps: int, lifter: float) -> np.ndarray:
    """Sinusoidal cepstral lifter ``1 + (L / 2) * sin(pi * n / L)``; all ones when ``lifter <= 0``.

    Examples
    --------
    >>> lifter_weights(3, 0.0)
    array([1., 1., 1.])
    """
    n = np.arange(n_ceps)
    if lifter <= 0:
        return np.ones(n_ceps)
    return 1 + (lifter / 2.0) * np.sin(np.pi * n / lifter)


def _spectrum_blocks(frames, window, n_fft, dtype):
    """Yield ``(start, stop, spectrum)`` per block: windowed, zero-padded frames through one ``rfft``."""
    n_frames, frame_length = frames.shape
    block = min(BLOCK_FRAMES, n_frames)
    buffer = np.zeros((block, n_fft), dtype=dtype)
    workers = _FFT_WORKERS if block >= _THREADED_MIN_FRAMES else 1
    for start in range(0, n_frames, block):
        stop = min(start + block, n_frames)
        rows = buffer[: stop - start]
        if window is None:
            rows[:, :frame_length] = frames[start:stop]
        else:
            np.multiply(frames[start:stop], window, out=rows[:, :frame_length])
        yield start, stop, scipy.fft.rfft(rows, n=n_fft, axis=1, workers=workers)


def power_spectrum(frames: np.ndarray, n_fft: int, window: np.ndarray | None = None, *,
                   dtype=np.float32) -> np.ndarray:
    """``|rfft(frames * window, n_fft)|^2 / n_fft`` per frame, shape ``(n_frames, n_fft // 2 + 1)``.

    Examples
    --------
    >>> power_spectrum(np.ones((1, 4)), 4, dtype=np.float64)
    array([[4., 0., 0.]])
    """
    frames = np.asarray(frames)
    out = np.empty((frames.shape[0], n_fft // 2 + 1), dtype=dtype)
    for start, stop, spec in _spectrum_blocks(frames, window, n_fft, dtype):
        interleaved = spec.view(dtype).reshape(stop - start, -1)
        np.square(interleaved, out=interleaved)
        np.add(interleaved[:, 0::2], interleaved[:, 1::2], out=out[start:stop])
    out *= 1.0 / n_fft
    return out


def filterbank_energies(frames: np.ndarray, n_fft: int, filterbank: np.ndarray, window: np.ndarray | None = None,
                        *, dtype=np.float32, with_energy: bool = False):
    """Mel (or any) filterbank energies of the power spectrum ``|X|^2 / n_fft``, shape ``(n_frames, n_filters)``.

    With ``with_energy`` also return the spectral energy of each frame (the sum of its power spectrum over the
    ``n_fft // 2 + 1`` bins, python_speech_features' frame energy) from the same matrix product.

    Examples
    --------
    >>> fb = mel_filterbank(16000, 512, 26)
    >>> filterbank_energies(np.random.default_rng(0).normal(size=(3, 400)), 512, fb).shape
    (3, 26)
    """
    frames = np.asarray(frames)
    fused = _fused_bank(filterbank, n_fft, with_energy, dtype)
    out = np.empty((frames.shape[0], fused.shape[1]), dtype=dtype)
    for start, stop, spec in _spectrum_blocks(frames, window, n_fft, dtype):
        # [re0, im0, re1, im1, ...]: squaring in place and a filterbank with each row doubled sums re^2 + im^2.
        interleaved = spec.view(dtype).reshape(stop - start, -1)
        np.square(interleaved, out=interleaved)
        np.matmul(interleaved, fused, out=out[start:stop])
    if with_energy:
        return out[:, :-1], out[:, -1].copy()
    return out


def _fused_bank(filterbank, n_fft, with_energy, dtype):
    columns = np.asarray(filterbank, dtype=np.float64).T / n_fft
    if with_energy:
        columns = np.hstack([columns, np.full((columns.shape[0], 1), 1.0 / n_fft)])
    return np.repeat(columns, 2, axis=0).astype(dtype)


def delta(features: np.ndarray, window: int = 2) -> np.ndarray:
    """Regression deltas over ``+-window`` frames: ``d[t] = sum_n n (c[t+n] - c[t-n]) / (2 sum_n n^2)``.

    The edges repeat the first and last frame (as HTK and python_speech_features do), so the output has as many
    frames as the input. Computed as a handful of whole-array shifts, not a loop over frames.

    Examples
    --------
    >>> ramp = np.arange(8.0)[:, None]
    >>> delta(ramp, 2)[2:-2, 0]
    array([1., 1., 1., 1.])
    """
    features = np.asarray(features)
    if features.ndim != 2:
        raise ParameterError(f"delta expects frames x dims, got shape {features.shape}")
    if window < 1:
        raise ParameterError(f"delta window must be >= 1, got {window}")
    n_frames = features.shape[0]
    padded = np.concatenate([np.repeat(features[:1], window, axis=0), features,
                             np.repeat(features[-1:], window, axis=0)])
    out = np.zeros_like(features)
    for n in range(1, window + 1):
        out += n * (padded[window + n: window + n + n_frames] - padded[window - n: window - n + n_frames])
    out *= 1.0 / (2 * sum(n * n for n in range(1, window + 1)))
    return out
