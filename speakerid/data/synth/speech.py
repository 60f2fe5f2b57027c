"""Clean synthetic speech: a random phone sequence rendered with a source-filter model of one speaker's voice.

Voiced phones are a Rosenberg glottal pulse train (with jitter, shimmer, spectral tilt and aspiration noise)
driven by an intonation contour and filtered by a cascade of formant resonators whose frequencies glide from one
phone target to the next; fricatives and plosive bursts are band-pass filtered noise. The output holds no channel
or background noise yet (see :mod:`speakerid.data.synth.session`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, lfilter, oaconvolve, sosfilt

from speakerid.data.synth.profile import VOICED_CONSONANTS, VOWELS, SpeakerProfile

__all__ = ["CleanSpeech", "synthesize_speech"]

# Formant bandwidths F1..F5 in Hz for an average voice; each speaker scales them.
_BANDWIDTHS_HZ = np.array([60.0, 90.0, 150.0, 200.0, 260.0])
# fricative -> (centre Hz for an adult male, relative bandwidth, level relative to vowels)
_FRICATIVES = {"s": (5200.0, 0.45, 0.30), "S": (3000.0, 0.45, 0.35), "f": (3500.0, 1.2, 0.08)}
# plosive burst -> (centre Hz, relative bandwidth, level)
_BURSTS = {"p": (900.0, 1.0, 0.20), "t": (4200.0, 0.7, 0.30), "k": (2000.0, 0.5, 0.30)}
_BLOCK_S = 0.01  # formant coefficients are updated every 10 ms
_RAMP_S = 0.012  # smoothing of the voicing envelope at phone edges


@dataclass(frozen=True)
class CleanSpeech:
    """One clean utterance and what went into it.

    Attributes
    ----------
    signal : numpy.ndarray of float64
        The waveform; voiced speech has an RMS of about 0.1.
    voiced : numpy.ndarray of bool
        Samples inside voiced phones (vowels, nasals, approximants).
    active : numpy.ndarray of bool
        Samples inside any phone (not in a pause or plosive closure).
    f0_hz : numpy.ndarray of float64
        The intonation contour per sample (before jitter), defined everywhere, meaningful where ``voiced``.
    phones : tuple of (str, str, int, int)
        ``(kind, name, start, stop)`` per phone, in samples; kind is vowel, voiced, fricative, plosive or pause.
    """

    signal: np.ndarray
    voiced: np.ndarray
    active: np.ndarray
    f0_hz: np.ndarray
    phones: tuple


def synthesize_speech(profile: SpeakerProfile, rng: np.random.Generator, n_samples: int,
                      sample_rate: int) -> CleanSpeech:
    """Render ``n_samples`` of clean random speech in ``profile``'s voice (no parameter checks: see callers)."""
    phones = _plan_phones(profile, rng, n_samples, sample_rate)
    f0_hz = _intonation(profile, rng, phones, n_samples, sample_rate)
    voiced_level = np.zeros(n_samples)
    active = np.zeros(n_samples, dtype=bool)
    for kind, _name, start, stop in phones:
        if kind == "vowel":
            voiced_level[start:stop] = rng.uniform(0.7, 1.0)  # stress varies from vowel to vowel
        elif kind == "voiced":
            voiced_level[start:stop] = 0.35
        if kind != "pause":
            active[start:stop] = True
    voiced = voiced_level > 0
    ramp = np.hanning(max(3, int(_RAMP_S * sample_rate)))
    envelope = oaconvolve(voiced_level, ramp / ramp.sum(), mode="same")

    source = _glottal_source(profile, rng, f0_hz, sample_rate) * envelope
    speech = _vocal_tract(profile, rng, source, phones, sample_rate)
    voiced_rms = float(np.sqrt(np.mean(speech[voiced] ** 2))) if voiced.any() else 1.0
    speech *= 0.1 / max(voiced_rms, 1e-12)
    speech += 0.1 * _unvoiced(profile, rng, phones, n_samples, sample_rate)
    return CleanSpeech(signal=speech, voiced=voiced, active=active, f0_hz=f0_hz, phones=tuple(phones))


