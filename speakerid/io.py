"""Reading audio and CSV manifests, and writing files atomically.

Everything that touches the file system on the way in goes through here, so that a bad file is reported once,
in one way: an :class:`~speakerid.exceptions.AudioError` or :class:`~speakerid.exceptions.ManifestError` whose
message names the file (and the row) and says what is wrong.
"""

from __future__ import annotations

import contextlib
import csv
import os
import stat
import tempfile
from math import gcd
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy.signal import resample_poly

from .exceptions import AudioError, ManifestError, ParameterError

__all__ = [
    "load_audio",
    "resample",
    "read_manifest",
    "iter_manifest",
    "check_manifest_columns",
    "atomic_write",
    "atomic_write_bytes",
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

MANIFEST_COLUMNS = ("speaker", "path")


def read_manifest(path, *, require_target: bool = False, check_files: bool = True) -> pd.DataFrame:
    """Read a ``speaker,path[,target]`` CSV manifest.

    Paths are resolved relative to the manifest's folder (absolute paths are kept). Paths may lead outside
    that folder (``../data/x.wav``): a manifest is trusted local input, read with the rights of the user who
    runs speakerid (see SECURITY.md). Extra columns are kept. ``speaker`` is read as text (so ``007`` stays
    ``007``) and must be a valid speaker id (:func:`speakerid.store.validate_speaker_id`); ``target``, when
    present, must be 0 or 1. A row that repeats the speaker and path of an earlier row is an error (it would
    silently weigh a file twice).

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file.
    require_target : bool
        Demand a ``target`` column (trial lists).
    check_files : bool
        Check that every audio file exists; all missing files are listed in one error.

    Returns
    -------
    pandas.DataFrame
        With columns ``speaker`` (str), ``path`` (absolute str), ``target`` (int8, if present) and any extra
        columns, and the CSV line number of each row in the index name ``line``.

    Raises
    ------
    ManifestError
        Unreadable CSV, no rows, missing columns, empty or invalid speaker ids, empty paths, bad ``target``
        values, duplicate rows, missing files.
    """
    path = Path(path)
    frame = _clean_manifest(_read_csv(path), path, require_target=require_target, check_files=check_files,
                            first_line=2)
    if frame.empty:
        raise ManifestError("the manifest has a header but no rows", path)
    return frame


def iter_manifest(path, chunksize: int = 10000, *, require_target: bool = False, check_files: bool = True):
    """Yield a manifest in cleaned chunks of at most ``chunksize`` rows (bounded memory).

    Each chunk is checked as :func:`read_manifest` checks a whole file; the CSV line numbers in the errors are
    those of the file.
    """
    path = Path(path)
    if chunksize < 1:
        raise ParameterError(f"chunksize must be >= 1, got {chunksize}")
    _check_readable(path)
    first_line = 2
    try:
        reader = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunksize,
                             skipinitialspace=True, encoding="utf-8-sig")
        for chunk in reader:
            yield _clean_manifest(chunk, path, require_target=require_target, check_files=check_files,
                                  first_line=first_line)
            first_line += len(chunk)
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"not a readable CSV ({_one_line(exc)})", path) from None
    except pd.errors.EmptyDataError:
        raise ManifestError("the manifest is empty (expected a header 'speaker,path[,target]')", path) from None


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise ManifestError("no such manifest file", path)
    if path.is_dir():
        raise ManifestError("is a directory, not a CSV manifest", path)
    if not os.access(path, os.R_OK):
        raise ManifestError("permission denied", path)


def _read_csv(path: Path) -> pd.DataFrame:
    _check_readable(path)
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ManifestError("the manifest is empty (expected a header 'speaker,path[,target]')", path) from None
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"not a readable CSV ({_one_line(exc)})", path) from None


def check_manifest_columns(columns, path, *, require_target: bool = False) -> None:
    """Raise :class:`ManifestError` naming the columns a manifest lacks."""
    wanted = list(MANIFEST_COLUMNS) + (["target"] if require_target else [])
    missing = [c for c in wanted if c not in columns]
    if missing:
        found = ",".join(str(c) for c in columns) or "(none)"
        raise ManifestError(f"missing column(s) {', '.join(missing)}; found header '{found}' "
                            f"(expected '{','.join(wanted)}', comma-separated)", path)


def _rows(lines, limit: int = 10) -> str:
    lines = [str(int(x)) for x in lines]
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return ", ".join(lines[:limit]) + more


