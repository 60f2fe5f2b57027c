"""Additive noise from real recordings (noise, music, babble) at a signal-to-noise ratio measured on the speech frames.

The SNR of a mixture is set and reported on the frames where the clean signal holds speech, found with the energy
rule of :func:`speakerid.features.vad.vad_mask` (frames 25 ms long every 10 ms, kept when their energy is within
30 dB of the loudest frame, at least the 20 loudest kept): ``SNR = speech power over those frames / noise power
over the same frames``. Measured over the whole file instead, the pauses would count as speech and a talker who
pauses often would get a lower effective SNR.

Noise, music and babble follow the MUSAN recipe of Snyder, Chen & Povey (2015), "MUSAN: A Music, Speech, and Noise
Corpus", arXiv:1510.08484, as Kaldi's VoxCeleb x-vector augmentation uses it: a random segment of a random
recording, and for babble 3 to 7 talkers summed at equal speech power.

>>> rng = np.random.default_rng(0)
>>> speech = np.sin(np.linspace(0, 2000, 16000)) * (np.arange(16000) < 8000)   # 0.5 s of tone, 0.5 s of silence
>>> noise = rng.standard_normal(32000)
>>> mixed, record = mix_at_snr(speech, 16000, noise[:16000], 10.0)
>>> round(record["snr_db_measured"], 3)
10.0
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from speakerid.data.audio import load_audio
from speakerid.exceptions import AudioError, ParameterError

__all__ = ["SpeechFrames", "speech_frames", "mix_at_snr", "add_recording", "add_babble", "recording",
           "BABBLE_TALKERS"]

#: Analysis frames of the speech-frame rule (ms), the defaults of :class:`speakerid.features.FeatureConfig`.
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0
#: A frame is speech when its energy is within this many dB of the loudest frame (FeatureConfig.vad_threshold_db).
VAD_THRESHOLD_DB = 30.0
#: Fewest frames counted as speech (FeatureConfig.vad_min_frames): the loudest ones when fewer pass.
VAD_MIN_FRAMES = 20
#: Number of talkers of a babble noise: drawn uniformly from this range, both ends included (MUSAN recipe).
BABBLE_TALKERS = (3, 7)
#: A recording segment silent on the speech frames is drawn again, at most this many times in all.
MAX_DRAWS = 8
#: Recordings decoded at a given rate and kept in memory (an LRU cache shared by the threads of a run).
CACHED_RECORDINGS = 16


class SpeechFrames(NamedTuple):
    """The speech frames of a signal: which frames (``mask``, bool of shape (n_frames,)) and how it was framed."""

    mask: np.ndarray
    frame_length: int
    frame_shift: int

    def energies(self, signal: np.ndarray) -> np.ndarray:
        """Energy ``sum(x ** 2)`` of each frame of ``signal`` (same length as the framed one), shape (n_frames,)."""
        return _frame_energies(np.asarray(signal, dtype=np.float64), self.frame_length, self.frame_shift)

    def power(self, signal: np.ndarray) -> float:
        """Mean power of ``signal`` over the speech frames (mean square per sample)."""
        kept = self.energies(signal)[self.mask]
        return float(kept.sum() / (kept.size * self.frame_length))


def _frame_energies(signal: np.ndarray, frame_length: int, frame_shift: int) -> np.ndarray:
    frames = sliding_window_view(signal, frame_length)[::frame_shift]
    return np.einsum("ij,ij->i", frames, frames)


def speech_frames(signal, sample_rate: int) -> SpeechFrames:
    """The frames of ``signal`` that hold speech, by the energy rule of :func:`speakerid.features.vad.vad_mask`.

    Frames are :data:`FRAME_LENGTH_MS` long every :data:`FRAME_SHIFT_MS` (whole frames only; a signal shorter than
    one frame is one frame); a frame is speech when its energy is within :data:`VAD_THRESHOLD_DB` of the loudest
    frame's, and the :data:`VAD_MIN_FRAMES` loudest frames are kept when fewer pass.

    Parameters
    ----------
    signal : array_like, shape (n_samples,)
    sample_rate : int
        Hz.

    Returns
    -------
    SpeechFrames

    Examples
    --------
    >>> x = np.concatenate([np.ones(8000), np.zeros(8000)])     # 0.5 s of sound, 0.5 s of silence
    >>> frames = speech_frames(x, 16000)
    >>> frames.mask.size, int(frames.mask.sum()), frames.frame_length, frames.frame_shift
    (98, 50, 400, 160)
    """
    from speakerid.features.framing import floored_log
    from speakerid.features.vad import vad_mask

    signal = np.asarray(signal, dtype=np.float64)
    # rounded as FeatureConfig.frame_length_samples / frame_shift_samples round them
    frame_length = max(1, int(round(FRAME_LENGTH_MS * sample_rate / 1000.0)))
    frame_shift = max(1, int(round(FRAME_SHIFT_MS * sample_rate / 1000.0)))
    frame_length = min(frame_length, signal.size)
    energy = _frame_energies(signal, frame_length, frame_shift)
    mask = vad_mask(floored_log(energy), VAD_THRESHOLD_DB, VAD_MIN_FRAMES)
    return SpeechFrames(mask, frame_length, frame_shift)


def _snr_db(speech_power: float, noise_power: float) -> float:
    return float(10.0 * np.log10(speech_power / noise_power)) if noise_power > 0 else float("inf")


def mix_at_snr(signal, sample_rate: int, noise, snr_db: float, frames: SpeechFrames | None = None):
    """``signal + g * noise`` with ``g`` set so that the SNR on the speech frames of ``signal`` is ``snr_db``.

    Parameters
    ----------
    signal, noise : array_like, shape (n_samples,)
        The clean signal and a noise of the same length.
    sample_rate : int
        Hz.
    snr_db : float
        Speech power over the speech frames of ``signal`` / noise power over the same frames, in dB.
    frames : SpeechFrames, optional
        The speech frames of ``signal`` when already known.

    Returns
    -------
    mixed : numpy.ndarray of float64, shape (n_samples,)
    record : dict
        ``snr_db_measured`` (the SNR of the result, measured again, dB), ``noise_gain_db`` (20 log10 g) and
        ``speech_frames`` (how many frames counted as speech).

    Raises
    ------
    AudioError
        ``signal`` is silent, or ``noise`` is silent on its speech frames.
    """
    signal = np.asarray(signal, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if noise.shape != signal.shape:
        raise ParameterError(f"noise must have the signal's shape {signal.shape}, got {noise.shape}")
    frames = speech_frames(signal, sample_rate) if frames is None else frames
    p_speech, p_noise = frames.power(signal), frames.power(noise)
    if p_speech <= 0.0:
        raise AudioError("the signal is silent: no SNR can be set")
    if p_noise <= 0.0:
        raise AudioError("the noise is silent over the speech frames: no SNR can be set")
    gain = math.sqrt(p_speech / (p_noise * 10.0 ** (snr_db / 10.0)))
    mixed = signal + gain * noise
    measured = _snr_db(p_speech, frames.power(mixed - signal))
    return mixed, {"snr_db_measured": round(measured, 4), "noise_gain_db": round(20.0 * math.log10(gain), 4),
                   "speech_frames": int(np.count_nonzero(frames.mask))}


@functools.lru_cache(maxsize=CACHED_RECORDINGS)
def recording(path: str, sample_rate: int | None = None) -> tuple:
    """``(signal, rate)`` of a bank recording, decoded once (mono, float32, read-only) and resampled to
    ``sample_rate`` when one is given. Quiet recordings are accepted (a real noise can be faint); silent,
    unreadable or over-long ones are an :class:`~speakerid.exceptions.AudioError` naming the file."""
    signal, rate = load_audio(path, sample_rate, min_level_dbfs=None, min_duration_ms=1.0)
    signal.flags.writeable = False
    return signal, rate


def _segment(source: np.ndarray, n_samples: int, rng: np.random.Generator):
    """A random ``n_samples`` stretch of ``source`` (looped when it is shorter): ``(segment, offset, looped)``."""
    if source.size >= n_samples:
        offset = int(rng.integers(source.size - n_samples + 1))
        return source[offset:offset + n_samples].astype(np.float64), offset, False
    offset = int(rng.integers(source.size))
    return np.take(source, np.arange(offset, offset + n_samples), mode="wrap").astype(np.float64), offset, True


def _draw(files, sample_rate: int, n_samples: int, rng: np.random.Generator, frames: SpeechFrames | None):
    """A random file's random segment, drawn again (up to :data:`MAX_DRAWS` in all) while it is silent over
    ``frames`` (or over all frames of the segment when ``frames`` is None)."""
    for _ in range(MAX_DRAWS):
        path = files[int(rng.integers(len(files)))]
        source, _ = recording(str(path), sample_rate)
        segment, offset, looped = _segment(source, n_samples, rng)
        check = frames if frames is not None else speech_frames(segment, sample_rate)
        if check.power(segment) > 0.0:
            choice = {"file": str(path), "offset": offset, "offset_s": round(offset / sample_rate, 4),
                      "looped": looped}
            return segment, check, choice
    raise AudioError(f"{MAX_DRAWS} random segments of the bank's recordings were all silent over the speech "
                     f"(last: {path})")


def add_recording(signal, sample_rate: int, snr_db: float, files, rng: np.random.Generator, licences=None):
    """``signal`` plus a random segment of a random recording of ``files`` at ``snr_db`` on the speech frames.

    The recording is decoded at ``sample_rate`` (resampled when needed); the segment starts at a random offset
    and is looped when the recording is shorter than ``signal``.

    Parameters
    ----------
    signal : array_like, shape (n_samples,)
    sample_rate : int
        Hz.
    snr_db : float
        See :func:`mix_at_snr`.
    files : sequence of path-like
        The recordings to choose from (one kind of the bank: noise or music).
    rng : numpy.random.Generator
    licences : dict, optional
        Path -> licence text, copied into the record.

    Returns
    -------
    mixed : numpy.ndarray of float64, shape (n_samples,)
    record : dict
        ``file``, ``licence``, ``offset`` (samples into the recording resampled to ``sample_rate``), ``offset_s``
        (the same in seconds, rounded), ``looped``, and :func:`mix_at_snr`'s.
    """
    signal = np.asarray(signal, dtype=np.float64)
    frames = speech_frames(signal, sample_rate)
    noise, _, choice = _draw(list(files), sample_rate, signal.size, rng, frames)
    mixed, measured = mix_at_snr(signal, sample_rate, noise, snr_db, frames)
    return mixed, {**choice, "licence": _licence(licences, choice["file"]), **measured}


def add_babble(signal, sample_rate: int, snr_db: float, sources, rng: np.random.Generator, licences=None):
    """``signal`` plus babble at ``snr_db``: 3 to 7 talkers (:data:`BABBLE_TALKERS`), each a random segment of a
    random recording of ``sources`` scaled to unit power over its own speech frames, summed.

    Returns
    -------
    mixed : numpy.ndarray of float64, shape (n_samples,)
    record : dict
        ``talkers`` (a list of ``{file, licence, offset, offset_s, looped}``) and :func:`mix_at_snr`'s figures.
    """
    signal = np.asarray(signal, dtype=np.float64)
    frames = speech_frames(signal, sample_rate)
    sources = list(sources)
    babble, talkers = np.zeros(signal.size), []
    for _ in range(int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))):
        talker, own_frames, choice = _draw(sources, sample_rate, signal.size, rng, None)
        babble += talker / math.sqrt(own_frames.power(talker))
        talkers.append({**choice, "licence": _licence(licences, choice["file"])})
    mixed, measured = mix_at_snr(signal, sample_rate, babble, snr_db, frames)
    return mixed, {"talkers": talkers, **measured}


def _licence(licences, path: str) -> str:
    return "" if not licences else str(licences.get(path, ""))
