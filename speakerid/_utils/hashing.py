"""A content hash of a dict of arrays: how a model file names the background model it was made against."""

from __future__ import annotations

import hashlib

import numpy as np


def arrays_hash(arrays: dict) -> str:
    """A stable 16-hex-digit fingerprint of named arrays (names, dtypes, shapes and bytes).

    Examples
    --------
    >>> a = {"means": np.zeros((2, 3), np.float32)}
    >>> arrays_hash(a) == arrays_hash({"means": np.zeros((2, 3), np.float32)})
    True
    >>> arrays_hash(a) == arrays_hash({"means": np.ones((2, 3), np.float32)})
    False
    """
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()[:16]

