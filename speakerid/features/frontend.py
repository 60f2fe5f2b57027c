"""The feature front end: a waveform in, a float32 ``frames x dims`` matrix out, exactly as a
:class:`FeatureConfig` says.

:func:`extract` runs, in this order::

    [DC/rumble high-pass ->] dither -> pre-emphasis -> framing -> window -> rfft [-> denoise] -> mel filterbank -> log [-> RASTA]
           -> DCT + lifter                                                                   (mfcc, logmel)
    frame log-energy, zero-crossing rate, roll-off, flux, chroma                            (other features)
    -> deltas (on every frame) -> stack in FEATURE_NAMES order -> VAD (drop frames) -> CMVN or warping

Two modes:

* **default** -- a DC offset and sub-audio drift are removed first
  (:func:`~speakerid.features.framing.remove_dc_offset`, a zero-phase 20 Hz high-pass: unconditional, since a DC
  component is never speech, and on recordings without one it changes the features by float rounding), then the
  configured window (Hamming by default), true triangular mel filters evaluated at the exact FFT bin
  frequencies, whole frames only (no padding), float32 arithmetic. The frame log-energy (the VAD input, the
  ``energy`` feature and c0 when ``use_energy``) is ``log(sum(x ** 2))`` of the frame before pre-emphasis and
  window, floored 100 dB below the loudest frame (:func:`~speakerid.features.framing.floored_log`); mel energies
  are floored 100 dB below the utterance's largest. Every floor being relative, a gain applied to the recording
  shifts each log-energy by a constant that CMVN removes: the features do not depend on the level.
* **psf_compat** -- ``python_speech_features.mfcc`` to 1e-4 relative: its zero padding of the last frame,
  rectangular window (the default ``window="hamming"`` counts as "not set"; ``"hann"``/``"povey"`` are
  honoured, like passing ``winfunc``), filter edges floored to integer FFT bins, frame energy = the sum of the
  power spectrum ``|X|^2 / n_fft`` of the pre-emphasised frame, exact zeros replaced by machine epsilon, float64.
  No DC removal and python_speech_features' absolute floor: that is what it computes (a DC offset then changes
  the features; use the default mode for real-world recordings).

The spectral shape features (roll-off, flux, chroma) use the windowed spectrum of the signal *without*
pre-emphasis. CMVN or feature warping, when on, normalises every stacked column. The VAD always decides on the
raw frame log-energy. With ``denoise`` the MFCC/log-mel path uses the denoised power spectrum, and c0 (when
``use_energy``) is the log of the denoised spectral energy; with ``rasta`` the log-mel trajectories and that c0
are RASTA-filtered (the ``energy`` feature is left as it is).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np

from speakerid._utils.blas import one_blas_thread
from speakerid.exceptions import AudioError, ParameterError
from speakerid.features.config import FEATURE_NAMES, FeatureConfig
from speakerid.features.denoise import denoise_power
from speakerid.features.framing import (
    analysis_window,
    floored_log,
    frame_log_energy,
    frame_signal,
    preemphasis,
    remove_dc_offset,
    round_half_up,
)
from speakerid.features.mfcc import dct_matrix, delta, filterbank_energies, mel_filterbank, power_spectrum
from speakerid.features.normalize import cmvn, sliding_cmvn
from speakerid.features.rasta import rasta_filter
from speakerid.features.spectral import chroma, spectral_flux, spectral_rolloff, zero_crossing_rate
from speakerid.features.vad import _gmm_vad_mask, _vad_mask
from speakerid.features.warping import feature_warp

_SPECTRAL_SHAPE = ("rolloff", "flux", "chroma")
_DITHER_SEED = 0


def feature_dims(config: FeatureConfig) -> dict:
    """Columns each selected feature takes in :func:`extract`'s output, in stacking order.

    Examples
    --------
    >>> feature_dims(FeatureConfig(features=("chroma", "mfcc"), n_ceps=13, delta_order=2))
    {'mfcc': 39, 'chroma': 12}
    >>> sum(feature_dims(FeatureConfig()).values())
    60
    """
    _check_config(config)
    per_name = {"mfcc": config.n_ceps * (1 + config.delta_order),
                "logmel": config.n_mels * (1 + config.delta_order),
                "energy": 1, "zcr": 1, "rolloff": 1, "flux": 1, "chroma": 12}
    return {name: per_name[name] for name in FEATURE_NAMES if name in config.features}


def extract(signal, config: FeatureConfig | None = None, *, dc_removed: bool = False) -> np.ndarray:
    """Frame-level features of a mono waveform, shape ``(n_frames, sum(feature_dims(config).values()))``.

    Parameters
    ----------
    signal : array_like of float, shape (n_samples,)
        Mono waveform at ``config.sample_rate`` (resample with :func:`speakerid.data.audio.resample` first), finite, at
        least one frame long.
    config : FeatureConfig, optional
        Every setting; the default is ``FeatureConfig()``.
    dc_removed : bool
        ``signal`` is already the float32 output of :func:`~speakerid.features.framing.remove_dc_offset` (the file
        pipeline filters once for its speech check and for the features); not used with ``psf_compat``, which does
        not filter.

    Returns
    -------
    numpy.ndarray of float32, shape (n_frames, dims)
        Features stacked in :data:`FEATURE_NAMES` order (MFCC block ``[static, delta, delta-delta]``, then
        log-mel likewise, energy, ZCR, roll-off in Hz, flux, 12 chroma). With ``vad="energy"`` frames more than
        ``vad_threshold_db`` below the loudest are dropped, but never below ``vad_min_frames`` frames (the
        loudest are kept then; a clip with fewer frames keeps them all), so the result is never empty.

    Raises
    ------
    ParameterError
        ``config`` is not a FeatureConfig, or ``signal`` is not a 1-D array of floats.
    AudioError
        ``signal`` is empty, shorter than one frame, or holds NaN/infinity.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(scale=0.1, size=16000).astype(np.float32)   # one second at 16 kHz
    >>> feats = extract(noise, FeatureConfig(n_ceps=13, vad="none"))
    >>> feats.shape, feats.dtype    # 98 whole 25 ms frames every 10 ms; 13 MFCC + deltas + delta-deltas
    ((98, 39), dtype('float32'))
    >>> bool(np.allclose(feats.mean(axis=0), 0, atol=1e-4))   # per-utterance CMVN
    True
    """
    config = FeatureConfig() if config is None else config
    _check_config(config)
    signal = _check_signal(signal, config)
    with one_blas_thread():     # the same features in this process and on any worker (see speakerid._utils.blas)
        return _extract(signal, config, dc_removed)


def extract_file(path, config: FeatureConfig | None = None) -> np.ndarray:
    """:func:`extract` on an audio file, read (and resampled to ``config.sample_rate``) by
    :func:`speakerid.data.audio.load_audio`. Errors about the audio name the file.
    """
    from speakerid.data.audio import load_audio

    config = FeatureConfig() if config is None else config
    _check_config(config)
    signal, _ = load_audio(path, sample_rate=config.sample_rate)
    try:
        return extract(signal, config)
    except AudioError as exc:
        raise AudioError(str(exc), path) from None


def feature_table(paths, config: FeatureConfig | None = None) -> list:
    """Per selected feature: frames, dims and extraction time (s) over the given audio files.

    The files are read once (not timed); each feature is then extracted alone (``config`` with
    ``features=(name,)``) from every file. When several features are selected a last row ``"all"`` times them
    together.

    Returns
    -------
    list of dict
        One row per feature, keys ``feature``, ``frames`` (summed over files, after VAD), ``dims``, ``seconds``.
    """
    from speakerid.data.audio import load_audio

    config = FeatureConfig() if config is None else config
    _check_config(config)
    paths = [paths] if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__") else list(paths)
    if not paths:
        raise ParameterError("feature_table needs at least one audio file")
    signals = [(path, load_audio(path, sample_rate=config.sample_rate)[0]) for path in paths]
    names = [name for name in FEATURE_NAMES if name in config.features]
    runs = [(name, config.replace(features=(name,))) for name in names]
    if len(names) > 1:
        runs.append(("all", config))
    rows = []
    for name, sub_config in runs:
        frames, dims, start = 0, 0, time.perf_counter()
        for path, signal in signals:
            try:
                feats = extract(signal, sub_config)
            except AudioError as exc:
                raise AudioError(str(exc), path) from None
            frames, dims = frames + feats.shape[0], feats.shape[1]
        rows.append({"feature": name, "frames": frames, "dims": dims,
                     "seconds": time.perf_counter() - start})
    return rows


def frame_energy(signal, config: FeatureConfig | None = None) -> np.ndarray:
    """The per-frame natural-log energy that the VAD, the ``energy`` feature and c0 (``use_energy``) use.

    Examples
    --------
    >>> t = np.arange(16000) / 16000
    >>> tone = (0.5 * np.sin(2 * np.pi * 250 * t)).astype(np.float32)
    >>> e, e_offset = frame_energy(tone), frame_energy(tone + np.float32(0.1))   # a 10 % DC offset: no change
    >>> e.shape, round(float(e[50]), 2), bool(np.allclose(e, e_offset, atol=1e-3))  # log(400 * 0.5 ** 2 / 2)
    ((98,), 3.91, True)
    """
    config = FeatureConfig() if config is None else config
    _check_config(config)
    signal = _check_signal(signal, config)
    plan = _plan(config)
    if plan.psf:
        return _psf_mel_and_energy(_emphasised_frames(signal, config, plan), plan)[1]
    signal = remove_dc_offset(signal.astype(plan.dtype, copy=False), config.sample_rate)
    return frame_log_energy(frame_signal(signal, plan.frame_length, plan.frame_shift))


def apply_cmvn(features, config: FeatureConfig) -> np.ndarray:
    """The normalisation that ``config`` asks for (``"none"``, ``"utterance"``, ``"sliding"`` or ``"warp"``).

    Examples
    --------
    >>> x = np.array([[1.0], [3.0]])
    >>> apply_cmvn(x, FeatureConfig(cmvn="none")), apply_cmvn(x, FeatureConfig(cmvn_variance=False))
    (array([[1.],
           [3.]]), array([[-1.],
           [ 1.]]))
    """
    if config.cmvn == "utterance":
        return cmvn(features, variance=config.cmvn_variance)
    if config.cmvn == "sliding":
        return sliding_cmvn(features, config.cmvn_window_frames, variance=config.cmvn_variance)
    if config.cmvn == "warp":
        return feature_warp(features, config.cmvn_window_frames)
    return np.asarray(features)


# --------------------------------------------------------------------------------------------- validation

def _check_config(config) -> None:
    if not isinstance(config, FeatureConfig):
        raise ParameterError(f"config must be a FeatureConfig, got {type(config).__name__}")


def _check_signal(signal, config: FeatureConfig) -> np.ndarray:
    signal = np.asarray(signal)
    if signal.dtype.kind != "f":
        hint = " (scale integer PCM to [-1, 1] floats first)" if signal.dtype.kind in "iu" else ""
        raise ParameterError(f"expected a float waveform, got dtype {signal.dtype}{hint}")
    if signal.ndim != 1:
        raise ParameterError(f"expected a 1-D mono waveform, got shape {signal.shape} "
                             "(mix channels down first, e.g. signal.mean(axis=1))")
    if signal.size == 0:
        raise AudioError("the signal is empty (no samples)")
    frame_length = _plan(config).frame_length
    if signal.size < frame_length:
        raise AudioError(f"the signal has {signal.size} samples, fewer than one {config.frame_length_ms:g} ms "
                         f"frame ({frame_length} samples at {config.sample_rate} Hz)")
    if not np.all(np.isfinite(signal)):
        raise AudioError("the signal holds NaN or infinite samples")
    return signal


# --------------------------------------------------------------------------------------------- computation

@dataclass(frozen=True)
class _Plan:
    """Everything about a config that does not depend on the signal, built once per config."""

    psf: bool
    dtype: type
    frame_length: int
    frame_shift: int
    n_fft: int
    window: np.ndarray | None  # None: rectangular, the multiply is skipped
    filterbank: np.ndarray
    dct: np.ndarray


@functools.lru_cache(maxsize=32)
def _plan(config: FeatureConfig) -> _Plan:
    psf = config.psf_compat
    if psf:  # python_speech_features sizes frames from seconds, rounding halves up
        frame_length = round_half_up(config.frame_length_ms / 1000.0 * config.sample_rate)
        frame_shift = round_half_up(config.frame_shift_ms / 1000.0 * config.sample_rate)
        window_name = "rect" if config.window == "hamming" else config.window
    else:
        frame_length, frame_shift = config.frame_length_samples, config.frame_shift_samples
        window_name = config.window
    dtype = np.float64 if psf else np.float32
    window = None if window_name == "rect" else analysis_window(window_name, frame_length, dtype)
    bank = mel_filterbank(config.sample_rate, config.fft_size, config.n_mels, config.low_freq_hz,
                          config.high_freq_hz, psf_compat=psf)
    dct = dct_matrix(config.n_mels, config.n_ceps, config.lifter).astype(dtype)
    return _Plan(psf, dtype, frame_length, frame_shift, config.fft_size, window, bank, dct)


def _emphasised_frames(signal, config, plan):
    emphasised = preemphasis(signal, config.preemphasis)
    return frame_signal(emphasised, plan.frame_length, plan.frame_shift, pad_end=plan.psf)


def _psf_mel_and_energy(frames, plan):
    mel, energy = filterbank_energies(frames, plan.n_fft, plan.filterbank, plan.window, dtype=plan.dtype,
                                      with_energy=True)
    eps = np.finfo(np.float64).eps  # python_speech_features replaces exact zeros only
    return np.where(mel == 0, eps, mel), np.log(np.where(energy == 0, eps, energy))


def _with_deltas(static, config):
    blocks = [static]
    for _ in range(config.delta_order):
        blocks.append(delta(blocks[-1], config.delta_window))
    return blocks


def _log_mel(signal, log_energy, config, plan):
    """Log-mel energies and the c0 log-energy of the default mode, denoised and RASTA-filtered as configured."""
    frames = _emphasised_frames(signal, config, plan)
    c0_energy = log_energy
    if config.denoise == "none":
        mel = filterbank_energies(frames, plan.n_fft, plan.filterbank, plan.window, dtype=plan.dtype)
    else:
        power = denoise_power(power_spectrum(frames, plan.n_fft, plan.window, dtype=plan.dtype), log_energy,
                              config.denoise)
        mel = power @ plan.filterbank.T.astype(plan.dtype)
        c0_energy = floored_log(power.sum(axis=1, dtype=np.float64)).astype(plan.dtype)
    log_mel = floored_log(mel)
    if config.rasta:
        log_mel = rasta_filter(log_mel)
        c0_energy = rasta_filter(np.asarray(c0_energy)[:, None])[:, 0]
    return log_mel, c0_energy


def _extract(signal: np.ndarray, config: FeatureConfig, dc_removed: bool = False) -> np.ndarray:
    plan = _plan(config)
    if dc_removed and not plan.psf:
        signal = signal.astype(plan.dtype, copy=False)
    elif not plan.psf:  # python_speech_features pre-emphasises in the input's own precision; so do we there
        signal = remove_dc_offset(signal.astype(plan.dtype, copy=False), config.sample_rate)
    if config.dither:
        noise = np.random.default_rng(_DITHER_SEED).standard_normal(signal.size)
        signal = signal + (config.dither * noise).astype(signal.dtype)
    wanted = set(config.features)
    raw_frames = frame_signal(signal, plan.frame_length, plan.frame_shift, pad_end=plan.psf)

    log_mel = None
    if plan.psf:
        mel, log_energy = _psf_mel_and_energy(_emphasised_frames(signal, config, plan), plan)
        log_mel = np.log(mel)
    else:
        log_energy = frame_log_energy(raw_frames)
    c0_energy = log_energy
    if not plan.psf and wanted & {"mfcc", "logmel"}:
        log_mel, c0_energy = _log_mel(signal, log_energy, config, plan)

    blocks = {}
    if "mfcc" in wanted:
        cepstra = log_mel @ plan.dct
        if config.use_energy:
            cepstra[:, 0] = c0_energy
        blocks["mfcc"] = _with_deltas(cepstra, config)
    if "logmel" in wanted:
        blocks["logmel"] = _with_deltas(log_mel, config)
    if "energy" in wanted:
        blocks["energy"] = [log_energy[:, None]]
    if "zcr" in wanted:
        blocks["zcr"] = [zero_crossing_rate(raw_frames)[:, None]]
    if wanted.intersection(_SPECTRAL_SHAPE):
        power = power_spectrum(raw_frames, plan.n_fft, plan.window, dtype=plan.dtype)
        if "rolloff" in wanted:
            blocks["rolloff"] = [spectral_rolloff(power, config.sample_rate, plan.n_fft)[:, None]]
        if "flux" in wanted:
            blocks["flux"] = [spectral_flux(power)[:, None]]
        if "chroma" in wanted:
            blocks["chroma"] = [chroma(power, config.sample_rate, plan.n_fft)]

    columns = [block for name in FEATURE_NAMES if name in blocks for block in blocks[name]]
    features = np.concatenate([np.asarray(c, dtype=np.float32) for c in columns], axis=1)
    if config.vad == "energy":
        features = features[_vad_mask(log_energy, config.vad_threshold_db, config.vad_min_frames)]
    elif config.vad == "gmm":
        features = features[_gmm_vad_mask(log_energy, config.vad_threshold_db, config.vad_min_frames)]
    return np.ascontiguousarray(apply_cmvn(features, config), dtype=np.float32)
