"""Enrollment of many speakers on workers: one MAP adaptation (or i-vector, or embedding) per speaker, anywhere.

:meth:`speakerid.verifier.SpeakerVerifier.enroll_manifest` hands its speakers to a
:class:`~speakerid._utils.parallel.TaskRunner` (joblib processes or Dask); each worker loads the directory's
background model once (:func:`_worker_backend`, kept per process) and returns ``(speaker, arrays, header)`` per
speaker, so the driver never holds more than the speaker models. The noisy copies of a speaker's files are seeded
by the speaker id, so a speaker's model does not depend on which worker made it. With a feature store folder
(``cache_dir``) the frames go through :func:`speakerid.features.feature_store.extract_to_store`: a rerun after an
interruption reads them instead of the audio.
"""

from __future__ import annotations

import zlib

from speakerid._utils.parallel import TaskRunner, imap_ordered
from speakerid._utils.progress import progress
from speakerid._utils.validation import resolve_jobs
from speakerid.backends._training import warn_overlap
from speakerid.backends.base import get_backend
from speakerid.data.augment import augment_header
from speakerid.features.feature_store import extract_to_store, read_entry
from speakerid.features.pipeline import MIN_FILES_PER_PROCESS, many_features
from speakerid.store import ModelStore

__all__ = ["adapt_speaker", "adapt_speakers", "adapt_batch", "adapt_local", "on_workers"]

#: Local worker processes are used from this many enrollment files each; below it, threads of the command (the
#: measurements behind the number: :data:`speakerid.features.pipeline.MIN_FILES_PER_PROCESS`).
MIN_FILES_PER_WORKER = MIN_FILES_PER_PROCESS

#: Per worker process: the loaded backend of each (model directory, backend, parameters, background files' mtimes).
_BACKENDS: dict = {}


def adapt_speaker(backend, config, speaker, files, names, n_augment, background_speakers=(), *, n_jobs=1,
                  cache_dir=None, show_progress: bool = True) -> tuple:
    """``(speaker, arrays, header)``: ``backend``'s model of ``speaker`` from ``files`` and ``n_augment`` noisy
    copies of each (seeded ``[crc32(speaker), i]``); the header counts the clean frames and audio seconds.
    ``show_progress``: the per-file progress (off when a caller reports progress over speakers)."""
    warn_overlap({speaker} & set(background_speakers), "enrolled", stacklevel=4)
    seed = zlib.crc32(speaker.encode("utf-8"))
    if cache_dir is None:
        extracted = many_features(files, config, n_jobs=n_jobs, n_augment=n_augment, random_state=seed,
                                  desc=f"enroll {speaker}", show_progress=show_progress)
        frames = [f for sessions, _ in extracted for f in sessions]
        n_frames = sum(len(sessions[0]) for sessions, _ in extracted)
        seconds = sum(s for _, s in extracted)
    else:
        entries, _ = extract_to_store(files, config, cache_dir, n_augment=n_augment, random_state=seed,
                                      desc=f"enroll {speaker}", show_progress=show_progress)
        frames = [read_entry(e) for e in entries]
        n_frames = sum(e.n_frames for e in entries if e.copy == 0)
        seconds = sum(e.seconds for e in entries if e.copy == 0)
    # the copies enlarge the adaptation data; the header counts the clean frames
    arrays, params = backend.enroll(frames)
    header = {"model_class": backend.speaker_class, "params": params, "feature_config": config.to_dict(),
              "feature_hash": config.hash(), "background_hash": backend.background_hash, "n_files": len(files),
              "total_seconds": round(float(seconds), 3), "n_frames": int(n_frames), "files": names}
    if n_augment:
        header["augment"] = augment_header(n_augment, seed)
    return speaker, arrays, header


def _worker_backend(model_dir, name, params):
    """The backend ``name`` with the directory's background model loaded, once per process (and per change of
    the background files)."""
    store = ModelStore(model_dir)
    backend = get_backend(name)(params)
    stamps = tuple(store.path(f).stat().st_mtime_ns if store.exists(f) else None for f in backend.background_files)
    key = (str(store.model_dir), name, repr(sorted((params or {}).items())), stamps)
    if key not in _BACKENDS:
        for file_name in backend.background_files:
            if store.exists(file_name):
                header, arrays = store.load(file_name)
                backend.load_background(file_name, header, arrays)
        backend.check_ready()
        _BACKENDS.clear()              # one directory at a time per worker
        _BACKENDS[key] = backend
    return _BACKENDS[key]


def on_workers(jobs: list, n_jobs, scheduler) -> bool:
    """Whether ``enroll_manifest`` hands its ``(speaker, files, names)`` jobs to workers: always on a Dask
    ``scheduler``; locally when there are several speakers and at least :data:`MIN_FILES_PER_WORKER` files per
    worker (the models are the same either way)."""
    if len(jobs) < 2:
        return False
    if scheduler is not None:
        return True
    workers = resolve_jobs(n_jobs)
    return workers > 1 and sum(len(files) for _, files, _ in jobs) >= MIN_FILES_PER_WORKER * workers


def adapt_local(shared, batch) -> list:
    """A thread of this process: :func:`adapt_speaker` of every ``(speaker, files, names)`` of ``batch`` with the
    caller's loaded backend."""
    backend, config, n_augment, background_speakers, n_jobs, cache_dir, show_progress = shared
    return [adapt_speaker(backend, config, speaker, files, names, n_augment, background_speakers, n_jobs=n_jobs,
                          cache_dir=cache_dir, show_progress=show_progress) for speaker, files, names in batch]


def adapt_batch(shared, batch) -> list:
    """Worker: :func:`adapt_speaker` of every ``(speaker, files, names)`` of ``batch``."""
    model_dir, name, params, config, n_augment, background_speakers, cache_dir = shared
    backend = _worker_backend(model_dir, name, params)
    return [adapt_speaker(backend, config, speaker, files, names, n_augment, background_speakers,
                          cache_dir=cache_dir, show_progress=False) for speaker, files, names in batch]


def adapt_speakers(jobs, backend, backend_name, model_dir, config, n_augment, background_speakers, n_jobs, scheduler,
                   cache_dir) -> list:
    """:func:`adapt_speaker` of every ``(speaker, files, names)`` of ``jobs``, in order: on worker processes or
    Dask when it pays (:func:`on_workers`), else on threads of this process with the loaded ``backend`` (nothing to
    start or load; one BLAS thread each). The models are the same either way."""
    if on_workers(jobs, n_jobs, scheduler):
        shared = (model_dir, backend_name, backend.params, config, n_augment, background_speakers, cache_dir)
        with TaskRunner(n_jobs, scheduler, batches_per_worker=1) as runner:
            return runner.map(adapt_batch, shared, jobs)
    threads = 1 if len(jobs) < 2 or scheduler is not None else min(resolve_jobs(n_jobs), len(jobs))
    shared = (backend, config, n_augment, background_speakers, n_jobs if threads == 1 else 1, cache_dir,
              len(jobs) == 1)      # per-file progress: only for a lone speaker
    with TaskRunner(threads, threads=True, batches_per_worker=1) as runner:
        return list(progress(imap_ordered(runner if threads > 1 else None, adapt_local, shared, jobs),
                             total=len(jobs), desc="enroll", unit="speaker"))
