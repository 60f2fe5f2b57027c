"""Score files in the formats the field's scoring tools read, written as scoring goes and read back.

==========  =======================================  ================================================================
format      one line per trial                       whose convention
==========  =======================================  ================================================================
``csv``     the trial's columns + ``score``, ``error``  speakerid's own (keeps labels and unscored trials)
``kaldi``   ``<enroll> <test> <score>``              Kaldi's ``ivector-plda-scoring`` / ``compute-eer`` input
``voxceleb`` ``<score> <enroll> <test>``             the VoxSRC challenge submission format (score first). SpeechBrain's
                                                     recipes write ``<enroll> <test> <label> <score>`` instead
                                                     (``speaker_verification_cosine.py``): read back, not written
``nist``    header ``modelid segmentid side LLR``,   NIST SRE 2016-2021 system output (tab separated, ``side`` is
            ``<enroll> <test> a <score>``            ``a``: single-channel audio)
==========  =======================================  ================================================================

``enroll`` is the claimed speaker (enrolled-speaker trials) or the enrollment file (pair trials); ``test`` the test
file, both as written in the trial list. Only ``csv`` keeps labels and trials that could not be scored; the others
hold scored trials only, and their labels come from a key (the trial list) when read back.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write
from speakerid._utils.lazy import lazy_import
from speakerid._utils.validation import shorten
from speakerid.exceptions import ManifestError, ParameterError

pd = lazy_import("pandas")

__all__ = ["SCORE_FORMATS", "ScoreWriter", "read_score_table", "read_key", "detect_score_format", "convert_scores"]

SCORE_FORMATS = ("csv", "kaldi", "voxceleb", "nist")
NIST_HEADER = ("modelid", "segmentid", "side", "LLR")
_LABELS = {"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0, "target": 1, "nontarget": 0}


def _check_format(fmt: str) -> str:
    if fmt not in SCORE_FORMATS:
        raise ParameterError(f"score format must be one of {', '.join(SCORE_FORMATS)}, got {fmt!r}")
    return fmt


class ScoreWriter:
    """Write a score file chunk by chunk (the file is written under a temporary name and renamed on close).

    Parameters
    ----------
    path : str or os.PathLike
    fmt : {"csv", "kaldi", "voxceleb", "nist"}
    enroll, test : str
        The columns of the chunks holding the enrollment side and the test side (``speaker``/``path`` for
        enrolled-speaker trials, ``enroll``/``test`` for pairs).

    Attributes
    ----------
    n_written, n_unscored : int
        Trials written, and trials left out because they hold no score (every format but ``csv``).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp(), "scores.txt")
    >>> with ScoreWriter(path, "kaldi", enroll="speaker", test="path") as writer:
    ...     writer.write(pd.DataFrame({"speaker": ["ann"], "path": ["a.wav"], "score": [1.25]}))
    >>> path.read_text()
    'ann a.wav 1.25\\n'
    """

    def __init__(self, path, fmt: str = "csv", *, enroll: str = "enroll", test: str = "test"):
        self.path, self.format = Path(path), _check_format(fmt)
        self.enroll, self.test = enroll, test
        self.n_written = self.n_unscored = 0
        self._context = atomic_write(self.path, "w")
        self._fh = self._context.__enter__()
        self._header_done = False

    def write(self, chunk: pd.DataFrame) -> None:
        """Append the rows of ``chunk`` (columns ``enroll``, ``test`` as named, and ``score``)."""
        if self.format == "csv":
            chunk.to_csv(self._fh, header=not self._header_done, index=False, lineterminator="\n",
                         float_format="%.9g")
            self._header_done = True
            self.n_written += len(chunk)
            return
        if self.format == "nist" and not self._header_done:
            self._fh.write("\t".join(NIST_HEADER) + "\n")
        self._header_done = True
        scores = pd.to_numeric(chunk["score"], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(scores)
        self.n_unscored += int((~ok).sum())
        enroll = chunk[self.enroll].astype(str).to_numpy()[ok]
        test = chunk[self.test].astype(str).to_numpy()[ok]
        spaced = [f"{e} {t}" for e, t in zip(enroll, test) if len(e.split()) != 1 or len(t.split()) != 1]
        if spaced:
            raise ParameterError(f"{self.path}: the {self.format} score format separates fields by blanks, but "
                                 f"some ids hold blanks or are empty ({shorten(spaced, 3, '; ')}); write csv instead")
        lines = {
            "kaldi": lambda e, t, s: f"{e} {t} {s:.9g}\n",
            "voxceleb": lambda e, t, s: f"{s:.9g} {e} {t}\n",
            "nist": lambda e, t, s: f"{e}\t{t}\ta\t{s:.9g}\n",
        }[self.format]
        self._fh.writelines(lines(e, t, s) for e, t, s in zip(enroll, test, scores[ok]))
        self.n_written += int(ok.sum())

    def close(self, error: BaseException | None = None) -> None:
        """Finish the file (on ``error``, drop it and keep any older file)."""
        if self._fh is None:
            return
        if not self._header_done and self.format == "nist":
            self._fh.write("\t".join(NIST_HEADER) + "\n")
        self._fh = None
        if error is None:
            self._context.__exit__(None, None, None)
        else:
            self._context.__exit__(type(error), error, error.__traceback__)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(exc)
        return False


def convert_scores(csv_path, out, fmt: str, *, enroll: str = "speaker", test: str = "path",
                   chunksize: int = 100_000) -> ScoreWriter:
    """Rewrite a scored CSV (``score`` and the ``enroll``/``test`` columns) as ``fmt``, streamed; returns the
    finished writer (``n_written``, ``n_unscored``)."""
    with (pd.read_csv(csv_path, dtype=str, keep_default_na=False, chunksize=chunksize, encoding="utf-8-sig")
          as reader, ScoreWriter(out, fmt, enroll=enroll, test=test) as writer):
        for chunk in reader:
            chunk = chunk.rename(columns=lambda c: str(c).strip())
            if fmt != "csv":
                chunk["score"] = pd.to_numeric(chunk["score"].where(chunk["score"] != "", "nan"), errors="coerce")
            writer.write(chunk)
    return writer


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if not math.isnan(value) else None


def detect_score_format(first_line: str) -> str | None:
    """The score format of a file's first line, or None when it is not clear (then give the format).

    Examples
    --------
    >>> detect_score_format("ann a.wav -0.5"), detect_score_format("0.93 id1/a.wav id2/b.wav")
    ('kaldi', 'voxceleb')
    >>> detect_score_format("modelid\\tsegmentid\\tside\\tLLR"), detect_score_format("speaker,path,score")
    ('nist', 'csv')
    >>> detect_score_format("1688 1688-142285-0005 4.25"), detect_score_format("-0.5 1688 42")
    ('kaldi', 'voxceleb')
    >>> detect_score_format("1 2 3") is None
    True
    """
    fields = first_line.split()
    if tuple(fields) == NIST_HEADER:
        return "nist"
    if "," in first_line and "score" in [c.strip() for c in first_line.split(",")]:
        return "csv"
    if len(fields) == 4 and fields[2] in _LABELS and _float(fields[3]) is not None:
        return "voxceleb"  # SpeechBrain's <enroll> <test> <label> <score>
    if len(fields) == 3:
        first, last = _float(fields[0]) is not None, _float(fields[2]) is not None
        if first and last:   # numeric ids (LibriSpeech speakers): the score is the one written as a real number
            first, last = _real(fields[0]), _real(fields[2])
        if first != last:
            return "voxceleb" if first else "kaldi"
    return None


def _real(text: str) -> bool:
    """A number written as a real (``0.5``, ``1e-3``, ``-inf``), not as a whole number (an id such as ``1688``)."""
    return _float(text) is not None and any(c in text.lower() for c in ".ein")


def read_score_table(path, fmt: str | None = None, *, key=None) -> pd.DataFrame:
    """Read a score file of any :data:`SCORE_FORMATS` into ``enroll``, ``test``, ``score`` (and ``target``).

    Parameters
    ----------
    path : str or os.PathLike
    fmt : str, optional
        The format; detected from the first line when not given (:func:`detect_score_format`).
    key : str, os.PathLike or dict, optional
        Where the labels come from when the file holds none: a trial list (:func:`read_key`) or a
        ``{(enroll, test): 0|1}`` dict. A scored trial the key does not hold is an error.

    Returns
    -------
    pandas.DataFrame
        Columns ``enroll``, ``test`` (str), ``score`` (float, NaN for a csv row without a score), ``target`` (int8)
        when the file or the key gives labels; a csv file's ``error`` column is kept.

    Raises
    ------
    ManifestError
        An unreadable file, a line that does not fit the format (naming it), trials missing from the key.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError("no such score file" if not path.exists() else "not a file", path)
    with open(path, encoding="utf-8-sig") as fh:
        first = next((line for line in fh if line.strip()), "")
    if not first:
        raise ManifestError("the score file is empty", path)
    if fmt is None:
        fmt = detect_score_format(first)
        if fmt is None:
            raise ManifestError(f"cannot tell the score format from the first line '{first.strip()[:80]}'; give "
                                f"it ({', '.join(SCORE_FORMATS)})", path)
    frame = _read_csv_scores(path) if _check_format(fmt) == "csv" else _read_text_scores(path, fmt)
    if "target" not in frame.columns and key is not None:
        labels = read_key(key) if not isinstance(key, dict) else key
        found = [labels.get(pair, -1) for pair in zip(frame["enroll"], frame["test"])]
        missing = [f"{e} {t}" for (e, t), lab in zip(zip(frame["enroll"], frame["test"]), found) if lab < 0]
        if missing:
            raise ManifestError(f"{len(missing)} scored trial(s) are not in the key: {shorten(missing, 3, '; ')}",
                                path)
        frame["target"] = np.asarray(found, dtype=np.int8)
    return frame


