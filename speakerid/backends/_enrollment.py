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
from pathlib import Path

from speakerid._utils.parallel import TaskRunner, imap_ordered
from speakerid._utils.progress import progress
from speakerid._utils.validation import resolve_jobs
from speakerid.backends._training import warn_overlap
from speakerid.backends.base import get_backend
from speakerid.data.augment import augment_header
from speakerid.data.manifests import validate_speaker_id
from speakerid.exceptions import ParameterError
from speakerid.features.feature_store import extract_to_store, read_entry
from speakerid.features.pipeline import MIN_FILES_PER_PROCESS, many_features
from speakerid.store import ModelStore

__all__ = ["adapt_speaker", "adapt_speakers", "adapt_batch", "adapt_local", "on_workers", "ENROLL_MODES",
           "enrollment_job", "check_existing", "check_added_copies"]

#: Local worker processes are used from this many enrollment files each; below it, threads of the command (the
#: measurements behind the number: :data:`speakerid.features.pipeline.MIN_FILES_PER_PROCESS`).
MIN_FILES_PER_WORKER = MIN_FILES_PER_PROCESS

#: What enrollment does with a speaker enrolled already (:meth:`speakerid.verifier.SpeakerVerifier.enroll`).
ENROLL_MODES = ("replace", "add", "new")

#: Per worker process: the loaded backend of each (model directory, backend, parameters, background files' mtimes).
_BACKENDS: dict = {}


def enrollment_job(speaker, files, names) -> tuple:
    """``(speaker, files, names)`` checked: a valid id, at least one file, as many names as files."""
    speaker = validate_speaker_id(speaker, for_enrollment=True)
    files = [str(f) for f in ([files] if isinstance(files, (str, Path)) else files)]
    if not files:
        raise ParameterError(f"no enrollment files for speaker {speaker!r}")
    names = [Path(f).name for f in files] if names is None else [str(n) for n in names]
    if len(names) != len(files):
        raise ParameterError(f"{len(names)} names given for {len(files)} enrollment files")
    return speaker, files, names


def check_existing(found: dict, mode: str) -> dict:
    """``found`` (``{speaker: header}`` of speakers enrolled already), unless ``mode`` is ``"new"``: then a
    ParameterError names the first, its files, and the options that go on."""
    if mode not in ENROLL_MODES:
        raise ParameterError(f"mode must be one of {', '.join(ENROLL_MODES)}, got {mode!r}")
    if found and mode == "new":
        speaker, header = next(iter(found.items()))
        more = f"; {len(found) - 1} more of these speakers too" if len(found) > 1 else ""
        raise ParameterError(
            f"speaker {speaker!r} is already enrolled ({header.get('n_files', '?')} file(s), "
            f"{float(header.get('total_seconds') or 0):.1f} s, since {header.get('created_at', '?')}{more}): give "
            "--replace to enroll it from these files only, or --add to add them to its model")
    return found


def check_added_copies(previous: dict, n_augment: int) -> None:
    """Files added to a speaker get the noisy copies its model was enrolled with, or a ParameterError."""
    for speaker, (header, _) in previous.items():
        copies = int((header.get("augment") or {}).get("copies", 0))
        if copies != n_augment:
            raise ParameterError(f"speaker {speaker!r} was enrolled with {copies} noisy copies per file; add files "
                                 f"the same way (--augment {copies}) or enroll it again (--replace)")


