"""Data augmentation: additive coloured noise at a chosen signal-to-noise ratio.

Multi-condition training (training background models on clean speech *and* noisy copies of it) is the standard
way to make GMM-UBM, i-vector and PLDA systems hold up on noisy tests. The noise here is generic — white, pink or
brown (power falling as ``1/f**0``, ``1/f``, ``1/f**2``) at a random SNR — and seeded, so an augmented corpus is
reproducible.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> speech = 0.3 * np.sin(np.linspace(0, 400 * np.pi, 16000))
>>> noisy = add_noise(speech, snr_db=10.0, rng=rng, colour="pink")
>>> print(round(snr_of(speech, noisy - speech), 2))
10.0
"""

from __future__ import annotations

import numpy as np

from speakerid.exceptions import ParameterError

COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
#: SNR range (dB) and noise colours of :func:`random_noisy_copy` and :func:`noisy_copies` unless told otherwise.
DEFAULT_SNR_RANGE_DB = (0.0, 20.0)
DEFAULT_COLOURS = ("white", "pink", "brown")


def _check_rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def coloured_noise(n_samples: int, colour: str = "pink", rng=None, sample_rate: int = 16000) -> np.ndarray:
    """Unit-RMS noise whose power spectrum falls as ``1 / f**e`` (e = 0 white, 1 pink, 2 brown).

    Parameters
    ----------
    n_samples : int
    colour : {"white", "pink", "brown"}
    rng : numpy.random.Generator or int, optional
    sample_rate : int
        Only sets where the spectrum's shaping stops (below 20 Hz it is flat).

    Returns
    -------
    numpy.ndarray of float64, shape (n_samples,)
    """
    if colour not in COLOURS:
        raise ParameterError(f"colour must be one of {sorted(COLOURS)}, got {colour!r}")
    n_samples = int(n_samples)
    if n_samples < 1:
        raise ParameterError(f"n_samples must be >= 1, got {n_samples}")
    rng = _check_rng(rng)
    if COLOURS[colour] == 0.0:       # white: a flat spectrum needs no shaping
        noise = rng.standard_normal(n_samples, dtype=np.float32)
    else:
        from scipy import fft  # float32 transforms (numpy's are float64 only): half the time

        # shaped over a 5-smooth length and cut: an FFT of a length with large prime factors is ~10x slower
        n_fft = _fast_length(n_samples)
        spectrum = fft.rfft(rng.standard_normal(n_fft, dtype=np.float32))
        freqs = np.maximum(np.fft.rfftfreq(n_fft, 1.0 / sample_rate), 20.0)
        spectrum *= (freqs ** (-COLOURS[colour] / 2.0)).astype(np.float32)
        noise = fft.irfft(spectrum, n=n_fft)[:n_samples]
    rms = float(np.sqrt(np.mean(np.square(noise, dtype=np.float64))))
    return (noise / (rms or 1.0)).astype(np.float64)


def _fast_length(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n``: an FFT length pocketfft handles fast.

    >>> _fast_length(250080), _fast_length(1), _fast_length(17)
    (253125, 1, 18)
    """
    best, p5 = 1 << max(0, (n - 1).bit_length()), 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def snr_of(signal: np.ndarray, noise: np.ndarray) -> float:
    """Signal-to-noise ratio in dB of two equal-length arrays (powers averaged over the whole array)."""
    p_signal = float(np.mean(np.square(signal, dtype=np.float64)))
    p_noise = float(np.mean(np.square(noise, dtype=np.float64)))
    if p_noise == 0.0:
        return float("inf")
    return float(10.0 * np.log10(max(p_signal, 1e-30) / p_noise))


def add_noise(signal: np.ndarray, snr_db: float, rng=None, colour: str = "pink",
              sample_rate: int = 16000) -> np.ndarray:
    """``signal`` plus coloured noise scaled to ``snr_db`` (power over the whole signal), as float32.

    The result is rescaled only if it would clip beyond [-1, 1].
    """
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 1 or signal.size == 0:
        raise ParameterError("signal must be a non-empty 1-D array")
    if not np.isfinite(snr_db):
        raise ParameterError(f"snr_db must be finite, got {snr_db}")
    noise = coloured_noise(signal.size, colour, rng, sample_rate)
    p_signal = float(np.mean(signal ** 2))
    noisy = signal + noise * np.sqrt(p_signal / 10.0 ** (snr_db / 10.0))
    peak = float(np.max(np.abs(noisy)))
    if peak > 1.0:
        noisy /= peak
    return noisy.astype(np.float32)


def random_noisy_copy(signal: np.ndarray, rng=None, snr_range=DEFAULT_SNR_RANGE_DB,
                      colours=DEFAULT_COLOURS, sample_rate: int = 16000) -> np.ndarray:
    """A noisy copy of ``signal``: a colour drawn from ``colours`` and an SNR drawn uniformly from ``snr_range``."""
    rng = _check_rng(rng)
    low, high = (float(v) for v in snr_range)
    if not low <= high:
        raise ParameterError(f"snr_range must be (low, high) with low <= high, got {snr_range}")
    colour = colours[int(rng.integers(len(colours)))]
    return add_noise(signal, float(rng.uniform(low, high)), rng, colour, sample_rate)


def check_n_augment(n_augment) -> int:
    """``n_augment`` (noisy copies per file) as a non-negative int; :class:`ParameterError` if it is not one."""
    if (isinstance(n_augment, (bool, np.bool_)) or not isinstance(n_augment, (int, np.integer))
            or int(n_augment) < 0):
        raise ParameterError(f"n_augment must be a non-negative integer (noisy copies per file), got {n_augment!r}")
    return int(n_augment)


def noisy_copies(signal: np.ndarray, n_augment: int, random_state, sample_rate: int = 16000) -> list:
    """``n_augment`` noisy copies of ``signal`` from :func:`random_noisy_copy`'s defaults, reproducible.

    ``random_state`` is anything :func:`numpy.random.default_rng` accepts (e.g. ``[random_state, file_index]``,
    the seeding rule of :mod:`speakerid.features.pipeline`), so each file gets its own noise whatever the order
    or the parallelism of the processing.

    >>> speech = np.sin(np.linspace(0, 100, 800))
    >>> a, b = noisy_copies(speech, 2, random_state=[0, 7])
    >>> bool(np.array_equal(a, noisy_copies(speech, 2, random_state=[0, 7])[0])), bool(np.array_equal(a, b))
    (True, False)
    """
    rng = np.random.default_rng(random_state)
    return [random_noisy_copy(signal, rng, sample_rate=sample_rate) for _ in range(check_n_augment(n_augment))]


def augment_header(n_augment: int, random_state) -> dict:
    """What a model header records about noise augmentation (the on-disk keys ``copies`` and ``seed``)."""
    return {"copies": int(n_augment), "seed": random_state, "snr_range_db": list(DEFAULT_SNR_RANGE_DB),
            "colours": list(DEFAULT_COLOURS)}
