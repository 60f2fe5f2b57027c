"""RTTM files (Rich Transcription Time Marked, NIST RT-09): who spoke when, one ``SPEAKER`` line per stretch.

A line has ten blank-separated fields::

    SPEAKER <file-id> <channel> <onset_s> <duration_s> <NA> <NA> <speaker> <NA> <NA>

as written by pyannote and read by ``md-eval.pl`` and dscore. Other line types (``SPKR-INFO``, ``LEXEME``, ...)
are skipped when reading. Fields cannot hold blanks: blanks in speaker or file ids are written as ``_``.
"""

from __future__ import annotations

import math
from pathlib import Path

from speakerid._utils.files import atomic_write
from speakerid._utils.lazy import lazy_import
from speakerid.exceptions import ManifestError, ParameterError

pd = lazy_import("pandas")

__all__ = ["write_rttm", "read_rttm", "rttm_lines", "rttm_field"]


def rttm_field(text: str) -> str:
    """``text`` as one RTTM field: blanks become ``_``.

    Examples
    --------
    >>> rttm_field("Ann Lee"), rttm_field("spk1")
    ('Ann_Lee', 'spk1')
    """
    field = "_".join(str(text).split())
    if not field:
        raise ParameterError("an RTTM field cannot be empty")
    return field


def rttm_lines(file_id: str, stretches, channel: int = 1) -> list:
    """RTTM ``SPEAKER`` lines of ``(start_s, end_s, speaker)`` stretches (times in seconds, to the millisecond).

    Raises
    ------
    ParameterError
        A stretch that does not end after it starts, or a negative start.

    Examples
    --------
    >>> rttm_lines("meeting 1", [(0.0, 2.5, "ann"), (2.5, 4.0, "unknown")])
    ['SPEAKER meeting_1 1 0.000 2.500 <NA> <NA> ann <NA> <NA>', 'SPEAKER meeting_1 1 2.500 1.500 <NA> <NA> unknown <NA> <NA>']
    """
    file_id = rttm_field(file_id)
    lines = []
    for start_s, end_s, speaker in stretches:
        start_s, end_s = float(start_s), float(end_s)
        if not (math.isfinite(start_s) and math.isfinite(end_s) and 0 <= start_s < end_s):
            raise ParameterError(f"a stretch must satisfy 0 <= start < end, got {start_s} .. {end_s} s")
        lines.append(f"SPEAKER {file_id} {int(channel)} {start_s:.3f} {end_s - start_s:.3f} <NA> <NA> "
                     f"{rttm_field(speaker)} <NA> <NA>")
    return lines


def write_rttm(path, file_id: str, stretches, channel: int = 1) -> Path:
    """Write the stretches of one recording as an RTTM file (atomically) and return its path."""
    path = Path(path)
    lines = rttm_lines(file_id, stretches, channel)
    with atomic_write(path, "w") as fh:
        fh.writelines(line + "\n" for line in lines)
    return path


def read_rttm(path) -> pd.DataFrame:
    """Read the ``SPEAKER`` lines of an RTTM file.

    Returns
    -------
    pandas.DataFrame
        Columns ``file_id``, ``channel`` (int), ``start_s``, ``duration_s``, ``end_s`` (float), ``speaker``, in
        file order.

    Raises
    ------
    ManifestError
        A ``SPEAKER`` line without ten fields, or with times that are not numbers (naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError("no such RTTM file" if not path.exists() else "not a file", path)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        if len(fields) < 9:
            raise ManifestError(f"line {number}: a SPEAKER line needs 10 fields, found {len(fields)}", path)
        try:
            channel, start_s, duration_s = int(fields[2]), float(fields[3]), float(fields[4])
        except ValueError:
            raise ManifestError(f"line {number}: channel, onset and duration must be numbers", path) from None
        if not (math.isfinite(start_s) and math.isfinite(duration_s) and start_s >= 0 and duration_s >= 0):
            raise ManifestError(f"line {number}: onset and duration must be finite and >= 0", path)
        rows.append((fields[1], channel, start_s, duration_s, start_s + duration_s, fields[7]))
    return pd.DataFrame(rows, columns=["file_id", "channel", "start_s", "duration_s", "end_s", "speaker"])
