"""Progress of long work: a bar on an interactive terminal; one line per stage on a redirected stderr (a log file,
CI) once a command asks for it with :func:`report_stages`; silent otherwise (library calls, tests, pipes)."""

from __future__ import annotations

import contextlib
import sys
import time

from tqdm.auto import tqdm

__all__ = ["progress", "report_stages", "stage_lines"]

_STATE = {"lines": False}


@contextlib.contextmanager
def report_stages():
    """Within it, :func:`progress` prints one line per stage when stderr is not a terminal (the CLI's long
    commands use it around their work)."""
    before, _STATE["lines"] = _STATE["lines"], True
    try:
        yield
    finally:
        _STATE["lines"] = before


def stage_lines() -> bool:
    """Whether stages are reported as lines: asked for by :func:`report_stages` and stderr is not a terminal."""
    return _STATE["lines"] and not sys.stderr.isatty()


def progress(iterable=None, *, total=None, desc=None, unit="it", enabled=None, **kwargs):
    """Wrap ``iterable`` in a tqdm bar on stderr when stderr is a TTY (or when ``enabled`` is True).

    With ``enabled=None`` on a redirected stderr after :func:`report_stages`, a line ``speakerid: <desc>: ...``
    is printed when the stage starts and one when it ends (and one per :meth:`update` of a manual counter), so a
    log shows the command is alive. Usable as an iterable and as a context manager with ``update(n)``.
    """
    if enabled is None and stage_lines():
        return _Lines(iterable, total, desc or "working", unit)
    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr,
                leave=False, dynamic_ncols=True, **kwargs)


class _Lines:
    """The line-per-stage stand-in for a tqdm bar."""

    def __init__(self, iterable, total, desc: str, unit: str):
        self.iterable, self.desc, self.unit, self.n = iterable, desc, unit, 0
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.start = time.perf_counter()
        self._say(f"{self.total} {unit}(s)..." if self.total is not None else "started")
        self._done = False

    def _say(self, text: str) -> None:
        print(f"speakerid: {self.desc}: {text}", file=sys.stderr, flush=True)

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.n += 1
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        of = f" of {self.total}" if self.total is not None else ""
        self._say(f"{self.n}{of} {self.unit}(s), {time.perf_counter() - self.start:.1f} s")

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._say(f"done, {self.n} {self.unit}(s) in {time.perf_counter() - self.start:.1f} s")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