def adapt_speaker(backend, config, speaker, files, names, n_augment, background_speakers=(), *, n_jobs=1,
                  cache_dir=None, show_progress: bool = True, previous=None) -> tuple:
    """``(speaker, arrays, header)``: ``backend``'s model of ``speaker`` from ``files`` and ``n_augment`` noisy
    copies of each (seeded ``[crc32(speaker), i]``); the header counts the clean frames and audio seconds.
    ``show_progress``: the per-file progress (off when a caller reports progress over speakers). ``previous``:
    the speaker's enrolled ``(header, arrays)``, to which the files are added (:meth:`Backend.add_to`; file ``i``
    is then seeded as file ``n_files + i`` of one enrollment of all, and the header counts them all)."""
    warn_overlap({speaker} & set(background_speakers), "enrolled", stacklevel=4)
    seed = zlib.crc32(speaker.encode("utf-8"))
    first = int(previous[0].get("n_files") or 0) if previous is not None else 0
    if cache_dir is None:
        extracted = many_features(files, config, n_jobs=n_jobs, n_augment=n_augment, random_state=seed,
                                  desc=f"enroll {speaker}", show_progress=show_progress, first_index=first)
        frames = [f for sessions, _ in extracted for f in sessions]
        n_frames = sum(len(sessions[0]) for sessions, _ in extracted)
        seconds = sum(s for _, s in extracted)
    else:
        entries, _ = extract_to_store(files, config, cache_dir, n_augment=n_augment, random_state=seed,
                                      desc=f"enroll {speaker}", show_progress=show_progress, first_index=first)
        frames = [read_entry(e) for e in entries]
        n_frames = sum(e.n_frames for e in entries if e.copy == 0)
        seconds = sum(e.seconds for e in entries if e.copy == 0)
    # the copies enlarge the adaptation data; the header counts the clean frames
    if previous is None:
        arrays, params = backend.enroll(frames)
    else:
        arrays, params = backend.add_to(previous[1], frames)
        before = previous[0]
        names = list(before.get("files") or []) + list(names)
        seconds += float(before.get("total_seconds") or 0.0)
        n_frames += int(before.get("n_frames") or 0)
    header = {"model_class": backend.speaker_class, "params": params, "feature_config": config.to_dict(),
              "feature_hash": config.hash(), "background_hash": backend.background_hash,
              "n_files": first + len(files), "total_seconds": round(float(seconds), 3), "n_frames": int(n_frames), "files": names}
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
    backend, config, n_augment, background_speakers, n_jobs, cache_dir, show_progress, previous = shared
    return [adapt_speaker(backend, config, speaker, files, names, n_augment, background_speakers, n_jobs=n_jobs,
                          cache_dir=cache_dir, show_progress=show_progress, previous=previous.get(speaker))
            for speaker, files, names in batch]


def adapt_batch(shared, batch) -> list:
    """Worker: :func:`adapt_speaker` of every ``(speaker, files, names)`` of ``batch``."""
    model_dir, name, params, config, n_augment, background_speakers, cache_dir = shared
    backend = _worker_backend(model_dir, name, params)
    return [adapt_speaker(backend, config, speaker, files, names, n_augment, background_speakers,
                          cache_dir=cache_dir, show_progress=False) for speaker, files, names in batch]


def adapt_speakers(jobs, backend, backend_name, model_dir, config, n_augment, background_speakers, n_jobs, scheduler,
                   cache_dir, previous=None) -> list:
    """:func:`adapt_speaker` of every ``(speaker, files, names)`` of ``jobs``, in order: on worker processes or
    Dask when it pays (:func:`on_workers`), else on threads of this process with the loaded ``backend`` (nothing to
    start or load; one BLAS thread each). The models are the same either way. ``previous``: ``{speaker: (header,
    arrays)}`` of enrolled speakers the files are added to (in this process)."""
    previous = previous or {}
    if on_workers(jobs, n_jobs, scheduler) and not previous:
        shared = (model_dir, backend_name, backend.params, config, n_augment, background_speakers, cache_dir)
        with TaskRunner(n_jobs, scheduler, batches_per_worker=1) as runner:
            return runner.map(adapt_batch, shared, jobs)
    threads = 1 if len(jobs) < 2 or scheduler is not None else min(resolve_jobs(n_jobs), len(jobs))
    shared = (backend, config, n_augment, background_speakers, n_jobs if threads == 1 else 1, cache_dir,
              len(jobs) == 1, previous)      # per-file progress: only for a lone speaker
    with TaskRunner(threads, threads=True, batches_per_worker=1) as runner:
        return list(progress(imap_ordered(runner if threads > 1 else None, adapt_local, shared, jobs),
                             total=len(jobs), desc="enroll", unit="speaker"))
