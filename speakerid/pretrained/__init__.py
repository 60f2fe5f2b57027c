"""The model shipped inside the package, and each user's speaker store on top of it.

``speakerid/pretrained/default/`` is a fused model directory made by ``speakerid train`` on all the shared
speech, wideband (16 kHz) with its narrowband (8 kHz) branch, packed by :mod:`speakerid.pretrained.pack` and
described by ``MODEL_CARD.md`` beside it (``speakerid model-card``). It is rebuilt by ``recipes/pretrained/run.sh``.

Commands given no ``--model-dir`` (``enroll``, ``verify``, ``identify``, ``speakers``, ``remove``, ``score``,
``segments``, ``serve``) and :class:`Verifier` use the *speaker store*: a model directory under the user data
directory (``platformdirs.user_data_dir("speakerid")``, or the folder named by the environment variable
:data:`STORE_ENV`), one sub-folder per shipped model build, made on first use as a copy of the shipped model.
Speakers enrolled under one build are never scored by another: after an upgrade the new build's folder starts
empty, and a speaker found only under an older build is refused with the command that enrolls it again
(:func:`check_speaker`); the old folder is left as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

from speakerid.exceptions import ConfigMismatchError, NotFittedError, ParameterError, SpeakerIDError
from speakerid.store import FUSION_FILE, SHIPPED_MARKER

__all__ = ["STORE_ENV", "SHIPPED_DIR", "MODEL_CARD", "shipped_dir", "shipped_info", "store_root", "store_model_dir", "user_model_dir",
           "older_enrollments", "check_speaker", "warn_older", "model_card", "Verifier"]

#: Environment variable naming the folder of the speaker store (default: the platform's user data folder).
STORE_ENV = "SPEAKERID_HOME"
HERE = Path(__file__).resolve().parent
#: The shipped fused model directory and its model card.
SHIPPED_DIR, MODEL_CARD = HERE / "default", HERE / "MODEL_CARD.md"


def shipped_dir() -> Path:
    """The shipped model directory; :class:`NotFittedError` when this installation has none."""
    if not (SHIPPED_DIR / FUSION_FILE).is_file():
        raise NotFittedError(f"this installation of speakerid has no shipped model ({SHIPPED_DIR} is missing): "
                             "give --model-dir, or rebuild it with recipes/pretrained/run.sh")
    return SHIPPED_DIR


def shipped_info(model_dir=None) -> dict:
    """The ``pretrained`` block of a shipped model's ``fusion.json`` (name, build, recipe hash, figures)."""
    path = Path(model_dir or shipped_dir()) / FUSION_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8")).get("pretrained")
    except (OSError, ValueError):
        info = None
    return info if isinstance(info, dict) else {}


def _build_name(info: dict) -> str:
    return f"{info.get('name', 'default')}-{str(info.get('build', 'unknown'))[:12]}"


def store_root() -> Path:
    """The speaker store's folder: ``$SPEAKERID_HOME`` when set, else the user data folder (``platformdirs``)."""
    value = os.environ.get(STORE_ENV, "").strip()
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("speakerid", appauthor=False))


def store_model_dir(root=None) -> Path:
    """Where the speaker store (under ``root``, default :func:`store_root`) of the shipped build is."""
    return Path(root or store_root()) / "models" / _build_name(shipped_info(shipped_dir()))


