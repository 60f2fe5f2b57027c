"""One BLAS thread for the computations whose numbers must not depend on where they run.

A matrix product's rounding follows how BLAS splits it over threads, so the same features, statistics or scores
would differ in the last bits between this process (BLAS on every core), a joblib or Dask worker (BLAS started
single-threaded) and a process whose thread setting another library changed. The front end, the chunked GMM
passes and the scoring workers therefore run under :func:`one_blas_thread`; their parallelism comes from
processes and threads over files and chunks instead.
"""

from __future__ import annotations

import contextlib
import sys
import threading

from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread"]

_LOCK = threading.Lock()
_STATE = {"depth": 0, "limiter": None, "controller": None, "modules": -1}


def _controller() -> ThreadpoolController:
    """One :class:`threadpoolctl.ThreadpoolController` (finding the BLAS libraries scans every loaded shared
    library: 3 ms a call in a process with scipy loaded), found again only when modules were imported since (they
    may have loaded another BLAS). Called with ``_LOCK`` held."""
    if _STATE["controller"] is None or _STATE["modules"] != len(sys.modules):
        _STATE["controller"], _STATE["modules"] = ThreadpoolController(), len(sys.modules)
    return _STATE["controller"]


@contextlib.contextmanager
def one_blas_thread():
    """Cap BLAS at one thread within the block; safe when several threads (a web server's) use it at once.

    The limit is a process-wide setting: overlapping uses from different threads could restore it out of order,
    so the first entrant sets the cap and the last one out restores the original.
    """
    with _LOCK:
        if _STATE["depth"] == 0:
            _STATE["limiter"] = _controller().limit(limits=1, user_api="blas")
        _STATE["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["depth"] -= 1
            if _STATE["depth"] == 0:
                _STATE["limiter"].restore_original_limits()
                _STATE["limiter"] = None
