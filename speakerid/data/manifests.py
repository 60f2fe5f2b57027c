"""Reading ``speaker,path[,target]`` CSV manifests and validating speaker ids.

A bad manifest is a :class:`~speakerid.exceptions.ManifestError` naming the file, the row and what is wrong.
"""

from __future__ import annotations

import csv
import os
import re
import unicodedata
from pathlib import Path

from speakerid._utils.lazy import lazy_import
from speakerid._utils.validation import shorten
from speakerid.data.audio import _one_line
from speakerid.data.trials import check_targets, check_unique_trials
from speakerid.exceptions import ManifestError, ParameterError

pd = lazy_import("pandas")

MANIFEST_COLUMNS = ("speaker", "path")



def read_manifest(path, *, require_target: bool = False, check_files: bool = True,
                  for_enrollment: bool = False) -> pd.DataFrame:
    """Read a ``speaker,path[,target]`` CSV manifest.

    Paths are resolved relative to the manifest's folder (absolute paths are kept). Paths may lead outside
    that folder (``../data/x.wav``): a manifest is trusted local input, read with the rights of the user who
    runs speakerid (see SECURITY.md). Extra columns are kept. ``speaker`` is read as text (so ``007`` stays
    ``007``), must be a valid speaker id and is returned in Unicode NFC form (:func:`validate_speaker_id`);
    ``target``, when present, must be 0 or 1 (:func:`speakerid.data.trials.check_targets`). A row that repeats the
    speaker and path of an earlier row is an error (it would silently weigh a file twice), and so is the same
    speaker and path given both targets (:func:`speakerid.data.trials.check_unique_trials`).

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file.
    require_target : bool
        Demand a ``target`` column (trial lists).
    check_files : bool
        Check that every audio file exists; all missing files are listed in one error.
    for_enrollment : bool
        The speakers are to be enrolled: refuse the reserved ids of :data:`RESERVED_SPEAKER_IDS`.

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
                            first_line=2, for_enrollment=for_enrollment)
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
        # closed however the caller stops reading (an error in a chunk, a generator dropped half-way)
        with pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunksize, skipinitialspace=True,
                         encoding="utf-8-sig") as reader:
            for chunk in reader:
                yield _clean_manifest(chunk, path, require_target=require_target, check_files=check_files,
                                      first_line=first_line, for_enrollment=False)
                first_line += len(chunk)
        if first_line == 2:      # as read_manifest: a list with no trial is a mistake, not an empty result
            raise ManifestError("the manifest has a header but no rows", path)
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



def _clean_manifest(frame: pd.DataFrame, path: Path, *, require_target: bool, check_files: bool,
                    first_line: int, for_enrollment: bool) -> pd.DataFrame:
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
        raise ManifestError(f"empty speaker id on line(s) {shorten(empty_speaker)}", path)
    empty_path = frame.index[frame["path"] == ""]
    if len(empty_path):
        raise ManifestError(f"empty path on line(s) {shorten(empty_path)}", path)
    if "target" in frame.columns:
        frame["target"] = check_targets(frame["target"].astype(str).to_numpy(), frame.index, path)
    frame["speaker"] = _checked_speaker_ids(frame, path, for_enrollment)
    base = path.resolve().parent
    frame["path"] = [p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p)) for p in frame["path"]]
    check_unique_trials(frame["speaker"], frame["path"], frame["target"] if "target" in frame.columns else None,
                        rows=frame.index, source=path)
    if check_files:
        missing = [(line, p) for line, p in zip(frame.index, frame["path"]) if not os.path.isfile(p)]
        if missing:
            shown = "; ".join(f"line {line}: {p}" for line, p in missing[:10])
            more = f"; and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise ManifestError(f"{len(missing)} audio file(s) not found: {shown}{more}", path)
    return frame



def _checked_speaker_ids(frame: pd.DataFrame, path: Path, for_enrollment: bool) -> list:
    """The speaker column as valid ids (NFC), or a ManifestError naming the lines of the first bad one."""
    clean = {}
    for speaker in frame["speaker"].unique():
        try:
            clean[speaker] = validate_speaker_id(speaker, for_enrollment=for_enrollment)
        except ParameterError as exc:
            lines = frame.index[frame["speaker"] == speaker]
            raise ManifestError(f"line(s) {shorten(lines)}: {exc}", path) from None
    return [clean[s] for s in frame["speaker"]]


MAX_SPEAKER_ID_LENGTH = 128
#: Ids no speaker may be enrolled under (compared ignoring case): ``identify`` answers in these words.
RESERVED_SPEAKER_IDS = ("unknown",)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def validate_speaker_id(speaker, *, for_enrollment: bool = False) -> str:
    """Return ``speaker`` as a clean id in Unicode NFC form, or raise :class:`ParameterError` saying what is wrong.

    Every id that enters speakerid (manifests, the store, the verifier, the command line, the web page) passes
    here, so an id typed in decomposed form (NFD: ``"Zoe\u0308"``) and in composed form (NFC: ``"Zo\u00eb"``)
    is the same speaker. Compatibility variants (NFKC: full-width ``"Ｚoë"``, the ligature ``"ﬁ"``) stay distinct
    ids. Unicode letters, digits, spaces and punctuation are fine; path separators, ``.``/``..``, control
    characters, surrounding blanks and ids over 128 characters are not.

    Parameters
    ----------
    speaker : str
    for_enrollment : bool
        The id is about to be enrolled: also refuse :data:`RESERVED_SPEAKER_IDS` (``unknown``, in any case).

    Raises
    ------
    ParameterError
        Naming the id and the rule it breaks.

    Examples
    --------
    >>> validate_speaker_id("Zoë-01")
    'Zoë-01'
    >>> validate_speaker_id("Zoe\u0308") == "Zo\u00eb"
    True
    >>> validate_speaker_id("../x")
    Traceback (most recent call last):
    ...
    speakerid.exceptions.ParameterError: invalid speaker id '../x': must not contain '/' or '\\\\'
    >>> validate_speaker_id("Unknown", for_enrollment=True)
    Traceback (most recent call last):
    ...
    speakerid.exceptions.ParameterError: invalid speaker id 'Unknown': reserved (identify answers 'unknown' when no enrolled speaker matches); choose another id
    """
    if not isinstance(speaker, str):
        raise ParameterError(f"invalid speaker id {speaker!r}: must be text")
    if any(unicodedata.category(ch) in ("Cs", "Co", "Cn") for ch in speaker):
        raise ParameterError(f"invalid speaker id {speaker!r}: holds unassigned or surrogate code points")
    speaker = unicodedata.normalize("NFC", speaker)
    if speaker == "":
        raise ParameterError("invalid speaker id '': must not be empty")
    if speaker != speaker.strip():
        raise ParameterError(f"invalid speaker id {speaker!r}: must not start or end with blanks")
    if _CONTROL.search(speaker):
        raise ParameterError(f"invalid speaker id {speaker!r}: must not contain control characters")
    if "/" in speaker or "\\" in speaker:
        raise ParameterError(f"invalid speaker id {speaker!r}: must not contain '/' or '\\\\'")
    if speaker in (".", "..") or speaker.startswith("."):
        raise ParameterError(f"invalid speaker id {speaker!r}: must not start with '.'")
    if len(speaker) > MAX_SPEAKER_ID_LENGTH:
        raise ParameterError(f"invalid speaker id {speaker[:20]!r}...: longer than {MAX_SPEAKER_ID_LENGTH} "
                             "characters")
    if for_enrollment and speaker.casefold() in RESERVED_SPEAKER_IDS:
        raise ParameterError(f"invalid speaker id {speaker!r}: reserved (identify answers 'unknown' when no "
                             "enrolled speaker matches); choose another id")
    return speaker
