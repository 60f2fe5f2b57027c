"""One recording session: clean speech through a random channel, plus background noise, at a random level.

Each utterance of the corpus is its own session, so two recordings of one speaker differ in what is said, in the
microphone/line colouring (band limits, EQ bumps, tilt), in the noise (colour and SNR) and in loudness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfilt

from speakerid.data.synth.profile import SpeakerProfile
from speakerid.data.synth.speech import synthesize_speech
from speakerid.exceptions import ParameterError

__all__ = ["ChannelSettings", "Utterance", "random_channel", "synthesize_session", "synthesize_utterance",
           "MIN_SAMPLE_RATE", "MAX_SAMPLE_RATE", "MIN_DURATION_S", "MAX_DURATION_S"]

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 48000
MIN_DURATION_S, MAX_DURATION_S = 0.75, 60.0
_PEAK_LIMIT = 0.95


@dataclass(frozen=True)
class ChannelSettings:
    """A recording channel: band limits, a few peaking-EQ bumps and a first-order spectral tilt.

    Attributes
    ----------
    highpass_hz, lowpass_hz : float
        Band edges (2nd-order high-pass, 4th-order low-pass Butterworth).
    eq : tuple of (freq_hz, gain_db, q)
        Peaking filters (RBJ audio-EQ-cookbook biquads).
    tilt : float
        Coefficient ``c`` of the FIR ``1 - c z^-1``: positive brightens, negative darkens.
    """

    highpass_hz: float
    lowpass_hz: float
    eq: tuple
    tilt: float

    def sos(self, sample_rate: int) -> np.ndarray:
        """The whole channel as second-order sections for :func:`scipy.signal.sosfilt`."""
        sections = [butter(2, self.highpass_hz, btype="highpass", fs=sample_rate, output="sos"),
                    butter(4, self.lowpass_hz, btype="lowpass", fs=sample_rate, output="sos"),
                    np.array([[1.0, -self.tilt, 0.0, 1.0, 0.0, 0.0]])]
        sections += [_peaking_sos(freq, gain, q, sample_rate) for freq, gain, q in self.eq]
        return np.concatenate(sections)


@dataclass(frozen=True)
class Utterance:
    """A synthesized recording and its session settings.

    Attributes
    ----------
    signal : numpy.ndarray of float32
        The waveform, peak below 0.95.
    sample_rate : int
    snr_db : float or None
        Active-speech to noise power ratio (``None``: no noise added).
    level_dbfs : float
        RMS of the active speech relative to full scale, before the peak limit.
    channel : ChannelSettings or None
    voiced : numpy.ndarray of bool
        Samples inside voiced phones.
    f0_hz : numpy.ndarray of float64
        Intonation contour per sample (before jitter); meaningful where ``voiced``.
    """

    signal: np.ndarray
    sample_rate: int
    snr_db: float | None
    level_dbfs: float
    channel: ChannelSettings | None
    voiced: np.ndarray
    f0_hz: np.ndarray


def _peaking_sos(freq_hz, gain_db, q, sample_rate):
    amplitude = 10.0 ** (gain_db / 40.0)
    omega = 2.0 * np.pi * freq_hz / sample_rate
    alpha = np.sin(omega) / (2.0 * q)
    b = np.array([1.0 + alpha * amplitude, -2.0 * np.cos(omega), 1.0 - alpha * amplitude])
    a = np.array([1.0 + alpha / amplitude, -2.0 * np.cos(omega), 1.0 - alpha / amplitude])
    return np.concatenate([b / a[0], a / a[0]])[None, :]


def random_channel(rng: np.random.Generator, sample_rate: int = 16000) -> ChannelSettings:
    """Draw a channel: from wide-band and bright to telephone-band and muffled.

    Examples
    --------
    >>> ch = random_channel(np.random.default_rng(0), 16000)
    >>> 0 < ch.highpass_hz < ch.lowpass_hz < 8000, ch.sos(16000).shape[1]
    (True, 6)
    """
    nyquist = sample_rate / 2
    n_bumps = int(rng.integers(1, 4))
    eq = tuple((float(np.exp(rng.uniform(np.log(150.0), np.log(0.7 * nyquist)))),
                float(rng.uniform(-8.0, 8.0)), float(rng.uniform(0.7, 3.0))) for _ in range(n_bumps))
    return ChannelSettings(highpass_hz=float(np.exp(rng.uniform(np.log(40.0), np.log(300.0)))),
                           lowpass_hz=float(rng.uniform(0.42, 0.95) * nyquist),
                           eq=eq, tilt=float(rng.uniform(-0.5, 0.5)))


def _coloured_noise(rng, n_samples, exponent, sample_rate):
    """Noise with a power spectrum falling as ``1 / f**exponent`` (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))
    freqs = np.maximum(np.fft.rfftfreq(n_samples, 1.0 / sample_rate), 20.0)
    noise = np.fft.irfft(spectrum * freqs ** (-exponent / 2.0), n=n_samples)
    return noise / (float(np.sqrt(np.mean(noise ** 2))) or 1.0)


