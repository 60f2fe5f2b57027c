"""Parameter checks shared by every layer: job counts, fitted estimators, short lists of offending items."""

from __future__ import annotations

import os

import numpy as np

from speakerid.exceptions import NotFittedError, ParameterError


def resolve_jobs(n_jobs) -> int:
    """The number of workers (processes or threads) ``n_jobs`` means: the one rule of the package.

    ``None`` means 1 (joblib's and scikit-learn's convention), an integer >= 1 is taken as given, -1 means all
    cores, -2 all but one, and so on (never fewer than 1).

    Raises
    ------
    ParameterError
        For 0, a bool, or anything but None and an integer.

    Examples
    --------
    >>> resolve_jobs(3), resolve_jobs(None)
    (3, 1)
    >>> resolve_jobs(-1) == (os.cpu_count() or 1)
    True
    """
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, (bool, np.bool_)) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise ParameterError(f"n_jobs must be None, -1 (all cores) or a non-zero integer, got {n_jobs!r}")
    cores = os.cpu_count() or 1
    return int(n_jobs) if n_jobs > 0 else max(1, cores + 1 + int(n_jobs))


def check_is_fitted(estimator, attributes, hint: str = "call fit() first") -> None:
    """Raise :class:`~speakerid.exceptions.NotFittedError` unless every learned attribute is set (not None).

    The one fitted check of the package (scikit-learn's convention: learned state ends in ``_``).

    Examples
    --------
    >>> class Model:
    ...     means_ = None
    >>> check_is_fitted(Model(), ["means_"])
    Traceback (most recent call last):
    ...
    speakerid.exceptions.NotFittedError: this Model is not fitted yet: call fit() first
    """
    names = [attributes] if isinstance(attributes, str) else list(attributes)
    if any(getattr(estimator, name, None) is None for name in names):
        raise NotFittedError(f"this {type(estimator).__name__} is not fitted yet: {hint}")


def shorten(items, limit: int = 10, sep: str = ", ") -> str:
    """``items`` joined by ``sep``, the first ``limit`` of them and "(+N more)": how errors list offenders.

    Examples
    --------
    >>> shorten([1, 2, 3, 4], limit=2)
    '1, 2 (+2 more)'
    """
    items = [str(i) for i in items]
    text = sep.join(items[:limit])
    return text + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def check_random_state(seed) -> np.random.RandomState:
    """A :class:`numpy.random.RandomState` from ``None`` (numpy's global one), an int, or a RandomState (itself);
    scikit-learn's convention, without importing scikit-learn.

    Examples
    --------
    >>> check_random_state(0).randint(10) == np.random.RandomState(0).randint(10)
    True
    """
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, np.random.RandomState):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.RandomState(int(seed))
    raise ParameterError(f"random_state must be None, an int or a numpy RandomState, got {seed!r}")


def finite_threshold(value, allow_infinite: bool = False) -> float:
    """A threshold as float; NaN (which rejects every claim) is refused, ±inf only where asked for."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"threshold must be a number, got {value!r}") from None
    if np.isnan(value) or (not allow_infinite and not np.isfinite(value)):
        raise ParameterError(f"threshold must be {'a number' if allow_infinite else 'finite'}, got {value}")
    return value
