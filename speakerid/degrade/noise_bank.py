"""A bank of real recordings for degradation: noise, music, speech (babble talkers) and room impulse responses,
each with its licence, read from a ``kind,path,licence`` CSV such as ``noise.csv``.

The bank keeps the recordings in the order of the list: :mod:`speakerid.degrade` draws files by index, so the
same list and seed choose the same files.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from speakerid._utils.validation import shorten
from speakerid.exceptions import ManifestError, ParameterError

__all__ = ["NoiseBank", "KINDS"]

#: Kinds of recordings a :class:`NoiseBank` holds (``speech`` recordings are the talkers of babble).
KINDS = ("noise", "music", "speech", "rir")


class NoiseBank:
    """Recordings by kind ('noise', 'music', 'speech', 'rir'), with licences.

    Parameters
    ----------
    kinds : dict of str -> sequence of path-like, optional
    licences : dict of path-like -> str, optional

    Attributes
    ----------
    kinds : dict of str -> list of pathlib.Path
        Every kind of :data:`KINDS` (empty lists for kinds without recordings), in the order given: random
        choices index these lists, so the same bank and seed choose the same files.
    licences : dict of str -> str
        Licence text by recording path (``str(path)``), copied into the records.
    """

    def __init__(self, kinds=None, licences=None):
        unknown = sorted(set(kinds or {}) - set(KINDS))
        if unknown:
            raise ParameterError(f"unknown recording kind(s) {', '.join(unknown)}; expected {', '.join(KINDS)}")
        self.kinds = {kind: [Path(p) for p in (kinds or {}).get(kind, ())] for kind in KINDS}
        self.licences = {str(Path(p)): str(text) for p, text in (licences or {}).items()}

    def __repr__(self) -> str:
        return "NoiseBank(" + ", ".join(f"{kind}={len(paths)}" for kind, paths in self.kinds.items()) + ")"

    @classmethod
    def from_csv(cls, path) -> NoiseBank:
        """The bank of a ``kind,path[,licence]`` CSV (e.g. ``noise.csv``); paths are relative to its folder.

        Raises
        ------
        ManifestError
            Naming the file and the CSV line: missing file, unreadable CSV, missing columns, no rows, an unknown
            kind or an empty path on a row, recordings that do not exist (all listed).
        """
        path = Path(path)
        if not path.is_file():
            raise ManifestError("is a directory, not a noise list" if path.is_dir() else "no such noise list", path)
        kinds, licences, missing, base = {kind: [] for kind in KINDS}, {}, [], path.resolve().parent
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle, skipinitialspace=True)
                reader.fieldnames = [str(name).strip() for name in reader.fieldnames or []]
                if not {"kind", "path"} <= set(reader.fieldnames):
                    raise ManifestError(f"expected the header 'kind,path,licence', found "
                                        f"'{','.join(reader.fieldnames) or '(none)'}'", path)
                for row in reader:
                    kind, name = (str(row.get(key) or "").strip() for key in ("kind", "path"))
                    if not kind and not name:
                        continue
                    if kind.lower() not in KINDS:
                        raise ManifestError(f"line {reader.line_num}: unknown kind {kind!r} (expected one of "
                                            f"{', '.join(KINDS)})", path)
                    if not name:
                        raise ManifestError(f"line {reader.line_num}: empty path", path)
                    resolved = Path(os.path.normpath(base / name))
                    if not resolved.is_file():
                        missing.append(f"line {reader.line_num}: {name}")
                    kinds[kind.lower()].append(resolved)
                    licences[str(resolved)] = str(row.get("licence") or "").strip()
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ManifestError(f"not a readable CSV ({' '.join(str(exc).split())})", path) from None
        if missing:
            raise ManifestError(f"{len(missing)} recording(s) not found: {shorten(missing, 5, '; ')}", path)
        if not any(kinds.values()):
            raise ManifestError("the noise list has no rows", path)
        return cls(kinds, licences)

    def with_babble_sources(self, paths) -> NoiseBank:
        """A copy of the bank whose ``speech`` recordings (babble talkers) also hold ``paths`` (e.g. speakers of
        other corpora), each once, after the bank's own. :class:`ParameterError` lists files that do not exist."""
        extra = list(dict.fromkeys(Path(p) for p in paths))
        missing = [str(p) for p in extra if not p.is_file()]
        if missing:
            raise ParameterError(f"{len(missing)} babble source(s) not found: {shorten(missing, 5)}")
        speech = self.kinds["speech"] + [p for p in extra if p not in set(self.kinds["speech"])]
        return NoiseBank({**self.kinds, "speech": speech}, self.licences)
