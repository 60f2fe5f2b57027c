"""Reverberation: convolution with a real room impulse response (RIR) or with one of a simulated shoebox room.

Training on reverberant copies made with real and simulated RIRs is the recipe of Ko, Peddinti, Povey, Seltzer &
Khudanpur (2017), "A study on data augmentation of reverberant speech for robust speech recognition", ICASSP,
pp. 5220-5224, which Kaldi's x-vector recipes follow. Simulated rooms use the image method of Allen & Berkley
(1979), "Image method for efficiently simulating small-room acoustics", JASA 65(4), 943-950, as implemented by
pyroomacoustics (Scheibler, Bezzam & Dokmanić, ICASSP 2018), imported only when a room is simulated.

Whatever the RIR, the result is aligned and levelled the same way: the RIR is resampled to the audio's rate, its
peak (the direct path) is moved to lag 0, so the speech is not delayed; the output keeps the input's length and
its speech RMS level (power over the input's speech frames, :func:`speakerid.degrade.mixing.speech_frames`).
"""

from __future__ import annotations

import math

import numpy as np

from speakerid._utils.lazy import lazy_import
from speakerid.data.audio import resample
from speakerid.degrade.mixing import recording, speech_frames
from speakerid.exceptions import AudioError

scipy_signal = lazy_import("scipy.signal")

__all__ = ["align_rir", "reverberate", "add_real_reverb", "add_simulated_reverb", "simulate_room", "decay_time_s",
           "ROOM_SIZE_M", "RT60_RANGE_S"]

#: Ranges (m) of a simulated room's length, width and height, drawn uniformly (Ko et al.'s small and medium rooms).
ROOM_SIZE_M = ((3.0, 10.0), (3.0, 8.0), (2.5, 4.0))
#: Range of the simulated rooms' reverberation time (s), drawn uniformly; walls get the absorption that gives it
#: by Sabine's formula.
RT60_RANGE_S = (0.2, 0.8)
#: Source and microphone stay this far from every wall (m) ...
WALL_MARGIN_M = 0.5
#: ... and this far from each other (m).
MIN_DISTANCE_M = 1.0
#: Highest image order simulated: it bounds the time (~0.1 s a room); it shortens the tail of a small room with a
#: long RT60 (the RT60 measured on the RIR is recorded next to the target).
MAX_IMAGE_ORDER = 60


def align_rir(rir, rir_rate: int, sample_rate: int):
    """``rir`` resampled to ``sample_rate`` and cut before its peak (the direct path then sits at lag 0).

    Parameters
    ----------
    rir : array_like, shape (n_taps,)
    rir_rate, sample_rate : int
        Hz.

    Returns
    -------
    rir : numpy.ndarray of float64, shape (n_taps_at_sample_rate - peak,)
    predelay_s : float
        Time of the peak in the resampled RIR (s): what was cut.

    Examples
    --------
    >>> h = np.zeros(480); h[240], h[300] = 1.0, 0.5      # 5 ms of silence at 48 kHz, then the direct path
    >>> aligned, predelay_s = align_rir(h, 48000, 16000)
    >>> int(np.argmax(np.abs(aligned))), round(predelay_s * 1000, 3)
    (0, 5.0)
    """
    h = resample(np.asarray(rir, dtype=np.float32), rir_rate, sample_rate).astype(np.float64)
    peak = int(np.argmax(np.abs(h)))
    if h[peak] == 0.0:
        raise AudioError("the room impulse response is silent")
    return h[peak:], peak / sample_rate


def reverberate(signal, sample_rate: int, rir) -> tuple:
    """``signal`` convolved with an aligned ``rir`` (:func:`align_rir`), cut to the input's length and scaled to
    the input's power over its speech frames.

    Returns
    -------
    reverberant : numpy.ndarray of float64, shape (n_samples,)
    gain_db : float
        The level correction applied after the convolution (dB).
    """
    signal = np.asarray(signal, dtype=np.float64)
    wet = scipy_signal.fftconvolve(signal, np.asarray(rir, dtype=np.float64))[:signal.size]
    frames = speech_frames(signal, sample_rate)
    p_dry, p_wet = frames.power(signal), frames.power(wet)
    if p_dry <= 0.0 or p_wet <= 0.0:
        raise AudioError("the signal is silent: nothing to reverberate")
    gain = math.sqrt(p_dry / p_wet)
    return wet * gain, round(20.0 * math.log10(gain), 4)


def decay_time_s(rir, sample_rate: int) -> float | None:
    """Reverberation time (s) of an aligned RIR by Schroeder's backward integration (Schroeder 1965, "New method
    of measuring reverberation time", JASA 37, 409-412): the -5 to -25 dB decay time (T20) times 3. ``None``
    when the energy decay curve does not fall 25 dB.

    Examples
    --------
    >>> rate = 16000
    >>> tail = np.random.default_rng(0).standard_normal(rate) * 10 ** (-3 * np.arange(rate) / rate / 0.5)
    >>> round(decay_time_s(tail, rate), 1)      # a tail falling 60 dB in 0.5 s
    0.5
    """
    energy = np.cumsum(np.square(np.asarray(rir, dtype=np.float64))[::-1])[::-1]
    if energy[0] <= 0.0:
        return None
    edc_db = 10.0 * np.log10(np.maximum(energy / energy[0], 1e-300))
    below5, below25 = np.flatnonzero(edc_db <= -5.0), np.flatnonzero(edc_db <= -25.0)
    if below25.size == 0 or below5.size == 0:
        return None
    return round(3.0 * int(below25[0] - below5[0]) / sample_rate, 4)


