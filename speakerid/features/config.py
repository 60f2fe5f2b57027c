"""FeatureConfig: every setting of the front end, in one JSON-serialisable dataclass with a stable hash.

A model remembers the FeatureConfig it was trained with; scoring with another is a
:class:`~speakerid.exceptions.ConfigMismatchError`, never a silent accuracy loss.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from speakerid.exceptions import ConfigMismatchError, ParameterError

__all__ = ["FeatureConfig", "FEATURE_NAMES"]

#: Frame-level features that :func:`speakerid.features.extract` knows, in the order they are stacked.
FEATURE_NAMES = ("mfcc", "logmel", "energy", "zcr", "rolloff", "flux", "chroma")

_WINDOWS = ("hamming", "hann", "povey", "rect")
_CMVN = ("none", "utterance", "sliding", "warp")
_VAD = ("none", "energy", "gmm")
_DENOISE = ("none", "specsub", "wiener")

# Field types, enforced (and numbers normalised) on construction so that equal configs have equal JSON and hash
# (``frame_length_ms=25`` and ``25.0``, ``n_ceps=np.int64(13)`` and ``13``) and the JSON is always valid.
#: Sample rates a model may use: telephone-band speech up to studio rates.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 4000, 192000
_INT_FIELDS = ("sample_rate", "n_fft", "n_mels", "n_ceps", "delta_order", "delta_window", "vad_min_frames",
               "cmvn_window_frames")
_FLOAT_FIELDS = ("frame_length_ms", "frame_shift_ms", "low_freq_hz", "high_freq_hz", "preemphasis", "lifter",
                 "vad_threshold_db", "dither", "min_speech_s")
_BOOL_FIELDS = ("use_energy", "cmvn_variance", "psf_compat", "rasta")
_STR_FIELDS = ("window", "vad", "cmvn", "denoise")
_OPTIONAL_FIELDS = ("n_fft", "high_freq_hz")
# Fields added after configurations were first saved, with the value that reproduces the older front end. A
# saved JSON without them means that value (not today's default), and they are written only when they differ from
# it, so older configurations keep their JSON and hash.
#: ``min_speech_s`` changes no frame, it only refuses files with less speech; so an older configuration gets the
#: current default (its hash is unchanged and its model refuses a 50 ms clip too).
_LATER_FIELDS = {"rasta": False, "denoise": "none", "min_speech_s": 0.1}


def _normalised(name, value):
    """``value`` as the plain Python type of field ``name``; :class:`ParameterError` when it is not one."""
    def bad(kind):
        raise ParameterError(f"FeatureConfig: {name} must be {kind}, got {value!r}")

    if value is None:
        return None if name in _OPTIONAL_FIELDS else bad("set (not None)")
    if name in _BOOL_FIELDS:
        return bool(value) if isinstance(value, (bool, np.bool_)) else bad("true or false")
    if name in _STR_FIELDS:
        return str(value) if isinstance(value, str) else bad("a string")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return bad("a number")
    if not math.isfinite(float(value)):
        return bad("finite")
    if name in _INT_FIELDS:
        if isinstance(value, numbers.Integral) or float(value).is_integer():
            return int(value)
        return bad("an integer")
    return float(value)


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of the feature front end.

    Parameters
    ----------
    sample_rate : int
        Audio is resampled to this rate before analysis (Hz), between 4000 and 192000.
    frame_length_ms, frame_shift_ms : float
        Analysis window length and hop.
    n_fft : int or None
        FFT size; ``None`` picks the next power of two >= the frame length.
    n_mels : int
        Number of mel filters.
    n_ceps : int
        Number of cepstral coefficients kept (including c0).
    low_freq_hz, high_freq_hz : float, float or None
        Filterbank edges; ``None`` is Nyquist.
    preemphasis : float
        Pre-emphasis coefficient (0 disables).
    window : {"hamming", "hann", "povey", "rect"}
        Analysis window.
    lifter : float
        Cepstral liftering coefficient (0 disables).
    use_energy : bool
        Replace c0 by the frame log-energy (as python_speech_features' ``appendEnergy``).
    features : tuple of str
        Frame-level features to stack, from :data:`FEATURE_NAMES`.
    delta_order : int
        0 (static only), 1 (+ delta) or 2 (+ delta + delta-delta); applied to MFCC and log-mel.
    delta_window : int
        Half-width N of the delta regression window.
    vad : {"none", "energy", "gmm"}
        Voice activity detection. "energy" drops frames whose log-energy is more than ``vad_threshold_db``
        below the utterance's loudest frame. "gmm" fits two Gaussians to the utterance's frame log-energies
        and keeps the frames that the louder (speech) component explains better (posterior >= 0.5) and that are
        within ``vad_threshold_db`` of the loudest frame: it adapts to the noise floor, where a fixed
        threshold keeps every frame of a noisy clip (:func:`speakerid.features.vad.gmm_vad_mask`).
    vad_threshold_db : float
    vad_min_frames : int
        If the VAD keeps fewer frames than this, the loudest ``vad_min_frames`` frames are kept instead
        (a short clip never ends up with zero frames).
    cmvn : {"none", "utterance", "sliding", "warp"}
        Normalisation of every stacked column after the VAD: "utterance" mean and variance (CMVN) over the
        utterance, "sliding" CMVN over a window of ``cmvn_window_frames``, "warp" feature warping (Pelecanos &
        Sridharan 2001): each value is replaced by the standard-normal quantile of its rank in a window of
        ``cmvn_window_frames`` (:func:`speakerid.features.warping.feature_warp`). An utterance shorter than the
        window is normalised over the whole utterance.
    cmvn_window_frames : int
        Window of sliding CMVN and of feature warping (frames; 301 frames is about 3 s).
    cmvn_variance : bool
        Normalise the variance too (not just the mean); sliding and utterance CMVN only.
    rasta : bool
        RASTA band-pass filtering (Hermansky & Morgan 1994) of the log-mel trajectories and of the frame
        log-energy used as c0, before the DCT and the deltas: removes slowly varying channel effects and fast
        frame-to-frame changes (:func:`speakerid.features.rasta.rasta_filter`). Not with ``psf_compat``.
    denoise : {"none", "specsub", "wiener"}
        Noise reduction on the power spectrum before the mel filterbank (MFCC and log-mel only): power spectral
        subtraction or a Wiener gain, the noise spectrum being the mean of the utterance's quietest frames
        (:func:`speakerid.features.denoise.denoise_power`). Not with ``psf_compat``.
    psf_compat : bool
        Reproduce ``python_speech_features.mfcc`` exactly (rectangular window unless another is set, its
        frame padding and integer-bin filterbank).
    dither : float
        Amplitude of deterministic dither noise added before analysis (0 disables).
    min_speech_s : float
        Least detected speech (s) a file must hold to be enrolled, verified, identified or scored: the frames
        within ``vad_threshold_db`` of the loudest (the GMM VAD's with ``vad="gmm"``) times the frame shift.
        Files with less, and files where :func:`speakerid.features.speech.check_speech` finds no speech (a tone,
        a static spectrum, steady noise), are refused with an AudioError (exit 3). The default 0.1 s keeps every
        one of the 3,000 FSDD digits (the shortest holds 0.10 s, the median 0.35 s); 0 disables the minimum.

    Examples
    --------
    >>> cfg = FeatureConfig(n_ceps=13)
    >>> FeatureConfig.from_json(cfg.to_json()) == cfg
    True
    >>> cfg.hash() == FeatureConfig(n_ceps=13).hash()
    True
    >>> cfg.hash() == FeatureConfig(n_ceps=20).hash()
    False
    """

    sample_rate: int = 16000
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    n_fft: int | None = 512
    n_mels: int = 26
    n_ceps: int = 20
    low_freq_hz: float = 0.0
    high_freq_hz: float | None = None
    preemphasis: float = 0.97
    window: str = "hamming"
    lifter: float = 22.0
    use_energy: bool = True
    features: tuple = field(default=("mfcc",))
    delta_order: int = 2
    delta_window: int = 2
    vad: str = "energy"
    vad_threshold_db: float = 30.0
    vad_min_frames: int = 20
    cmvn: str = "utterance"
    cmvn_window_frames: int = 301
    cmvn_variance: bool = True
    psf_compat: bool = False
    dither: float = 0.0
    rasta: bool = False
    denoise: str = "none"
    min_speech_s: float = 0.1

    def __post_init__(self):
        # Lists from JSON become tuples so the config stays hashable and comparable; one name may be given bare.
        features = (self.features,) if isinstance(self.features, str) else self.features
        try:
            features = tuple(features)
        except TypeError:
            raise ParameterError(f"FeatureConfig: features must be a tuple of names, got {self.features!r}") from None
        if not all(isinstance(name, str) for name in features):
            raise ParameterError(f"FeatureConfig: features must be names (strings), got {features!r}")
        object.__setattr__(self, "features", tuple(str(name) for name in features))
        for name in _INT_FIELDS + _FLOAT_FIELDS + _BOOL_FIELDS + _STR_FIELDS:
            object.__setattr__(self, name, _normalised(name, getattr(self, name)))
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise :class:`ParameterError` on an inconsistent setting."""
        def bad(msg):
            raise ParameterError(f"FeatureConfig: {msg}")

        if not MIN_SAMPLE_RATE <= int(self.sample_rate) <= MAX_SAMPLE_RATE:
            bad(f"sample_rate must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz (speech), "
                f"got {self.sample_rate}")
        if not 0 < self.frame_length_ms <= 1000:
            bad(f"frame_length_ms must be in (0, 1000], got {self.frame_length_ms}")
        if not 0 < self.frame_shift_ms <= self.frame_length_ms * 4:
            bad(f"frame_shift_ms must be positive, got {self.frame_shift_ms}")
        if self.n_fft is not None and self.n_fft < self.frame_length_samples:
            bad(f"n_fft={self.n_fft} is smaller than the frame ({self.frame_length_samples} samples)")
        if self.n_mels < 1:
            bad(f"n_mels must be >= 1, got {self.n_mels}")
        if not 1 <= self.n_ceps <= self.n_mels:
            bad(f"n_ceps must be between 1 and n_mels={self.n_mels}, got {self.n_ceps}")
        nyquist = self.sample_rate / 2
        high = nyquist if self.high_freq_hz is None else self.high_freq_hz
        if not 0 <= self.low_freq_hz < high <= nyquist:
            bad(f"need 0 <= low_freq_hz < high_freq_hz <= Nyquist ({nyquist:g} Hz), "
                f"got {self.low_freq_hz}..{self.high_freq_hz}")
        if self.window not in _WINDOWS:
            bad(f"window must be one of {_WINDOWS}, got {self.window!r}")
        if not self.features:
            bad("features must name at least one feature")
        unknown = [f for f in self.features if f not in FEATURE_NAMES]
        if unknown:
            bad(f"unknown feature(s) {unknown}; known: {', '.join(FEATURE_NAMES)}")
        if len(set(self.features)) != len(self.features):
            bad(f"features repeat a name: {self.features}")
        if self.delta_order not in (0, 1, 2):
            bad(f"delta_order must be 0, 1 or 2, got {self.delta_order}")
        if self.delta_window < 1:
            bad(f"delta_window must be >= 1, got {self.delta_window}")
        if self.vad not in _VAD:
            bad(f"vad must be one of {_VAD}, got {self.vad!r}")
        if self.vad_threshold_db <= 0:
            bad(f"vad_threshold_db must be positive (dB below the loudest frame), got {self.vad_threshold_db}")
        if self.vad_min_frames < 1:
            bad(f"vad_min_frames must be >= 1, got {self.vad_min_frames}")
        if self.cmvn not in _CMVN:
            bad(f"cmvn must be one of {_CMVN}, got {self.cmvn!r}")
        if self.denoise not in _DENOISE:
            bad(f"denoise must be one of {_DENOISE}, got {self.denoise!r}")
        if self.psf_compat and (self.rasta or self.denoise != "none"):
            bad("psf_compat reproduces python_speech_features exactly: it cannot be combined with rasta=True or "
                f"denoise={self.denoise!r}")
        if self.cmvn_window_frames < 3:
            bad(f"cmvn_window_frames must be >= 3, got {self.cmvn_window_frames}")
        if not 0 <= self.preemphasis < 1:
            bad(f"preemphasis must be in [0, 1), got {self.preemphasis}")
        if self.dither < 0:
            bad(f"dither must be >= 0, got {self.dither}")
        if not 0 <= self.min_speech_s <= 3600:
            bad(f"min_speech_s must be between 0 and 3600 seconds, got {self.min_speech_s}")

    # ------------------------------------------------------------------ derived sizes
    @property
    def frame_length_samples(self) -> int:
        return int(round(self.frame_length_ms * self.sample_rate / 1000.0))

    @property
    def frame_shift_samples(self) -> int:
        return max(1, int(round(self.frame_shift_ms * self.sample_rate / 1000.0)))

    @property
    def fft_size(self) -> int:
        if self.n_fft is not None:
            return int(self.n_fft)
        return 1 << (self.frame_length_samples - 1).bit_length()

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["features"] = list(self.features)
        for name, legacy in _LATER_FIELDS.items():
            if data[name] == legacy:
                del data[name]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        if not isinstance(data, dict):
            raise ParameterError(f"FeatureConfig: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"FeatureConfig: unknown field(s) {unknown} (made by a newer speakerid?)")
        data = {**_LATER_FIELDS, **data}
        try:
            return cls(**data)
        except TypeError as exc:
            raise ParameterError(f"FeatureConfig: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> FeatureConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ParameterError(f"FeatureConfig: not valid JSON ({exc})") from None
        return cls.from_dict(data)

    def replace(self, **changes) -> FeatureConfig:
        """Return a copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def hash(self) -> str:
        """A stable 16-hex-digit fingerprint of the settings (same on every machine and Python)."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()[:16]

    def check_same(self, other: FeatureConfig, what: str = "model") -> None:
        """Raise :class:`ConfigMismatchError` naming every field where ``other`` differs from this config."""
        if other == self:
            return
        mine, theirs = dataclasses.asdict(self), dataclasses.asdict(other)
        diffs = [f"{k}: {mine[k]!r} != {theirs[k]!r}" for k in mine if mine[k] != theirs.get(k)]
        raise ConfigMismatchError(f"feature configuration differs from the {what}'s: " + "; ".join(diffs))
