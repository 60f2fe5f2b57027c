"""JSON text that every reader accepts: the values JSON has no spelling for (infinity, NaN) made explicit."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["json_safe"]


def json_safe(value):
    """A copy of ``value`` that :func:`json.dumps` writes as standard JSON (with ``allow_nan=False``).

    ±inf (e.g. a "reject everything" threshold) becomes the string ``"inf"`` / ``"-inf"``, NaN becomes ``null``,
    numpy scalars and arrays become Python numbers and lists; dicts, lists and tuples are walked.

    Examples
    --------
    >>> json_safe({"t": [float("inf"), 1.5], "x": float("nan"), "n": np.int64(3)})
    {'t': ['inf', 1.5], 'x': None, 'n': 3}
    """
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value
