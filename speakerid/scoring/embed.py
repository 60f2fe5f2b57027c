"""Embedding export: the fixed-length representation of every utterance of a manifest or Kaldi data directory
(i-vector, Siamese or MLP embedding, GMM mean supervector), written per utterance id as Kaldi ark/scp, npz or CSV.

Utterances are read in chunks and embedded on joblib or Dask workers (:class:`~speakerid.scoring.parallel.TaskRunner`);
features go through the feature cache, so a run that stopped half-way is resumed at the cost of the vectors alone.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speakerid._utils.blas import one_blas_thread
from speakerid._utils.progress import progress
from speakerid.data.embedding_io import EmbeddingWriter, embedding_format
from speakerid.exceptions import AudioError, NotFittedError, ParameterError, SpeakerIDError
from speakerid.scoring._results import RunResult
from speakerid.scoring.pairs import source_frames
from speakerid.scoring.parallel import TaskRunner
from speakerid.scoring.worker import WorkerSpec, worker_state

__all__ = ["export_embeddings", "EmbeddingExport", "utterances_of"]

#: Utterances per chunk.
DEFAULT_CHUNKSIZE = 512


@dataclass
class EmbeddingExport(RunResult):
    """What :func:`export_embeddings` did; ``errors`` keeps up to 1000 ``(utterance, reason)``."""

    n_utterances: int = 0
    n_written: int = 0
    dim: int | None = None
    format: str = ""
    backend: str = ""
    runner: str = "serial"


class PartialExportError(SpeakerIDError):
    """``strict=True`` and some utterances could not be embedded (exit code 9, after writing the rest)."""

    exit_code = 9

    def __init__(self, result: EmbeddingExport):
        self.result = result
        first = f" (first: {result.errors[0][0]}: {result.errors[0][1]})" if result.errors else ""
        super().__init__(f"{len(result.errors)} of {result.n_utterances} utterance(s) could not be embedded{first}")


def utterances_of(manifest=None, data_dir=None, *, allow_commands: bool = False) -> list:
    """``(utterance_id, (file or command, start_s, end_s))`` of a ``speaker,path`` manifest (ids as
    :func:`speakerid.data.kaldi_manifests.utterance_ids` makes them) or of a Kaldi data directory (its ids)."""
    if (manifest is None) == (data_dir is None):
        raise ParameterError("give a manifest or a Kaldi data directory (one of them)")
    if data_dir is not None:
        from speakerid.data.kaldi import read_data_dir

        frame = read_data_dir(data_dir, allow_commands=allow_commands)
        return [(utt, (path, float(s), float(e))) for utt, path, s, e in
                zip(frame.index, frame["path"], frame["start_s"], frame["end_s"])]
    from speakerid.data.kaldi_manifests import utterance_ids
    from speakerid.data.manifests import read_manifest

    frame = read_manifest(manifest)
    ids = utterance_ids(frame["speaker"], frame["path"])
    return [(utt, (path, math.nan, math.nan)) for utt, path in zip(ids, frame["path"])]


def embed_tasks(spec: WorkerSpec, tasks: list) -> list:
    """Worker side: ``(vector, None)`` or ``(None, reason)`` per ``(source, allow_commands)`` task."""

    verifier, cache, _ = worker_state(spec)
    verifier.missing_background()
    out = []
    with one_blas_thread():
        for source, allow_commands in tasks:
            try:
                frames = source_frames(verifier, cache, source, allow_commands)
            except AudioError as exc:
                out.append((None, str(exc)))
                continue
            out.append((np.asarray(verifier.backend.embed(frames), dtype=np.float32).ravel(), None))
    return out


def export_embeddings(model_dir, out, *, manifest=None, data_dir=None, fmt=None, backend=None, backend_params=None,
                      allow_commands=False, n_jobs=1, scheduler=None, cache_dir=None, chunksize=DEFAULT_CHUNKSIZE,
                      strict=False, show_progress=None) -> EmbeddingExport:
    """Embed every utterance of ``manifest`` or ``data_dir`` and write them to ``out``.

    Parameters
    ----------
    model_dir : str or os.PathLike
        A trained model directory whose backend has a fixed-length representation (``Backend.embed``).
    out : str or os.PathLike
        ``x.ark`` (writes ``x.ark`` + ``x.scp``), ``x.npz`` or ``x.csv``; or give ``fmt``.
    manifest, data_dir
        A ``speaker,path`` manifest or a Kaldi data directory (segments and, with ``allow_commands``, commands).
    fmt : {"ark", "npz", "csv"}, optional
    backend, backend_params, n_jobs, scheduler, cache_dir
        As for :func:`speakerid.scoring.batch.score_trials`.
    chunksize : int
        Utterances per chunk.
    strict : bool
        Raise :class:`PartialExportError` (after writing) when an utterance could not be embedded.

    Returns
    -------
    EmbeddingExport

    Raises
    ------
    ParameterError
        The backend has no fixed-length representation; bad options.
    NotFittedError
        The backend's background model is missing.
    ManifestError
        A bad manifest or data directory.
    """
    from speakerid.scoring.batch import _model_stamp
    from speakerid.verifier import SpeakerVerifier

    start = time.perf_counter()
    fmt = embedding_format(out, fmt)
    if isinstance(chunksize, bool) or int(chunksize) < 1:
        raise ParameterError(f"chunksize must be a positive integer, got {chunksize!r}")
    verifier = SpeakerVerifier(model_dir, backend=backend, backend_params=backend_params)
    missing = verifier.missing_background()
    if missing:
        raise NotFittedError(missing)
    if not verifier.backend.has_embedding:
        raise ParameterError(f"the {verifier.backend_name} backend has no fixed-length representation to export "
                             "(embed works with gmm-ubm supervectors, ivector, siamese and mlp)")
    items = utterances_of(manifest, data_dir, allow_commands=allow_commands)
    spec = WorkerSpec(str(verifier.model_dir.resolve()), verifier.backend_name,
                      tuple(sorted((backend_params or {}).items())),
                      None if cache_dir is None else str(Path(cache_dir).resolve()), _model_stamp(verifier))
    result = EmbeddingExport(n_utterances=len(items), format=fmt, backend=verifier.backend_name)
    with TaskRunner(n_jobs, scheduler) as runner, EmbeddingWriter(out, fmt) as writer, \
            progress(total=len(items), desc="embed", unit="utt", enabled=show_progress) as bar:
        result.runner = runner.description
        for first in range(0, len(items), int(chunksize)):
            chunk = items[first:first + int(chunksize)]
            outputs = runner.map(embed_tasks, spec, [(source, allow_commands) for _, source in chunk])
            done = [(utt, vector) for (utt, _), (vector, _) in zip(chunk, outputs) if vector is not None]
            result.errors += [(utt, reason) for (utt, _), (_, reason) in zip(chunk, outputs) if reason is not None]
            if done:
                writer.write([u for u, _ in done], np.vstack([v for _, v in done]))
            bar.update(len(chunk))
    result.n_written, result.dim, result.out = writer.n_written, writer.dim, writer.path
    result.errors = result.errors[:1000]
    result.seconds = time.perf_counter() - start
    if strict and result.n_written < result.n_utterances:
        raise PartialExportError(result)
    return result
