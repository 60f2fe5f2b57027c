"""Training features on disk: every background file's frames, and each of its noisy copies, stored once as an entry.

Training that must not hold every frame in one process (:mod:`speakerid.models.sharded`) first calls
:func:`extract_to_store`: workers (a :class:`~speakerid._utils.parallel.TaskRunner`: serial, joblib or Dask) read
the audio, make the noisy copies and write one ``.npy`` per array into a :class:`~speakerid.features.cache.FeatureCache`
folder; the driver keeps only the list of entries (:class:`StoredEntry`: where, how many frames), never the frames.

Keys: a clean entry has the feature cache's key (file + size + mtime + :meth:`FeatureConfig.hash`), so scoring with
the same ``--cache`` reuses it; noisy copy ``j`` of file ``i`` adds ``j`` and its seed ``[random_state, i]`` (the
seeding rule of :mod:`speakerid.features.pipeline`). Entries are written atomically (temp file + rename), so an
interrupted run leaves whole entries only, and a rerun with the same folder extracts only the files whose entries
are missing. Why ``.npy`` files and not a chunked array format (zarr, HDF5): utterances have different lengths,
every entry is read whole by one worker, and ``numpy.load(mmap_mode="r")`` gives its shape without reading it;
a chunked format would add a dependency for no access pattern that training has.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write
from speakerid._utils.parallel import imap_ordered
from speakerid._utils.progress import progress
from speakerid.exceptions import AudioError
from speakerid.features.cache import cache_key
from speakerid.features.config import FeatureConfig

__all__ = ["StoredEntry", "entry_path", "extract_to_store", "read_entry", "make_shards"]


@dataclass(frozen=True)
class StoredEntry:
    """One frames array in the store: ``path`` (the ``.npy``), ``n_frames``, which file (its row ``file_index``
    in the manifest) and which copy (0 = clean, ``j`` = noisy copy ``j``); ``name`` is what messages call it;
    ``seconds`` the audio file's duration."""

    path: str
    n_frames: int
    file_index: int
    copy: int
    name: str
    seconds: float = 0.0


def entry_path(cache_dir, audio_path, config: FeatureConfig, copy: int = 0, seed=None) -> Path:
    """Where the frames of ``audio_path`` (``copy`` 0) or of its noisy copy ``copy`` made with ``seed`` are kept.

    Raises ``OSError`` when the audio file is missing (its size and mtime are part of the key).
    """
    key = cache_key(audio_path, config)
    if copy:
        text = f"{key}\0noisy {int(copy)}\0seed {list(np.ravel(seed).tolist())}"
        key = hashlib.sha256(text.encode()).hexdigest()[:40]
    return Path(cache_dir) / key[:2] / f"{key}.npy"


def _stored_frames(path: Path) -> int | None:
    """Frames in a readable entry (its header only, through a memory map), else ``None``."""
    try:
        frames = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if frames.ndim != 2 or frames.shape[0] == 0 or not np.issubdtype(frames.dtype, np.floating):
        return None
    return int(frames.shape[0])


