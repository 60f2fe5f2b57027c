"""Progress of long work: a bar on an interactive terminal; one line per stage on a redirected stderr (a log file,
CI) once a command asks for it with :func:`report_stages` and has run for :data:`ALIVE_AFTER_S` (so a short or
failing command keeps its one-line error); silent otherwise (library calls, tests, pipes)."""

from __future__ import annotations

import contextlib
import sys
import time

__all__ = ["progress", "report_stages", "stage_lines", "em_bar", "no_progress"]

#: A command reports its stages once it has run this long (seconds): the log of a long run shows it is alive.
ALIVE_AFTER_S = 5.0
_STATE = {"lines": False, "since": 0.0, "quiet": False}


@contextlib.contextmanager
def _changed(**values):
    """:data:`_STATE` with ``values`` within the block, as it was after it."""
    before = dict(_STATE)
    _STATE.update(values)
    try:
        yield
    finally:
        _STATE.update(before)


def report_stages():
    """Within it, :func:`progress` prints one line per stage when stderr is not a terminal (the CLI's long
    commands use it around their work)."""
    return _changed(lines=True, since=time.perf_counter())


def no_progress():
    """Within it, :func:`progress` shows nothing (work done on the side, e.g. enrollment checks' own models)."""
    return _changed(quiet=True)


def stage_lines() -> bool:
    """Whether stages are reported as lines now: asked for by :func:`report_stages`, stderr is not a terminal
    and the command has run for :data:`ALIVE_AFTER_S` seconds."""
    return _lines_wanted() and time.perf_counter() - _STATE["since"] >= ALIVE_AFTER_S


def _lines_wanted() -> bool:
    return _STATE["lines"] and not sys.stderr.isatty()


def progress(iterable=None, *, total=None, desc=None, unit="it", enabled=None, **kwargs):
    """Wrap ``iterable`` in a tqdm bar on stderr when stderr is a TTY (or when ``enabled`` is True).

    With ``enabled=None`` on a redirected stderr within :func:`report_stages`, lines ``speakerid: <desc>: ...``
    instead: once the command has run :data:`ALIVE_AFTER_S` seconds, one when the stage is under way (and per
    :meth:`update` of a manual counter) and one when it ends. Usable as an iterable and as a context manager.
    """
    if _STATE["quiet"]:
        enabled = False
    if enabled is None and _lines_wanted():
        return _Lines(iterable, total, desc or "working", unit)
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:     # (nothing shown: tqdm, 30-50 ms of imports, is not loaded)
        return _Silent(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True,
                **kwargs)


class _Silent:
    """A progress report that shows nothing: iterates, counts and closes like a tqdm bar."""

    def __init__(self, iterable):
        self.iterable, self.n = iterable, 0

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.n += 1

    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        pass


class _Lines:
    """The line-per-stage stand-in for a tqdm bar."""

    def __init__(self, iterable, total, desc: str, unit: str):
        self.iterable, self.desc, self.unit, self.n = iterable, desc, unit, 0
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.start = time.perf_counter()
        self._said = self._done = False

    def _say(self, text: str) -> None:
        print(f"speakerid: {self.desc}: {text}", file=sys.stderr, flush=True)
        self._said = True

    def _progress(self, every_step: bool) -> None:
        if (every_step or not self._said) and stage_lines():
            of = f" of {self.total}" if self.total is not None else ""
            self._say(f"{self.n}{of} {self.unit}(s), {time.perf_counter() - self.start:.1f} s")

    def __iter__(self):
        for item in self.iterable:
            self._progress(every_step=False)
            yield item
            self.n += 1
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        self._progress(every_step=True)

    def close(self) -> None:
        if not self._done:
            self._done = True
            if self._said:
                self._say(f"done, {self.n} {self.unit}(s) in {time.perf_counter() - self.start:.1f} s")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def em_bar(total: int, desc: str, verbose=False):
    """The progress of an EM run over ``total`` iterations: a bar on a terminal, nothing elsewhere and nothing
    when ``verbose`` (its one line per iteration is the report, e.g. in a log)."""
    return progress(total=int(total), desc=desc, unit="iteration", enabled=not verbose and sys.stderr.isatty())
