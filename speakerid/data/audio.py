"""Reading audio and CSV manifests, and writing files atomically.

Everything that touches the file system on the way in goes through here, so that a bad file is reported once,
in one way: an :class:`~speakerid.exceptions.AudioError` or :class:`~speakerid.exceptions.ManifestError` whose
message names the file (and the row) and says what is wrong.
"""

from __future__ import annotations

import os
import stat
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from speakerid.exceptions import AudioError, ParameterError

__all__ = [
    "load_audio",
    "resample",
    "DEFAULT_MAX_DURATION_S",
    "MIN_DURATION_MS",
]

#: Files longer than this are refused by default (an hour of 48 kHz float audio is ~700 MB).
DEFAULT_MAX_DURATION_S = 3600.0
#: Shorter than one 25 ms analysis frame is not speech we can analyse.
MIN_DURATION_MS = 25.0
#: Peak amplitude (full scale = 1) under which a file counts as digital silence.
SILENCE_PEAK = 1e-6


def resample(signal, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample a 1-D signal with a polyphase filter (:func:`scipy.signal.resample_poly`).

    Parameters
    ----------
    signal : array_like, shape (n_samples,)
    orig_rate, target_rate : int
        Sample rates in Hz.

    Returns
    -------
    numpy.ndarray of float32

    Examples
    --------
    >>> x = np.zeros(8000, dtype=np.float32)
    >>> resample(x, 8000, 16000).shape
    (16000,)
    """
    orig_rate, target_rate = int(orig_rate), int(target_rate)
    if orig_rate <= 0 or target_rate <= 0:
        raise ParameterError(f"sample rates must be positive, got {orig_rate} -> {target_rate}")
    signal = np.asarray(signal, dtype=np.float32)
    if orig_rate == target_rate:
        return signal
    g = gcd(orig_rate, target_rate)
    return resample_poly(signal, target_rate // g, orig_rate // g).astype(np.float32, copy=False)


def load_audio(path, sample_rate: int | None = None, *, max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
               min_duration_ms: float = MIN_DURATION_MS):
    """Read a WAV/FLAC/OGG file as a mono float32 waveform.

    Multi-channel audio is mixed down to mono by averaging, block by block (memory holds the mono result, never
    all channels of a long file); integer PCM is scaled to [-1, 1), float files are returned as stored (they may
    exceed full scale); the signal is resampled to ``sample_rate`` when one is given and differs from the
    file's rate. The duration limits are checked from the header, before any sample is decoded.

    Parameters
    ----------
    path : str or os.PathLike
        The audio file.
    sample_rate : int, optional
        Rate to return, in Hz. ``None`` keeps the file's own rate.
    max_duration_s : float or None
        Refuse files longer than this (bounded memory). ``None`` disables the limit.
    min_duration_ms : float
        Refuse files shorter than this (less than one analysis frame).

    Returns
    -------
    signal : numpy.ndarray of float32, shape (n_samples,)
    sample_rate : int

    Raises
    ------
    AudioError
        The file is missing, a directory, a pipe or device, a symbolic link loop, unreadable, not audio, empty,
        too short, too long, silent (all samples zero) or holds NaN/Inf. The message names the file.
    """
    path = Path(path)
    info = _open_info(path)
    if info.frames == 0:
        raise AudioError("the file holds no samples (empty audio)", path)
    file_rate = int(info.samplerate)
    duration_s = info.frames / file_rate
    if max_duration_s is not None and duration_s > max_duration_s:
        raise AudioError(f"the file is {duration_s:.0f} s long, over the {max_duration_s:.0f} s limit "
                         "(split it, or raise max_duration_s)", path)
    if duration_s * 1000.0 < min_duration_ms:
        raise AudioError(f"the file is {duration_s * 1000:.1f} ms long, shorter than one "
                         f"{min_duration_ms:g} ms analysis frame", path)
    try:
        signal = _read_mono(path, info.frames)
    except (RuntimeError, sf.LibsndfileError, ValueError, OSError, EOFError) as exc:
        raise AudioError(f"cannot decode audio ({_one_line(exc)})", path) from None
    if signal.shape[0] == 0:
        raise AudioError("the file holds no samples (truncated?)", path)
    if not np.all(np.isfinite(signal)):
        raise AudioError("the audio holds NaN or infinite samples", path)
    if float(np.max(np.abs(signal))) < SILENCE_PEAK:
        raise AudioError("the audio is silent (all samples are zero)", path)
    if sample_rate is not None and int(sample_rate) != int(file_rate):
        signal = resample(signal, file_rate, int(sample_rate))
        file_rate = int(sample_rate)
    return np.ascontiguousarray(signal, dtype=np.float32), int(file_rate)


#: Frames decoded at a time: multi-channel audio is mixed down block by block, so a long 8-channel file never
#: sits in memory as a whole (peak memory is the mono result plus one block).
_READ_BLOCK_FRAMES = 1 << 16


def _read_mono(path: Path, expected_frames: int) -> np.ndarray:
    signal = np.empty(expected_frames, dtype=np.float32)
    filled = 0
    with sf.SoundFile(str(path)) as handle:
        for block in handle.blocks(blocksize=_READ_BLOCK_FRAMES, dtype="float32", always_2d=True):
            mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
            if filled + len(mono) > len(signal):  # the header under-counted the frames
                signal = np.concatenate([signal[:filled], np.empty(len(mono), np.float32)])
            signal[filled:filled + len(mono)] = mono
            filled += len(mono)
    return signal[:filled]


def _open_info(path: Path):
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise AudioError("no such file" + (" (broken symbolic link)" if path.is_symlink() else ""), path) from None
    except OSError as exc:  # a symbolic link loop (ELOOP), a name too long, a folder on the way not searchable
        raise AudioError(f"cannot open ({exc.strerror or _one_line(exc)})", path) from None
    if stat.S_ISDIR(mode):
        raise AudioError("is a directory, not an audio file", path)
    if not stat.S_ISREG(mode):  # a FIFO or a device would block or never end
        raise AudioError("not a regular file (a pipe, socket or device)", path)
    if not os.access(path, os.R_OK):
        raise AudioError("permission denied", path)
    try:
        return sf.info(str(path))
    except PermissionError:
        raise AudioError("permission denied", path) from None
    except OSError as exc:
        if isinstance(exc, sf.LibsndfileError) or "Error opening" in str(exc):
            raise AudioError(f"not a readable audio file ({_one_line(exc)})", path) from None
        raise AudioError(f"cannot open ({_one_line(exc)})", path) from None
    except (RuntimeError, ValueError, EOFError) as exc:
        raise AudioError(f"not a readable audio file ({_one_line(exc)})", path) from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    # soundfile repeats the path in its messages; the caller names the file already.
    for prefix in ("Error opening ",):
        if text.startswith(prefix) and ": " in text:
            text = text.split(": ", 1)[1]
    return text or type(exc).__name__


# --------------------------------------------------------------------------------------------- manifests





















# --------------------------------------------------------------------------------------------- atomic writes











