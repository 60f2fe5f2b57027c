"""Who a synthetic speaker is: the voice parameters that stay fixed across all of their recordings.

A :class:`SpeakerProfile` is drawn once per speaker from a seeded random stream, so the same ``(index, seed,
prefix)`` always gives the same voice. The parameter ranges follow the usual adult-male / adult-female / child
spread of fundamental frequency and vocal-tract length.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from speakerid.exceptions import ParameterError

__all__ = ["SpeakerProfile", "make_speaker", "VOWELS", "VOICED_CONSONANTS", "VOICE_TYPES"]

# Average adult-male formants F1..F3 in Hz (Peterson & Barney, 1952); F4 and F5 are added per speaker.
VOWELS: dict[str, tuple[float, float, float]] = {
    "i": (270.0, 2290.0, 3010.0),
    "I": (390.0, 1990.0, 2550.0),
    "E": (530.0, 1840.0, 2480.0),
    "ae": (660.0, 1720.0, 2410.0),
    "a": (730.0, 1090.0, 2440.0),
    "O": (570.0, 840.0, 2410.0),
    "U": (440.0, 1020.0, 2240.0),
    "u": (300.0, 870.0, 2240.0),
    "V": (640.0, 1190.0, 2390.0),
    "3": (490.0, 1350.0, 1690.0),
}

# Nasals and approximants: voiced, quieter, with rough adult-male formant targets.
VOICED_CONSONANTS: dict[str, tuple[float, float, float]] = {
    "m": (280.0, 1100.0, 2300.0),
    "n": (280.0, 1600.0, 2500.0),
    "l": (360.0, 1100.0, 2600.0),
    "r": (420.0, 1250.0, 1600.0),
    "w": (300.0, 700.0, 2200.0),
}

# voice type -> (probability, F0 median range in Hz, vocal-tract scale range)
VOICE_TYPES: dict[str, tuple[float, tuple[float, float], tuple[float, float]]] = {
    "male": (0.45, (88.0, 150.0), (0.92, 1.06)),
    "female": (0.45, (165.0, 250.0), (1.08, 1.22)),
    "child": (0.10, (240.0, 320.0), (1.24, 1.38)),
}

_SEGMENTS = tuple(VOWELS) + tuple(VOICED_CONSONANTS)


@dataclass(frozen=True)
class SpeakerProfile:
    """The fixed voice of one synthetic speaker.

    Parameters
    ----------
    speaker_id : str
        For example ``"spk001"`` or ``"bg001"``.
    voice_type : {"male", "female", "child"}
    f0_median_hz : float
        Centre of the speaker's pitch range.
    f0_range_st : float
        Half-width of the intonation range in semitones; the F0 contour (before jitter) stays within
        :attr:`f0_min_hz` .. :attr:`f0_max_hz`.
    vtl_scale : float
        Formant scaling (1 = average adult male; larger means a shorter vocal tract and higher formants).
    segment_formant_scale : tuple of (str, (float, float, float))
        Per vowel / voiced consonant, the speaker's own deviation of (F1, F2, F3) from the scaled base values
        (multiplicative, about +-6 %): accent and articulation habits. A tuple, so profiles stay hashable.
    f4_hz, f5_hz : float
        Upper formants, which vary little with the vowel and much between speakers.
    bandwidth_scale : float
        Multiplies every formant bandwidth (a damped versus a ringing voice).
    open_quotient : float
        Fraction of each glottal cycle during which the glottis is open (0.35 .. 0.8; high is breathy/lax).
    speed_quotient : float
        Ratio of opening to closing time of the glottal pulse.
    spectral_tilt : float
        Pole of an extra one-pole low-pass on the glottal source (0 = none, 0.7 = a dark voice).
    breathiness : float
        Level of aspiration noise relative to the voiced source.
    jitter : float
        Relative cycle-to-cycle F0 perturbation (standard deviation).
    shimmer : float
        Relative cycle-to-cycle amplitude perturbation (standard deviation).
    speaking_rate : float
        Multiplies phone rates (1 = average; 1.2 speaks 20 % faster).
    declination_st : float
        How far F0 falls over a phrase, in semitones.
    fricative_scale : float
        Scales the centre frequencies of the speaker's fricatives and bursts.
    """

    speaker_id: str
    voice_type: str
    f0_median_hz: float
    f0_range_st: float
    vtl_scale: float
    segment_formant_scale: tuple
    f4_hz: float
    f5_hz: float
    bandwidth_scale: float
    open_quotient: float
    speed_quotient: float
    spectral_tilt: float
    breathiness: float
    jitter: float
    shimmer: float
    speaking_rate: float
    declination_st: float
    fricative_scale: float

    @property
    def f0_min_hz(self) -> float:
        """Lowest F0 the intonation contour reaches (before cycle-to-cycle jitter)."""
        return self.f0_median_hz * 2.0 ** (-self.f0_range_st / 12.0)

    @property
    def f0_max_hz(self) -> float:
        """Highest F0 the intonation contour reaches (before cycle-to-cycle jitter)."""
        return self.f0_median_hz * 2.0 ** (self.f0_range_st / 12.0)

    def formants(self, segment: str) -> np.ndarray:
        """Target frequencies F1..F5 in Hz of a vowel or voiced consonant, for this speaker.

        Examples
        --------
        >>> p = make_speaker(0, seed=0)
        >>> f = p.formants("a")
        >>> f.shape, bool(np.all(np.diff(f) > 0))
        ((5,), True)
        """
        base = VOWELS.get(segment) or VOICED_CONSONANTS.get(segment)
        if base is None:
            raise ParameterError(f"unknown segment {segment!r}; known: {', '.join(_SEGMENTS)}")
        low = np.asarray(base) * self.vtl_scale * np.asarray(dict(self.segment_formant_scale)[segment])
        freqs = np.concatenate([low, [self.f4_hz, self.f5_hz]])
        # Keep the formants ordered and apart, whatever the random deviations did.
        for k in range(1, 5):
            freqs[k] = max(freqs[k], freqs[k - 1] + 150.0)
        return freqs

    def summary(self) -> dict:
        """The scalar parameters as a flat dict (for ``speakers.csv``)."""
        fields = {k: v for k, v in self.__dict__.items() if k != "segment_formant_scale"}
        fields["f0_min_hz"] = self.f0_min_hz
        fields["f0_max_hz"] = self.f0_max_hz
        return fields


def _stream_key(prefix: str) -> int:
    # A stable (not salted like hash()) integer per prefix, so "spk" and "bg" speakers are drawn from
    # independent random streams.
    return zlib.crc32(prefix.encode("utf-8"))


def make_speaker(index: int, *, seed: int = 0, prefix: str = "spk") -> SpeakerProfile:
    """Draw the voice of speaker number ``index`` (0-based) of population ``prefix``.

    The same ``(index, seed, prefix)`` always gives the same profile; different prefixes (``"spk"`` for evaluated
    speakers, ``"bg"`` for background speakers) draw from independent random streams.

    Parameters
    ----------
    index : int
        0-based speaker number; the id is ``f"{prefix}{index + 1:03d}"``.
    seed : int
        Corpus seed.
    prefix : str
        Id prefix and random-stream name; letters and digits only.

    Returns
    -------
    SpeakerProfile

    Examples
    --------
    >>> p = make_speaker(0, seed=0)
    >>> p.speaker_id, p.voice_type in VOICE_TYPES
    ('spk001', True)
    >>> make_speaker(0, seed=0) == p, make_speaker(1, seed=0) == p
    (True, False)
    >>> p.f0_min_hz < p.f0_median_hz < p.f0_max_hz
    True
    """
    index, seed = _check_nonnegative_int(index, "index"), _check_nonnegative_int(seed, "seed")
    if not isinstance(prefix, str) or not prefix.isalnum():
        raise ParameterError(f"prefix must be a non-empty alphanumeric string, got {prefix!r}")
    rng = np.random.default_rng([seed, _stream_key(prefix), index])
    names = list(VOICE_TYPES)
    probabilities = np.array([VOICE_TYPES[n][0] for n in names])
    voice_type = names[int(rng.choice(len(names), p=probabilities / probabilities.sum()))]
    _, f0_bounds, vtl_bounds = VOICE_TYPES[voice_type]
    vtl_scale = float(rng.uniform(*vtl_bounds))
    segment_scale = tuple((seg, tuple(float(x) for x in rng.normal(1.0, 0.06, size=3).clip(0.85, 1.15)))
                          for seg in _SEGMENTS)
    return SpeakerProfile(
        speaker_id=f"{prefix}{index + 1:03d}",
        voice_type=voice_type,
        f0_median_hz=float(np.exp(rng.uniform(*np.log(f0_bounds)))),
        f0_range_st=float(rng.uniform(2.0, 6.0)),
        vtl_scale=vtl_scale,
        segment_formant_scale=segment_scale,
        f4_hz=float(3400.0 * vtl_scale * rng.uniform(0.92, 1.08)),
        f5_hz=float(4400.0 * vtl_scale * rng.uniform(0.92, 1.08)),
        bandwidth_scale=float(rng.uniform(0.7, 1.6)),
        open_quotient=float(rng.uniform(0.4, 0.8)),
        speed_quotient=float(rng.uniform(1.5, 4.0)),
        spectral_tilt=float(rng.uniform(0.0, 0.7)),
        breathiness=float(rng.uniform(0.02, 0.35)),
        jitter=float(rng.uniform(0.003, 0.02)),
        shimmer=float(rng.uniform(0.02, 0.12)),
        speaking_rate=float(rng.uniform(0.8, 1.25)),
        declination_st=float(rng.uniform(0.5, 3.0)),
        fricative_scale=float(vtl_scale * rng.uniform(0.9, 1.1)),
    )


def _check_nonnegative_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ParameterError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)
