"""RASTA filtering of log-spectral (or cepstral) trajectories.

Hermansky & Morgan, "RASTA processing of speech", IEEE Trans. Speech and Audio Processing 2(4), 1994: each
log-energy trajectory (one per filterbank channel, sampled at the frame rate) goes through the band-pass filter

    H(z) = 0.1 * (2 + z^-1 - z^-3 - 2 z^-4) / (1 - 0.98 z^-1)

(up to a pure delay of 4 frames, which we remove by centring the FIR part). Its zeros at DC and at the frame
Nyquist frequency remove constant channel offsets (a fixed microphone or room colours every frame's log
spectrum by the same amount) and frame-to-frame jitter; the pole keeps the modulation frequencies of speech
(roughly 1 to 12 Hz at 100 frames/s).
"""

from __future__ import annotations

import numpy as np

from speakerid._utils.lazy import lazy_import
from speakerid.exceptions import ParameterError

scipy_signal = lazy_import("scipy.signal")

__all__ = ["rasta_filter", "rasta_response", "RASTA_NUMERATOR", "RASTA_POLE"]

#: FIR part of the RASTA filter, taps for frames ``t + 2, t + 1, t, t - 1, t - 2`` (a scaled regression slope).
RASTA_NUMERATOR = np.array([0.2, 0.1, 0.0, -0.1, -0.2])
#: Pole of the integrating IIR part.
RASTA_POLE = 0.98


def rasta_response(frequencies_hz, frame_rate_hz: float = 100.0) -> np.ndarray:
    """Magnitude response ``|H(f)|`` of the RASTA filter at modulation frequencies ``frequencies_hz``.

    Zero at 0 Hz and at the frame Nyquist frequency ``frame_rate_hz / 2``; in between a band-pass with a gain
    close to 1 (above 0.95 from about 1 to 6 Hz at 100 frames/s, peaking near 2 Hz) that falls to 0.6 at 15 Hz.

    Examples
    --------
    >>> r = rasta_response([0.0, 4.0, 50.0], frame_rate_hz=100.0)
    >>> float(r[0]) < 1e-12, float(r[1]) > 0.95, float(r[2]) < 1e-12
    (True, True, True)
    """
    frequencies_hz = np.asarray(frequencies_hz, dtype=np.float64)
    if frame_rate_hz <= 0:
        raise ParameterError(f"frame_rate_hz must be positive, got {frame_rate_hz}")
    omega = 2 * np.pi * frequencies_hz / float(frame_rate_hz)
    _, response = scipy_signal.freqz(RASTA_NUMERATOR, [1.0, -RASTA_POLE], worN=np.atleast_1d(omega))
    return np.abs(response).reshape(frequencies_hz.shape)


def rasta_filter(trajectories) -> np.ndarray:
    """RASTA-filter each column of ``trajectories`` (frames x channels) along time.

    The FIR part is applied centred on each frame, repeating the first and last frame at the edges (as
    :func:`~speakerid.features.mfcc.delta` does), so a constant trajectory gives exactly 0; the IIR part starts
    from rest. The output has as many frames as the input and the input's float dtype.

    Examples
    --------
    >>> rasta_filter(np.full((6, 1), 5.0))[:, 0]       # a constant channel offset is removed
    array([0., 0., 0., 0., 0., 0.])
    >>> np.round(rasta_filter(np.arange(6.0)[:, None])[:3, 0], 3)   # a ramp: slope 1 integrated by the pole
    array([0.5  , 1.29 , 2.264])
    """
    trajectories = np.asarray(trajectories)
    if trajectories.ndim != 2 or trajectories.shape[0] == 0:
        raise ParameterError(f"rasta_filter expects a non-empty frames x channels array, got shape "
                             f"{trajectories.shape}")
    dtype = trajectories.dtype if np.issubdtype(trajectories.dtype, np.floating) else np.float64
    return _rasta_filter(trajectories.astype(np.float64, copy=False)).astype(dtype, copy=False)


def _rasta_filter(values: np.ndarray) -> np.ndarray:
    n_frames = values.shape[0]
    half = len(RASTA_NUMERATOR) // 2
    padded = np.concatenate([np.repeat(values[:1], half, axis=0), values, np.repeat(values[-1:], half, axis=0)])
    fir = np.zeros_like(values)
    for k, tap in enumerate(RASTA_NUMERATOR):  # tap k multiplies frame t + half - k
        if tap:
            fir += tap * padded[2 * half - k: 2 * half - k + n_frames]
    return scipy_signal.lfilter([1.0], [1.0, -RASTA_POLE], fir, axis=0)
