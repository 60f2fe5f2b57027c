"""Batch scoring: stream a ``speaker,path[,target]`` trial list through a model directory, in bounded memory.

The trial CSV is checked in one cheap pass (columns, targets, unknown speakers: all reported before any scoring),
then read in chunks and written back as it goes: same rows and columns, plus ``score`` and ``error``. Within a
chunk every distinct test file is one task, scored against all of its claimed speakers in one call; tasks run in
this process, on worker threads (or joblib processes) or on a Dask cluster (:mod:`speakerid.scoring.parallel`),
each worker loading the speaker models once. Memory is bounded by the chunk size, not by the number of trials.

Helpers, one concept each: :mod:`speakerid.data.trials` (reading trial lists), :mod:`speakerid.scoring.worker`
(what runs in a worker), :mod:`speakerid.features.cache` (optional on-disk features) and
the verifier's score normalisation (:mod:`speakerid.backends._cohort`): every trial is scored by
:meth:`~speakerid.verifier.SpeakerVerifier.score_frames`, the path of ``verify``, so both give the same score.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speakerid._utils.lazy import lazy_import
from speakerid._utils.progress import progress
from speakerid.data.manifests import check_manifest_columns
from speakerid.data.score_formats import ScoreWriter
from speakerid.data.trials import DEFAULT_CHUNKSIZE, read_chunks, scan_trials, stripped_codes
from speakerid.evaluation.metrics import trial_metrics
from speakerid.exceptions import SpeakerIDError
from speakerid.scoring._results import MAX_ERRORS_KEPT, RunResult
from speakerid.scoring.options import (
    AUTO_ENROLLED_MIN,
    ENROLLED,
    ENROLLED_COHORT_MAX,
    NORM_METHODS,
    check_enrolled,
    check_options,
)
from speakerid.scoring.parallel import TaskRunner
from speakerid.scoring.worker import WorkerSpec, score_tasks
from speakerid.verifier import SpeakerVerifier

pd = lazy_import("pandas")

__all__ = ["score_trials", "score_frame", "trial_metrics", "ScoringResult", "TrialError", "PartialScoringError",
           "DEFAULT_CHUNKSIZE", "NORM_METHODS", "ENROLLED", "ENROLLED_COHORT_MAX", "AUTO_ENROLLED_MIN"]



@dataclass
class TrialError:
    """A trial that could not be scored: its CSV line, the file and why.

    For a DataFrame, ``line`` is the index value when the index is named ``line`` (as from
    :func:`~speakerid.data.manifests.read_manifest`), else the row position.
    """

    line: int
    file: str
    reason: str


@dataclass
class ScoringResult(RunResult):
    """What :func:`score_trials` did. ``errors`` keeps the first :data:`MAX_ERRORS_KEPT` failed rows."""

    n_trials: int = 0
    n_scored: int = 0
    n_tasks: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    has_target: bool = False
    frame: pd.DataFrame | None = None
    normalization: str = "none"
    metrics: dict | None = None      # EER and minDCF of the scored trials, when the list has targets

    @property
    def trials_per_s(self) -> float:
        return self.n_trials / self.seconds if self.seconds > 0 else float("inf")


class PartialScoringError(SpeakerIDError):
    """``strict=True`` and some trials failed; raised after the output is written. ``result`` has the details."""

    exit_code = 9

    def __init__(self, result: ScoringResult):
        self.result = result
        first = result.errors[0] if result.errors else None
        example = f" (first: {first.file}: {first.reason})" if first else ""
        super().__init__(f"{result.n_errors} of {result.n_trials} trial(s) could not be scored{example}")


def _model_stamp(verifier: SpeakerVerifier) -> str:
    """A digest of the model files' names, sizes and mtimes: a model changed between two jobs of a process is
    a new worker state (reloaded), never a stale one."""
    digest = hashlib.sha1()
    for folder in (verifier.model_dir, verifier.store.speaker_dir(verifier.backend_name)):
        if folder.is_dir():
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                if entry.is_file():
                    stat = entry.stat()
                    digest.update(f"{entry.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8", "replace"))
    return digest.hexdigest()


def _resolve(raw: str, base: str) -> str:
    return raw if os.path.isabs(raw) else os.path.normpath(os.path.join(base, raw))


class _Job:
    """State of one scoring run across chunks."""

    def __init__(self, runner: TaskRunner, spec: WorkerSpec, base_dir: str, frame_shift_s: float | None = None):
        self.runner, self.spec, self.base_dir = runner, spec, base_dir
        self.frame_shift_s = frame_shift_s   # set: a test_speech_s column
        self.failed: dict[str, str] = {}   # file -> reason, so that a bad file is tried once per run
        self.result = ScoringResult(runner=runner.description)

    def submit_chunk(self, chunk: pd.DataFrame, first_row: int):
        """Send a chunk's tasks to the workers; returns ``finish()``, which waits and returns the scored chunk."""
        speaker_codes, unique_speakers = stripped_codes(chunk["speaker"], speaker_ids=True)
        path_codes, unique_paths = stripped_codes(chunk["path"])
        # rows of empty fields are blank lines, as in read_manifest
        keep = (unique_speakers[speaker_codes] != "") | (unique_paths[path_codes] != "")
        if not keep.all():
            chunk, speaker_codes, path_codes = chunk.loc[keep].copy(), speaker_codes[keep], path_codes[keep]
        files = [_resolve(p, self.base_dir) if p else "" for p in unique_paths]
        file_error = [self._file_error(f) for f in files]
        n_speakers = max(len(unique_speakers), 1)

        file_ok = np.array([e is None for e in file_error], dtype=bool)
        rows_ok = file_ok[path_codes]
        pairs, inverse = np.unique(path_codes[rows_ok].astype(np.int64) * n_speakers + speaker_codes[rows_ok],
                                   return_inverse=True)
        pair_file, pair_speaker = pairs // n_speakers, pairs % n_speakers
        starts = np.flatnonzero(np.r_[True, pair_file[1:] != pair_file[:-1]]) if len(pairs) else np.zeros(0, int)
        bounds = np.r_[starts, len(pairs)]
        tasks = [(files[pair_file[a]], [unique_speakers[s] for s in pair_speaker[a:b]])
                 for a, b in zip(bounds[:-1], bounds[1:])]
        pending = self.runner.submit(score_tasks, self.spec, tasks)

        def finish() -> pd.DataFrame:
            outputs = pending.result()
            scores = self._scores(outputs, tasks, bounds, pair_file, file_error, len(pairs))
            done = self._finish_chunk(chunk, first_row, files, file_error, path_codes, rows_ok, inverse, scores)
            if self.frame_shift_s is not None:
                speech = np.full(len(files), np.nan)
                for (a, _), output in zip(zip(bounds[:-1], bounds[1:]), outputs):
                    if output[1] is None:
                        speech[pair_file[a]] = round(output[3] * self.frame_shift_s, 3)
                done["test_speech_s"] = speech[path_codes]
            return done

        return finish

    def _scores(self, outputs, tasks, bounds, pair_file, file_error, n_pairs) -> np.ndarray:
        pair_scores = np.full(n_pairs, np.nan)
        for (a, b), (scores, reason, cached, _), (path, _) in zip(zip(bounds[:-1], bounds[1:]), outputs, tasks):
            if reason is not None:
                file_error[pair_file[a]] = self.failed[path] = reason
                continue
            pair_scores[a:b] = scores
            self.result.cache_hits += bool(cached)
            self.result.cache_misses += not cached and self.spec.cache_dir is not None
        self.result.n_tasks += len(tasks)
        return pair_scores

    def _finish_chunk(self, chunk, first_row, files, file_error, path_codes, rows_ok, inverse,
                      pair_scores) -> pd.DataFrame:
        scores = np.full(len(chunk), np.nan)
        scores[rows_ok] = pair_scores[inverse]
        errors = np.array([e or "" for e in file_error] + [""], dtype=object)[path_codes]
        errors[np.isfinite(scores)] = ""
        errors[~np.isfinite(scores) & (errors == "")] = "not scored"
        self._count(chunk, files, path_codes, errors, first_row)
        chunk["score"] = scores
        chunk["error"] = errors
        return chunk

    def _file_error(self, path: str):
        if not path:
            return "empty path"
        if path in self.failed:
            return self.failed[path]
        if not os.path.isfile(path):
            self.failed[path] = "file not found"
            return self.failed[path]
        return None

    def _count(self, chunk, files, path_codes, errors, first_row) -> None:
        result = self.result
        failed = np.flatnonzero(errors != "")
        result.n_trials += len(chunk)
        result.n_errors += len(failed)
        result.n_scored += len(chunk) - len(failed)
        lines = chunk.index.to_numpy()
        for i in failed[: max(0, MAX_ERRORS_KEPT - len(result.errors))]:
            line = int(lines[i]) if chunk.index.name == "line" else first_row + int(i)
            result.errors.append(TrialError(line, files[path_codes[i]], str(errors[i])))


