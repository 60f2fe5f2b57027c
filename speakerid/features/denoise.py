"""Noise reduction on the short-time power spectrum, before the mel filterbank.

The noise power spectrum is estimated per utterance as the mean spectrum of its quietest frames (the
``noise_fraction`` of frames with the lowest log-energy), i.e. assuming stationary noise and some pauses.

* ``"specsub"`` -- power spectral subtraction (Boll 1979; Berouti, Schwartz & Makhoul 1979):
  ``max(P - alpha * N, beta * P)`` with over-subtraction ``alpha`` and spectral floor ``beta``.
* ``"wiener"`` -- a Wiener gain ``G = xi / (1 + xi)`` with the a-priori SNR estimated by maximum likelihood,
  ``xi = max(P / N - 1, 0)``, floored at ``gain_floor``; the power becomes ``G**2 * P``.
"""

from __future__ import annotations

import numpy as np

from speakerid.exceptions import ParameterError

__all__ = ["estimate_noise", "denoise_power", "DENOISE_METHODS"]

DENOISE_METHODS = ("specsub", "wiener")
#: Defaults used by the front end (FeatureConfig ``denoise``).
NOISE_FRACTION = 0.1
MIN_NOISE_FRAMES = 5
OVER_SUBTRACTION = 2.0
SPECTRAL_FLOOR = 0.01
GAIN_FLOOR = 0.1


def estimate_noise(power, log_energy, noise_fraction: float = NOISE_FRACTION) -> np.ndarray:
    """Mean power spectrum of the quietest ``noise_fraction`` of frames (at least 5, at most all).

    Examples
    --------
    >>> power = np.array([[1.0, 2.0], [9.0, 9.0], [3.0, 4.0]])
    >>> estimate_noise(power, np.log(power.sum(axis=1)), 0.1)   # fewer than 5 frames: all of them
    array([4.33333333, 5.        ])
    """
    power = np.asarray(power)
    log_energy = np.asarray(log_energy)
    if power.ndim != 2 or log_energy.shape != (power.shape[0],) or power.shape[0] == 0:
        raise ParameterError(f"estimate_noise needs frames x bins powers and one energy per frame, got shapes "
                             f"{power.shape} and {log_energy.shape}")
    if not 0 < noise_fraction <= 1:
        raise ParameterError(f"noise_fraction must be in (0, 1], got {noise_fraction}")
    count = min(power.shape[0], max(MIN_NOISE_FRAMES, int(round(noise_fraction * power.shape[0]))))
    quietest = np.argsort(log_energy, kind="stable")[:count]
    return power[quietest].mean(axis=0, dtype=np.float64)


def denoise_power(power, log_energy, method: str = "specsub", *, noise_fraction: float = NOISE_FRACTION,
                  over_subtraction: float = OVER_SUBTRACTION, spectral_floor: float = SPECTRAL_FLOOR,
                  gain_floor: float = GAIN_FLOOR) -> np.ndarray:
    """A denoised copy of the power spectrum ``power`` (frames x bins), same shape and dtype.

    Parameters
    ----------
    power : array_like, shape (n_frames, n_bins)
        Short-time power spectrum (e.g. :func:`speakerid.features.mfcc.power_spectrum`).
    log_energy : array_like, shape (n_frames,)
        Frame log-energies; the quietest frames give the noise estimate.
    method : {"specsub", "wiener"}
    noise_fraction : float
        Share of frames used for the noise estimate.
    over_subtraction, spectral_floor : float
        ``alpha`` and ``beta`` of spectral subtraction.
    gain_floor : float
        Lowest Wiener amplitude gain.

    Examples
    --------
    >>> noise = np.ones((10, 3))
    >>> speech = noise.copy(); speech[5:, 1] += 99.0       # a loud bin in the second half
    >>> out = denoise_power(speech, np.log(speech.sum(axis=1)), "specsub")
    >>> float(out[0, 1]), float(out[9, 1]) > 90            # noise-only bins fall to the floor
    (0.01, True)
    """
    if method not in DENOISE_METHODS:
        raise ParameterError(f"method must be one of {DENOISE_METHODS}, got {method!r}")
    power = np.asarray(power)
    noise = estimate_noise(power, log_energy, noise_fraction)
    if method == "specsub":
        cleaned = np.maximum(power - over_subtraction * noise, spectral_floor * power)
    else:
        # the floor follows the level (100 dB below the loudest bin), so the gain does not depend on it
        snr_prior = np.maximum(power / np.maximum(noise, _relative_floor(power)) - 1.0, 0.0)
        gain = np.maximum(snr_prior / (1.0 + snr_prior), gain_floor)
        cleaned = np.square(gain) * power
    return cleaned.astype(power.dtype, copy=False)


def _relative_floor(power: np.ndarray) -> float:
    dtype = power.dtype if power.dtype.kind == "f" else np.dtype(np.float64)
    return max(1e-10 * float(power.max()), float(np.finfo(dtype).tiny))
