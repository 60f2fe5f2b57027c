"""Reading trial lists for batch scoring in bounded memory (a cheap checking pass, then raw chunks), and the
metrics of a scored list.

Unlike :func:`speakerid.data.manifests.read_manifest`, the chunks keep every value exactly as written (paths unresolved,
``target`` as text), because batch scoring writes the rows back unchanged.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from speakerid.exceptions import ManifestError

__all__ = ["scan_trials", "read_chunks", "target_labels", "stripped_codes",]

_CSV_OPTIONS = {"dtype": str, "keep_default_na": False, "skipinitialspace": True, "encoding": "utf-8-sig"}
_TARGET_VALUES = {"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0, "target": 1, "nontarget": 0}


def target_labels(values) -> np.ndarray:
    """``target`` values as int8 labels: 1, 0, or -1 for a value that is not a valid target.

    Examples
    --------
    >>> target_labels(["1", "0", " true", "x", 1]).tolist()
    [1, 0, 1, -1, 1]
    """
    text = pd.Series(values, dtype=object).astype(str).str.strip().str.lower()
    return text.map(_TARGET_VALUES).fillna(-1).to_numpy(dtype=np.int8)


def stripped_codes(values):
    """``(codes, uniques)`` of the values as stripped text: ``uniques[codes]`` is the stripped column.

    Stripping the distinct values only is much faster than stripping every row of a long trial list.

    Examples
    --------
    >>> codes, uniques = stripped_codes(["a", " b", "a ", "b"])
    >>> codes.tolist(), list(uniques)
    ([0, 1, 0, 1], ['a', 'b'])
    """
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    stripped_codes_, stripped = pd.factorize(np.array([str(u).strip() for u in uniques], dtype=object))
    return stripped_codes_[codes] if len(codes) else codes, np.asarray(stripped, dtype=object)


def _csv_errors(path, action):
    try:
        return action()
    except pd.errors.EmptyDataError:
        raise ManifestError("the trial list is empty (expected a header 'speaker,path[,target]')", path) from None
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"not a readable CSV ({' '.join(str(exc).split())})", path) from None


def _header(path: Path) -> list[str]:
    from speakerid.data.manifests import check_manifest_columns

    if not path.exists():
        raise ManifestError("no such trial list", path)
    if path.is_dir():
        raise ManifestError("is a directory, not a CSV trial list", path)
    columns = [str(c).strip() for c in _csv_errors(path, lambda: pd.read_csv(path, nrows=0, **_CSV_OPTIONS))]
    check_manifest_columns(columns, path)
    return columns


def _lines(shown, total: int) -> str:
    return ", ".join(str(int(x)) for x in shown[:10]) + (f" and {total - 10} more" if total > 10 else "")


def scan_trials(trials, chunksize: int):
    """Check a trial list (CSV path or frame) reading only ``speaker``, ``path`` and ``target``.

    Returns ``(n_rows, claimed_speakers_sorted, has_target)``. Raises :class:`ManifestError` naming the file
    for a missing column, empty speaker ids or bad ``target`` values (with their line numbers), before anything
    is scored.
    """
    if isinstance(trials, pd.DataFrame):
        source, columns = "trials DataFrame", [str(c).strip() for c in trials.columns]
        wanted = [c for c in ("speaker", "path", "target") if c in columns]
        frame = trials.rename(columns=lambda c: str(c).strip())[wanted].astype(str)
        frame.index = pd.RangeIndex(len(frame))
        chunks = [frame]
    else:
        source = Path(trials)
        columns = _header(source)
        wanted = [c for c in ("speaker", "path", "target") if c in columns]
        chunks = _raw_chunks(source, chunksize, usecols=lambda c: str(c).strip() in wanted)
    n_rows, claimed = 0, set()
    empty, n_empty, bad_target, n_bad = [], 0, [], 0
    for chunk in chunks:
        codes, speakers = stripped_codes(chunk["speaker"])
        path_codes, paths = stripped_codes(chunk["path"])
        no_speaker = speakers[codes] == "" if len(codes) else np.zeros(0, bool)
        blank = no_speaker & (paths[path_codes] == "") if len(codes) else no_speaker
        if "target" in chunk.columns:
            target_codes, targets = stripped_codes(chunk["target"])
            blank &= targets[target_codes] == ""
            bad = ~blank & (target_labels(targets)[target_codes] < 0)
            bad_target.extend(chunk.index[bad][: 10 - len(bad_target)])
            n_bad += int(bad.sum())
        n_rows += int((~blank).sum())
        no_speaker &= ~blank
        empty.extend(chunk.index[no_speaker][: 10 - len(empty)])
        n_empty += int(no_speaker.sum())
        claimed.update(s for s in speakers if s)
    where = "row(s)" if isinstance(source, str) else "line(s)"
    if n_empty:
        raise ManifestError(f"empty speaker id on {where} {_lines(empty, n_empty)}", source)
    if n_bad:
        raise ManifestError(f"target must be 0 or 1 (or true/false); bad value on {where} "
                            f"{_lines(bad_target, n_bad)}", source)
    return n_rows, sorted(claimed), "target" in columns


def _raw_chunks(path: Path, chunksize: int, usecols=None):
    reader = _csv_errors(path, lambda: pd.read_csv(path, chunksize=chunksize, usecols=usecols, **_CSV_OPTIONS))
    line = 2
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


