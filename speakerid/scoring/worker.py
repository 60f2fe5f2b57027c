"""The worker side of batch scoring (:mod:`speakerid.scoring.batch`): what runs in each worker process.

A task is one test file and the speakers it is claimed to be; :func:`score_tasks` scores a batch of them through
:meth:`~speakerid.verifier.SpeakerVerifier.score_frames` -- the path ``verify`` takes -- with the job's score
normaliser (read once from the ``.npz`` the job wrote). Each worker keeps its verifier (and so every speaker model
it has loaded), its feature cache and the normaliser in a module-level dict keyed by the :class:`WorkerSpec`, so
they are loaded once per worker and job, not once per task or chunk.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from speakerid._utils.blas import one_blas_thread
from speakerid.backends._cohort import ScoreNormalizer, _flat_models, _unflatten
from speakerid.exceptions import AudioError
from speakerid.features.cache import FeatureCache
from speakerid.verifier import SpeakerVerifier

__all__ = ["WorkerSpec", "score_tasks", "worker_state", "save_models", "load_models"]


def save_models(models: list, path) -> None:
    """Save a list of speaker models (dicts of arrays) to one ``.npz`` for the workers (no pickles)."""
    np.savez(path, **_flat_models(models))


def load_models(path) -> list:
    """The list of speaker models saved by :func:`save_models`."""
    with np.load(path, allow_pickle=False) as data:
        return _unflatten({k: data[k] for k in data.files})


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to score (small and hashable: it keys the worker's cached state)."""

    model_dir: str
    backend: str
    backend_params: tuple
    cache_dir: str | None
    stamp: str                # digest of the model files' names, sizes and mtimes
    cohort_models: str | None = None   # a cohort's models (pair scoring: scoring.pairs)
    normalizer: str | None = None      # the job's ScoreNormalizer file (batch scoring), None for raw scores


# spec -> {thread id -> (verifier, feature cache, normalizer or cohort models)}. Per thread, because a Dask worker may run
# tasks on several threads and a verifier loads its models lazily (not thread-safe).
_WORKER_STATE: dict = {}
_STATE_LOCK = threading.Lock()
#: Jobs (specs) whose state a worker keeps at once; older ones are dropped.
MAX_SPECS = 2


def worker_state(spec: WorkerSpec):
    """This thread's ``(verifier, feature_cache, extra)`` for ``spec``, made on first use; ``extra`` is the
    job's :class:`ScoreNormalizer`, else its cohort models (a list), else None. The verifier scores raw."""
    thread = threading.get_ident()
    state = _WORKER_STATE.get(spec, {}).get(thread)
    if state is None:
        verifier = SpeakerVerifier(spec.model_dir, backend=spec.backend,
                                   backend_params=dict(spec.backend_params) or None, norm="none")
        cache = FeatureCache(spec.cache_dir, verifier.feature_config)
        extra = (ScoreNormalizer.load(spec.normalizer) if spec.normalizer
                 else load_models(spec.cohort_models) if spec.cohort_models else None)
        state = (verifier, cache, extra)
        with _STATE_LOCK:
            if spec not in _WORKER_STATE:
                while len(_WORKER_STATE) >= MAX_SPECS:  # do not hoard the models of finished jobs
                    _WORKER_STATE.pop(next(iter(_WORKER_STATE)))
                _WORKER_STATE[spec] = {}
            _WORKER_STATE[spec][thread] = state
    return state


def score_tasks(spec: WorkerSpec, tasks: list) -> list:
    """Worker side: score each ``(test_path, [speakers])`` task; one ``(scores, error, cached, n_frames)`` per
    task (``scores`` None and ``error`` the reason when the audio cannot be used; ``n_frames`` the test's speech
    frames, 0 then)."""

    verifier, cache, normalizer = worker_state(spec)
    results = []
    # One BLAS thread everywhere: a GEMM's rounding may depend on its thread count, and the scores must not
    # depend on n_jobs or the scheduler. Tasks are small; parallelism comes from the workers.
    with one_blas_thread():
        for path, speakers in tasks:
            results.append(_score_task(verifier, cache, normalizer, path, speakers))
    return results


def _score_task(verifier, cache, normalizer, path, speakers):
    hits = cache.hits
    try:
        frames = cache.features(path)
    except AudioError as exc:
        return None, _reason(exc, path), False, 0
    return verifier.score_frames(speakers, frames, normalizer=normalizer), None, cache.hits > hits, len(frames)


def _reason(exc: AudioError, path) -> str:
    text = str(exc)
    for prefix in (f"{exc.path}: ", f"{path}: "):
        if exc.path and text.startswith(prefix):
            return text[len(prefix):]
    return text
