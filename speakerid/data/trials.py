"""Trial lists and score files: the one target-label parser, the one score-file reader, and the check that each
trial (claimed speaker, test file) is listed once and with one target.

Trial lists are read in bounded memory for batch scoring (a cheap checking pass, then raw chunks). Unlike
:func:`speakerid.data.manifests.read_manifest`, the chunks keep every value exactly as written (paths unresolved,
``target`` as text), because batch scoring writes the rows back unchanged.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

import numpy as np

from speakerid._utils.lazy import lazy_import
from speakerid._utils.validation import shorten
from speakerid.data._keys import (
    KeyIndex,
    coded_key_hashes,
    key_hashes,
    path_key,
    refuse_repeated,
    speaker_key,
)
from speakerid.exceptions import ManifestError, ParameterError

pd = lazy_import("pandas")

#: Trial-list rows read, scored and written at a time by batch scoring (memory is bounded by one chunk's files).
DEFAULT_CHUNKSIZE = 50_000

__all__ = ["TARGET_VALUES", "target_labels", "check_targets", "stripped_codes", "scan_trials", "read_chunks",
           "trial_key", "check_unique_trials", "ScoreFile", "read_score_file"]

_CSV_OPTIONS = {"dtype": str, "keep_default_na": False, "skipinitialspace": True, "encoding": "utf-8-sig"}
#: The spellings of a ``target`` cell (stripped, lower case) and the label each means.
TARGET_VALUES = {"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0, "target": 1, "nontarget": 0}
#: Columns of a score file that evaluation reads (others are only copied by calibrate/fuse).
SCORE_COLUMNS = ("speaker", "path", "target", "score", "error")
_MAX_ERRORS_KEPT = 5


# ---------------------------------------------------------------------------------------------------------------
# target labels
# ---------------------------------------------------------------------------------------------------------------

def target_labels(values) -> np.ndarray:
    """``target`` values as int8 labels: 1, 0, or -1 for a value that is not a valid target.

    Accepted (case and surrounding blanks ignored): ``1``/``0``, ``1.0``/``0.0``, ``true``/``false``,
    ``target``/``nontarget``, see :data:`TARGET_VALUES`.

    Examples
    --------
    >>> target_labels(["1", "0", " true", "x", 1]).tolist()
    [1, 0, 1, -1, 1]
    """
    text = pd.Series(values, dtype=object).astype(str).str.strip().str.lower()
    return text.map(TARGET_VALUES).fillna(-1).to_numpy(dtype=np.int8)


def check_targets(values, rows, source, unit: str = "line") -> np.ndarray:
    """Labels (int8, 0 or 1) of ``target`` values, or :class:`ManifestError` naming ``source`` and the bad rows.

    Parameters
    ----------
    values : array_like of str, shape (n_rows,)
    rows : array_like of int, shape (n_rows,)
        How each row is named in the message (CSV line numbers, or frame index values).
    source : str or os.PathLike
        The file (or frame name) the message starts with.
    unit : str
        ``"line"`` or ``"row"``.

    Examples
    --------
    >>> check_targets(["1", "false"], [2, 3], "t.csv").tolist()
    [1, 0]
    >>> check_targets(["1", "yes"], [2, 3], "t.csv")
    Traceback (most recent call last):
    ...
    speakerid.exceptions.ManifestError: t.csv: target must be 0 or 1; line(s) 3 hold 'yes'
    """
    labels = target_labels(values)
    bad = labels < 0
    if bad.any():
        _refuse_targets(np.asarray(rows)[bad], int(bad.sum()), np.asarray(values, dtype=object)[bad], source, unit)
    return labels


def _refuse_targets(rows, n_bad: int, values, source, unit: str):
    examples = ", ".join(repr(v) for v in values[:3])
    raise ManifestError(f"target must be 0 or 1; {unit}(s) {_first(rows, n_bad)} hold {examples}", source)


def stripped_codes(values, *, speaker_ids: bool = False):
    """``(codes, uniques)`` of the values as stripped text: ``uniques[codes]`` is the stripped column.

    Stripping the distinct values only is much faster than stripping every row of a long trial list. With
    ``speaker_ids``, the values are also put in Unicode NFC form (as
    :func:`~speakerid.data.manifests.validate_speaker_id` does), so the two spellings of "Zoë" are one code.

    Examples
    --------
    >>> codes, uniques = stripped_codes(["a", " b", "a ", "b"])
    >>> codes.tolist(), list(uniques)
    ([0, 1, 0, 1], ['a', 'b'])
    >>> stripped_codes(["Zo\u00eb", "Zoe\u0308"], speaker_ids=True)[0].tolist()
    [0, 0]
    """
    clean = speaker_key if speaker_ids else (lambda u: str(u).strip())
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    stripped_codes_, stripped = pd.factorize(np.array([clean(u) for u in uniques], dtype=object))
    return stripped_codes_[codes] if len(codes) else codes, np.asarray(stripped, dtype=object)


# ---------------------------------------------------------------------------------------------------------------
# each trial once: (speaker, path) keys
# ---------------------------------------------------------------------------------------------------------------

def trial_key(speaker, path) -> tuple:
    """What identifies a trial: the claimed speaker (stripped, NFC) and the test path (stripped, normalised).

    Examples
    --------
    >>> trial_key(" Zoe\u0308", "./a.wav") == ("Zo\u00eb", "a.wav")
    True
    """
    return speaker_key(speaker), path_key(path)


def check_unique_trials(speakers, paths, targets=None, *, rows=None, source="trials", unit: str = "line") -> None:
    """Refuse a list in which a (speaker, path) trial appears twice, or as both a target and a non-target.

    Speaker ids are compared in Unicode NFC form and paths after :func:`os.path.normpath`, so ``Zoë`` (NFD) and
    ``Zoë`` (NFC), or ``a.wav`` and ``./a.wav``, are the same trial.

    Parameters
    ----------
    speakers, paths : array_like of str, shape (n_rows,)
    targets : array_like of int, shape (n_rows,), optional
        0/1 labels (-1 for none).
    rows : array_like of int, shape (n_rows,), optional
        How rows are named in the message (default: 1, 2, ...).
    source : str or os.PathLike
        The file (or frame name) the message starts with.
    unit : str
        ``"line"`` or ``"row"``.

    Raises
    ------
    ManifestError
        Naming the rows: contradictory targets first, then repeated rows.

    Examples
    --------
    >>> check_unique_trials(["a", "a"], ["x.wav", "y.wav"], [1, 0])
    >>> check_unique_trials(["a", "a"], ["x.wav", "./x.wav"], [1, 1], rows=[2, 3], source="t.csv")
    Traceback (most recent call last):
    ...
    speakerid.exceptions.ManifestError: t.csv: 1 repeated trial row(s) (same speaker and path; list each trial once): line 3 repeats line 2
    """
    speakers, paths = np.asarray(speakers, dtype=object), np.asarray(paths, dtype=object)
    targets = None if targets is None else np.asarray(targets, dtype=np.int8)
    rows = np.arange(1, len(speakers) + 1) if rows is None else np.asarray(rows)
    index = KeyIndex()
    index.add(key_hashes(speakers, paths), targets)
    refuse_repeated(index, lambda: [(speakers, paths, targets, rows)], source, unit)


# ---------------------------------------------------------------------------------------------------------------
# trial lists for batch scoring
# ---------------------------------------------------------------------------------------------------------------

def _csv_errors(path, action, what: str = "trial list", header: str = "speaker,path[,target]"):
    try:
        return action()
    except pd.errors.EmptyDataError:
        raise ManifestError(f"the {what} is empty (expected a header '{header}')", path) from None
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"not a readable CSV ({' '.join(str(exc).split())})", path) from None
    except OSError as exc:
        raise ManifestError(f"cannot read ({exc.strerror or exc})", path) from None


def _header(path: Path) -> list[str]:
    from speakerid.data.manifests import check_manifest_columns

    if not path.exists():
        raise ManifestError("no such trial list", path)
    if path.is_dir():
        raise ManifestError("is a directory, not a CSV trial list", path)
    columns = [str(c).strip() for c in _csv_errors(path, lambda: pd.read_csv(path, nrows=0, **_CSV_OPTIONS))]
    check_manifest_columns(columns, path)
    return columns


def _scan_chunks(trials, chunksize: int):
    """``(source, columns, chunks)``: the speaker, path and target columns of a trial list, chunk by chunk."""
    if isinstance(trials, pd.DataFrame):
        columns = [str(c).strip() for c in trials.columns]
        wanted = [c for c in ("speaker", "path", "target") if c in columns]
        frame = trials.rename(columns=lambda c: str(c).strip())[wanted].astype(str)
        frame.index = pd.RangeIndex(len(frame))
        return "trials DataFrame", columns, lambda: [frame]
    source = Path(trials)
    columns = _header(source)
    wanted = [c for c in ("speaker", "path", "target") if c in columns]
    return source, columns, lambda: _raw_chunks(source, chunksize, usecols=lambda c: str(c).strip() in wanted)


def scan_trials(trials, chunksize: int):
    """Check a trial list (CSV path or frame) reading only ``speaker``, ``path`` and ``target``.

    Memory grows by 9 bytes a row (a hash of each trial's key and its target), not with the list's text.

    Returns
    -------
    (int, list of str, bool)
        ``(n_rows, claimed_speakers_sorted, has_target)``; blank rows are not counted.

    Raises
    ------
    ManifestError
        Naming the file, before anything is scored: a missing column, empty speaker ids or bad ``target``
        values (with their line numbers, or row numbers of a frame), and a trial listed twice or as both a
        target and a non-target (see :func:`check_unique_trials`; chunk boundaries do not matter).
    """
    source, columns, chunks = _scan_chunks(trials, chunksize)
    unit = "row" if isinstance(source, str) else "line"
    n_rows, claimed, index = 0, set(), KeyIndex()
    empty, n_empty, bad_rows, bad_values, n_bad = [], 0, [], [], 0
    for chunk in chunks():
        codes, speakers, path_codes, paths, labels, kept = _coded(chunk)
        lines = chunk.index[kept]
        if labels is not None:
            bad = labels < 0
            bad_rows.extend(lines[bad][: 10 - len(bad_rows)])
            bad_values.extend(_stripped(chunk["target"].to_numpy()[kept][bad][: 3 - len(bad_values)]))
            n_bad += int(bad.sum())
        n_rows += len(lines)
        no_speaker = speakers[codes] == ""
        empty.extend(lines[no_speaker][: 10 - len(empty)])
        n_empty += int(no_speaker.sum())
        claimed.update(s for s in speakers if s)
        index.add(coded_key_hashes(codes, speakers, path_codes, paths), labels)
    if n_rows == 0:     # as read_manifest: nothing to score is a mistake (a wrong file), not an empty result
        raise ManifestError("the trial list has a header but no trials", source)
    if n_empty:
        raise ManifestError(f"empty speaker id on {unit}(s) {_first(empty, n_empty)}", source)
    if n_bad:
        _refuse_targets(bad_rows, n_bad, bad_values, source, unit)

    def again():
        for chunk in chunks():
            codes, speakers, path_codes, paths, labels, kept = _coded(chunk)
            yield speakers[codes], paths[path_codes], labels, chunk.index[kept].to_numpy()

    refuse_repeated(index, again, source, unit)
    return n_rows, sorted(claimed), "target" in columns


def _stripped(values) -> list:
    return [str(v).strip() for v in values]


def _coded(chunk: pd.DataFrame):
    """``(speaker_codes, speakers, path_codes, paths, labels, kept)`` of a raw chunk's rows that are not blank
    (``kept``): stripped speakers (NFC) and paths as codes into their distinct values, and the target labels
    (-1 for a bad value; None without a target column)."""
    codes, speakers = stripped_codes(chunk["speaker"], speaker_ids=True)
    path_codes, paths = stripped_codes(chunk["path"])
    blank = (speakers[codes] == "") & (paths[path_codes] == "") if len(codes) else np.zeros(0, bool)
    labels = None
    if "target" in chunk.columns:
        target_codes, targets = stripped_codes(chunk["target"])
        if len(codes):
            blank &= targets[target_codes] == ""
        labels = target_labels(targets)[target_codes][~blank]
    kept = ~blank
    return codes[kept], speakers, path_codes[kept], paths, labels, kept


def _first(shown, total: int) -> str:
    """The first rows and how many more: like :func:`shorten`, for a list counted but not kept."""
    return ", ".join(str(int(x)) for x in shown[:10]) + (f" and {total - 10} more" if total > 10 else "")


def _raw_chunks(path: Path, chunksize: int, usecols=None):
    reader = _csv_errors(path, lambda: pd.read_csv(path, chunksize=chunksize, usecols=usecols, **_CSV_OPTIONS))
    line = 2
    with reader:        # closed however the caller stops reading
        iterator = iter(reader)
        while True:
            chunk = _csv_errors(path, lambda: next(iterator, None))
            if chunk is None:
                return
            chunk = chunk.rename(columns=lambda c: str(c).strip())
            chunk.index = pd.RangeIndex(line, line + len(chunk), name="line")
            line += len(chunk)
            yield chunk


def read_chunks(trials, chunksize: int):
    """Yield ``(chunk, first_row)``: the trial list's rows as written, ``chunksize`` at a time.

    CSV chunks are indexed by their CSV line numbers (index name ``line``); frame chunks keep the frame's index.
    """
    if isinstance(trials, pd.DataFrame):
        frame = trials.rename(columns=lambda c: str(c).strip())
        for start in range(0, len(frame), chunksize):
            yield frame.iloc[start:start + chunksize].copy(), start
        return
    for chunk in _raw_chunks(Path(trials), chunksize):
        yield chunk, int(chunk.index[0]) if len(chunk) else 0


# ---------------------------------------------------------------------------------------------------------------
# score files: a trial list with a score per row (``speakerid score`` output)
# ---------------------------------------------------------------------------------------------------------------

class ScoreFile(NamedTuple):
    """A score file read by :func:`read_score_file`."""

    frame: pd.DataFrame          # every row, as text ("" for a missing cell)
    usable: np.ndarray           # bool per row: has a score and no error
    scores: np.ndarray           # float64 scores of the usable rows
    labels: np.ndarray | None    # int8 labels of the usable rows, when there is a target column
    errors: list                 # up to five distinct ``error`` texts of the unusable rows

    @property
    def n_skipped(self) -> int:
        """Rows without a score, or with an error."""
        return int((~self.usable).sum())


def _as_text(column: pd.Series) -> pd.Series:
    """Every cell as stripped text; "" for a missing cell (empty, None, or NaN in a DataFrame)."""
    missing = column.isna().to_numpy()
    text = column.astype(str).str.strip()
    text[missing] = ""
    return text


def _read_score_csv(path: Path, all_columns: bool, columns=()) -> pd.DataFrame:
    if not path.is_file():
        raise ManifestError("no such score file" if not path.exists() else "not a file", path)

    def read():
        if all_columns:
            return pd.read_csv(path, **_CSV_OPTIONS)
        # only the columns used: score files often carry long paths and notes in other columns
        header = [str(c).strip() for c in pd.read_csv(path, nrows=0, **_CSV_OPTIONS).columns]
        if "score" not in header:
            return pd.DataFrame(columns=header)  # the caller names what is missing
        return pd.read_csv(path, usecols=lambda c: str(c).strip() in (*SCORE_COLUMNS, *columns), **_CSV_OPTIONS)

    return _csv_errors(path, read, what="score file", header="speaker,path,target,score")


def read_score_file(source, *, require_target: bool = True, name: str | None = None,
                    all_columns: bool = True, columns=()) -> ScoreFile:
    """Read a score file: a trial list with a ``score`` per row, as ``speakerid score`` writes it.

    A row whose score is missing (an empty cell; ``None``/NaN in a DataFrame), or whose ``error`` is not empty,
    is a trial that could not be scored: it is not *usable*, and its error text is kept as an example. With
    ``speaker`` and ``path`` columns, each trial must be listed once (:func:`check_unique_trials`).

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        A CSV with a ``score`` column (and ``target``, ``speaker``, ``path``, ``error``), or such a frame.
    require_target : bool
        Demand a ``target`` column.
    name : str, optional
        How to name a DataFrame in error messages (default ``"<DataFrame>"``).
    all_columns : bool
        Keep every column in :attr:`ScoreFile.frame` (to write the rows back); else read only
        :data:`SCORE_COLUMNS` and ``columns``.
    columns : sequence of str
        With ``all_columns=False``, more columns to keep if the file has them (e.g. the speakers to resample).

    Returns
    -------
    ScoreFile

    Raises
    ------
    ManifestError
        Missing or unreadable file, missing ``score``/``target`` column, a target that is not 0/1, a score that
        is not a number, or a trial listed twice or with both targets (the message names the file and lines).
    ParameterError
        NaN or infinite scores (leave the score empty for a trial that could not be scored).

    Examples
    --------
    >>> frame = pd.DataFrame({"score": [0.5, None, -1.0], "target": [1, 0, 0], "error": ["", "no speech", ""]})
    >>> data = read_score_file(frame)
    >>> data.scores.tolist(), data.labels.tolist(), data.n_skipped, data.errors
    ([0.5, -1.0], [1, 0], 1, ['no speech'])
    """
    if isinstance(source, pd.DataFrame):
        where, unit, frame = name or "<DataFrame>", "row", source
        rows = np.asarray(frame.index)
    else:
        where, unit = str(source), "line"
        frame = _read_score_csv(Path(source), all_columns, columns)
        rows = np.arange(2, len(frame) + 2)   # CSV line numbers, the header being line 1
    frame = frame.rename(columns=lambda c: str(c).strip())
    wanted = ["score"] + (["target"] if require_target else [])
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        found = ",".join(str(c) for c in frame.columns) or "(none)"
        raise ManifestError(f"missing column(s) {', '.join(missing)}; found header '{found}' (expected a score "
                            f"file with at least '{','.join(wanted)}', as 'speakerid score' writes)", where)
    labels = None
    if "target" in frame.columns:
        labels = check_targets(_as_text(frame["target"]).to_numpy(), rows, where, unit)
    if "speaker" in frame.columns and "path" in frame.columns:
        check_unique_trials(_as_text(frame["speaker"]).to_numpy(), _as_text(frame["path"]).to_numpy(), labels,
                            rows=rows, source=where, unit=unit)
    raw = _as_text(frame["score"])
    error_text = _as_text(frame["error"]) if "error" in frame.columns else pd.Series("", index=frame.index)
    usable = ((raw != "") & (error_text == "")).to_numpy()
    numbers = pd.to_numeric(raw.where(usable, "0"), errors="coerce").to_numpy(dtype=np.float64)
    nan = np.isnan(numbers) & usable
    not_number = nan.copy()
    not_number[nan] = ~raw[nan].str.lower().isin(["nan", "+nan", "-nan"]).to_numpy()
    if not_number.any():
        examples = ", ".join(repr(v) for v in raw.to_numpy()[not_number][:3])
        raise ManifestError(f"score must be a number or empty; {unit}(s) {shorten(rows[not_number])} hold "
                            f"{examples}", where)
    if nan.any():
        raise ParameterError(f"{where}: NaN scores on {unit}(s) {shorten(rows[nan])} (leave the score empty for "
                             "a trial that could not be scored)")
    inf = np.isinf(numbers) & usable
    if inf.any():
        raise ParameterError(f"{where}: infinite scores on {unit}(s) {shorten(rows[inf])} (clip the scores "
                             "first: only finite scores can be evaluated)")
    errors = []
    for value in error_text.to_numpy()[~usable]:
        value = " ".join(value.split())
        if value and value not in errors:
            errors.append(value)
            if len(errors) == _MAX_ERRORS_KEPT:
                break
    return ScoreFile(frame, usable, numbers[usable], None if labels is None else labels[usable], errors)