def _plan_phones(profile, rng, n_samples, sample_rate):
    """A random syllable sequence filling ``n_samples``: [(kind, name, start, stop)], with silence at both ends."""
    vowels, voiced_consonants = list(VOWELS), list(VOICED_CONSONANTS)
    rate = profile.speaking_rate
    end = n_samples / sample_rate - rng.uniform(0.05, 0.2)
    t = rng.uniform(0.05, 0.25)
    plan = [("pause", "", 0.0, t)]

    def add(kind, name, duration_s):
        nonlocal t
        plan.append((kind, name, t, t + duration_s))
        t += duration_s

    def consonant():
        draw = rng.random()
        if draw < 0.35:
            add("fricative", str(rng.choice(list(_FRICATIVES))), rng.uniform(0.06, 0.14) / rate)
        elif draw < 0.65:
            add("pause", "", rng.uniform(0.03, 0.07) / rate)  # closure
            add("plosive", str(rng.choice(list(_BURSTS))), rng.uniform(0.01, 0.025))
        else:
            add("voiced", str(rng.choice(voiced_consonants)), rng.uniform(0.04, 0.09) / rate)

    while True:  # at least one syllable, however short the utterance
        if rng.random() < 0.75:
            consonant()
        add("vowel", str(rng.choice(vowels)), rng.uniform(0.07, 0.2) / rate)
        if rng.random() < 0.3:
            consonant()
        if t >= end:
            break
        if rng.random() < 0.25:
            add("pause", "", rng.uniform(0.06, 0.3))
    phones = []
    for kind, name, start_s, stop_s in plan:
        start = int(round(start_s * sample_rate))
        stop = min(int(round(min(stop_s, end) * sample_rate)), n_samples)
        if stop > start:
            phones.append((kind, name, start, stop))
    last = phones[-1][3] if phones else 0
    if last < n_samples:
        phones.append(("pause", "", last, n_samples))
    return phones


def _intonation(profile, rng, phones, n_samples, sample_rate):
    """F0 per sample: per phrase a declination line, one or two pitch accents and a slow wander (semitones)."""
    hop = max(1, int(_BLOCK_S * sample_rate))
    times = np.arange(0, n_samples + hop, hop)
    semitones = np.zeros(times.size)
    # Phrases are the stretches between pauses longer than 60 ms.
    breaks = [(start, stop) for kind, _, start, stop in phones
              if kind == "pause" and stop - start > 0.06 * sample_rate]
    edges = sorted({0, n_samples, *[b for pair in breaks for b in pair]})
    vowel_centres = np.array([(start + stop) / 2 for kind, _, start, stop in phones if kind == "vowel"])
    span = profile.f0_range_st
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (times >= lo) & (times < hi)
        if not inside.any():
            continue
        position = (times[inside] - lo) / max(hi - lo, 1)
        contour = profile.declination_st * (0.5 - position) + rng.uniform(-0.3, 0.3) * span
        candidates = vowel_centres[(vowel_centres >= lo) & (vowel_centres < hi)]
        for centre in rng.choice(candidates, size=min(len(candidates), int(rng.integers(1, 3))), replace=False):
            width = rng.uniform(0.08, 0.15) * sample_rate
            contour += rng.uniform(0.3, 1.0) * span * np.exp(-0.5 * ((times[inside] - centre) / width) ** 2)
        semitones[inside] = contour
    wander_hz = rng.uniform(1.0, 3.0, size=3)
    phases = rng.uniform(0, 2 * np.pi, size=3)
    semitones += 0.3 * np.sin(2 * np.pi * np.outer(times / sample_rate, wander_hz) + phases).sum(axis=1)
    semitones = span * np.tanh(semitones / span)  # a soft limit keeps F0 inside the speaker's range
    return profile.f0_median_hz * 2.0 ** (np.interp(np.arange(n_samples), times, semitones) / 12.0)


def _rosenberg(phase, open_quotient, speed_quotient):
    """Glottal flow over one cycle (phase in [0, 1)): a cosine rise, a faster cosine fall, then closure."""
    t_peak = open_quotient * speed_quotient / (1.0 + speed_quotient)
    rising = phase < t_peak
    falling = (phase >= t_peak) & (phase < open_quotient)
    flow = np.zeros_like(phase)
    flow[rising] = 0.5 * (1.0 - np.cos(np.pi * phase[rising] / t_peak))
    flow[falling] = np.cos(0.5 * np.pi * (phase[falling] - t_peak) / (open_quotient - t_peak))
    return flow