def _write(path: Path, frames: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as fh:
        np.save(fh, np.ascontiguousarray(frames, dtype=np.float32), allow_pickle=False)


def _extract_batch(shared, batch) -> list:
    """Worker side: the entries of every ``(file_index, audio_path)`` of ``batch``, extracted when missing.

    Returns one ``(file_index, [(entry path, n_frames, extracted?), ...], seconds)`` per file, the clean entry
    first; with ``skip`` set, ``(file_index, None, reason)`` for a file the front end refuses.
    """
    cache_dir, config, n_augment, random_state, skip = shared
    out = []
    for index, audio in batch:
        try:
            out.append(_extract_file(cache_dir, config, n_augment, [random_state, index], index, audio))
        except AudioError as exc:
            if not skip:
                raise
            out.append((index, None, str(exc)))
    return out


def _extract_file(cache_dir, config, n_augment, seed, index, audio):
    import soundfile as sf

    from speakerid.features.pipeline import file_sessions

    try:
        paths = [entry_path(cache_dir, audio, config, j, seed) for j in range(n_augment + 1)]
    except OSError:
        file_sessions(audio, config, n_augment, seed, False)    # the one-line AudioError of an unreadable file
        raise
    counts = [_stored_frames(p) for p in paths]
    extracted = None in counts
    if extracted:
        sessions, seconds = file_sessions(audio, config, n_augment, seed, check_band=False)
        for p, frames in zip(paths, sessions):
            _write(p, frames)
        counts = [len(frames) for frames in sessions]
    else:
        seconds = sf.info(audio).duration
    return index, [(str(p), n, extracted) for p, n in zip(paths, counts)], float(seconds)


def extract_to_store(paths, config: FeatureConfig, cache_dir, *, n_augment: int = 0, random_state=0,
                     runner=None, desc: str = "features", show_progress: bool = True,
                     refused: dict | None = None, first_index: int = 0) -> tuple[list[StoredEntry], int]:
    """Extract every file's frames and ``n_augment`` noisy copies into ``cache_dir``, skipping stored entries.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        The audio files, in manifest order (file ``i`` seeds its copies with ``[random_state, i]``).
    config : FeatureConfig
        Front-end settings (part of every key).
    cache_dir : str or os.PathLike
        The store's folder (a feature cache folder; created when needed). Workers on other machines must see it.
    n_augment, random_state
        Noisy copies per file and their seed (:func:`speakerid.features.pipeline.file_sessions`).
    runner : TaskRunner, optional
        Where the extraction runs (an opened :class:`~speakerid._utils.parallel.TaskRunner`); serial by default.
    desc : str
        The progress stage's name (:func:`speakerid._utils.progress.progress`).
    show_progress : bool
        Report progress at all (off when the caller reports its own, e.g. over speakers).
    refused : dict, optional
        Given, a file that cannot be read or holds no usable speech is left out and added to it as
        ``{path: reason}`` instead of raising (background training: one bad file must not end the run).
    first_index : int
        File ``i`` is seeded as file ``first_index + i`` (files added to a speaker's earlier ones).

    Returns
    -------
    (list of StoredEntry, int)
        The entries in file order, each file's clean entry then its copies; and how many files were extracted
        (the others were found in the store).

    Raises
    ------
    AudioError
        When a file cannot be read or holds no usable speech (from the worker that read it), without ``refused``.
    """
    paths = [os.fspath(p) for p in paths]
    shared = (os.fspath(cache_dir), config, int(n_augment), random_state, refused is not None)
    tasks = list(enumerate(paths, int(first_index)))
    window = 16 * max(1, getattr(runner, "n_workers", 1))
    entries, n_extracted = [], 0
    results = imap_ordered(runner, _extract_batch, shared, tasks, window)
    for index, stored, seconds in progress(results, total=len(paths), desc=desc, unit="file",
                                           enabled=None if show_progress else False):
        index -= int(first_index)
        if stored is None:
            refused[paths[index]] = seconds      # the reason
            continue
        n_extracted += bool(stored and stored[0][2])
        for copy, (path, n_frames, _) in enumerate(stored):
            name = paths[index] + (f" (noisy copy {copy})" if copy else "")
            entries.append(StoredEntry(path, n_frames, index, copy, name, seconds))
    return entries, n_extracted


def read_entry(entry, subsample: int = 1) -> np.ndarray:
    """The float32 frames of a stored entry (a :class:`StoredEntry` or its path), every ``subsample``-th frame."""
    path = entry.path if isinstance(entry, StoredEntry) else os.fspath(entry)
    frames = np.load(path, allow_pickle=False)
    return np.ascontiguousarray(frames[::max(1, int(subsample))], dtype=np.float32)


def make_shards(entries: list[StoredEntry], shard_frames: int) -> list[list[StoredEntry]]:
    """Contiguous groups of entries of at most ``shard_frames`` frames (an entry longer than that is a shard alone).

    The grouping depends on the entries only, never on the number of workers: this is what keeps the map-reduce
    sums (and so the trained models) the same whatever runs them.

    Examples
    --------
    >>> e = [StoredEntry(str(i), n, i, 0, str(i)) for i, n in enumerate([3, 3, 5, 1])]
    >>> [[x.n_frames for x in s] for s in make_shards(e, 6)]
    [[3, 3], [5, 1]]
    """
    shards, current, size = [], [], 0
    for entry in entries:
        if current and size + entry.n_frames > shard_frames:
            shards.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry.n_frames
    if current:
        shards.append(current)
    return shards


