"""Uploaded audio: saved to a private folder under random names, validated, and deleted after the request.

The name a browser sends is only ever shown back (after trimming it to its last path component); the file on disk
gets a random name in a per-request folder inside the app's private temporary folder (mode 0700). Errors raised
while the upload is in use name the uploaded file, never the temporary path.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from speakerid.data.audio import load_audio
from speakerid.exceptions import AudioError, ParameterError, SpeakerIDError

__all__ = ["Clip", "UploadScope", "display_name"]

#: Suffixes kept on the random file name (libsndfile also sniffs the content, the suffix only helps it).
_AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au")
_MAX_NAME_CHARS = 80


def display_name(filename) -> str:
    """The part of a browser-sent file name that is safe to show: last path component, no control characters.

    Examples
    --------
    >>> display_name("C:\\\\fakepath\\\\alice 01.wav")
    'alice 01.wav'
    >>> display_name("../../etc/passwd\\x00")
    'passwd'
    >>> display_name("")
    'upload'
    """
    text = str(filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip()
    if len(text) > _MAX_NAME_CHARS:
        text = text[: _MAX_NAME_CHARS - 3] + "..."
    return text or "upload"


@dataclass
class Clip:
    """One validated upload: where it lies (random name), what the user called it, and its waveform.

    ``signal`` is mono float32 at ``sample_rate`` (the model's analysis rate); ``native_rate`` is the file's own.
    """

    path: Path
    name: str
    signal: np.ndarray
    sample_rate: int
    native_rate: int
    channels: int
    format: str

    @property
    def seconds(self) -> float:
        return len(self.signal) / self.sample_rate

    def info(self) -> dict:
        return {"name": self.name, "seconds": round(self.seconds, 2), "native_rate": self.native_rate,
                "channels": self.channels, "format": self.format}


class UploadScope:
    """Save uploads of one request under random names; delete them all on exit.

    Use as a context manager. A :class:`~speakerid.exceptions.SpeakerIDError` leaving the block has every
    temporary path in its message replaced by the uploaded file's display name.

    Parameters
    ----------
    root : str or os.PathLike
        The app's private upload folder.
    sample_rate : int
        Rate the clips are loaded at (the model directory's analysis rate).
    """

    def __init__(self, root, sample_rate: int):
        self.root = Path(root)
        self.sample_rate = int(sample_rate)
        self.folder: Path | None = None
        self._names: dict[str, str] = {}

    def __enter__(self) -> UploadScope:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="speakerid-upload-", dir=self.root))
        return self

    def __exit__(self, exc_type, exc, tb):
        folder, self.folder = self.folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, SpeakerIDError) and folder is not None:
            message = self._scrub(str(exc), folder)
            if message != str(exc):
                raise _with_message(exc, message) from None
        return False

    def _scrub(self, message: str, folder: Path) -> str:
        for path, name in sorted(self._names.items(), key=lambda item: -len(item[0])):
            message = message.replace(path, name)
        return message.replace(str(folder) + os.sep, "")  # any other temporary file of this request

    def save(self, storage) -> Clip:
        """Write one uploaded file (a werkzeug ``FileStorage``), validate it as audio, return the :class:`Clip`."""
        if self.folder is None:
            raise RuntimeError("UploadScope.save outside its with-block")
        name = display_name(getattr(storage, "filename", ""))
        if not getattr(storage, "filename", ""):
            raise ParameterError("no audio file was chosen or recorded")
        suffix = Path(name).suffix.lower()
        path = self.folder / (secrets.token_hex(12) + (suffix if suffix in _AUDIO_SUFFIXES else ".audio"))
        self._names[str(path)] = name
        storage.save(str(path))
        if path.stat().st_size == 0:
            raise AudioError("the uploaded file is empty (0 bytes)", name)
        signal, rate = load_audio(path, sample_rate=self.sample_rate)
        info = sf.info(str(path))
        return Clip(path=path, name=name, signal=signal, sample_rate=rate, native_rate=int(info.samplerate),
                    channels=int(info.channels), format=f"{info.format} {info.subtype}")

    def save_all(self, storages) -> list[Clip]:
        """:meth:`save` for each non-empty entry of a file list; at least one is required."""
        chosen = [s for s in storages if getattr(s, "filename", "")]
        if not chosen:
            raise ParameterError("no audio file was chosen or recorded")
        return [self.save(s) for s in chosen]


def _with_message(exc: SpeakerIDError, message: str) -> SpeakerIDError:
    """The same kind of error with another message (keeps the class, hence the HTTP status and exit code)."""
    with contextlib.suppress(Exception):
        return type(exc)(message)
    return SpeakerIDError(message)
