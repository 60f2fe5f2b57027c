"""Model files and model directories: ``.npz`` arrays plus a JSON header; never pickle.

A model file is a NumPy ``.npz`` archive whose arrays are the model's parameters and whose ``__header__`` entry is
a UTF-8 JSON document (stored as a ``uint8`` array) holding the format version, the speakerid version, the model
class, its hyper-parameters, the :class:`~speakerid.features.config.FeatureConfig`, the UBM hash for adapted
models and the creation time. Files are read with ``allow_pickle=False`` and written atomically (temp file +
``os.replace``), so a crash or a concurrent reader never sees half a model.

A model directory (:class:`ModelStore`) holds ``ubm.npz`` (or another background model) and one file per
enrolled speaker under ``speakers/``. Speaker ids are validated (no path separators, ``..``, control characters;
unicode allowed) and mapped to collision-free file names, so ids differing only by case stay distinct even on a
case-insensitive file system.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io as _io
import json
import re
import unicodedata
import zipfile
from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write_bytes
from speakerid._utils.hashing import arrays_hash
from speakerid._version import __version__
from speakerid.data.manifests import validate_speaker_id
from speakerid.exceptions import ConfigMismatchError, ModelFormatError, ParameterError, UnknownSpeakerError
from speakerid.features.config import FeatureConfig

__all__ = ["FORMAT_VERSION", "save_model_file", "load_model_file", "arrays_hash", "validate_speaker_id",
           "speaker_file_name", "ModelStore"]

#: Version of the on-disk layout. Files from a newer version are refused with a clear message.
FORMAT_VERSION = 1
_MAGIC = "speakerid-model"
_HEADER_KEY = "__header__"
_ALLOWED_DTYPES = ("f", "i", "u", "b", "U")
#: Backend whose speakers are meant when none is named.
DEFAULT_BACKEND = "gmm-ubm"
_BACKEND_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")

#: Every file name of a model directory (the store owns them; backends declare which ones they load).
#: The directory's :class:`~speakerid.features.config.FeatureConfig`, written by the first writer.
FEATURES_FILE = "features.json"
#: Saved decision thresholds, one per backend.
THRESHOLDS_FILE = "thresholds.json"
#: The model directory's score-normalisation cohort: a ``speaker,path`` manifest with absolute paths (prepared as
#: ``cohort-<backend>.npz``, checked and rebuilt by :mod:`speakerid.backends._cohort`).
COHORT_FILE = "cohort.csv"
#: Background models: the UBM (GMM-UBM, optional for per-speaker GMMs), the i-vector system, the neural nets.
UBM_FILE = "ubm.npz"
IVECTOR_FILE = "ivector.npz"
SIAMESE_FILE = "siamese.npz"
MLP_FILE = "mlp.npz"
#: A fused system (``speakerid train``): its systems' model directories under ``systems/``, the calibrated fusion.
FUSION_FILE, SYSTEMS_DIR = "fusion.json", "systems"
#: In every folder of the model shipped inside the package (:mod:`speakerid.pretrained`): such a folder is never
#: written (its copy in the user's speaker store is, and lacks the marker).
SHIPPED_MARKER = "SHIPPED.txt"


def save_model_file(path, arrays: dict, header: dict) -> Path:
    """Write ``arrays`` and a JSON ``header`` to ``path`` atomically; return the path.

    The header gets ``format``, ``format_version``, ``speakerid_version`` and ``created_at`` added (unless
    given). Object arrays are refused: they would need pickle to load.
    """
    path = Path(path)
    full = {"format": _MAGIC, "format_version": FORMAT_VERSION, "speakerid_version": __version__,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    full.update(header)
    full["arrays"] = {}
    payload = {}
    for name, value in arrays.items():
        if name == _HEADER_KEY:
            raise ParameterError(f"array name {_HEADER_KEY!r} is reserved")
        value = np.asarray(value)
        if value.dtype.kind not in _ALLOWED_DTYPES:
            raise ParameterError(f"array {name!r} has dtype {value.dtype}, which cannot be saved without pickle")
        payload[name] = value
        full["arrays"][name] = {"dtype": value.dtype.str, "shape": list(value.shape)}
    text = json.dumps(full, sort_keys=True, ensure_ascii=False)
    payload[_HEADER_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    buffer = _io.BytesIO()
    np.savez(buffer, **payload)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_model_file(path, expected_class: str | tuple | None = None):
    """Read a model file written by :func:`save_model_file`; return ``(header, arrays)``.

    Checks the header (magic, format version, model class) and that every array has the dtype and shape the
    header announces. Any problem is a :class:`ModelFormatError` naming the file; nothing is modified.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such model file")
    try:
        # Our own handle: np.load leaks the file it opened when a truncated archive fails to parse.
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            names = list(archive.files)
            if _HEADER_KEY not in names:
                raise ModelFormatError(f"{path}: not a speakerid model (no header)")
            header = json.loads(bytes(archive[_HEADER_KEY]).decode("utf-8"))
            arrays = {name: archive[name] for name in names if name != _HEADER_KEY}
    except ModelFormatError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ModelFormatError(f"{path}: holds pickled objects, which speakerid never loads") from None
        raise ModelFormatError(f"{path}: corrupt model file ({' '.join(str(exc).split())})") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, UnicodeDecodeError, json.JSONDecodeError,
            zipfile.LargeZipFile, NotImplementedError, RuntimeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ModelFormatError(f"{path}: corrupt or truncated model file ({reason})") from None
    _check_header(path, header, arrays, expected_class)
    return header, arrays


