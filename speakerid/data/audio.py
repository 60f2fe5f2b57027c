"""Reading audio files (every format libsndfile decodes) and resampling.

Every audio file on the way in is read here, so that a bad file is reported once, in one way: an
:class:`~speakerid.exceptions.AudioError` whose message names the file and says what is wrong, with the measured
figure.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

from speakerid._utils.lazy import lazy_import
from speakerid.exceptions import AudioError, AudioWarning, ParameterError

scipy_signal = lazy_import("scipy.signal")

__all__ = [
    "load_audio",
    "resample",
    "DEFAULT_MAX_DURATION_S",
    "MIN_DURATION_MS",
    "MIN_LEVEL_DBFS",
]

#: Files longer than this are refused by default (an hour of 48 kHz float audio is ~700 MB).
DEFAULT_MAX_DURATION_S = 3600.0
#: Shorter than one 25 ms analysis frame is not speech we can analyse.
MIN_DURATION_MS = 25.0
#: Peak amplitude (full scale = 1, after removing the mean) under which a file counts as digital silence.
SILENCE_PEAK = 1e-6
#: Quietest peak level (dBFS, DC removed) :func:`load_audio` accepts by default. Scores do not depend on the
#: recording level down to a -60 dBFS peak, 16-bit files included (tests/contracts/test_realworld.py); the floor
#: sits 1 dB lower so that a file normalised to -60 dBFS and then quantised is not refused. Below it 16-bit
#: quantisation noise is a sizeable part of the frames.
MIN_LEVEL_DBFS = -61.0


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
    return scipy_signal.resample_poly(signal, target_rate // g, orig_rate // g).astype(np.float32, copy=False)


def load_audio(path, sample_rate: int | None = None, *, max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
               min_duration_ms: float = MIN_DURATION_MS, min_level_dbfs: float | None = MIN_LEVEL_DBFS):
    """Read any audio file libsndfile decodes (WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, AU, CAF, W64, RF64, ...) as
    a mono float32 waveform.

    Multi-channel audio is mixed down to mono by averaging, block by block (memory holds the mono result, never
    all channels of a long file). When averaging would cancel the sound (channels in antiphase: the mix is over
    :data:`CANCEL_DB` dB below what uncorrelated channels give) the loudest channel is taken instead, with an
    :class:`~speakerid.exceptions.AudioWarning`. Integer PCM is scaled to [-1, 1), float files are returned as
    stored (they may exceed full scale); the signal is resampled to ``sample_rate`` when one is given and differs
    from the file's rate. The duration limits are checked from the header, before any sample is decoded. Codecs
    that cannot seek (GSM 6.10, G.721, ...) are decoded front to back. A WAV whose header says its data chunk is
    empty while samples follow it (a recorder that never finalised the header) is read to the end of the file,
    with an :class:`~speakerid.exceptions.AudioWarning`.

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
    min_level_dbfs : float or None
        Refuse files whose peak, after removing the mean (a DC offset is not sound), is below this level in dB
        relative to full scale (default :data:`MIN_LEVEL_DBFS`). Above it the features, and so the scores, do not
        depend on the recording level; below it 16-bit quantisation noise becomes part of the "voice".
        ``None`` disables the check.

    Returns
    -------
    signal : numpy.ndarray of float32, shape (n_samples,)
    sample_rate : int

    Raises
    ------
    AudioError
        The file is missing, a directory, a pipe or device, a symbolic link loop, unreadable, not audio, empty,
        too short, too long, silent (all samples equal), too quiet, or holds NaN/Inf. The message names the file
        and the measured figure.
    """
    path = Path(path)
    info = _open_info(path)
    source, frames = str(path), int(info.frames)
    if frames == 0:
        source, frames = _repaired_wav(path, info)
    file_rate = int(info.samplerate)
    duration_s = frames / file_rate
    if max_duration_s is not None and duration_s > max_duration_s:
        raise AudioError(f"the file is {duration_s:.0f} s long, over the {max_duration_s:.0f} s limit "
                         "(split it, or raise max_duration_s)", path)
    if duration_s * 1000.0 < min_duration_ms:
        raise AudioError(f"the file is {duration_s * 1000:.1f} ms long, shorter than one "
                         f"{min_duration_ms:g} ms analysis frame", path)
    try:
        signal = _read_mono(source, frames, path)
    except (RuntimeError, sf.LibsndfileError, ValueError, OSError, EOFError) as exc:
        raise AudioError(f"cannot decode audio ({_one_line(exc)})", path) from None
    if signal.shape[0] == 0:
        raise AudioError("the file holds no samples (truncated?)", path)
    if not np.all(np.isfinite(signal)):
        raise AudioError("the audio holds NaN or infinite samples", path)
    _check_level(signal, path, min_level_dbfs)
    if sample_rate is not None and int(sample_rate) != int(file_rate):
        signal = resample(signal, file_rate, int(sample_rate))
        file_rate = int(sample_rate)
    return np.ascontiguousarray(signal, dtype=np.float32), int(file_rate)


def _check_level(signal: np.ndarray, path: Path, min_level_dbfs: float | None) -> None:
    mean = float(np.mean(signal, dtype=np.float64))
    peak = float(np.max(np.abs(signal - np.float32(mean))))
    if peak < SILENCE_PEAK:
        what = "all samples are zero" if abs(mean) < SILENCE_PEAK else f"a constant level of {mean:+.4g}, no sound"
        raise AudioError(f"the audio is silent ({what})", path)
    level_dbfs = 20.0 * np.log10(peak)
    if min_level_dbfs is not None and level_dbfs < min_level_dbfs:
        raise AudioError(f"the audio is too quiet: peak {level_dbfs:.1f} dBFS (DC removed), below the "
                         f"{min_level_dbfs:g} dBFS floor", path)


#: Frames decoded at a time: multi-channel audio is mixed down block by block, so a long 8-channel file never
#: sits in memory as a whole (peak memory is the mono result plus one block).
_READ_BLOCK_FRAMES = 1 << 16


def _read_mono(source, expected_frames: int, path: Path, channel: int | None = None) -> np.ndarray:
    """Decode front to back with ``read`` (``blocks`` needs a seekable file; GSM 6.10 and G.72x are not)."""
    signal = np.empty(expected_frames, dtype=np.float32)
    filled, channel_energy, mix_energy = 0, None, 0.0
    if hasattr(source, "seek"):  # an in-memory repaired file read a second time
        source.seek(0)
    with sf.SoundFile(source) as handle:
        while True:
            block = handle.read(_READ_BLOCK_FRAMES, dtype="float32", always_2d=True)
            if block.shape[0] == 0:
                break
            if channel is not None:
                mono = block[:, channel]
            elif block.shape[1] > 1:
                mono = block.mean(axis=1)
                block64 = block.astype(np.float64)
                energy = np.einsum("ij,ij->j", block64, block64)
                channel_energy = energy if channel_energy is None else channel_energy + energy
                mix_energy += float(np.dot(mono, mono.astype(np.float64)))
            else:
                mono = block[:, 0]
            if filled + len(mono) > len(signal):  # the header under-counted the frames
                signal = np.concatenate([signal[:filled], np.empty(max(len(mono), filled), np.float32)])
            signal[filled:filled + len(mono)] = mono
            filled += len(mono)
    if channel_energy is not None and _channels_cancel(channel_energy, mix_energy):
        loudest = int(np.argmax(channel_energy))
        ratio_db = 10 * np.log10(max(mix_energy, 1e-300) * len(channel_energy) ** 2 / channel_energy.sum())
        warnings.warn(f"{path}: the {len(channel_energy)} channels cancel when averaged (the mix is "
                      f"{ratio_db:.1f} dB below uncorrelated channels: antiphase wiring?); using channel "
                      f"{loudest + 1} alone", AudioWarning, stacklevel=3)
        return _read_mono(source, expected_frames, path, channel=loudest)
    return signal[:filled]


#: Channels "cancel" when their average holds this many dB less energy than uncorrelated channels would give
#: (identical channels give +10*log10(n_channels) dB, uncorrelated 0 dB, exact antiphase -inf).
CANCEL_DB = -10.0


def _channels_cancel(channel_energy: np.ndarray, mix_energy: float) -> bool:
    uncorrelated = float(channel_energy.sum()) / len(channel_energy) ** 2
    return uncorrelated > 0 and mix_energy < uncorrelated * 10 ** (CANCEL_DB / 10)


def _repaired_wav(path: Path, info):
    """``(source, frames)`` of an uncompressed RIFF WAV whose data chunk says 0 bytes while bytes follow it: the
    header patched in memory to the bytes actually there. Any other file with no frames is an :class:`AudioError`."""
    raw = path.read_bytes() if info.format in ("WAV", "WAVEX") else b""
    layout = _wav_layout(raw)
    if layout is None:
        raise AudioError("the file holds no samples (empty audio)", path)
    data_at, format_tag, block_align = layout
    bytes_after = len(raw) - (data_at + 8)
    if bytes_after < max(block_align, 1):
        raise AudioError("the file holds no samples (empty audio: the WAV data chunk is empty)", path)
    if format_tag not in _UNCOMPRESSED_WAV or block_align <= 0:
        raise AudioError(f"the WAV header says the data chunk holds 0 bytes but {bytes_after} bytes follow it, in "
                         f"a compressed encoding (format tag {format_tag:#06x}) whose length cannot be recovered",
                         path)
    usable = bytes_after - bytes_after % block_align
    patched = bytearray(raw[: data_at + 8 + usable])
    patched[4:8] = (len(patched) - 8).to_bytes(4, "little")
    patched[data_at + 4: data_at + 8] = usable.to_bytes(4, "little")
    warnings.warn(f"{path}: the WAV header says the data chunk holds 0 bytes but {bytes_after} bytes follow it; "
                  f"reading them ({usable // block_align} frames)", AudioWarning, stacklevel=3)
    return io.BytesIO(bytes(patched)), usable // block_align


#: WAV format tags whose frames are a fixed number of bytes (PCM, IEEE float, A-law, mu-law, extensible).
_UNCOMPRESSED_WAV = (0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE)


def _wav_layout(raw: bytes):
    """``(data chunk offset, format tag, block align)`` of a RIFF/WAVE byte string whose data chunk declares 0
    bytes, else None."""
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        return None
    at, format_tag, block_align = 12, 0, 0
    while at + 8 <= len(raw):
        chunk, size = raw[at:at + 4], int.from_bytes(raw[at + 4:at + 8], "little")
        if chunk == b"fmt " and size >= 16:
            format_tag = int.from_bytes(raw[at + 8:at + 10], "little")
            block_align = int.from_bytes(raw[at + 20:at + 22], "little")
        if chunk == b"data":
            return (at, format_tag, block_align) if size == 0 else None
        at += 8 + size + (size & 1)
    return None


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