def _glottal_source(profile, rng, f0_hz, sample_rate):
    """Differentiated glottal flow (the lip radiation is folded in) plus pulsed aspiration noise."""
    rough_cycles = np.cumsum(f0_hz) / sample_rate
    n_cycles = int(rough_cycles[-1]) + 2
    jitter = 1.0 + profile.jitter * rng.standard_normal(n_cycles)
    phase = np.cumsum(f0_hz * jitter[rough_cycles.astype(int)]) / sample_rate
    cycle = phase.astype(int)
    shimmer = np.clip(1.0 + profile.shimmer * rng.standard_normal(cycle[-1] + 1), 0.3, None)
    flow = _rosenberg(phase - cycle, profile.open_quotient, profile.speed_quotient) * shimmer[cycle]
    source = np.diff(flow, prepend=0.0)
    if profile.spectral_tilt > 0:
        source = lfilter([1.0 - profile.spectral_tilt], [1.0, -profile.spectral_tilt], source)
    # Aspiration: white noise, brighter than the source, louder while the glottis is open.
    noise = np.diff(rng.standard_normal(source.size + 1))
    source_rms = float(np.sqrt(np.mean(source ** 2))) or 1.0
    source += profile.breathiness * source_rms * (0.3 + flow) * noise
    return source


def _resonator_sos(freqs_hz, bandwidths_hz, sample_rate):
    """Second-order sections (one per formant, unit gain at DC) for arrays of shape (..., n_formants)."""
    radius = np.exp(-np.pi * bandwidths_hz / sample_rate)
    a1 = -2.0 * radius * np.cos(2.0 * np.pi * freqs_hz / sample_rate)
    a2 = radius ** 2
    sos = np.zeros(freqs_hz.shape + (6,))
    sos[..., 0] = 1.0 + a1 + a2
    sos[..., 3], sos[..., 4], sos[..., 5] = 1.0, a1, a2
    return sos


def _vocal_tract(profile, rng, source, phones, sample_rate):
    """Filter the source with formants interpolated between phone targets, block by block."""
    hop = max(1, int(_BLOCK_S * sample_rate))
    n_blocks = -(-source.size // hop)
    knot_times, knot_freqs, knot_bws = [], [], []
    bandwidths = _BANDWIDTHS_HZ * profile.bandwidth_scale
    for kind, name, start, stop in phones:
        if kind not in ("vowel", "voiced"):
            continue
        target = profile.formants(name) * rng.normal(1.0, 0.03, size=5)  # token-to-token variation
        widths = bandwidths * (np.array([1.8, 1.3, 1.0, 1.0, 1.0]) if name in ("m", "n") else 1.0)
        for fraction in (0.25, 0.75):  # steady middle, glides between phones
            knot_times.append(start + fraction * (stop - start))
            knot_freqs.append(target)
            knot_bws.append(widths)
    if not knot_times:
        return np.zeros_like(source)
    block_times = (np.arange(n_blocks) + 0.5) * hop
    knot_freqs, knot_bws = np.array(knot_freqs), np.array(knot_bws)
    freqs = np.stack([np.interp(block_times, knot_times, knot_freqs[:, k]) for k in range(5)], axis=1)
    widths = np.stack([np.interp(block_times, knot_times, knot_bws[:, k]) for k in range(5)], axis=1)
    # Drop formants the sample rate cannot hold (an 8 kHz file has no F5 of a child).
    keep = freqs.max(axis=0) < 0.9 * (sample_rate / 2)
    sos = _resonator_sos(freqs[:, keep], widths[:, keep], sample_rate)
    out = np.empty_like(source)
    state = np.zeros((int(keep.sum()), 2))
    for b in range(n_blocks):
        lo, hi = b * hop, min((b + 1) * hop, source.size)
        out[lo:hi], state = sosfilt(sos[b], source[lo:hi], zi=state)
    return out


def _unvoiced(profile, rng, phones, n_samples, sample_rate):
    """Fricatives and plosive bursts: band-passed noise with smooth onsets (relative to voiced RMS 1)."""
    out = np.zeros(n_samples)
    nyquist = sample_rate / 2
    for kind, name, start, stop in phones:
        if kind not in ("fricative", "plosive"):
            continue
        centre, rel_bw, level = (_FRICATIVES if kind == "fricative" else _BURSTS)[name]
        centre = min(centre * profile.fricative_scale * rng.uniform(0.95, 1.05), 0.75 * nyquist)
        low = max(centre * (1 - rel_bw / 2), 100.0)
        high = min(centre * (1 + rel_bw / 2), 0.95 * nyquist)
        sos = butter(2, [low, high], btype="bandpass", fs=sample_rate, output="sos")
        length = stop - start
        noise = sosfilt(sos, rng.standard_normal(length))
        noise /= float(np.sqrt(np.mean(noise ** 2))) or 1.0
        if kind == "fricative":
            shape = np.hanning(length + 2)[1:-1] ** 0.5
        else:  # a sharp release that dies away
            shape = np.exp(-np.arange(length) / (0.3 * length))
        out[start:stop] += level * rng.uniform(0.7, 1.2) * noise * shape
    return out
