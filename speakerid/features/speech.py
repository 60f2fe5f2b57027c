"""Is there speech in this waveform, and how much? The check every file passes before it is enrolled or scored.

A speaker model scores whatever frames it is given: a test tone, a constant, a click train or 50 ms of a word get
a confident score, sometimes above the genuine speaker's. :func:`check_speech` refuses such input with an
:class:`~speakerid.exceptions.AudioError` that names the measured figure. It looks at the frames the energy VAD
keeps (within ``vad_threshold_db`` of the loudest frame; the GMM VAD's frames with ``vad="gmm"``) and measures:

* **speech seconds** -- kept frames x frame shift; below ``config.min_speech_s`` the file is refused.
* **spectral change** (dB) -- how much the spectral *shape* moves: the median over mel bands (those within 50 dB
  of the strongest) of the standard deviation over frames of the level-normalised log-mel energy, after a 50 ms
  moving average that removes the estimation noise of a stationary signal. Articulation moves formants, so
  speech changes its shape; tones, hum, pulse trains and constants do not.
* **tonality** -- the median over frames of the share of the power in the 4 strongest FFT bins (~60 Hz): a
  sinusoid, a sweep or a siren puts nearly all of it there, speech spreads it over its harmonics and formants.
* **voiced fraction** -- the share of frames whose autocorrelation, corrected for the window (Boersma 1993),
  peaks at >= 0.45 at a lag of 2.5-16 ms (a 62-400 Hz voice). Stationary noise has no voiced frames and a
  steady spectrum; noisy speech keeps a moving spectrum even where the noise hides its periodicity. A chord or
  DTMF is voiced throughout with a steady spectrum; speech is not.

The thresholds were chosen on every file of the shared protocols (LibriSpeech clean, 2-s crops, crops in pink
noise at 5 dB SNR, background set, FSDD 8 kHz digits) against generated tones, noises and clicks; the margins
are in ``tests/contracts/test_realworld.py``. Broadband noise with a moving spectrum (babble, music, traffic)
is not refused here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

from speakerid.exceptions import AudioError
from speakerid.features import framing
from speakerid.features.config import FeatureConfig
from speakerid.features.mfcc import mel_filterbank, power_spectrum
from speakerid.features.vad import _speech_posterior, _vad_mask

__all__ = ["SpeechMeasures", "measure_speech", "check_speech", "MIN_SPECTRAL_CHANGE_DB", "MAX_TONALITY",
           "NOISE_VOICED_FRACTION", "NOISE_SPECTRAL_CHANGE_DB", "NOISE_MIN_SPEECH_S", "PERIODIC_VOICED_FRACTION",
           "PERIODIC_SPECTRAL_CHANGE_DB"]

#: Below this spectral change (dB) nothing is articulated: a tone, hum, a pulse train, a constant. Real speech
#: on the shared protocols: >= 1.18 dB (an FSDD digit); pure tones and hum <= 0.2 dB.
MIN_SPECTRAL_CHANGE_DB = 0.5
#: Above this tonality the frames are sinusoids (a tone, a sweep, a siren: >= 0.84); real speech <= 0.52.
MAX_TONALITY = 0.7
#: Fewer voiced frames than this share, together with a spectral change under NOISE_SPECTRAL_CHANGE_DB, is
#: stationary noise (white, pink, brown: 0 voiced frames, ~0.9 dB). Speech: every FSDD digit >= 0.29 voiced;
#: the 5 dB SNR crops go down to 0.05 voiced but keep >= 2.07 dB of spectral change.
NOISE_VOICED_FRACTION = 0.1
NOISE_SPECTRAL_CHANGE_DB = 1.5
#: The steady-noise rule needs this much detected sound to be reliable. On shorter clips speech and noise overlap:
#: on the development protocol's 0.5-s 8 kHz crops of background speakers (``bench/dev_protocol.py``), 23 of 589
#: real-speech clips have under 10 % voiced frames with a spectral change down to 1.09 dB, while 0.5-5 s of white,
#: pink or brown noise at 8 kHz give 1.08-1.32 dB. Such short clips are scored (noise scores as a non-match after
#: normalisation) rather than refused.
NOISE_MIN_SPEECH_S = 1.0
#: At least this share of voiced frames, together with a spectral change under PERIODIC_SPECTRAL_CHANGE_DB, is a
#: steady periodic sound (a chord, DTMF: 100 % voiced, ~0.8 dB). Speech is not voiced throughout while its
#: spectrum stands still: the least-changing file of the shared protocols (an FSDD "six") has 1.35 dB.
PERIODIC_VOICED_FRACTION = 0.9
PERIODIC_SPECTRAL_CHANGE_DB = 1.0

#: Voicing: lag range (s) and the autocorrelation peak that counts as voiced (Praat's default voicing threshold).
_PITCH_LAGS_S = (1 / 400, 1 / 62.5)
_VOICING_THRESHOLD = 0.45
#: Tonality: the strongest bins whose power share is measured.
_TONAL_BINS = 4
#: Spectral change: moving average over frames (50 ms) and the bands taken into account (within 50 dB).
_SMOOTH_FRAMES = 5
_ACTIVE_BAND_DB = 50.0
#: At most this many kept frames are analysed (evenly spaced runs of consecutive frames): a 1-hour file costs
#: what a 1-minute one does.
_MAX_FRAMES, _RUN_FRAMES = 6000, 300


@dataclass(frozen=True)
class SpeechMeasures:
    """What :func:`measure_speech` found (see the module docstring for each figure)."""

    speech_s: float
    spectral_change_db: float
    tonality: float
    voiced_fraction: float


def measure_speech(signal, config: FeatureConfig | None = None, *, dc_removed: bool = False) -> SpeechMeasures:
    """The speech-presence figures of a mono waveform at ``config.sample_rate``.

    Parameters
    ----------
    signal : array_like of float, shape (n_samples,)
        At least one frame long, finite (as :func:`speakerid.features.extract` expects).
    config : FeatureConfig, optional
        Frame length and shift, VAD kind and threshold. Default ``FeatureConfig()``.
    dc_removed : bool
        ``signal`` already went through :func:`~speakerid.features.framing.remove_dc_offset` (the file pipeline
        shares that one filtering between this check and the features).

    Returns
    -------
    SpeechMeasures

    Examples
    --------
    >>> t = np.arange(32000) / 16000
    >>> m = measure_speech(0.5 * np.sin(2 * np.pi * 1000 * t))
    >>> m.speech_s, m.tonality > MAX_TONALITY, m.spectral_change_db < MIN_SPECTRAL_CHANGE_DB
    (1.98, True, True)
    """
    from speakerid.features.frontend import _check_config, _check_signal

    config = FeatureConfig() if config is None else config
    _check_config(config)
    signal = _check_signal(signal, config)
    return _measure(np.asarray(signal, dtype=np.float64), config, dc_removed)


def check_speech(signal, config: FeatureConfig | None = None, path=None, *,
                 dc_removed: bool = False) -> SpeechMeasures:
    """:func:`measure_speech`, refusing a waveform with too little speech or none.

    Raises
    ------
    AudioError
        (exit 3) naming ``path`` and the measured figure: "no speech found" for a tone, a static spectrum or
        stationary noise; "too little speech" below ``config.min_speech_s``.
    """
    config = FeatureConfig() if config is None else config
    measures = measure_speech(signal, config, dc_removed=dc_removed)
    if measures.speech_s < config.min_speech_s:  # first: a few frames say nothing about their spectrum
        raise AudioError(f"too little speech: {measures.speech_s:.2f} s detected, fewer than the "
                         f"{config.min_speech_s:g} s minimum (min_speech_s)", path)
    reason = _no_speech_reason(measures)
    if reason:
        raise AudioError(f"no speech found: {reason}", path)
    return measures


def _no_speech_reason(m: SpeechMeasures) -> str:
    if m.tonality > MAX_TONALITY:
        return (f"a tone ({m.tonality:.0%} of the power in {_TONAL_BINS} frequency bins, speech stays under "
                f"{MAX_TONALITY:.0%})")
    if m.spectral_change_db < MIN_SPECTRAL_CHANGE_DB:
        return (f"the spectrum does not change (spectral change {m.spectral_change_db:.2f} dB, speech has at "
                f"least {MIN_SPECTRAL_CHANGE_DB:g} dB)")
    if (m.speech_s >= NOISE_MIN_SPEECH_S and m.voiced_fraction < NOISE_VOICED_FRACTION
            and m.spectral_change_db < NOISE_SPECTRAL_CHANGE_DB):
        return (f"steady noise ({m.voiced_fraction:.0%} voiced frames and {m.spectral_change_db:.2f} dB of "
                f"spectral change; speech has a voice or a moving spectrum)")
    if m.voiced_fraction >= PERIODIC_VOICED_FRACTION and m.spectral_change_db < PERIODIC_SPECTRAL_CHANGE_DB:
        return (f"a steady periodic sound such as a chord or DTMF ({m.voiced_fraction:.0%} voiced frames and "
                f"{m.spectral_change_db:.2f} dB of spectral change)")
    return ""


def _measure(signal: np.ndarray, config: FeatureConfig, dc_removed: bool = False) -> SpeechMeasures:
    rate = config.sample_rate
    frame_length, frame_shift = config.frame_length_samples, config.frame_shift_samples
    if not dc_removed:
        signal = framing.remove_dc_offset(signal, rate)
    log_energy = framing.frame_log_energy(framing.frame_signal(signal, frame_length, frame_shift))
    kept = _vad_mask(log_energy, config.vad_threshold_db, 1)
    if config.vad == "gmm":
        kept &= _speech_posterior(log_energy) >= 0.5
    speech_s = float(np.count_nonzero(kept)) * frame_shift / rate
    if not kept.any():
        return SpeechMeasures(0.0, 0.0, 0.0, 0.0)
    frames = framing.frame_signal(framing.preemphasis(signal, 0.97), frame_length, frame_shift)[_analysed(np.flatnonzero(kept))]
    n_fft = 1 << (2 * frame_length - 1).bit_length()  # twice the frame: the autocorrelation does not wrap
    window = framing.analysis_window("hamming", frame_length)
    # float32 as the features: the measures move by under 1e-6 (dB, shares) from float64's on the background
    power = power_spectrum(frames, n_fft, window, dtype=np.float32)
    return SpeechMeasures(speech_s, _spectral_change_db(power, rate, n_fft), _tonality(power),
                          _voiced_fraction(power, window, n_fft, rate))


def _analysed(kept_index: np.ndarray) -> np.ndarray:
    if len(kept_index) <= _MAX_FRAMES:
        return kept_index
    starts = np.linspace(0, len(kept_index) - _RUN_FRAMES, _MAX_FRAMES // _RUN_FRAMES).astype(int)
    return kept_index[(starts[:, None] + np.arange(_RUN_FRAMES)).ravel()]


def _moving_average(values: np.ndarray, size: int) -> np.ndarray:
    """Centred mean over ``size`` (odd) rows, the edge rows repeated past the ends (``uniform_filter1d``'s
    ``mode="nearest"``), without importing :mod:`scipy.ndimage` on the path that scores one clip."""
    half = size // 2
    padded = np.pad(values, ((half, half), (0, 0)), mode="edge")
    total = padded[:len(values)].copy()
    for shift in range(1, size):
        total += padded[shift:shift + len(values)]
    return total / size


def _spectral_change_db(power: np.ndarray, rate: int, n_fft: int) -> float:
    bank = mel_filterbank(rate, n_fft, 26)
    mel = framing.floored_log(_moving_average(power @ bank.T.astype(power.dtype), _SMOOTH_FRAMES))
    typical = np.median(mel, axis=0)
    mel = mel[:, typical >= typical.max() - _ACTIVE_BAND_DB * np.log(10) / 10]
    shape = mel - mel.mean(axis=1, keepdims=True)
    return float(np.median(shape.std(axis=0)) * 10 / np.log(10))


def _tonality(power: np.ndarray) -> float:
    total = power.sum(axis=1)
    strongest = -np.partition(-power, _TONAL_BINS, axis=1)[:, :_TONAL_BINS].sum(axis=1)
    return float(np.median(strongest / np.maximum(total, np.finfo(np.float64).tiny)))


def _voiced_fraction(power: np.ndarray, window: np.ndarray, n_fft: int, rate: int) -> float:
    lo, hi = (int(round(lag * rate)) for lag in _PITCH_LAGS_S)
    hi = min(hi, len(window) - 1)
    if hi <= lo:
        return 0.0
    autocorr = scipy.fft.irfft(power, n_fft, axis=1)[:, : hi + 1]
    window_autocorr = scipy.fft.irfft(np.abs(scipy.fft.rfft(window, n_fft)) ** 2, n_fft)[: hi + 1]
    normalised = (autocorr / np.maximum(autocorr[:, :1], np.finfo(np.float64).tiny)) / (
        window_autocorr / window_autocorr[0])
    return float(np.mean(normalised[:, lo:hi + 1].max(axis=1) >= _VOICING_THRESHOLD))
