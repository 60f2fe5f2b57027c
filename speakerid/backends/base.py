"""The backend plug-in interface and registry: what every kind of speaker model declares and implements.

A backend declares the model-directory files it loads (``background_files``), whether it depends on the
directory's UBM (``uses_ubm``), how it is trained (:meth:`Backend.train`), how a speaker's enrollment frames become
a speaker model (a dict of arrays) and how a test utterance is scored against many speaker models at once.
:class:`speakerid.verifier.SpeakerVerifier`, batch scoring, the CLI and the web app only ever talk to this
interface. Adding a backend = one module that subclasses :class:`Backend` and decorates it with
:func:`register_backend`, plus one line in ``_BUILTIN_BACKENDS`` (third-party modules just call
:func:`register_backend`).
"""

from __future__ import annotations

import numpy as np

from speakerid._utils.files import trains_into
from speakerid.exceptions import ConfigMismatchError, ModelFormatError, NotFittedError, ParameterError

__all__ = ["Backend", "BACKENDS", "register_backend", "get_backend", "available_backends"]


class Backend:
    """Interface of a verification backend (subclass and register to add one).

    Attributes
    ----------
    name : str
        Name on the command line (``--backend NAME``) and the store's folder for its speakers.
    speaker_class : str
        ``model_class`` written in the speaker files' headers.
    background_files : tuple of str
        Model-directory files (names from :mod:`speakerid.store`) handed to :meth:`load_background`, in order,
        when present; :meth:`check_ready` says whether a missing one is fatal (so a file can be optional).
    background_required : bool
        Whether the default :meth:`check_ready` refuses to work until :meth:`load_background` has set ``model``.
    uses_ubm : bool
        Whether the backend depends on the directory's UBM (``ubm.npz``), to score or to train.
    train_command : str or None
        The CLI command that trains the backend (named in "train it first" messages).
    trainer : callable or None
        ``trainer(model_dir, manifest, **params) -> dict``: what :meth:`train` runs (e.g.
        :func:`~speakerid.backends.gmm_ubm.train_ubm`); ``None``: nothing to train (or override :meth:`train`).
    default_threshold : float
        Decision threshold when none was given or saved.
    threshold_meaning : str
        What :attr:`default_threshold` means (said with every decision that uses it).
    has_embedding : bool
        Whether :meth:`embed` gives a fixed-length vector per utterance (``speakerid embed``).
    """

    name = ""
    speaker_class = ""
    background_files: tuple[str, ...] = ()
    background_required = True
    uses_ubm = False
    train_command: str | None = None
    trainer = None
    default_threshold = 0.0
    threshold_meaning = "an a-priori value of the backend (not chosen on data; not a probability)"

    def __init__(self, params: dict | None = None):
        self.params = dict(params or {})
        self.background_hash = None
        self.model = None          # the background model, once load_background has read it

    def threshold_key(self) -> str:
        """Under which name ``thresholds.json`` keeps this backend's saved threshold: its name, unless a scoring
        parameter puts its scores on another scale (see :class:`~speakerid.backends.ivector.IVectorBackend`)."""
        return self.name

    # ------------------------------------------------------------------ training
    @classmethod
    @trains_into(1, "a background-model training (train-ubm, train-ivector, ...)")
    def train(cls, model_dir, manifest, *, feature_config=None, n_jobs=1, random_state=0, verbose=False,
              force: bool = False, **params) -> dict:
        """Train the backend's background model(s) on a ``speaker,path`` manifest and save them in ``model_dir``.

        Parameters
        ----------
        model_dir : str or os.PathLike
            The model directory (created when needed).
        manifest : str, os.PathLike or pandas.DataFrame
            Background speakers (keep them disjoint from the evaluated ones).
        feature_config : FeatureConfig, optional
            For a new directory; an existing one keeps its own (a different one is a ConfigMismatchError).
        n_jobs : int
            Processes for feature extraction (see :func:`speakerid._utils.validation.resolve_jobs`).
        random_state : int
            Seeds everything random in the training (noise, initialisation, sampling).
        verbose : bool
            Progress lines on stderr.
        force : bool
            Retrain a directory in which speakers are enrolled against the model this replaces: once the new model
            is saved, those enrollments (which it could no longer score) are removed, and listed in the result's
            ``removed_enrollments``. Without it such a directory is refused before anything is read or written.
        **params
            The backend's own hyper-parameters.

        Returns
        -------
        dict
            At least ``model``: the path of the saved file; then what the backend measured.

        Raises
        ------
        ParameterError
            When the backend has nothing to train, or a parameter is out of range; when speakers are enrolled
            against the model it would replace and ``force`` is not set (naming them and what ``force`` drops).
        """
        if cls.trainer is None:
            raise ParameterError(f"the {cls.name} backend has nothing to train: enroll speakers directly")
        orphans = _dependent_enrollments(model_dir, cls.background_files)
        if orphans and not force:
            raise ParameterError(_orphan_message(model_dir, cls, orphans))
        result = cls.trainer(model_dir, manifest, feature_config=feature_config, n_jobs=n_jobs,
                             random_state=random_state, verbose=verbose, **params)
        if orphans:                     # the new model is saved: drop what it cannot score
            from speakerid.store import ModelStore

            store = ModelStore(model_dir)
            for backend, speakers in orphans.items():
                store.remove_speakers(speakers, backend=backend)
        result["removed_enrollments"] = orphans
        return result

    # ------------------------------------------------------------------ the model directory
    def load_background(self, name: str, header: dict, arrays: dict) -> None:
        """Take the background file ``name`` (one of :attr:`background_files`) as read from the store."""

    def check_ready(self) -> None:
        """Raise :class:`NotFittedError` when enrollment or scoring cannot work yet (by default: a required
        background model was not loaded)."""
        if self.background_required and self.background_files and self.model is None:
            how = f"run 'speakerid {self.train_command}'" if self.train_command else f"train the {self.name} backend"
            raise NotFittedError(f"no {' or '.join(self.background_files)} in the model directory: {how} first")

    def check_speaker_header(self, header: dict, path) -> None:
        """Refuse a speaker model made against another background model."""
        if header.get("background_hash") != self.background_hash:
            raise ConfigMismatchError(
                f"{path}: speaker {header.get('speaker')!r} was enrolled against another background model "
                f"(hash {header.get('background_hash')}, current {self.background_hash}); enroll it again (enroll --replace)")

    @staticmethod
    def check_model_class(name: str, header: dict, expected: str) -> None:
        """Refuse a background file holding another kind of model (:class:`ModelFormatError`)."""
        if header.get("model_class") != expected:
            raise ModelFormatError(f"{name} holds a {header.get('model_class')!r} model, expected {expected!r}")

    # ------------------------------------------------------------------ enrollment and scoring
    def enroll(self, frames_list) -> tuple[dict, dict]:
        """Return ``(arrays, params)`` of a speaker model made from a list of (n_frames, n_dims) arrays."""
        raise NotImplementedError

    def add_to(self, arrays: dict, frames_list) -> tuple[dict, dict]:
        """``(arrays, params)`` of an enrolled speaker model (``arrays``, from :meth:`enroll` or an earlier
        :meth:`add_to`) with more sessions added: the model :meth:`enroll` makes from all the sessions at once
        (float tolerance), from the statistics the model keeps. Backends that cannot raise ParameterError."""
        raise ParameterError(f"the {self.name} backend cannot add sessions to an enrolled speaker (its model is "
                             "not made from statistics that add up): enroll the speaker again from all the files "
                             "(--replace)")

    def prepare(self, frames: np.ndarray):
        """Per-test-utterance work shared by all the speakers it is scored against."""
        return frames

    def score(self, prepared, speaker_models: list[dict]) -> np.ndarray:
        """Scores (higher = more likely the same speaker), shape (n_speakers,), against each speaker model."""
        raise NotImplementedError

    has_embedding = False

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """The fixed-length representation of one utterance, shape (dim,), for ``speakerid embed`` (backends
        with one set :attr:`has_embedding` and override this)."""
        raise ParameterError(f"the {self.name} backend has no fixed-length representation")