def _check_range(value, name, low, high, allow_none=False):
    """Accept a number or a (min, max) pair within [low, high]; return it as a (min, max) tuple of floats."""
    if value is None and allow_none:
        return None
    pair = (value, value) if np.isscalar(value) else tuple(value) if hasattr(value, "__len__") else None
    try:
        pair = (float(pair[0]), float(pair[1])) if pair is not None and len(pair) == 2 else None
    except (TypeError, ValueError):
        pair = None
    if pair is None or not all(np.isfinite(pair)):
        raise ParameterError(f"{name} must be a number or a (min, max) pair, got {value!r}")
    if not low <= pair[0] <= pair[1] <= high:
        raise ParameterError(f"{name} must satisfy {low:g} <= min <= max <= {high:g}, got {value!r}")
    return pair


def _check_sample_rate(sample_rate) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
            or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ParameterError(f"sample_rate must be an integer from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz, "
                             f"got {sample_rate!r}")
    return int(sample_rate)


def synthesize_session(profile: SpeakerProfile, rng, duration_s: float = 2.0, sample_rate: int = 16000, *,
                       snr_db=(5.0, 30.0), channel: bool = True, level_dbfs=(-35.0, -18.0)) -> Utterance:
    """Synthesize one recording of ``profile`` with its session settings (see :func:`synthesize_utterance`)."""
    if not isinstance(profile, SpeakerProfile):
        raise ParameterError(f"profile must be a SpeakerProfile (see make_speaker), got {type(profile).__name__}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    sample_rate = _check_sample_rate(sample_rate)
    duration_s = _check_range(duration_s, "duration_s", MIN_DURATION_S, MAX_DURATION_S)[0]
    snr_range = _check_range(snr_db, "snr_db", -20.0, 100.0, allow_none=True)
    level_range = _check_range(level_dbfs, "level_dbfs", -80.0, -3.0)

    n_samples = int(round(duration_s * sample_rate))
    clean = synthesize_speech(profile, rng, n_samples, sample_rate)
    signal = clean.signal.copy()
    speech_power = float(np.mean(signal[clean.active] ** 2)) if clean.active.any() else float(np.mean(signal ** 2))
    snr = None
    if snr_range is not None:
        # Acoustic noise at the microphone: it goes through the channel with the speech.
        snr = float(rng.uniform(*snr_range))
        noise = _coloured_noise(rng, n_samples, rng.uniform(0.0, 1.8), sample_rate)
        signal += np.sqrt(speech_power / 10.0 ** (snr / 10.0)) * noise
    settings = random_channel(rng, sample_rate) if channel else None
    if settings is not None:
        signal = sosfilt(settings.sos(sample_rate), signal)
    level = float(rng.uniform(*level_range))
    active_rms = float(np.sqrt(np.mean(signal[clean.active] ** 2))) if clean.active.any() else 1.0
    signal *= 10.0 ** (level / 20.0) / max(active_rms, 1e-12)
    peak = float(np.max(np.abs(signal)))
    if peak > _PEAK_LIMIT:
        signal *= _PEAK_LIMIT / peak
    return Utterance(signal=signal.astype(np.float32), sample_rate=sample_rate, snr_db=snr, level_dbfs=level,
                     channel=settings, voiced=clean.voiced, f0_hz=clean.f0_hz)


def synthesize_utterance(profile: SpeakerProfile, rng, duration_s: float = 2.0, sample_rate: int = 16000, *,
                         snr_db=(5.0, 30.0), channel: bool = True, level_dbfs=(-35.0, -18.0)) -> np.ndarray:
    """Synthesize one random utterance of ``profile`` as heard through a random session.

    Parameters
    ----------
    profile : SpeakerProfile
        The voice (see :func:`make_speaker`).
    rng : numpy.random.Generator or int
        Source of everything that varies between recordings (content, intonation, channel, noise, level).
    duration_s : float
        Length of the recording, 0.75 .. 60 s.
    sample_rate : int
        8000 .. 48000 Hz.
    snr_db : float or (float, float) or None
        Signal-to-noise ratio, or the range it is drawn from uniformly; ``None`` adds no noise.
    channel : bool
        Pass the recording through a random channel (:func:`random_channel`).
    level_dbfs : float or (float, float)
        RMS level of the active speech (or its range).

    Returns
    -------
    numpy.ndarray of float32, shape (round(duration_s * sample_rate),)

    Examples
    --------
    >>> from speakerid.data.synth import make_speaker
    >>> voice = make_speaker(0, seed=0)
    >>> x = synthesize_utterance(voice, np.random.default_rng(1), duration_s=1.0)
    >>> x.shape, x.dtype, bool(np.abs(x).max() <= 0.95)
    ((16000,), dtype('float32'), True)
    >>> y = synthesize_utterance(voice, np.random.default_rng(1), duration_s=1.0)
    >>> bool(np.array_equal(x, y))  # same generator state, same samples
    True
    """
    return synthesize_session(profile, rng, duration_s, sample_rate, snr_db=snr_db, channel=channel,
                              level_dbfs=level_dbfs).signal
