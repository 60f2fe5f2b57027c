"""Kaldi data directories (``wav.scp``, ``utt2spk``, ``spk2utt``, ``segments``): read them, and load their utterances'
audio (segments are cut out of recordings in memory). Writing them from manifests: :mod:`speakerid.data.kaldi_manifests`.

The text files are parsed here rather than with ``kaldiio``: kaldiio's ``load_scp`` reads a ``wav.scp`` lazily but
decodes only RIFF WAV with its own reader (no FLAC/OGG), runs ``cmd |`` entries without asking, reports a bad line
without its number, and has no ``utt2spk``/``spk2utt`` reader. Audio goes through
:func:`speakerid.data.audio.load_audio`, so every check of our own audio path applies. Binary ark/scp matrices are
left to kaldiio (:mod:`speakerid.data.embedding_io`).

The conventions are those of Kaldi's ``utils/validate_data_dir.sh`` ("Data preparation" in the Kaldi
documentation): one ``<key> <value>`` per line, keys unique and sorted in the C locale (byte order), utterance ids
prefixed by their speaker id so that sorting ``utt2spk`` on the utterance also sorts it on the speaker.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from speakerid._utils.lazy import lazy_import
from speakerid._utils.validation import shorten
from speakerid.data.audio import load_audio
from speakerid.data.manifests import validate_speaker_id
from speakerid.exceptions import AudioError, ManifestError, ParameterError

pd = lazy_import("pandas")

__all__ = ["read_data_dir", "read_wav_scp", "read_table", "read_segments", "iter_utterances", "load_recording",
           "load_utterance", "cut_segment", "is_command", "c_sorted"]

#: Seconds a ``wav.scp`` command may run before it is stopped (only with ``allow_commands``).
COMMAND_TIMEOUT_S = 600.0


def c_sorted(keys) -> list:
    """Keys in C-locale order (``LC_ALL=C sort``: byte order of the UTF-8 text), as Kaldi's tools expect.

    Examples
    --------
    >>> c_sorted(["b", "B", "a-2", "a_1", "é"])
    ['B', 'a-2', 'a_1', 'b', 'é']
    """
    return sorted(keys, key=lambda key: str(key).encode("utf-8"))


def is_command(extended_filename: str) -> bool:
    """Whether a ``wav.scp`` value is a command whose output is the audio (Kaldi's ``... |``).

    Examples
    --------
    >>> is_command("sox a.flac -t wav - |"), is_command("/data/a.wav")
    (True, False)
    """
    return extended_filename.rstrip().endswith("|")


def _lines(path: Path, what: str):
    """``(line_number, fields)`` of a whitespace-separated Kaldi text file, blank lines skipped."""
    if not path.is_file():
        raise ManifestError(f"no such {what} file" if not path.exists() else f"is not a {what} file", path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"not UTF-8 text (byte {exc.start})", path) from None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


def read_table(path, what: str = "utt2spk") -> dict:
    """Read a two-column Kaldi file (``utt2spk``: ``<utt> <speaker>``) as an ordered dict.

    Raises
    ------
    ManifestError
        Naming the file and line of a line without exactly two fields or of a repeated key.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp(), "utt2spk")
    >>> _ = p.write_text("a-1 a\\na-2 a\\n")
    >>> read_table(p)
    {'a-1': 'a', 'a-2': 'a'}
    """
    path, table, first = Path(path), {}, {}
    for number, line in _lines(path, what):
        fields = line.split()
        if len(fields) != 2:
            raise ManifestError(f"line {number}: expected '<key> <value>', found {len(fields)} field(s)", path)
        key, value = fields
        if key in table:
            raise ManifestError(f"line {number}: '{key}' repeats line {first[key]}", path)
        table[key], first[key] = value, number
    return table


def _read_spk2utt(path: Path) -> dict:
    utt2spk, first = {}, {}
    for number, line in _lines(path, "spk2utt"):
        speaker, *utts = line.split()
        if not utts:
            raise ManifestError(f"line {number}: speaker '{speaker}' lists no utterance", path)
        for utt in utts:
            if utt in utt2spk:
                raise ManifestError(f"line {number}: utterance '{utt}' is already listed on line {first[utt]}",
                                    path)
            utt2spk[utt], first[utt] = speaker, number
    return utt2spk


def read_wav_scp(path, *, allow_commands: bool = False, audio_root=None) -> dict:
    """Read a ``wav.scp``: recording id -> audio file (absolute path) or command (``... |``).

    Parameters
    ----------
    path : str or os.PathLike
    allow_commands : bool
        Accept command entries. They run a program of the file's choosing when the audio is loaded, so they
        are refused unless asked for (SECURITY.md).
    audio_root : str or os.PathLike, optional
        Folder that relative file names are relative to; by default the current directory, as for Kaldi's own
        tools (which run from the recipe folder).

    Raises
    ------
    ManifestError
        A line without a value, a repeated recording id, a command without ``allow_commands``, or an archive
        offset (``file.ark:123``), each naming the file and line.
    """
    path = Path(path)
    root = Path(os.path.abspath(audio_root if audio_root is not None else os.curdir))
    recordings, first = {}, {}
    for number, line in _lines(path, "wav.scp"):
        fields = line.split(maxsplit=1)
        if len(fields) != 2:
            raise ManifestError(f"line {number}: expected '<recording-id> <file or command |>'", path)
        key, value = fields[0], fields[1].strip()
        if key in recordings:
            raise ManifestError(f"line {number}: recording id '{key}' repeats line {first[key]}", path)
        if is_command(value):
            if not allow_commands:
                raise ManifestError(f"line {number}: '{key}' is a command ('... |'), refused: it would run a "
                                    "program; pass allow_commands=True (--allow-commands) if you trust this file",
                                    path)
        elif value == "-" or (":" in value and value.rsplit(":", 1)[1].isdigit()
                              and not (root / value).exists()):
            raise ManifestError(f"line {number}: '{value}' (standard input or an archive offset) is not supported; "
                                "give a file or a command", path)
        else:
            value = os.path.normpath(os.path.join(root, value))
        recordings[key], first[key] = value, number
    return recordings


def read_segments(path) -> pd.DataFrame:
    """Read a ``segments`` file (``<utt> <recording> <start_s> <end_s>``; ``end_s`` -1 = to the end).

    Returns
    -------
    pandas.DataFrame
        Indexed by utterance id, columns ``recording`` (str), ``start_s`` and ``end_s`` (float seconds; ``end_s``
        is NaN for "to the end").
    """
    path, rows, first = Path(path), {}, {}
    for number, line in _lines(path, "segments"):
        fields = line.split()
        if len(fields) != 4:
            raise ManifestError(f"line {number}: expected '<utt> <recording> <start_s> <end_s>'", path)
        utt, recording = fields[:2]
        try:
            start_s, end_s = float(fields[2]), float(fields[3])
        except ValueError:
            raise ManifestError(f"line {number}: start and end must be seconds, got '{fields[2]} {fields[3]}'",
                                path) from None
        if end_s == -1:
            end_s = math.nan
        if not (math.isfinite(start_s) and start_s >= 0 and (math.isnan(end_s) or end_s > start_s)):
            raise ManifestError(f"line {number}: need 0 <= start_s < end_s (or end_s -1), got "
                                f"{fields[2]} {fields[3]}", path)
        if utt in rows:
            raise ManifestError(f"line {number}: utterance '{utt}' repeats line {first[utt]}", path)
        rows[utt], first[utt] = (recording, start_s, end_s), number
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["recording", "start_s", "end_s"])
    frame.index.name = "utterance"
    return frame


def read_data_dir(data_dir, *, allow_commands: bool = False, audio_root=None, check_files: bool = True
                  ) -> pd.DataFrame:
    """Read a Kaldi data directory as a manifest of utterances.

    Uses ``wav.scp`` and ``utt2spk`` (or ``spk2utt`` alone), and ``segments`` when present; checks that they
    agree, as ``utils/validate_data_dir.sh`` does.

    Parameters
    ----------
    data_dir : str or os.PathLike
    allow_commands, audio_root
        See :func:`read_wav_scp`.
    check_files : bool
        Check that every audio file exists (all missing ones are listed in one error).

    Returns
    -------
    pandas.DataFrame
        One row per utterance, in ``utt2spk`` order, indexed by utterance id (index name ``utterance``):
        ``speaker``, ``path`` (the recording's absolute file or command), ``recording``, ``start_s``, ``end_s``
        (NaN for whole recordings and for "to the end").

    Raises
    ------
    ManifestError
        A missing or malformed file, an utterance without audio or speaker, invalid speaker ids, ``utt2spk`` and
        ``spk2utt`` disagreeing, missing audio files; the message names the file (and line).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ManifestError("no such Kaldi data directory" if not data_dir.exists() else "not a folder", data_dir)
    recordings = read_wav_scp(data_dir / "wav.scp", allow_commands=allow_commands, audio_root=audio_root)
    utt2spk_path, spk2utt_path = data_dir / "utt2spk", data_dir / "spk2utt"
    if utt2spk_path.exists():
        utt2spk = read_table(utt2spk_path)
        if spk2utt_path.exists() and _read_spk2utt(spk2utt_path) != utt2spk:
            listed = _read_spk2utt(spk2utt_path)
            differ = c_sorted(k for k in set(utt2spk) | set(listed) if utt2spk.get(k) != listed.get(k))
            raise ManifestError(f"utt2spk and spk2utt disagree on utterance(s) {shorten(differ)}", spk2utt_path)
    elif spk2utt_path.exists():
        utt2spk = _read_spk2utt(spk2utt_path)
    else:
        raise ManifestError("holds neither utt2spk nor spk2utt", data_dir)
    if not utt2spk:
        raise ManifestError("no utterances", utt2spk_path)
    if (data_dir / "segments").exists():
        segments = read_segments(data_dir / "segments")
        unknown = c_sorted(set(segments["recording"]) - set(recordings))
        if unknown:
            raise ManifestError(f"recording(s) {shorten(unknown)} are not in wav.scp", data_dir / "segments")
    else:
        segments = pd.DataFrame({"recording": list(recordings), "start_s": math.nan, "end_s": math.nan},
                                index=pd.Index(list(recordings), name="utterance"))
    no_audio = [u for u in utt2spk if u not in segments.index]
    if no_audio:
        where = "segments" if (data_dir / "segments").exists() else "wav.scp"
        raise ManifestError(f"utterance(s) {shorten(no_audio)} of utt2spk have no entry in {where}", data_dir)
    for speaker in dict.fromkeys(utt2spk.values()):
        try:
            validate_speaker_id(speaker)
        except ParameterError as exc:
            raise ManifestError(str(exc), utt2spk_path) from None
    frame = segments.loc[list(utt2spk)].copy()
    frame.insert(0, "speaker", list(utt2spk.values()))
    frame.insert(1, "path", [recordings[r] for r in frame["recording"]])
    if check_files:
        used = set(frame["recording"])
        missing = [(r, p) for r, p in recordings.items() if r in used and not is_command(p) and not os.path.isfile(p)]
        if missing:
            raise ManifestError(f"{len(missing)} audio file(s) not found: "
                                f"{shorten([f'{r} {p}' for r, p in missing], sep='; ')}", data_dir / "wav.scp")
    return frame


def load_recording(entry: str, sample_rate: int | None = None, *, allow_commands: bool = False):
    """Load one ``wav.scp`` value: a file through :func:`~speakerid.data.audio.load_audio`, or (only with
    ``allow_commands``) the WAV a command writes to its standard output.

    Returns ``(signal, sample_rate)`` as :func:`~speakerid.data.audio.load_audio` does, and raises its
    :class:`~speakerid.exceptions.AudioError` when the audio cannot be read, or when a command fails, times out,
    or was not allowed.
    """
    if not is_command(entry):
        return load_audio(entry, sample_rate=sample_rate)
    command = entry.rstrip()[:-1].strip()
    if not allow_commands:
        raise AudioError("a wav.scp command, refused without allow_commands=True (--allow-commands)", command)
    try:
        result = subprocess.run(command, shell=True, capture_output=True, timeout=COMMAND_TIMEOUT_S,
                                check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AudioError(f"the command ran over {COMMAND_TIMEOUT_S:g} s and was stopped", command) from None
    if result.returncode != 0:
        detail = " ".join(result.stderr.decode("utf-8", "replace").split())[:200]
        raise AudioError(f"the command exited with status {result.returncode}" + (f" ({detail})" if detail else ""),
                         command)
    with tempfile.TemporaryDirectory(prefix="speakerid-wavscp-") as folder:
        wav = Path(folder, "audio.wav")
        wav.write_bytes(result.stdout)
        try:
            return load_audio(wav, sample_rate=sample_rate)
        except AudioError as exc:
            raise AudioError(str(exc).replace(str(wav), "its output"), command) from None


def cut_segment(signal, rate: int, start_s: float = math.nan, end_s: float = math.nan, *, name: str = "",
                source: str = ""):
    """``signal[round(start_s * rate):round(end_s * rate)]``; NaN ``start_s`` = from 0, NaN ``end_s`` = to the end.

    Raises
    ------
    AudioError
        The segment starts at or past the end of the recording (naming the segment and the recording).

    Examples
    --------
    >>> cut_segment(np.arange(10.0), 2, 1.0, 3.0).tolist()
    [2.0, 3.0, 4.0, 5.0]
    """
    first = int(round((0.0 if math.isnan(start_s) else start_s) * rate))
    last = len(signal) if math.isnan(end_s) else min(len(signal), int(round(end_s * rate)))
    if first >= last:
        raise AudioError(f"segment '{name}' starts at {start_s:g} s, past the end of the recording "
                         f"({len(signal) / rate:.2f} s)", source or None)
    return np.ascontiguousarray(signal[first:last])


def load_utterance(entry: str, start_s: float = math.nan, end_s: float = math.nan, sample_rate: int | None = None,
                   *, allow_commands: bool = False, name: str = ""):
    """Load one utterance: a whole recording, or the ``[start_s, end_s)`` segment of it (see :func:`cut_segment`).

    Returns ``(signal, sample_rate)``; raises :class:`AudioError` as :func:`load_recording` and :func:`cut_segment`.
    """
    signal, rate = load_recording(entry, sample_rate, allow_commands=allow_commands)
    if math.isnan(start_s) and math.isnan(end_s):
        return signal, rate
    return cut_segment(signal, rate, start_s, end_s, name=name, source=entry), rate


def iter_utterances(frame: pd.DataFrame, sample_rate: int | None = None, *, allow_commands: bool = False):
    """Yield ``(utterance_id, signal, sample_rate)`` for each row of :func:`read_data_dir`'s frame, in order.

    A recording is loaded once for all of its consecutive segments, and each segment is a slice of it
    (:func:`cut_segment`): no audio is written.

    Raises
    ------
    AudioError
        A recording cannot be loaded, or a segment starts past its end (naming the utterance).
    """
    current, signal, rate = None, None, None
    for utt, recording, entry, start_s, end_s in zip(frame.index, frame["recording"], frame["path"],
                                                    frame["start_s"], frame["end_s"]):
        if recording != current:
            signal, rate = load_recording(entry, sample_rate, allow_commands=allow_commands)
            current = recording
        if math.isnan(start_s) and math.isnan(end_s):
            yield utt, signal, rate
        else:
            yield utt, cut_segment(signal, rate, start_s, end_s, name=utt, source=entry), rate