def _check_header(path: Path, header, arrays: dict, expected_class) -> None:
    if not isinstance(header, dict) or header.get("format") != _MAGIC:
        raise ModelFormatError(f"{path}: not a speakerid model (bad header)")
    version = header.get("format_version")
    if not isinstance(version, int):
        raise ModelFormatError(f"{path}: header has no valid format_version")
    if version > FORMAT_VERSION:
        raise ModelFormatError(f"{path}: model format version {version} was written by a newer speakerid "
                               f"({header.get('speakerid_version', '?')}); this is {__version__}, which reads "
                               f"up to version {FORMAT_VERSION}. Upgrade speakerid.")
    if version < 1:
        raise ModelFormatError(f"{path}: unknown model format version {version}")
    if expected_class is not None:
        expected = (expected_class,) if isinstance(expected_class, str) else tuple(expected_class)
        if header.get("model_class") not in expected:
            raise ModelFormatError(f"{path}: holds a {header.get('model_class')!r} model, expected "
                                   f"{' or '.join(repr(e) for e in expected)}")
    declared = header.get("arrays")
    if not isinstance(declared, dict) or set(declared) != set(arrays):
        raise ModelFormatError(f"{path}: the arrays in the file do not match its header")
    for name, spec in declared.items():
        value = arrays[name]
        try:
            same = np.dtype(spec["dtype"]) == value.dtype and list(spec["shape"]) == list(value.shape)
        except (TypeError, KeyError, ValueError):
            same = False
        if not same:
            raise ModelFormatError(f"{path}: array {name!r} is {value.dtype}{list(value.shape)}, "
                                   f"the header says {spec}")
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise ModelFormatError(f"{path}: array {name!r} holds NaN or infinite values")


# --------------------------------------------------------------------------------------------- speaker ids

def speaker_file_name(speaker: str) -> str:
    """A safe, collision-free file name for a (validated) speaker id.

    A readable ASCII slug plus a hash of the exact id, so ``Bob`` and ``bob`` get different files even where the
    file system ignores case.

    Examples
    --------
    >>> speaker_file_name("spk001") != speaker_file_name("SPK001")
    True
    >>> speaker_file_name("spk001").startswith("spk001-")
    True
    """
    speaker = validate_speaker_id(speaker)
    ascii_text = unicodedata.normalize("NFKD", speaker).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_text).strip("_").lower()[:40] or "speaker"
    digest = hashlib.sha256(speaker.encode("utf-8")).hexdigest()[:12]
    return f"{slug}-{digest}.npz"


