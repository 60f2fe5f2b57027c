"""The one exception hierarchy of speakerid.

Every error raised on purpose by the package derives from :class:`SpeakerIDError`. Each class carries the exit
code that the ``speakerid`` command-line tool returns when that error ends a command, so the CLI, the web API and
the Python API speak one language.

==========================  =========  =================================================================
exception                   exit code  raised when
==========================  =========  =================================================================
SpeakerIDError              1          any other deliberate failure (the CLI also exits 1 on out-of-memory and
                                       on operating-system errors: permission denied, disk full, ...)
ParameterError              2          a parameter or command-line option is invalid
AudioError                  3          an audio file cannot be read or holds no usable speech
ManifestError               4          a CSV manifest is malformed or names missing files
ModelFormatError            5          a model file is corrupt, truncated, pickled or of another format
ConfigMismatchError         6          a model was made with another feature configuration / UBM / version
NotFittedError              7          a model is used before ``fit`` / before any speaker was enrolled
UnknownSpeakerError         8          a claimed speaker is not enrolled
(``score --strict``)        9          the run finished but some trials could not be scored
(Ctrl-C)                    130        interrupted
==========================  =========  =================================================================
"""

from __future__ import annotations

__all__ = [
    "SpeakerIDError",
    "ParameterError",
    "AudioError",
    "ManifestError",
    "ModelFormatError",
    "ConfigMismatchError",
    "NotFittedError",
    "UnknownSpeakerError",
    "DataLeakWarning",
    "BandwidthWarning",
    "AudioWarning",
]


class SpeakerIDError(Exception):
    """Base class of every error speakerid raises on purpose."""

    exit_code = 1


class ParameterError(SpeakerIDError, ValueError):
    """A parameter, option or speaker id is invalid."""

    exit_code = 2


class AudioError(SpeakerIDError):
    """An audio file is unreadable, empty, silent, non-finite or too short.

    Attributes
    ----------
    path : str or None
        The offending file, when there is one.
    """

    exit_code = 3

    def __init__(self, message: str, path=None):
        self.path = None if path is None else str(path)
        if self.path is not None and self.path not in message:
            message = f"{self.path}: {message}"
        super().__init__(message)


class ManifestError(SpeakerIDError):
    """A CSV manifest is malformed: missing columns, bad rows, missing files."""

    exit_code = 4

    def __init__(self, message: str, path=None):
        self.path = None if path is None else str(path)
        if self.path is not None and self.path not in message:
            message = f"{self.path}: {message}"
        super().__init__(message)


class ModelFormatError(SpeakerIDError):
    """A model file is corrupt, truncated, pickled, or not a speakerid model."""

    exit_code = 5


class ConfigMismatchError(SpeakerIDError):
    """Two things that must agree do not: feature configuration, UBM, sample rate, format version."""

    exit_code = 6


class NotFittedError(SpeakerIDError, AttributeError):
    """A model is used before it was fitted (or before any speaker was enrolled)."""

    exit_code = 7


class UnknownSpeakerError(SpeakerIDError, KeyError):
    """A claimed speaker is not enrolled in the model directory."""

    exit_code = 8

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataLeakWarning(UserWarning):
    """Evaluated speakers overlap the speakers a background model was trained on (results would be optimistic)."""


class BandwidthWarning(UserWarning):
    """Audio was upsampled to the model's rate: the band above the file's Nyquist frequency is empty."""


class AudioWarning(UserWarning):
    """Audio was read in a way the file did not plainly say: a header repaired, or one channel taken because the
    channels cancel when mixed."""