BACKENDS: dict[str, type] = {}


def register_backend(cls: type) -> type:
    """Make a :class:`Backend` subclass available by its ``name`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Backend) and cls.name):
        raise ParameterError(f"register_backend takes a named Backend subclass, got {cls!r}")
    BACKENDS[cls.name] = cls
    return cls


def _dependent_enrollments(model_dir, files) -> dict:
    """``{backend: [speakers]}``: the speakers enrolled in ``model_dir`` with a backend that needs one of the
    background ``files`` (its speaker models are tied to that model's hash)."""
    from pathlib import Path

    from speakerid.store import ModelStore

    if not (Path(model_dir) / ModelStore.SPEAKER_DIR).is_dir():
        return {}
    store = ModelStore(model_dir)
    out = {}
    for backend in store.backends():
        try:
            kind = get_backend(backend)
        except ParameterError:          # a plug-in that is not installed here: its speakers are not ours to judge
            continue
        if kind.background_required and set(kind.background_files) & set(files):
            out[backend] = sorted(store.speakers(backend))
    return {b: s for b, s in out.items() if s}


def _orphan_message(model_dir, cls, orphans: dict) -> str:
    names = [s for speakers in orphans.values() for s in speakers]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (f"{model_dir}: {len(names)} speaker(s) are enrolled against its {' and '.join(cls.background_files)} "
            f"({shown}; backend {', '.join(orphans)}); retraining replaces it and they could no longer be scored. "
            "Use --force to retrain and remove those enrollments (enroll them again afterwards), or train into a "
            "new model directory")


# Where each built-in backend lives: its module registers it when first asked for (one line per backend).
_BUILTIN_BACKENDS = {"gmm-ubm": "speakerid.backends.gmm_ubm", "gmm": "speakerid.backends.gmm_ubm",
                     "ivector": "speakerid.backends.ivector", "siamese": "speakerid.backends.siamese",
                     "mlp": "speakerid.backends.mlp"}


def available_backends() -> list[str]:
    """Names accepted by :func:`get_backend` (``--backend``)."""
    return sorted(set(BACKENDS) | set(_BUILTIN_BACKENDS))


def get_backend(name: str) -> type:
    """The :class:`Backend` subclass registered as ``name``; :class:`ParameterError` for an unknown name."""
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
