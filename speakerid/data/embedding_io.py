"""Fixed-length representations (i-vectors, embeddings, supervectors) written per utterance id and read back.

==========  ==============================================================================================
format      file(s)
==========  ==============================================================================================
``ark``     Kaldi binary float32 vectors, ``<out>.ark`` plus its index ``<out>.scp`` (written with kaldiio;
            ``ivector-plda-scoring``, ``copy-vector`` and ``kaldiio.load_scp`` read them)
``npz``     one NumPy archive: ``ids`` (str) and ``vectors`` (float32, shape (n, dim)), no pickle
``csv``     ``utterance,dim_0,dim_1,...``, one row per utterance
==========  ==============================================================================================

Every writer streams (``write`` may be called per chunk; ``npz`` keeps the vectors in memory until ``close``) and
writes under temporary names renamed on success, so a crash never leaves a half-written export.

Reading an ``ark`` checks that every scp entry points into a file (not a command) at a Kaldi binary vector or
matrix before kaldiio decodes it: kaldiio also understands pickled entries, which are refused here (SECURITY.md).
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write
from speakerid.exceptions import ManifestError, ParameterError

__all__ = ["EMBEDDING_FORMATS", "EmbeddingWriter", "read_embeddings", "embedding_format"]

EMBEDDING_FORMATS = ("ark", "npz", "csv")


def embedding_format(path, fmt: str | None = None) -> str:
    """The export format: ``fmt`` when given, else from the file's suffix (``.ark``/``.scp``, ``.npz``, ``.csv``).

    Examples
    --------
    >>> embedding_format("x/ivectors.ark"), embedding_format("e.npz"), embedding_format("e.txt", "csv")
    ('ark', 'npz', 'csv')
    """
    if fmt is None:
        suffix = Path(path).suffix.lower().lstrip(".")
        fmt = "ark" if suffix == "scp" else suffix
    if fmt not in EMBEDDING_FORMATS:
        raise ParameterError(f"embedding format must be one of {', '.join(EMBEDDING_FORMATS)} (or a file name "
                             f"ending in .ark, .npz, .csv), got {fmt!r} for {path}")
    return fmt


class EmbeddingWriter:
    """Write ``(utterance_id, vector)`` rows in one of :data:`EMBEDDING_FORMATS`.

    Parameters
    ----------
    path : str or os.PathLike
        The output; for ``ark``, ``<stem>.ark`` and ``<stem>.scp`` are written beside each other.
    fmt : str, optional
        See :func:`embedding_format`.

    Raises
    ------
    ParameterError
        An unknown format, an id holding blanks (ark, csv), vectors of differing dimensions, non-finite values.
    """

    def __init__(self, path, fmt: str | None = None):
        self.format = embedding_format(path, fmt)
        path = Path(path)
        self.path = path.with_suffix(".ark") if self.format == "ark" else path
        self.n_written, self.dim = 0, None
        self._ids, self._vectors, self._seen = [], [], set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.format == "ark":
            self._tmp_ark = _temp_beside(self.path)
            self._tmp_scp = _temp_beside(self.path.with_suffix(".scp"))
            self._ark, self._scp = open(self._tmp_ark, "wb"), open(self._tmp_scp, "w", encoding="utf-8")
        elif self.format == "csv":
            self._context = atomic_write(self.path, "w")
            self._writer = csv.writer(self._context.__enter__(), lineterminator="\n")

    def write(self, ids, vectors) -> None:
        """Append vectors (array-like of shape (n, dim)) under their utterance ids (n distinct strings)."""
        ids = [str(i) for i in ids]
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1)
        if self.dim is None:
            self.dim = vectors.shape[1]
        if vectors.shape[1] != self.dim:
            raise ParameterError(f"vectors of dimension {vectors.shape[1]} after {self.dim}: one export, one size")
        if not np.isfinite(vectors).all():
            raise ParameterError("non-finite values in the vectors")
        for utt in ids:
            if not utt or (self.format != "npz" and len(utt.split()) != 1) or utt in self._seen:
                raise ParameterError(f"utterance id {utt!r} is empty, holds blanks or repeats an earlier one")
            self._seen.add(utt)
        if self.format == "ark":
            import kaldiio

            for utt, vector in zip(ids, vectors):
                kaldiio.save_ark(self._ark, {utt: vector}, scp=self._scp)
        elif self.format == "csv":
            if self.n_written == 0:
                self._writer.writerow(["utterance", *(f"dim_{k}" for k in range(self.dim))])
            self._writer.writerows([utt, *(f"{x:.9g}" for x in vector)] for utt, vector in zip(ids, vectors))
        else:
            self._ids.extend(ids)
            self._vectors.append(vectors)
        self.n_written += len(ids)

    def close(self, error: BaseException | None = None) -> None:
        """Finish the export; on ``error``, remove the temporary files and keep any older export."""
        if self.format == "ark":
            self._ark.close()
            self._scp.close()
            if error is None:
                _finish_ark(self._tmp_ark, self._tmp_scp, self.path)
            for tmp in (self._tmp_ark, self._tmp_scp):
                if os.path.exists(tmp):
                    os.unlink(tmp)
        elif self.format == "csv":
            self._context.__exit__(*((None, None, None) if error is None else
                                     (type(error), error, error.__traceback__)))
        elif error is None:
            vectors = np.concatenate(self._vectors) if self._vectors else np.zeros((0, self.dim or 0), np.float32)
            with atomic_write(self.path, "wb") as fh:
                np.savez(fh, ids=np.asarray(self._ids, dtype=str), vectors=vectors)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(exc)
        return False


def _temp_beside(path: Path) -> str:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    os.close(fd)
    return name


def _finish_ark(tmp_ark: str, tmp_scp: str, ark: Path) -> None:
    """Point the scp at the final ark name, then rename both into place (the ark first)."""
    lines = Path(tmp_scp).read_text(encoding="utf-8").splitlines()
    with open(tmp_scp, "w", encoding="utf-8") as fh:
        for line in lines:
            utt, location = line.split(" ", 1)
            fh.write(f"{utt} {os.path.abspath(ark)}:{location.rsplit(':', 1)[1]}\n")
    os.replace(tmp_ark, ark)
    os.replace(tmp_scp, ark.with_suffix(".scp"))


def read_embeddings(path, fmt: str | None = None) -> tuple:
    """Read an export back: ``(ids, vectors)`` with ``vectors`` of shape (n, dim), float32.

    ``ark`` exports are read through their ``.scp`` (give either file).

    Raises
    ------
    ManifestError
        A missing or malformed file; an scp entry that is a command, lacks an offset, or does not point at a Kaldi
        binary vector/matrix (naming the line).
    """
    fmt = embedding_format(path, fmt)
    path = Path(path)
    if fmt == "ark":
        return _read_scp(path.with_suffix(".scp"))
    if not path.is_file():
        raise ManifestError("no such embedding file", path)
    if fmt == "npz":
        with np.load(path, allow_pickle=False) as archive:
            if not {"ids", "vectors"} <= set(archive.files):
                raise ManifestError("an embedding archive holds 'ids' and 'vectors'", path)
            return [str(i) for i in archive["ids"]], archive["vectors"].astype(np.float32)
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0][:1] != ["utterance"]:
        raise ManifestError("expected a header 'utterance,dim_0,...'", path)
    try:
        vectors = np.array([[float(x) for x in row[1:]] for row in rows[1:]], dtype=np.float32)
    except ValueError:
        raise ManifestError("a value is not a number", path) from None
    return [row[0] for row in rows[1:]], vectors.reshape(len(rows) - 1, len(rows[0]) - 1)


def _read_scp(scp: Path) -> tuple:
    import kaldiio

    if not scp.is_file():
        raise ManifestError("no such scp file", scp)
    ids, vectors = [], []
    for number, line in enumerate(scp.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=1)
        location = fields[1].strip() if len(fields) == 2 else ""
        file, _, offset = location.rpartition(":")
        if location.endswith("|") or not offset.isdigit() or not os.path.isfile(file):
            raise ManifestError(f"line {number}: expected '<id> <ark file>:<offset>', found '{line[:80]}'", scp)
        with open(file, "rb") as fh:
            fh.seek(int(offset))
            if fh.read(2) != b"\x00B":
                raise ManifestError(f"line {number}: '{fields[0]}' is not a Kaldi binary vector or matrix", scp)
        ids.append(fields[0])
        vectors.append(np.asarray(kaldiio.load_mat(location), dtype=np.float32).ravel())
    if not ids:
        return [], np.zeros((0, 0), np.float32)
    return ids, np.vstack(vectors)