def user_model_dir(root=None) -> Path:
    """The speaker store's model directory for the shipped build, made (copied from the package) on first use;
    ``root`` replaces :func:`store_root` (e.g. a demo's own store). Files of the shipped model missing from the
    store (deleted by hand, a copy interrupted) are copied again, with a warning; enrolled speakers are kept.

    Raises
    ------
    NotFittedError
        No shipped model in this installation.
    ParameterError
        The store's folder cannot be made or written (the message names it and :data:`STORE_ENV`).
    """
    source, target = shipped_dir(), store_model_dir(root)
    missing = _missing(source, target)
    if not missing:
        return target
    from filelock import FileLock

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target.parent / ".lock")):
            missing = _missing(source, target)          # another process may have made it meanwhile
            if len(missing) == len(_shipped_files(source)) and not target.exists():
                partial = target.with_name(target.name + ".partial")
                shutil.rmtree(partial, ignore_errors=True)
                shutil.copytree(source, partial, ignore=shutil.ignore_patterns("__pycache__", ".lock", SHIPPED_MARKER))
                os.replace(partial, target)
            elif missing:
                for name in missing:
                    (target / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source / name, target / name)
                warnings.warn(f"your speaker store {target} lacked {len(missing)} file(s) of the shipped model "
                              f"({', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}): copied again; "
                              "enrolled speakers are kept", UserWarning, stacklevel=2)
    except OSError as exc:
        where = exc.filename or target
        raise ParameterError(f"{where}: the speaker store cannot be made or written there "
                             f"({exc.strerror or exc}); set {STORE_ENV} to a folder you can write, or give "
                             "--model-dir") from None
    return target


def _shipped_files(source: Path) -> list:
    return sorted(p.relative_to(source).as_posix() for p in source.rglob("*")
                  if p.is_file() and p.name != SHIPPED_MARKER and "__pycache__" not in p.parts)


def _missing(source: Path, target: Path) -> list:
    """The shipped model's files (relative names) that the store ``target`` lacks."""
    return [name for name in _shipped_files(source) if not (target / name).is_file()]


def _enrolled(model_dir: Path) -> set:
    from speakerid.scoring.fused import FusedVerifier

    try:
        return set(FusedVerifier(model_dir).speakers())
    except (SpeakerIDError, OSError):          # an unreadable old folder holds nobody we can name
        return set()


def older_enrollments(model_dir) -> dict:
    """Speakers of other builds' folders beside ``model_dir`` in the store: ``{build folder: set of ids}``."""
    model_dir = Path(model_dir)
    if model_dir.parent.name != "models":
        return {}
    return {d: ids for d in sorted(model_dir.parent.iterdir())
            if d != model_dir and d.is_dir() and (d / FUSION_FILE).is_file() and (ids := _enrolled(d))}


def check_speaker(model_dir, speaker: str) -> None:
    """Refuse (:class:`ConfigMismatchError`) a speaker of the store enrolled only under another shipped build."""
    model_dir = Path(model_dir)
    from speakerid.store import speaker_file_name

    if any(model_dir.glob(f"systems/*/speakers/*/{speaker_file_name(speaker)}")):    # enrolled here: the usual case
        return
    for folder, ids in older_enrollments(model_dir).items():
        if speaker in ids:
            raise ConfigMismatchError(
                f"speaker {speaker!r} was enrolled with another build of the shipped model, {folder.name} (speakerid "
                f"{shipped_info(folder).get('speakerid_version', '?')}); this speakerid ships "
                f"{model_dir.name}, whose scores do not mix with it: enroll again with 'speakerid enroll --speaker "
                f"{speaker} FILE...' (the old enrollment stays in {folder})")


def warn_older(model_dir) -> None:
    """Warn when the store holds speakers enrolled under other shipped builds (not scored by this one)."""
    older = older_enrollments(model_dir)
    missing = sorted(set().union(*older.values()) - _enrolled(Path(model_dir))) if older else []
    if missing:
        folders = ", ".join(str(f) for f in older)
        warnings.warn(f"{len(missing)} speaker(s) of your store were enrolled with another build of the shipped "
                      f"model and are not used ({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}): "
                      "enroll them again with 'speakerid enroll --speaker ID FILE...'; delete the old folder "
                      f"({folders}) to stop this warning", UserWarning, stacklevel=2)


def model_card() -> str:
    """The shipped model's card (Markdown)."""
    shipped_dir()
    return MODEL_CARD.read_text(encoding="utf-8")


def __getattr__(name):          # Verifier imports the scoring stack: only when asked for
    if name == "Verifier":
        from speakerid.pretrained._verifier import Verifier

        return Verifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
