"""Adapters that give every kind of speaker model one interface for :class:`speakerid.SpeakerVerifier`.

A backend knows which background model file it needs (if any), how to turn a speaker's enrollment frames into a
speaker model (a dict of arrays), and how to score a test utterance against many speaker models at once. New
model families (Siamese, i-vector) register here with :func:`register_backend`.
"""

from __future__ import annotations

import numpy as np

from .exceptions import ConfigMismatchError, NotFittedError, ParameterError
from .models.gmm import DiagGMM
from .models.gmm_ubm import GMMUBM
from .models.speaker_gmm import SpeakerGMM

__all__ = ["Backend", "GMMUBMBackend", "SpeakerGMMBackend", "BACKENDS", "register_backend", "get_backend",
           "available_backends"]

UBM_FILE = "ubm.npz"


class Backend:
    """Interface of a verification backend (subclass and register to add one).

    Attributes
    ----------
    name : str
        Name on the command line (``--backend NAME``) and the store's folder for its speakers.
    speaker_class : str
        ``model_class`` written in the speaker files' headers.
    background_file : str or None
        The background model file it needs in the model directory, if any.
    default_threshold : float
        Decision threshold when none was given or saved.
    """

    name = ""
    speaker_class = ""
    background_file: str | None = None
    default_threshold = 0.0

    def __init__(self, params: dict | None = None):
        self.params = dict(params or {})
        self.background_hash = None

    def load_background(self, header: dict, arrays: dict) -> None:
        """Take the background model read from the store."""

    def check_ready(self) -> None:
        """Raise :class:`NotFittedError` when enrollment or scoring cannot work yet."""

    def enroll(self, frames_list) -> tuple[dict, dict]:
        """Return ``(arrays, params)`` of a speaker model made from a list of frame arrays."""
        raise NotImplementedError

    def prepare(self, frames: np.ndarray):
        """Per-test-utterance work shared by all the speakers it is scored against."""
        return frames

    def score(self, prepared, speaker_models: list[dict]) -> np.ndarray:
        """Scores (higher = more likely the same speaker) against each speaker model."""
        raise NotImplementedError

    def check_speaker_header(self, header: dict, path) -> None:
        """Refuse a speaker model made against another background model."""
        if self.background_file and header.get("background_hash") != self.background_hash:
            raise ConfigMismatchError(
                f"{path}: speaker {header.get('speaker')!r} was enrolled against another background model "
                f"(hash {header.get('background_hash')}, current {self.background_hash}); enroll it again")


class GMMUBMBackend(Backend):
    """MAP-adapted GMM-UBM, scored by the average log-likelihood ratio (top-C by default)."""

    name = "gmm-ubm"
    speaker_class = "GMMUBMSpeaker"
    background_file = UBM_FILE
    default_threshold = 0.0

    def __init__(self, params=None):
        super().__init__(params)
        self.model = None

    def load_background(self, header, arrays):
        params = {**header.get("params", {}), **self.params}
        self.model = GMMUBM.from_arrays(arrays, params)
        self.background_hash = self.model.ubm_hash_

    def check_ready(self):
        if self.model is None:
            raise NotFittedError("no UBM in the model directory: run 'speakerid train-ubm' first")

    def enroll(self, frames_list):
        self.check_ready()
        arrays = self.model.enroll(frames_list)
        return arrays, {"relevance_factor": float(self.model.relevance_factor), "adapt": self.model.adapt}

    def score(self, prepared, speaker_models):
        self.check_ready()
        return self.model.score(speaker_models, prepared)


class SpeakerGMMBackend(Backend):
    """Independent per-speaker EM GMMs; scores are normalised by the UBM when the directory has one."""

    name = "gmm"
    speaker_class = "SpeakerGMM"
    background_file = None
    default_threshold = 0.0

    def __init__(self, params=None):
        super().__init__(params)
        self.ubm = None
        self.estimator = SpeakerGMM(**{k: v for k, v in self.params.items()
                                       if k in SpeakerGMM._get_param_names()})

    def use_ubm(self, arrays) -> None:
        self.ubm = DiagGMM.from_params(arrays["weights"], arrays["means"], arrays["variances"])
        if "normalize" not in self.params:
            self.estimator.normalize = "ubm"

    def enroll(self, frames_list):
        arrays = self.estimator.enroll(frames_list)
        return arrays, {"n_components": int(arrays["means"].shape[0])}

    def score(self, prepared, speaker_models):
        return self.estimator.score(speaker_models, prepared, ubm=self.ubm)


BACKENDS: dict[str, type] = {}


def register_backend(cls: type) -> type:
    """Make a :class:`Backend` subclass available by its ``name`` (usable as a class decorator)."""
    BACKENDS[cls.name] = cls
    return cls


for _cls in (GMMUBMBackend, SpeakerGMMBackend):
    register_backend(_cls)


# Backends living in modules with heavier imports register themselves when first asked for.
_LAZY_BACKENDS = {"siamese": "speakerid.models.siamese", "mlp": "speakerid.models.mlp",
                  "ivector": "speakerid.models.ivector_system"}


def available_backends() -> list[str]:
    """Names accepted by :func:`get_backend` (``--backend``)."""
    return sorted(set(BACKENDS) | set(_LAZY_BACKENDS))


def get_backend(name: str) -> type:
    """The :class:`Backend` subclass registered as ``name``."""
    if name not in BACKENDS and name in _LAZY_BACKENDS:
        import importlib

        try:
            importlib.import_module(_LAZY_BACKENDS[name])
        except ModuleNotFoundError as exc:
            if exc.name != _LAZY_BACKENDS[name]:
                raise
    try:
        return BACKENDS[name]
    except KeyError:
        raise ParameterError(f"unknown backend {name!r}; choose from {', '.join(available_backends())}") from None