# --------------------------------------------------------------------------------------------- the directory

class ModelStore:
    """A model directory: one background model file plus one file per enrolled speaker.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The folder (created on first write).

    Notes
    -----
    Writers take an exclusive lock (:mod:`filelock`) on ``.lock`` in the folder for read-modify-write operations;
    each file is replaced atomically, so readers need no lock and never see a torn file. Hidden ``.*.tmp``
    files left by a crash are ignored (and cleaned by :meth:`clean_temp_files`).
    """

    SPEAKER_DIR = "speakers"

    def __init__(self, model_dir):
        self.model_dir = Path(model_dir)
        self._file_lock = None

    def __repr__(self) -> str:
        return f"ModelStore({str(self.model_dir)!r})"

    # --- generic files
    def path(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise ParameterError(f"invalid model file name {name!r}")
        return self.model_dir / name

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def _make_dir(self) -> None:
        if (self.model_dir / SHIPPED_MARKER).is_file():
            raise ParameterError(f"{self.model_dir}: the model shipped inside the speakerid package is never "
                                 "written: give no --model-dir (your speaker store over it), or copy it to a folder "
                                 "of your own")
        try:
            self.model_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ParameterError(f"{self.model_dir}: cannot be a model directory (it, or a folder above it, is "
                                 "a file)") from None

    def save(self, name: str, arrays: dict, header: dict) -> Path:
        self._make_dir()
        return save_model_file(self.path(name), arrays, header)

    def load(self, name: str, expected_class=None):
        path = self.path(name)
        if not path.is_file():
            raise ModelFormatError(f"{path}: no such model file in {self.model_dir}")
        return load_model_file(path, expected_class)

    # --- the directory's feature configuration
    def feature_config(self, requested: FeatureConfig | None = None,
                       default: FeatureConfig | None = None) -> FeatureConfig:
        """The directory's :class:`FeatureConfig`: the saved one, else ``requested``, else ``default`` (or defaults).

        Raises
        ------
        ModelFormatError
            When ``features.json`` is unreadable.
        ConfigMismatchError
            When ``requested`` differs from the saved configuration (a directory keeps the one it was built with).
        """
        saved = self.model_dir / FEATURES_FILE
        if not saved.is_file():
            return requested or default or FeatureConfig()
        try:
            config = FeatureConfig.from_json(saved.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ParameterError) as exc:
            raise ModelFormatError(f"{saved}: unreadable feature configuration ({exc})") from None
        if requested is not None:
            config.check_same(requested, f"model directory {self.model_dir}")
        return config

    def save_feature_config(self, config: FeatureConfig) -> None:
        """Write ``features.json`` unless the directory already has one (hold :meth:`lock` around it)."""
        path = self.model_dir / FEATURES_FILE
        if not path.is_file():
            self._make_dir()
            atomic_write_bytes(path, config.to_json().encode("utf-8"))

    def save_background(self, name: str, arrays: dict, header: dict, config: FeatureConfig) -> Path:
        """Save a background model file (and the feature configuration it was trained with), under the lock."""
        with self.lock():
            self.save_feature_config(config)
            return self.save(name, arrays, header)

    def save_cohort(self, speakers, paths, conditions=None) -> Path:
        """Write the score-normalisation cohort (``cohort.csv``: ``speaker,path`` rows, paths made absolute; with
        ``conditions``, a ``condition`` column: the degradation applied to the file before its features)."""
        import pandas as pd

        rows = pd.DataFrame({"speaker": list(speakers), "path": [str(Path(p).resolve()) for p in paths]})
        if conditions is not None:
            rows["condition"] = list(conditions)
        with self.lock():
            atomic_write_bytes(self.model_dir / COHORT_FILE, rows.to_csv(index=False, lineterminator="\n").encode())
        return self.model_dir / COHORT_FILE

    def threshold(self, backend: str, scale: str) -> tuple:
        """``(value, how chosen)`` of the threshold for scores on ``scale`` (None: unsaved; other scale: refused)."""
        entry = self._thresholds().get(backend)       # a bare number: saved before provenance was recorded
        entry = {"threshold": entry} if isinstance(entry, (int, float)) and not isinstance(entry, bool) else entry
        if not isinstance(entry, dict) or not isinstance(entry.get("threshold"), (int, float)):
            return None, f"the default; {scale} scores"
        if entry.get("scale", scale) != scale:
            raise ConfigMismatchError(f"{self.model_dir / THRESHOLDS_FILE}: the {backend} threshold was set for "
                                      f"{entry['scale']!r} scores, these are {scale!r}; set it again")
        value, how = float(entry["threshold"]), entry.get("how")
        if not isinstance(how, dict):
            return value, f"saved; {scale} scores"
        rates = (f" (FAR {100 * how['far']:.2f} %, FRR {100 * how['frr']:.2f} %)"
                 if isinstance(how.get("far"), float) and isinstance(how.get("frr"), float) else "")
        return value, f"set-threshold {how.get('criterion', '?')} on {how.get('scores', '?')}{rates}; {scale} scores"

    def save_threshold(self, backend: str, value: float, scale: str, how: dict | None = None) -> None:
        """Save ``backend``'s threshold for scores on ``scale`` (and ``how`` it was chosen) in thresholds.json."""
        with self.lock():
            data = {**self._thresholds(), backend: json.loads(json.dumps(
                {"threshold": float(value), "scale": scale, **({} if how is None else {"how": how})}))}
            atomic_write_bytes(self.model_dir / THRESHOLDS_FILE, json.dumps(data, indent=1, sort_keys=True).encode())

    def _thresholds(self) -> dict:   # an unreadable thresholds.json counts as empty
        try:
            data = json.loads((self.model_dir / THRESHOLDS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    # --- speakers (one folder per backend, so several kinds of speaker model can share a directory)
    def speaker_dir(self, backend: str = DEFAULT_BACKEND) -> Path:
        if not isinstance(backend, str) or not _BACKEND_NAME.fullmatch(backend):
            raise ParameterError(f"invalid backend name {backend!r}")
        return self.model_dir / self.SPEAKER_DIR / backend

    def speaker_path(self, speaker: str, backend: str = DEFAULT_BACKEND) -> Path:
        return self.speaker_dir(backend) / speaker_file_name(speaker)

    def has_speaker(self, speaker: str, backend: str = DEFAULT_BACKEND) -> bool:
        return self.speaker_path(speaker, backend).is_file()

    def save_speaker(self, speaker: str, arrays: dict, header: dict, backend: str = DEFAULT_BACKEND) -> Path:
        speaker = validate_speaker_id(speaker)
        path = self.speaker_path(speaker, backend)
        self._make_dir()
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_model_file(path, arrays, {**header, "speaker": speaker, "backend": backend})

    def load_speaker(self, speaker: str, backend: str = DEFAULT_BACKEND, expected_class=None):
        speaker = validate_speaker_id(speaker)
        path = self.speaker_path(speaker, backend)
        if not path.is_file():
            known = self.speakers(backend)
            hint = (f"; enrolled: {', '.join(known[:10])}{' ...' if len(known) > 10 else ''}" if known
                    else "; no speaker is enrolled")
            raise UnknownSpeakerError(f"speaker {speaker!r} is not enrolled in {self.model_dir} "
                                      f"(backend {backend}){hint}")
        header, arrays = load_model_file(path, expected_class)
        if header.get("speaker") != speaker:
            raise ModelFormatError(f"{path}: holds speaker {header.get('speaker')!r}, expected {speaker!r}")
        return header, arrays

    def update_speaker_header(self, speaker: str, backend: str, updates: dict) -> Path:
        """Rewrite a speaker's file with ``updates`` merged into its header (same arrays), under the lock."""
        with self.lock():
            header, arrays = self.load_speaker(speaker, backend)
            return save_model_file(self.speaker_path(speaker, backend), arrays, {**header, **updates})

    def remove_speaker(self, speaker: str, backend: str = DEFAULT_BACKEND) -> None:
        self.remove_speakers([speaker], backend)

    def remove_speakers(self, speakers, backend: str = DEFAULT_BACKEND) -> None:
        """Remove several enrolled speakers, all or none: an unknown one (all are named) removes nobody."""
        speakers = list(dict.fromkeys(validate_speaker_id(s) for s in speakers))
        with self.lock():
            paths = [self.speaker_path(s, backend) for s in speakers]
            unknown = [s for s, p in zip(speakers, paths) if not p.is_file()]
            if unknown:
                raise UnknownSpeakerError(f"speaker(s) {', '.join(map(repr, unknown))} not enrolled in "
                                          f"{self.model_dir} (backend {backend}); nobody was removed")
            for path in paths:
                path.unlink()

    def speaker_files(self, backend: str = DEFAULT_BACKEND) -> list[Path]:
        folder = self.speaker_dir(backend)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.glob("*.npz") if not p.name.startswith("."))

    def speakers(self, backend: str = DEFAULT_BACKEND) -> list[str]:
        """Ids of the enrolled speakers, sorted (read from the file headers; unreadable files are skipped)."""
        return sorted(h["speaker"] for h in self.speaker_headers(backend))

    def speaker_headers(self, backend: str = DEFAULT_BACKEND) -> list[dict]:
        """The headers of the enrolled speakers' files (with ``file``).

        Unreadable files, and files whose name is not the one their speaker id maps to (copied or renamed by
        hand: :meth:`load_speaker` could not find them), are skipped.
        """
        headers = []
        for path in self.speaker_files(backend):
            try:
                header, _ = load_model_file(path)
                if path.name != speaker_file_name(header.get("speaker")):
                    continue
            except (ModelFormatError, ParameterError):
                continue
            headers.append({**header, "file": path.name})
        return headers

    def enrolled_speakers(self) -> set[str]:
        """Ids of the speakers enrolled with any backend."""
        return {s for backend in self.backends() for s in self.speakers(backend)}

    def backends(self) -> list[str]:
        """Backends that have at least one speaker file in this directory."""
        root = self.model_dir / self.SPEAKER_DIR
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir()
                      if p.is_dir() and _BACKEND_NAME.fullmatch(p.name) and any(p.glob("*.npz")))

    # --- locking and crash leftovers
    @contextlib.contextmanager
    def lock(self):
        """Hold an exclusive lock on the directory (blocks until other writers release it).

        The lock is :class:`filelock.FileLock` on ``<model_dir>/.lock`` (``fcntl`` on POSIX, ``msvcrt`` on
        Windows), one per store and re-entrant, so nested writes of one store do not wait for themselves.
        """
        self._make_dir()
        if self._file_lock is None:
            from filelock import FileLock

            self._file_lock = FileLock(str(self.model_dir / ".lock"))
        with self._file_lock:
            yield self

    def clean_temp_files(self) -> int:
        """Delete hidden ``.*.tmp`` files left by interrupted writes; return how many."""
        count = 0
        if self.model_dir.is_dir():
            for tmp in self.model_dir.rglob(".*.tmp"):
                if tmp.is_file():
                    with contextlib.suppress(OSError):
                        tmp.unlink()
                        count += 1
        return count


def check_feature_config(header: dict, config: FeatureConfig, what: str) -> None:
    """Raise :class:`ConfigMismatchError` if a model header's feature configuration differs from ``config``."""
    saved = header.get("feature_config")
    if saved is None:
        raise ModelFormatError(f"{what}: the model header holds no feature configuration")
    try:
        saved_config = FeatureConfig.from_dict(saved)
    except ParameterError as exc:
        raise ModelFormatError(f"{what}: bad feature configuration in the header ({exc})") from None
    if saved_config != config:
        try:
            config.check_same(saved_config, what)
        except ConfigMismatchError as exc:
            raise ConfigMismatchError(str(exc)) from None
