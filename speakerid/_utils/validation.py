"""Parameter checks shared by every layer: job counts, fitted estimators, short lists of offending items."""

from __future__ import annotations

import os

from speakerid.exceptions import ParameterError


def resolve_jobs(n_jobs) -> int:
    """The number of worker processes ``n_jobs`` means: >= 1 as given, -1 all cores, -2 all but one, ...

    Examples
    --------
    >>> resolve_jobs(3)
    3
    >>> resolve_jobs(-1) == (os.cpu_count() or 1)
    True
    """
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ParameterError(f"n_jobs must be a non-zero integer (-1 = all cores), got {n_jobs!r}")
    cores = os.cpu_count() or 1
    return n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)