def score_trials(model_dir, trials, out=None, *, backend=None, n_jobs=1, scheduler=None,
                 chunksize=DEFAULT_CHUNKSIZE, cache_dir=None, strict=False, top_c=None, norm="auto", cohort=None,
                 cohort_top=None, show_progress=None, backend_params=None, out_format="csv",
                 processes=False, speech_seconds=False) -> ScoringResult:
    """Score every trial of a ``speaker,path[,target]`` list; write it back with ``score`` and ``error`` columns.

    Parameters
    ----------
    model_dir : str or os.PathLike
        A model directory with a background model and the claimed speakers enrolled.
    trials : str, os.PathLike or pandas.DataFrame
        The trial CSV (relative paths are relative to its folder), or a frame (paths relative to the current
        folder). Extra columns are kept, in order; all values are written back as read.
    out : str or os.PathLike, optional
        The scored CSV, written in chunks to a temporary file renamed over ``out`` at the end (an error leaves no
        partial file). ``None`` keeps the scored rows in ``result.frame`` instead (small lists only).
    backend : str, optional
        The directory's speaker models to use (default: as :class:`~speakerid.verifier.SpeakerVerifier`).
    n_jobs : int
        Local workers (threads of this process, see ``processes``); -1 = all cores. With ``scheduler``: Dask
        workers to start.
    scheduler : str or dask.distributed.Client, optional
        ``"local"`` (a Dask LocalCluster), ``"tcp://host:port"`` or a running Client; workers must see the same
        files (and the folder of ``out``, for cohort models).
    chunksize : int
        Trial rows read, scored and written at a time.
    cache_dir : str or os.PathLike, optional
        On-disk feature cache (see :class:`~speakerid.features.cache.FeatureCache`).
    strict : bool
        Raise :class:`PartialScoringError` (exit code 9) after writing when any trial failed.
    top_c : int, optional
        GMM-UBM Gaussian selection; 0 scores exactly; ``None`` keeps the model's.
    norm : {"auto", "none", "znorm", "tnorm", "ztnorm", "snorm", "enrolled", "snorm+enrolled", ...}
        Score normalisation. A cohort method (``znorm``, ``tnorm``, ``ztnorm``, ``snorm``) uses the impostor
        cohort ``cohort``; ``cohort_top`` = N uses the N best cohort scores (AS-norm). ``enrolled``, alone or
        after a method (``"snorm+enrolled"``), then T-normalises each trial by the test file's scores against
        the *other enrolled speakers* (the claimed one left out; at most :data:`ENROLLED_COHORT_MAX` of them, a
        seeded draw; at least 3 speakers must be enrolled), see :func:`~speakerid.evaluation.norm.leave_out_tnorm`;
        each test file is then scored against all of them. ``"auto"`` (the default) is S-norm with ``cohort``
        when one is given, else with the model directory's own cohort (``cohort.csv``, drawn from the
        background speakers by ``train-ubm``) when it has one, followed by ``+enrolled`` when at least
        :data:`AUTO_ENROLLED_MIN` speakers are enrolled (both chosen on the development protocol, see the
        README). ``"none"``: raw scores.
    cohort : str or os.PathLike, optional
        ``speaker,path`` manifest of impostor cohort speakers (enrolled in memory) and utterances; default the
        model directory's ``cohort.csv`` when a normalisation is asked for.
    show_progress : bool, optional
        Progress bar; default: when stderr is a terminal.
    backend_params : dict, optional
        Scoring parameters of the backend (e.g. ``{"scoring": "cosine"}`` for ``ivector``); ``top_c`` wins.
    out_format : {"csv", "kaldi", "voxceleb", "nist"}
        Format of ``out`` (:mod:`speakerid.data.score_formats`): ``csv`` keeps every row and column; the others
        hold the scored trials only (``speaker`` as the enrollment side, ``path`` as written as the test side, or a
        frame's ``utterance`` column when it has one).
    processes : bool
        Local workers are joblib processes instead of threads. Threads start at once and share nothing they
        must load twice; the work is NumPy/BLAS that releases the GIL (700 shared trials, ``n_jobs=2``: 1.6 s
        with threads, 6.3 s with processes, 1.8 s serially -- process start-up dominates short jobs).
    speech_seconds : bool
        Add a ``test_speech_s`` column: the seconds of speech the front end kept of each test file (speech frames
        times the frame shift; empty when not scored), a quality measure of the fused system's calibration.

    Returns
    -------
    ScoringResult

    Raises
    ------
    ManifestError
        Unreadable trial CSV, missing columns, bad ``target`` values or empty speaker ids (before any scoring).
    UnknownSpeakerError
        Claimed speakers that are not enrolled; all of them are listed before any scoring.
    AudioError
        A cohort file cannot be used (the cohort must be clean; trial files only give row errors).
    PartialScoringError
        With ``strict=True``, when some trials failed (the output is written all the same).
    """
    start = time.perf_counter()
    method, cohort, _ = check_options(chunksize, norm, cohort, cohort_top, model_dir)
    params = dict(backend_params or {})
    if top_c is not None:
        params["top_c"] = int(top_c)
    verifier = SpeakerVerifier(model_dir, backend=backend, backend_params=params or None, norm=norm,
                               cohort=cohort, cohort_top=cohort_top, cache_dir=cache_dir)
    _ = verifier.feature_config  # a bad features.json fails here, not in a worker
    is_frame = isinstance(trials, pd.DataFrame)
    if is_frame:
        check_manifest_columns(trials.columns, "trials DataFrame")
    n_rows, claimed, has_target = scan_trials(trials, chunksize)
    check_enrolled(verifier, claimed, None if is_frame else trials)
    normalizer = verifier.normalization.normalizer(claimed) if claimed else None
    base_dir = os.getcwd() if is_frame else str(Path(trials).resolve().parent)
    # the normaliser is saved beside the output: a folder the workers of a cluster likely see as well
    out_dir = None if out is None else Path(out).resolve().parent
    work_dir = Path(tempfile.mkdtemp(prefix=".speakerid-score-", dir=out_dir if out_dir and out_dir.is_dir()
                                     else None)) if normalizer is not None else None
    try:
        normalizer_file = None
        if normalizer is not None:
            normalizer_file = str(work_dir / "normalizer.npz")
            normalizer.save(normalizer_file)
        spec = WorkerSpec(str(verifier.model_dir.resolve()), verifier.backend_name, tuple(sorted(params.items())),
                          None if cache_dir is None else str(Path(cache_dir).resolve()), _model_stamp(verifier),
                          normalizer=normalizer_file)
        with TaskRunner(n_jobs, scheduler, threads=not processes) as runner, \
                progress(total=n_rows, desc="score", unit="trial", enabled=show_progress) as bar:
            job = _Job(runner, spec, base_dir, verifier.feature_config.frame_shift_ms / 1000.0
                       if speech_seconds else None)
            scored = _scored_chunks(job, trials, chunksize)
            if out is None:
                parts = [bar.update(len(part)) or part for part in scored]
                job.result.frame = pd.concat(parts) if parts else None
            else:
                labelled = []
                test = "utterance" if is_frame and "utterance" in trials.columns else "path"   # Kaldi's utt ids
                with ScoreWriter(out, out_format, enroll="speaker", test=test) as writer:
                    for part in scored:
                        writer.write(part.assign(score=_score_text(part["score"].to_numpy()))
                                     if out_format == "csv" else part)
                        if has_target:
                            labelled.append(part[["target", "score"]])
                        bar.update(len(part))
                job.result.metrics = trial_metrics(pd.concat(labelled)) if labelled else None
    finally:
        if work_dir is not None:
            shutil.rmtree(work_dir, ignore_errors=True)
    result = job.result
    result.out, result.has_target = (None if out is None else Path(out)), has_target
    enrolled = verifier.normalization.normalizer_.enrolled
    parts = ([f"{method}{'' if cohort_top is None else f' top {int(cohort_top)}'} (cohort {cohort})"]
             if method else [])
    if enrolled:
        per_trial = " or ".join(map(str, sorted({len(enrolled) - (s in enrolled) for s in claimed})))
        parts.append(f"T-norm over the other enrolled speakers ({per_trial} per trial, the claimed one left out)")
    result.normalization = " + ".join(parts) or "none"
    result.seconds = time.perf_counter() - start
    if strict and result.n_errors:
        raise PartialScoringError(result)
    return result


def _score_text(scores: np.ndarray) -> np.ndarray:
    """Scores as CSV text: the shortest text that reads back as the same float32 (float32 precision, ~7-9
    significant digits, and much faster to write than a printf format); empty when not scored.

    Examples
    --------
    >>> _score_text(np.array([0.1, -1.23456789012, np.nan, 1e20])).tolist()
    ['0.1', '-1.2345679', '', '1e+20']
    """
    text = scores.astype(np.float32).astype(str).astype(object)
    text[~np.isfinite(scores)] = ""
    return text


def _scored_chunks(job: _Job, trials, chunksize: int):
    """The scored chunks in order; chunk k+1 goes to the workers before chunk k is collected, so that the
    workers score while this process reads, prepares and writes."""
    finish = None
    for chunk, first_row in read_chunks(trials, chunksize):
        following = job.submit_chunk(chunk, first_row)
        if finish is not None:
            yield finish()
        finish = following
    if finish is not None:
        yield finish()


def score_frame(model_dir, trials: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """:func:`score_trials` on an in-memory frame; returns it with ``score`` and ``error`` columns."""
    result = score_trials(model_dir, trials, None, **kwargs)
    return result.frame if result.frame is not None else trials.iloc[:0].assign(score=[], error=[])
