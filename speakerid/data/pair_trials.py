"""Pair trial lists (one audio file against another, no enrollment step), read in bounded memory.

Three formats, detected from the first line unless one is forced:

``voxceleb``
    ``<label> <enroll> <test>``, space separated, label ``1`` (same speaker) or ``0``; the paths are relative to an
    audio root (VoxCeleb1's ``veri_test2.txt`` is relative to its ``wav/`` folder). VoxSRC test lists leave the
    label out: ``<enroll> <test>``.
``kaldi``
    ``<enroll-utt> <test-utt> target|nontarget`` (the label may be left out), utterance ids of a Kaldi data
    directory that gives each utterance's audio (:mod:`speakerid.data.kaldi`; segments allowed).
``csv``
    A header ``enroll,test[,target]`` then one pair a row, paths relative to the audio root.

:func:`open_pairs` checks the whole list in one streamed pass (every line fits the format, labels are valid, every
utterance or file exists) before anything is scored; :meth:`PairList.chunks` then yields the pairs as written.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speakerid._utils.lazy import lazy_import
from speakerid._utils.validation import shorten
from speakerid.exceptions import ManifestError, ParameterError

pd = lazy_import("pandas")

__all__ = ["PAIR_FORMATS", "PairList", "open_pairs", "detect_pair_format"]

PAIR_FORMATS = ("voxceleb", "kaldi", "csv")
_VOXCELEB_LABELS = {"1": 1, "0": 0}
_KALDI_LABELS = {"target": 1, "nontarget": 0}
_CSV_LABELS = {"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0, "target": 1, "nontarget": 0}
_EXPECTED = {
    "voxceleb": "'<1|0> <enroll> <test>' or '<enroll> <test>' (VoxCeleb)",
    "kaldi": "'<enroll-utt> <test-utt> [target|nontarget]' (Kaldi)",
    "csv": "'<enroll>,<test>[,<target>]' (CSV)",
}


def _fits(fields: list, fmt: str):
    """``(enroll, test, label)`` when the whitespace-split ``fields`` fit ``fmt`` (label -1: none), else None."""
    if fmt == "voxceleb":
        if len(fields) == 3 and fields[0] in _VOXCELEB_LABELS:
            return fields[1], fields[2], _VOXCELEB_LABELS[fields[0]]
    elif fmt == "kaldi":
        if len(fields) == 3 and fields[2] in _KALDI_LABELS:
            return fields[0], fields[1], _KALDI_LABELS[fields[2]]
    if len(fields) == 2:
        return fields[0], fields[1], -1
    return None


def _shown(line: str) -> str:
    return line if len(line) <= 80 else line[:77] + "..."


def detect_pair_format(first_line: str, *, has_data_dir: bool = False) -> str | None:
    """The format the first line of a pair list is in, or None when it fits none.

    A two-field line (no label) is Kaldi when a data directory is given, else VoxCeleb.

    Examples
    --------
    >>> detect_pair_format("1 id1/a.wav id2/b.wav"), detect_pair_format("u1 u2 nontarget")
    ('voxceleb', 'kaldi')
    >>> detect_pair_format("enroll,test,target"), detect_pair_format("a b", has_data_dir=True)
    ('csv', 'kaldi')
    >>> detect_pair_format("a b c d") is None
    True
    """
    if "," in first_line and [c.strip() for c in first_line.split(",")][:2] == ["enroll", "test"]:
        return "csv"
    fields = first_line.split()
    if len(fields) == 2:
        return "kaldi" if has_data_dir else "voxceleb"
    for fmt in ("voxceleb", "kaldi"):
        if _fits(fields, fmt) is not None:
            return fmt
    return None


@dataclass(frozen=True)
class PairList:
    """A checked pair trial list (see :func:`open_pairs`).

    Attributes
    ----------
    path : pathlib.Path
    format : {"voxceleb", "kaldi", "csv"}
    n_pairs : int
    has_target : bool
        Every pair is labelled (1 = same speaker, 0 = different).
    audio_root : pathlib.Path
        Folder the paths of VoxCeleb and CSV lists are relative to.
    utterances : pandas.DataFrame or None
        Kaldi lists: :func:`speakerid.data.kaldi.read_data_dir`'s frame of the data directory.
    """

    path: Path
    format: str
    n_pairs: int
    has_target: bool
    audio_root: Path
    utterances: pd.DataFrame | None = None

    def _rows(self):
        """``(line_number, enroll, test, label)`` of every pair; raises naming the first line that does not fit."""
        with open(self.path, encoding="utf-8-sig", newline="") as fh:
            if self.format == "csv":
                yield from _csv_rows(fh, self.path)
                return
            for number, line in enumerate(fh, start=1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                row = _fits(line.split(), self.format)
                if row is None:
                    raise ManifestError(f"line {number} fits no {self.format} pair format: expected "
                                        f"{_EXPECTED[self.format]}, found '{_shown(line.strip())}'", self.path)
                yield (number, *row)

    def chunks(self, chunksize: int = 100_000):
        """Yield the pairs as frames of at most ``chunksize`` rows: ``enroll`` and ``test`` as written, ``target``
        (int8, when labelled), indexed by line number (index name ``line``)."""
        if chunksize < 1:
            raise ParameterError(f"chunksize must be >= 1, got {chunksize}")
        buffer = []
        for row in self._rows():
            buffer.append(row)
            if len(buffer) == chunksize:
                yield self._frame(buffer)
                buffer = []
        if buffer:
            yield self._frame(buffer)

    def _frame(self, rows) -> pd.DataFrame:
        lines, enroll, test, labels = zip(*rows)
        frame = pd.DataFrame({"enroll": enroll, "test": test}, index=pd.Index(lines, name="line"))
        if self.has_target:
            frame["target"] = np.asarray(labels, dtype=np.int8)
        return frame

    def source(self, key: str) -> tuple[str, float, float]:
        """The audio of an enroll/test entry: ``(file or wav.scp command, start_s, end_s)``; NaN times mean the
        whole recording (``end_s`` NaN alone: to its end)."""
        if self.utterances is None:
            return os.path.normpath(os.path.join(self.audio_root, key)), math.nan, math.nan
        row = self.utterances.loc[key]
        return row["path"], float(row["start_s"]), float(row["end_s"])

    def keys(self) -> list:
        """Every distinct enroll and test entry, in order of first appearance (one streamed pass)."""
        seen = {}
        for _, enroll, test, _ in self._rows():
            seen.setdefault(enroll, None)
            seen.setdefault(test, None)
        return list(seen)


def _csv_rows(fh, path: Path):
    reader = csv.reader(fh, skipinitialspace=True)
    header = [c.strip() for c in next(reader, [])]
    if header[:2] != ["enroll", "test"] or not set(header[2:]) <= {"target"}:
        raise ManifestError(f"line 1: expected the header 'enroll,test[,target]', found '{','.join(header)}'", path)
    labelled = len(header) == 3
    for row in reader:
        number = reader.line_num
        fields = [f.strip() for f in row]
        if not any(fields):
            continue
        label = _CSV_LABELS.get(fields[2].lower(), None) if labelled and len(fields) == 3 else -1
        if len(fields) != len(header) or not fields[0] or not fields[1] or label is None:
            raise ManifestError(f"line {number} fits no csv pair format: expected {_EXPECTED['csv']} under the "
                                f"header '{','.join(header)}', found '{_shown(','.join(row))}'", path)
        yield number, fields[0], fields[1], label


def open_pairs(path, *, format: str | None = None, audio_root=None, data_dir=None, allow_commands: bool = False,
               check_files: bool = True) -> PairList:
    """Check a pair trial list in one streamed pass and return it ready to be read in chunks.

    Parameters
    ----------
    path : str or os.PathLike
        The trial list.
    format : {"voxceleb", "kaldi", "csv"}, optional
        Force a format; by default it is detected from the first line (:func:`detect_pair_format`).
    audio_root : str or os.PathLike, optional
        Folder the VoxCeleb/CSV paths are relative to; by default the trial list's folder.
    data_dir : str or os.PathLike, optional
        The Kaldi data directory of a Kaldi list (required for one).
    allow_commands : bool
        Accept ``wav.scp`` command entries of the data directory (see :func:`speakerid.data.kaldi.read_wav_scp`).
    check_files : bool
        Check that every audio file exists (all missing ones in one error).

    Returns
    -------
    PairList

    Raises
    ------
    ManifestError
        An empty or unreadable list, the first line that fits no format (or not the forced one), a list mixing
        labelled and unlabelled pairs, an utterance the data directory lacks, missing audio files; each names the
        file and the line.
    ParameterError
        An unknown ``format``, or a Kaldi list without ``data_dir``.
    """
    path = Path(path)
    if format is not None and format not in PAIR_FORMATS:
        raise ParameterError(f"format must be one of {', '.join(PAIR_FORMATS)}, got {format!r}")
    if not path.is_file():
        raise ManifestError("no such pair trial list" if not path.exists() else "not a file", path)
    first_number, first = _first_line(path)
    detected = detect_pair_format(first, has_data_dir=data_dir is not None)
    if format is None:
        if detected is None:
            raise ManifestError(f"line {first_number} fits no pair-list format: expected "
                                f"{' or '.join(_EXPECTED.values())}, found '{_shown(first)}'", path)
        format = detected
    if format == "kaldi" and data_dir is None:
        raise ParameterError(f"{path}: a Kaldi trial list names utterances; give the Kaldi data directory "
                             "that holds them (data_dir / --data-dir)")
    root = Path(os.path.abspath(audio_root if audio_root is not None else path.parent))
    pairs = PairList(path, format, 0, False, root)
    n_pairs, labelled, keys = 0, None, set()
    for number, enroll, test, label in pairs._rows():
        n_pairs += 1
        if labelled is None:
            labelled = label >= 0
        elif labelled != (label >= 0):
            raise ManifestError(f"line {number} is {'un' if labelled else ''}labelled, unlike the lines before "
                                "it; label every pair or none", path)
        keys.update((enroll, test))
    if n_pairs == 0:
        raise ManifestError("the pair trial list holds no pairs", path)
    utterances = None
    if format == "kaldi":
        from speakerid.data.kaldi import read_data_dir

        utterances = read_data_dir(data_dir, allow_commands=allow_commands, check_files=check_files)
    pairs = PairList(path, format, n_pairs, bool(labelled), root, utterances)
    _check_keys(pairs, keys, check_files)
    return pairs


def _first_line(path: Path):
    try:
        with open(path, encoding="utf-8-sig") as fh:
            for number, line in enumerate(fh, start=1):
                if line.strip() and not line.lstrip().startswith("#"):
                    return number, line.strip()
    except UnicodeDecodeError as exc:
        raise ManifestError(f"not UTF-8 text (byte {exc.start})", path) from None
    raise ManifestError("the pair trial list is empty", path)


def _check_keys(pairs: PairList, keys: set, check_files: bool) -> None:
    if pairs.utterances is not None:
        unknown = sorted(keys - set(pairs.utterances.index))
        if unknown:
            raise ManifestError(f"{len(unknown)} utterance(s) are not in the data directory: {shorten(unknown)}",
                                pairs.path)
        return
    if check_files:
        missing = sorted(k for k in keys if not os.path.isfile(pairs.source(k)[0]))
        if missing:
            raise ManifestError(f"{len(missing)} audio file(s) not found under {pairs.audio_root}: "
                                f"{shorten(missing)}", pairs.path)
