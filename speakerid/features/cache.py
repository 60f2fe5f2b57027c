"""An optional on-disk cache of extracted features, so that re-scoring a trial list does not re-read the audio.

An entry is one ``.npy`` file named by a hash of the audio file's absolute path, size, modification time (ns)
and :meth:`FeatureConfig.hash`: changing the audio or the front-end settings makes a new key, never a stale hit.
Entries are written atomically and read with ``allow_pickle=False``; an unreadable entry counts as a miss and is
rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from speakerid.features.config import FeatureConfig

__all__ = ["FeatureCache", "cache_key"]


def cache_key(path, config: FeatureConfig) -> str:
    """The cache key of an audio file's features under ``config`` (raises ``OSError`` when the file is missing).

    Examples
    --------
    >>> import tempfile, os
    >>> fd, name = tempfile.mkstemp(); os.close(fd)
    >>> key = cache_key(name, FeatureConfig())
    >>> len(key), key == cache_key(name, FeatureConfig()), key == cache_key(name, FeatureConfig(n_ceps=13))
    (40, True, False)
    """
    path = os.path.abspath(os.fspath(path))
    stat = os.stat(path)
    text = "\0".join([path, str(stat.st_size), str(stat.st_mtime_ns), config.hash()])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


class FeatureCache:
    """Features of audio files under one :class:`FeatureConfig`, kept in ``cache_dir`` (``None``: no caching).

    Parameters
    ----------
    cache_dir : str or os.PathLike or None
        Folder of the ``.npy`` entries (created when first written). ``None`` makes :meth:`features` always
        extract.
    config : FeatureConfig
        The front-end settings the features are extracted with (part of every key).
    extract : callable, optional
        ``extract(path, config) -> frames``; the default reads the file with
        :func:`speakerid.features.pipeline.file_features`.

    Attributes
    ----------
    hits, misses : int
        Entries found / features extracted since the cache was made.
    """

    def __init__(self, cache_dir, config: FeatureConfig, extract=None):
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.config = config
        self._extract = extract
        self.hits = 0
        self.misses = 0

    def entry_path(self, path) -> Path:
        """Where the features of ``path`` are (or would be) cached."""
        key = cache_key(path, self.config)
        return self.cache_dir / key[:2] / f"{key}.npy"

    def features(self, path) -> np.ndarray:
        """The frames of ``path``: from the cache when present and readable, else extracted (and stored)."""
        entry = None
        if self.cache_dir is not None:
            try:
                entry = self.entry_path(path)
            except OSError:
                entry = None  # a missing file: let extraction report it properly
            if entry is not None:
                frames = self._read(entry)
                if frames is not None:
                    self.hits += 1
                    return frames
        self.misses += 1
        frames = self._extract_file(path)
        if entry is not None:
            self._write(entry, frames)
        return frames

    def _extract_file(self, path) -> np.ndarray:
        if self._extract is not None:
            return self._extract(path, self.config)
        from speakerid.features.pipeline import file_features

        return file_features(path, self.config)[0]

    @staticmethod
    def _read(entry: Path):
        try:
            frames = np.load(entry, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None  # absent, truncated or not an .npy: recompute
        if frames.ndim != 2 or frames.shape[0] == 0 or not np.issubdtype(frames.dtype, np.floating):
            return None
        return frames

    @staticmethod
    def _write(entry: Path, frames: np.ndarray) -> None:
        # A cache that cannot be written (read-only folder, full disk) only costs speed, never the run.
        with contextlib.suppress(OSError):
            entry.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{entry.stem}.", suffix=".tmp", dir=str(entry.parent))
            try:
                with os.fdopen(fd, "wb") as fh:
                    np.save(fh, np.ascontiguousarray(frames), allow_pickle=False)
                os.replace(tmp, entry)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
