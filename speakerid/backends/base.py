"""Adapters that give every kind of speaker model one interface for :class:`speakerid.SpeakerVerifier`.

A backend knows which background model file it needs (if any), how to turn a speaker's enrollment frames into a
speaker model (a dict of arrays), and how to score a test utterance against many speaker models at once. New
model families (Siamese, i-vector) register here with :func:`register_backend`.
"""

from __future__ import annotations

import numpy as np

from speakerid.exceptions import ConfigMismatchError, ParameterError

__all__ = ["Backend", "BACKENDS", "register_backend", "get_backend",
           "available_backends"]



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






BACKENDS: dict[str, type] = {}


def register_backend(cls: type) -> type:
    """Make a :class:`Backend` subclass available by its ``name`` (usable as a class decorator)."""
    BACKENDS[cls.name] = cls
    return cls


# Where each built-in backend lives: its module registers it when first asked for (one line per backend).
_BUILTIN_BACKENDS = {"gmm-ubm": "speakerid.backends.gmm_ubm", "gmm": "speakerid.backends.gmm_ubm",
                     "ivector": "speakerid.backends.ivector", "siamese": "speakerid.backends.siamese",
                     "mlp": "speakerid.backends.mlp"}


def available_backends() -> list[str]:
    """Names accepted by :func:`get_backend` (``--backend``)."""
    return sorted(set(BACKENDS) | set(_BUILTIN_BACKENDS))


def get_backend(name: str) -> type:
    """The :class:`Backend` subclass registered as ``name``."""
    if name not in BACKENDS and name in _BUILTIN_BACKENDS:
        import importlib

        try:
            importlib.import_module(_BUILTIN_BACKENDS[name])
        except ModuleNotFoundError as exc:
            if exc.name != _BUILTIN_BACKENDS[name]:
                raise
    try:
        return BACKENDS[name]
    except KeyError:
        raise ParameterError(f"unknown backend {name!r}; choose from {', '.join(available_backends())}") from None
