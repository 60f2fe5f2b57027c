"""Pair scoring: one audio file against another (VoxCeleb, Kaldi or CSV pair lists), streamed in bounded chunks.

Each distinct enrollment entry becomes a model once per run, with the directory's backend (GMM-UBM: a MAP-adapted
GMM of that one file; i-vector, Siamese, MLP: its vector), on the workers; then the list is read in chunks and
every distinct test entry of a chunk is one task, scored against all the enrollment models it is paired with in
one call. Symmetric scoring averages ``s(model(e), t)`` and ``s(model(t), e)``. Cohort normalisation (Z/T/ZT/S-norm,
:mod:`speakerid.evaluation.norm`) treats the enrollment model as the claimed model: its Z-norm statistics come from
the cohort utterances, its test side's T-norm statistics from the cohort speakers' models.

Models are kept in memory for the run (one per distinct enrollment entry); features go through the feature cache
(``cache_dir``), so a second run reads no audio.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speakerid._utils.blas import one_blas_thread
from speakerid._utils.lazy import lazy_import
from speakerid._utils.progress import progress
from speakerid.data.pair_trials import PairList, open_pairs
from speakerid.data.score_formats import ScoreWriter
from speakerid.data.trials import DEFAULT_CHUNKSIZE
from speakerid.exceptions import AudioError, NotFittedError, ParameterError, SpeakerIDError
from speakerid.scoring._results import MAX_ERRORS_KEPT, RunResult
from speakerid.scoring.parallel import TaskRunner
from speakerid.scoring.worker import WorkerSpec, worker_state

pd = lazy_import("pandas")

__all__ = ["score_pairs", "PairScoringResult", "DEFAULT_CHUNKSIZE"]



@dataclass
class PairScoringResult(RunResult):
    """What :func:`score_pairs` did; ``errors`` keeps up to 1000 ``(line, entry, reason)`` of unscored pairs."""

    n_pairs: int = 0
    n_scored: int = 0
    n_models: int = 0
    out_format: str = "csv"
    has_target: bool = False
    normalization: str = "none"
    symmetric: bool = False
    pair_format: str = ""
    frame: pd.DataFrame | None = None
    metrics: dict | None = None
    _labelled: list = field(default_factory=list, repr=False)


class PartialPairScoringError(SpeakerIDError):
    """``strict=True`` and some pairs failed; raised after the output is written (exit code 9)."""

    exit_code = 9

    def __init__(self, result: PairScoringResult):
        self.result = result
        first = f" (first: line {result.errors[0][0]}: {result.errors[0][2]})" if result.errors else ""
        super().__init__(f"{result.n_errors} of {result.n_pairs} pair(s) could not be scored{first}")


# ---------------------------------------------------------------------------------------------- worker side

def source_frames(verifier, cache, source, allow_commands: bool):
    """Frames of one pair-list entry ``(file or command, start_s, end_s)``; files through the feature cache."""
    entry, start_s, end_s = source
    from speakerid.data.kaldi import is_command, load_utterance

    if math.isnan(start_s) and math.isnan(end_s) and not is_command(entry):
        return cache.features(entry)
    from speakerid.features import extract

    config = verifier.feature_config
    signal, _ = load_utterance(entry, start_s, end_s, config.sample_rate, allow_commands=allow_commands)
    return extract(signal, config)


def build_models(spec: WorkerSpec, tasks: list) -> list:
    """Worker side: ``(arrays, None)`` or ``(None, reason)`` per ``(source, allow_commands)`` task."""

    verifier, cache, _ = worker_state(spec)
    verifier.missing_background()  # loads the background model
    out = []
    # one BLAS thread, as score_against: a model must not depend on n_jobs (a GEMM's rounding follows its threads)
    with one_blas_thread():
        for source, allow_commands in tasks:
            try:
                arrays, _ = verifier.backend.enroll([source_frames(verifier, cache, source, allow_commands)])
                out.append((arrays, None))
            except AudioError as exc:
                out.append((None, str(exc)))
    return out


def score_against(spec: WorkerSpec, tasks: list) -> list:
    """Worker side: per ``(source, allow_commands, models)`` task, ``(scores, reason, cohort_scores)``."""

    verifier, cache, cohort = worker_state(spec)
    verifier.missing_background()
    out = []
    with one_blas_thread():  # scores independent of n_jobs (see scoring.worker)
        for source, allow_commands, models in tasks:
            try:
                prepared = verifier.backend.prepare(source_frames(verifier, cache, source, allow_commands))
            except AudioError as exc:
                out.append((None, str(exc), None))
                continue
            scores = np.asarray(verifier.backend.score(prepared, models), dtype=np.float64)
            test_cohort = (None if cohort is None else
                           np.asarray(verifier.backend.score(prepared, cohort), dtype=np.float64))
            out.append((scores, None, test_cohort))
    return out


# ---------------------------------------------------------------------------------------------- cohort

@dataclass
class _PairCohort:
    method: str
    top_n: int | None
    utterances: list            # prepared cohort utterances (Z-norm side)
    cohort_cohort: np.ndarray   # (n_cohort_models, n_cohort_utterances)
    model_rows: dict = field(default_factory=dict)   # enrollment key -> scores vs the cohort utterances

    def add_models(self, backend, keys, models) -> None:
        if not keys:
            return
        matrix = np.column_stack([np.asarray(backend.score(u, models), dtype=np.float64) for u in self.utterances])
        self.model_rows.update(zip(keys, matrix))

    def normalize(self, scores, keys, test_cohort) -> np.ndarray:
        from speakerid.evaluation.norm import normalize_scores

        model_cohort = np.vstack([self.model_rows[k] for k in keys])
        return normalize_scores(scores, self.method, model_cohort=model_cohort, test_cohort=test_cohort,
                                cohort_cohort=self.cohort_cohort, top_n=self.top_n)


def _prepare_cohort(verifier, cohort_csv, method, top_n, cache, folder) -> tuple:
    from speakerid.data.manifests import read_manifest
    from speakerid.scoring.worker import save_models

    manifest = read_manifest(cohort_csv)
    backend = verifier.backend
    frames = [cache.features(p) for p in progress(manifest["path"], desc="cohort", unit="file")]
    models = [backend.enroll([f for f, s in zip(frames, manifest["speaker"]) if s == speaker])[0]
              for speaker in dict.fromkeys(manifest["speaker"])]
    utterances = [backend.prepare(f) for f in frames]
    cohort_cohort = np.column_stack([np.asarray(backend.score(u, models), dtype=np.float64) for u in utterances])
    path = str(Path(folder) / "cohort-models.npz")
    save_models(models, path)
    return _PairCohort(method, top_n, utterances, cohort_cohort), path


# ---------------------------------------------------------------------------------------------- the run

def score_pairs(model_dir, pairs, out=None, *, pair_format=None, audio_root=None, data_dir=None,
                allow_commands=False, backend=None, backend_params=None, n_jobs=1, scheduler=None,
                chunksize=DEFAULT_CHUNKSIZE, cache_dir=None, norm="auto", cohort=None, cohort_top=None,
                symmetric=False, out_format="csv", strict=False, show_progress=None) -> PairScoringResult:
    """Score every pair of a pair trial list; write ``enroll,test[,target],score,error`` (or another format).

    Parameters
    ----------
    model_dir : str or os.PathLike
        A model directory with the backend's background model(s); nobody needs to be enrolled.
    pairs : str, os.PathLike or PairList
        The pair list (:func:`speakerid.data.pair_trials.open_pairs` reads and checks it with ``pair_format``,
        ``audio_root``, ``data_dir`` and ``allow_commands``).
    out : str or os.PathLike, optional
        Where to write the scores (atomically); ``None`` keeps them in ``result.frame``.
    backend, backend_params, n_jobs, scheduler, chunksize, cache_dir, norm, cohort, cohort_top, strict
        As for :func:`speakerid.scoring.batch.score_trials`; ``norm`` may not use the enrolled speakers (pairs
        claim nobody): ``auto`` is S-norm with the directory's cohort when it has one, else none.
    symmetric : bool
        Average the scores of both directions (each file is then also a model).
    out_format : {"csv", "kaldi", "voxceleb", "nist"}
        See :mod:`speakerid.data.score_formats`; only ``csv`` keeps labels and unscored pairs.

    Returns
    -------
    PairScoringResult

    Raises
    ------
    ManifestError
        A bad pair list (before anything is scored).
    ParameterError
        Bad options; an ``enrolled`` normalisation.
    NotFittedError
        The backend's background model is missing.
    PartialPairScoringError
        With ``strict``, when some pairs could not be scored (after writing).
    """
    from speakerid.features.cache import FeatureCache
    from speakerid.features.pipeline import background_features
    from speakerid.scoring.batch import _model_stamp
    from speakerid.scoring.options import check_options
    from speakerid.verifier import SpeakerVerifier

    start = time.perf_counter()
    norm, cohort, enrolled = check_options(chunksize, norm, cohort, cohort_top, model_dir)
    if enrolled is True:
        raise ParameterError("pair scoring claims no enrolled speaker: the 'enrolled' normalisation does not apply")
    if not isinstance(pairs, PairList):
        pairs = open_pairs(pairs, format=pair_format, audio_root=audio_root, data_dir=data_dir,
                           allow_commands=allow_commands)
    verifier = SpeakerVerifier(model_dir, backend=backend, backend_params=backend_params)
    missing = verifier.missing_background()
    if missing:
        raise NotFittedError(missing)
    cache_path = None if cache_dir is None else str(Path(cache_dir).resolve())
    result = PairScoringResult(has_target=pairs.has_target, normalization=norm or "none", symmetric=symmetric,
                               out_format=out_format, pair_format=pairs.format)
    with tempfile.TemporaryDirectory(prefix=".speakerid-pairs-") as work_dir:
        pair_cohort, cohort_file = None, None
        if norm:
            pair_cohort, cohort_file = _prepare_cohort(verifier, cohort, norm, cohort_top,
                                                       FeatureCache(cache_path, verifier.feature_config,
                                                                    extract=background_features), work_dir)
        spec = WorkerSpec(str(verifier.model_dir.resolve()), verifier.backend_name,
                          tuple(sorted((backend_params or {}).items())), cache_path, _model_stamp(verifier),
                          cohort_file if norm in ("tnorm", "ztnorm", "snorm") else None)
        writer = None if out is None else ScoreWriter(out, out_format, enroll="enroll", test="test")
        frames = []
        try:
            with TaskRunner(n_jobs, scheduler) as runner:
                result.runner = runner.description
                models, failed = _build_all(runner, spec, pairs, symmetric, allow_commands, verifier, pair_cohort,
                                            show_progress)
                result.n_models = len(models)
                with progress(total=pairs.n_pairs, desc="score-pairs", unit="pair", enabled=show_progress) as bar:
                    for chunk in pairs.chunks(chunksize):
                        chunk = _score_chunk(runner, spec, pairs, chunk, models, failed, symmetric, allow_commands,
                                             pair_cohort)
                        _count(result, chunk)
                        if writer is not None:
                            writer.write(chunk)
                        else:
                            frames.append(chunk)
                        bar.update(len(chunk))
        except BaseException as exc:
            if writer is not None:
                writer.close(exc)
            raise
        if writer is not None:
            writer.close()
            result.out = writer.path
    result.frame = pd.concat(frames) if frames else None
    if result._labelled:
        from speakerid.evaluation.metrics import trial_metrics

        result.metrics = trial_metrics(pd.concat(result._labelled))
        result._labelled = []
    result.seconds = time.perf_counter() - start
    if strict and result.n_errors:
        raise PartialPairScoringError(result)
    return result


def _build_all(runner, spec, pairs, symmetric, allow_commands, verifier, pair_cohort, show_progress):
    """One model per distinct enrollment entry (every entry when symmetric): ``(models, failed)`` dicts."""
    keys = pairs.keys() if symmetric else list(dict.fromkeys(k for c in pairs.chunks() for k in c["enroll"]))
    models, failed = {}, {}
    step = 256
    with progress(total=len(keys), desc="models", unit="model", enabled=show_progress) as bar:
        for first in range(0, len(keys), step):
            batch = keys[first:first + step]
            outputs = runner.map(build_models, spec, [(pairs.source(k), allow_commands) for k in batch])
            made = []
            for key, (arrays, reason) in zip(batch, outputs):
                if reason is None:
                    models[key] = arrays
                    made.append(key)
                else:
                    failed[key] = reason
            if pair_cohort is not None:
                pair_cohort.add_models(verifier.backend, made, [models[k] for k in made])
            bar.update(len(batch))
    return models, failed


def _directed(runner, spec, pairs, model_keys, test_keys, models, failed, allow_commands, pair_cohort):
    """Scores of ``model(model_keys[i])`` against ``test_keys[i]`` (NaN and a reason where one side failed)."""
    scores = np.full(len(model_keys), np.nan)
    reasons = np.array([failed.get(m) or failed.get(t) or "" for m, t in zip(model_keys, test_keys)], dtype=object)
    by_test = {}
    for i, (m, t) in enumerate(zip(model_keys, test_keys)):
        if m in models and not reasons[i]:
            by_test.setdefault(t, []).append(i)
    tests = list(by_test)
    tasks = [(pairs.source(t), allow_commands, [models[model_keys[i]] for i in by_test[t]]) for t in tests]
    test_cohort = None
    for t, (values, reason, cohort_scores) in zip(tests, runner.map(score_against, spec, tasks)):
        rows = by_test[t]
        if reason is not None:
            failed[t] = reason
            reasons[rows] = reason
            continue
        scores[rows] = values
        if cohort_scores is not None:
            if test_cohort is None:
                test_cohort = np.zeros((len(model_keys), len(cohort_scores)))
            test_cohort[rows] = cohort_scores
    done = np.isfinite(scores)
    if pair_cohort is not None and done.any():
        scores[done] = pair_cohort.normalize(scores[done], [model_keys[i] for i in np.flatnonzero(done)],
                                             None if test_cohort is None else test_cohort[done])
    return scores, reasons


def _score_chunk(runner, spec, pairs, chunk, models, failed, symmetric, allow_commands, pair_cohort):
    enroll, test = chunk["enroll"].tolist(), chunk["test"].tolist()
    scores, reasons = _directed(runner, spec, pairs, enroll, test, models, failed, allow_commands, pair_cohort)
    if symmetric:
        back, back_reasons = _directed(runner, spec, pairs, test, enroll, models, failed, allow_commands,
                                       pair_cohort)
        scores = (scores + back) / 2.0
        reasons = np.where(reasons != "", reasons, back_reasons)
    chunk = chunk.copy()
    chunk["score"] = scores
    chunk["error"] = np.where(np.isfinite(scores), "", np.where(reasons != "", reasons, "not scored"))
    return chunk


def _count(result: PairScoringResult, chunk: pd.DataFrame) -> None:
    failed = chunk["error"] != ""
    result.n_pairs += len(chunk)
    result.n_errors += int(failed.sum())
    result.n_scored += int((~failed).sum())
    if "target" in chunk.columns:
        result._labelled.append(chunk.loc[~failed, ["target", "score"]])
    for line, entry, reason in zip(chunk.index[failed], chunk["enroll"][failed], chunk["error"][failed]):
        if len(result.errors) >= MAX_ERRORS_KEPT:
            break
        result.errors.append((int(line), entry, reason))