def _read_text_scores(path: Path, fmt: str) -> pd.DataFrame:
    rows = []
    with open(path, encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields or (fmt == "nist" and number == 1 and tuple(fields) == NIST_HEADER):
                continue
            row = _parse_line(fields, fmt)
            if row is None:
                expected = {"kaldi": "'<enroll> <test> <score>'", "voxceleb": "'<score> <enroll> <test>' or "
                            "'<enroll> <test> <label> <score>'", "nist": "'<modelid> <segmentid> <side> <LLR>'"}
                raise ManifestError(f"line {number} does not fit the {fmt} score format: expected {expected[fmt]}, "
                                    f"found '{' '.join(fields)[:80]}'", path)
            rows.append(row)
    labelled = [len(r) == 4 for r in rows]
    if any(labelled) and not all(labelled):
        raise ManifestError(f"line {labelled.index(not labelled[0]) + 1}: some lines carry a label and some do not",
                            path)
    frame = pd.DataFrame(rows, columns=["enroll", "test", "score", "target"][:len(rows[0]) if rows else 3])
    if "target" in frame.columns:
        frame["target"] = frame["target"].astype(np.int8)
    return frame


def _parse_line(fields: list, fmt: str):
    if fmt == "kaldi" and len(fields) == 3 and _float(fields[2]) is not None:
        return fields[0], fields[1], _float(fields[2])
    if fmt == "voxceleb":
        if len(fields) == 3 and _float(fields[0]) is not None:
            return fields[1], fields[2], _float(fields[0])
        if len(fields) == 4 and fields[2] in _LABELS and _float(fields[3]) is not None:
            return fields[0], fields[1], _float(fields[3]), _LABELS[fields[2]]
    if fmt == "nist" and len(fields) == 4 and _float(fields[3]) is not None:
        return fields[0], fields[1], _float(fields[3])
    return None


def _read_csv_scores(path: Path) -> pd.DataFrame:
    """speakerid's own CSV through the one CSV score reader (:func:`speakerid.data.trials.read_score_file`)."""
    from speakerid.data.trials import read_score_file, target_labels

    data = read_score_file(path, require_target=False)
    frame = data.frame
    sides = ("enroll", "test") if {"enroll", "test"} <= set(frame.columns) else ("speaker", "path")
    missing = [c for c in sides if c not in frame.columns]
    if missing:
        raise ManifestError(f"missing column(s) {', '.join(missing)}; found '{','.join(frame.columns)}' (expected "
                            "enroll,test,score or speaker,path,score)", path)
    out = pd.DataFrame({"enroll": frame[sides[0]].astype(str).str.strip(),
                        "test": frame[sides[1]].astype(str).str.strip()})
    scores = np.full(len(frame), np.nan)
    scores[data.usable] = data.scores
    out["score"] = scores
    if "target" in frame.columns:
        out["target"] = target_labels(frame["target"])
    if "error" in frame.columns:
        out["error"] = frame["error"]
    return out


def read_key(path) -> dict:
    """Labels of a trial list as ``{(enroll, test): 1|0}``.

    Reads a ``speaker,path,target`` or ``enroll,test,target`` CSV, a labelled VoxCeleb or Kaldi pair list, or a
    NIST key (header ``modelid segmentid side targettype``).

    Raises
    ------
    ManifestError
        The file holds no labels, or one trial twice with two labels.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError("no such key file" if not path.exists() else "not a file", path)
    with open(path, encoding="utf-8-sig") as fh:
        first = next((line for line in fh if line.strip()), "")
    header = [c.strip() for c in first.split(",")]
    if "," in first and {"speaker", "path", "target"} <= set(header):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
        frame = frame.rename(columns=lambda c: str(c).strip())
        rows = zip(frame["speaker"].str.strip(), frame["path"].str.strip(), frame["target"].str.strip().str.lower())
        return _key_dict(((e, t, _LABELS.get(lab, -1)) for e, t, lab in rows), path)
    if first.split()[:4] == ["modelid", "segmentid", "side", "targettype"]:
        with open(path, encoding="utf-8-sig") as fh:
            fields = [line.split() for line in fh if line.strip()][1:]
        return _key_dict(((f[0], f[1], _LABELS.get(f[3], -1) if len(f) == 4 else -1) for f in fields), path)
    from speakerid.data.pair_trials import PairList, detect_pair_format

    fmt = detect_pair_format(first.strip(), has_data_dir=True)
    if fmt is None:
        raise ManifestError("not a trial list with labels (speaker,path,target CSV, enroll,test,target CSV, "
                            "VoxCeleb or Kaldi pairs, NIST key)", path)
    pairs = PairList(path, fmt, 0, True, path.parent)
    return _key_dict(((e, t, lab) for _, e, t, lab in pairs._rows()), path)


def _key_dict(rows, path: Path) -> dict:
    labels = {}
    for enroll, test, label in rows:
        if label < 0:
            raise ManifestError(f"the trial '{enroll} {test}' has no valid label", path)
        if labels.setdefault((enroll, test), label) != label:
            raise ManifestError(f"the trial '{enroll} {test}' is listed twice with different labels", path)
    if not labels:
        raise ManifestError("the key holds no trials", path)
    return labels