def _clean_manifest(frame: pd.DataFrame, path: Path, *, require_target: bool, check_files: bool,
                    first_line: int) -> pd.DataFrame:
    frame = frame.rename(columns=lambda c: str(c).strip())
    check_manifest_columns(frame.columns, path, require_target=require_target)
    frame = frame.copy()
    frame.index = pd.RangeIndex(first_line, first_line + len(frame), name="line")
    # Blank lines are skipped by pandas; rows made only of empty fields are dropped here too.
    blank = (frame.astype(str).apply(lambda col: col.str.strip()) == "").all(axis=1)
    frame = frame.loc[~blank]
    frame["speaker"] = frame["speaker"].astype(str).str.strip()
    frame["path"] = frame["path"].astype(str).str.strip()
    empty_speaker = frame.index[frame["speaker"] == ""]
    if len(empty_speaker):
        raise ManifestError(f"empty speaker id on line(s) {_rows(empty_speaker)}", path)
    empty_path = frame.index[frame["path"] == ""]
    if len(empty_path):
        raise ManifestError(f"empty path on line(s) {_rows(empty_path)}", path)
    if "target" in frame.columns:
        raw = frame["target"].astype(str).str.strip().str.lower()
        mapping = {"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0, "target": 1, "nontarget": 0}
        bad = frame.index[~raw.isin(list(mapping))]
        if len(bad):
            examples = ", ".join(repr(frame.at[i, "target"]) for i in bad[:3])
            raise ManifestError(f"target must be 0 or 1; line(s) {_rows(bad)} hold {examples}", path)
        frame["target"] = raw.map(mapping).astype(np.int8)
    _check_speaker_ids(frame, path)
    base = path.resolve().parent
    frame["path"] = [p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p)) for p in frame["path"]]
    _check_duplicates(frame, path)
    if check_files:
        missing = [(line, p) for line, p in zip(frame.index, frame["path"]) if not os.path.isfile(p)]
        if missing:
            shown = "; ".join(f"line {line}: {p}" for line, p in missing[:10])
            more = f"; and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise ManifestError(f"{len(missing)} audio file(s) not found: {shown}{more}", path)
    return frame


def _check_speaker_ids(frame: pd.DataFrame, path: Path) -> None:
    from .store import validate_speaker_id  # the store imports this module

    for speaker in frame["speaker"].unique():
        try:
            validate_speaker_id(speaker)
        except ParameterError as exc:
            lines = frame.index[frame["speaker"] == speaker]
            raise ManifestError(f"line(s) {_rows(lines)}: {exc}", path) from None


def _check_duplicates(frame: pd.DataFrame, path: Path) -> None:
    repeated = frame.duplicated(subset=["speaker", "path"], keep="first")
    if not repeated.any():
        return
    first = {}
    pairs = []
    for line, key in zip(frame.index, zip(frame["speaker"], frame["path"])):
        if key in first:
            pairs.append(f"line {line} repeats line {first[key]}")
        else:
            first[key] = line
    more = f" and {len(pairs) - 5} more" if len(pairs) > 5 else ""
    raise ManifestError(f"duplicate row(s) (same speaker and path): {'; '.join(pairs[:5])}{more}", path)


# --------------------------------------------------------------------------------------------- atomic writes

@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    A reader never sees a half-written file, and a crash leaves the old file in place (plus at most a hidden
    ``.*.tmp`` file, which :mod:`speakerid.store` ignores).

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> with atomic_write(os.path.join(d, "a.txt"), "w") as fh:
    ...     _ = fh.write("hello")
    >>> open(os.path.join(d, "a.txt")).read()
    'hello'
    """
    path = Path(path)
    if path.is_dir():
        raise ParameterError(f"{path}: is a directory; give a file name to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the permissions open() would
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _test_hold_before_rename(path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


#: Crash-safety tests set this to a marker file name: a write then creates the marker and stops between writing
#: its temp file and renaming it, so a test can kill the process exactly mid-write. Unset in normal use.
_HOLD_ENV = "SPEAKERID_TEST_HOLD_BEFORE_RENAME"


def _test_hold_before_rename(path: Path) -> None:
    marker = os.environ.get(_HOLD_ENV)
    if marker and path.suffix == ".npz":
        import time

        Path(marker).write_text(str(path), encoding="utf-8")
        time.sleep(3600)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)