def add_real_reverb(signal, sample_rate: int, files, rng: np.random.Generator, licences=None):
    """``signal`` reverberated with a random RIR of ``files`` (see :func:`reverberate`).

    Returns
    -------
    reverberant : numpy.ndarray of float64, shape (n_samples,)
    record : dict
        ``file``, ``licence``, ``rir_sample_rate`` (Hz, the file's), ``predelay_ms`` (cut before the peak),
        ``rt60_s`` (:func:`decay_time_s`) and ``gain_db``.
    """
    files = list(files)
    path = str(files[int(rng.integers(len(files)))])
    rir, rir_rate = recording(path)
    aligned, predelay_s = align_rir(rir, rir_rate, sample_rate)
    wet, gain_db = reverberate(signal, sample_rate, aligned)
    return wet, {"file": path, "licence": "" if not licences else str(licences.get(path, "")),
                 "rir_sample_rate": int(rir_rate), "predelay_ms": round(predelay_s * 1000.0, 3),
                 "rt60_s": decay_time_s(aligned, sample_rate), "gain_db": gain_db}


def add_simulated_reverb(signal, sample_rate: int, rng: np.random.Generator):
    """``signal`` reverberated in a random simulated room (:func:`simulate_room`, then :func:`reverberate`).

    Returns
    -------
    reverberant : numpy.ndarray of float64, shape (n_samples,)
    record : dict
        The room's parameters (:func:`simulate_room`), ``predelay_ms``, ``rt60_s`` measured and ``gain_db``.
    """
    rir, room = simulate_room(sample_rate, rng)
    aligned, predelay_s = align_rir(rir, sample_rate, sample_rate)
    wet, gain_db = reverberate(signal, sample_rate, aligned)
    return wet, {**room, "predelay_ms": round(predelay_s * 1000.0, 3), "rt60_s": decay_time_s(aligned, sample_rate),
                 "gain_db": gain_db}


def simulate_room(sample_rate: int, rng: np.random.Generator):
    """The RIR of a random shoebox room by the image method (pyroomacoustics), and the room drawn.

    Length, width and height are drawn from :data:`ROOM_SIZE_M`, the target RT60 from :data:`RT60_RANGE_S`; the
    walls' energy absorption comes from Sabine's formula (:func:`pyroomacoustics.inverse_sabine`), the image
    order too, capped at :data:`MAX_IMAGE_ORDER`. Source and microphone are drawn uniformly at least
    :data:`WALL_MARGIN_M` from the walls and :data:`MIN_DISTANCE_M` from each other. No air absorption, no
    randomised image positions: the same draws give the same RIR.

    Parameters
    ----------
    sample_rate : int
        Hz, the rate of the RIR.
    rng : numpy.random.Generator

    Returns
    -------
    rir : numpy.ndarray of float64, shape (n_taps,)
        Not aligned (pyroomacoustics delays it by the propagation time plus half its fractional-delay filter).
    room : dict
        ``room_m`` ([length, width, height]), ``rt60_target_s``, ``absorption``, ``max_order``, ``source_m``,
        ``mic_m`` ([x, y, z]) and ``distance_m``.
    """
    import pyroomacoustics as pra  # ~1 s of imports, only when a room is simulated

    size = np.array([rng.uniform(low, high) for low, high in ROOM_SIZE_M])
    rt60 = float(rng.uniform(*RT60_RANGE_S))
    source = mic = None
    for _ in range(100):     # the rooms are at least 3 x 3 x 2.5 m: a draw fits within a few tries
        source, mic = (rng.uniform(WALL_MARGIN_M, size - WALL_MARGIN_M) for _ in range(2))
        if np.linalg.norm(source - mic) >= MIN_DISTANCE_M:
            break
    absorption, order = pra.inverse_sabine(rt60, size.tolist())
    order = int(min(order, MAX_IMAGE_ORDER))
    room = pra.ShoeBox(size.tolist(), fs=int(sample_rate), materials=pra.Material(float(absorption)),
                       max_order=order, air_absorption=False, use_rand_ism=False)
    room.add_source(source.tolist())
    room.add_microphone(mic.tolist())
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    return rir, {"room_m": _rounded(size), "rt60_target_s": round(rt60, 4), "absorption": round(float(absorption), 4),
                 "max_order": order, "source_m": _rounded(source), "mic_m": _rounded(mic),
                 "distance_m": round(float(np.linalg.norm(source - mic)), 3)}


def _rounded(values) -> list:
    return [round(float(v), 3) for v in values]
