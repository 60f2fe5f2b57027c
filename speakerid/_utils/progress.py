"""Progress bars for long work: shown on an interactive terminal only, silent in pipes, CI and tests."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["progress"]


def progress(iterable=None, *, total=None, desc=None, unit="it", enabled=None, **kwargs):
    """Wrap ``iterable`` in a tqdm bar on stderr when stderr is a TTY (or when ``enabled`` is True)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr,
                leave=False, dynamic_ncols=True, **kwargs)
