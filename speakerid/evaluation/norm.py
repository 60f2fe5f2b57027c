"""Score normalisation with impostor cohorts: Z-norm, T-norm, ZT-norm, S-norm and their adaptive (top-N) forms.

Everything works on plain arrays of scores that were computed elsewhere (see :mod:`speakerid.scoring.batch`):

==================  ==================================  ==================================================
array               shape                               holds
==================  ==================================  ==================================================
``scores``          (n_trials,)                         the raw trial scores
``model_cohort``    (n_trials, n_cohort_utts)           the trial's claimed model vs each cohort utterance
``test_cohort``     (n_trials, n_cohort_models)         each cohort model vs the trial's test utterance
``cohort_cohort``   (n_cohort_models, n_cohort_utts)    cohort models vs cohort utterances (ZT-norm only)
==================  ==================================  ==================================================

Z-norm [1]_ centres and scales a score by the claimed model's impostor statistics, T-norm [2]_ by the test
utterance's, ZT-norm applies T-norm to Z-normalised scores, S-norm [3]_ averages Z- and T-norm. With ``top_n``
the statistics are taken over the ``top_n`` highest cohort scores of each row only: adaptive normalisation,
e.g. AS-norm [4]_, [5]_.

:func:`leave_out_tnorm` is T-norm whose cohort is the *other enrolled speakers*: a test file's score for the
claimed speaker is centred and scaled by its scores against every enrolled speaker but the claimed one. It needs
no extra data, and it helps most when impostors are likely to be enrolled speakers themselves (a closed group of
users sharing a device), since the true speaker of an impostor trial is then in the cohort
(see :mod:`speakerid.scoring.batch`, ``norm="snorm+enrolled"``).

Standard deviations are population ones (``ddof=0``) floored at :data:`STD_FLOOR`, so a constant cohort row
gives large but finite normalised scores instead of a division by zero.

References
----------
.. [1] K.-P. Li and J. E. Porter, "Normalizations and selection of speech segments for speaker recognition
       scoring", ICASSP 1988 (Z-norm).
.. [2] R. Auckenthaler, M. Carey and H. Lloyd-Thomas, "Score normalization for text-independent speaker
       verification systems", Digital Signal Processing 10(1-3):42-54, 2000 (T-norm).
.. [3] P. Kenny, "Bayesian speaker verification with heavy-tailed priors", Odyssey 2010 (symmetric S-norm).
.. [4] S. Cumani, P. D. Batzu, D. Colibro, C. Vair, P. Laface and V. Vasilakakis, "Comparison of speaker
       recognition approaches for real applications", Interspeech 2011 (adaptive, top-N cohort selection).
.. [5] P. Matějka, O. Novotný, O. Plchot, L. Burget, M. Diez Sánchez and J. Černocký, "Analysis of score
       normalization in multilingual speaker recognition", Interspeech 2017 (AS-norm).
"""

from __future__ import annotations

import warnings

import numpy as np

from speakerid.exceptions import ParameterError

#: Cohort normalisations accepted by ``norm=`` (each may be followed by ``+enrolled``).
NORM_METHODS = ("znorm", "tnorm", "ztnorm", "snorm")
#: ``norm`` suffix (or whole value) for T-norm over the other enrolled speakers.
ENROLLED = "enrolled"
#: At most this many enrolled speakers (a seeded draw) form the enrolled cohort.
ENROLLED_COHORT_MAX = 200
#: ``norm="auto"`` adds the enrolled-speaker T-norm when at least this many speakers are enrolled.
AUTO_ENROLLED_MIN = 6

__all__ = ["METHODS", "STD_FLOOR", "normalize_scores", "cohort_stats", "znorm", "tnorm", "ztnorm", "snorm",
           "leave_out_tnorm", "open_set_threshold", "identification_threshold"]

#: Normalisation methods understood by :func:`normalize_scores`.
METHODS = ("none", "znorm", "tnorm", "ztnorm", "snorm")
#: Smallest standard deviation a cohort row may have; a constant row gets this instead of 0.
STD_FLOOR = 1e-6

# which cohort arrays each method needs
_NEEDS = {
    "none": (),
    "znorm": ("model_cohort",),
    "tnorm": ("test_cohort",),
    "snorm": ("model_cohort", "test_cohort"),
    "ztnorm": ("model_cohort", "test_cohort", "cohort_cohort"),
}


# ---------------------------------------------------------------------------------------------------------------
# validation at the public edge
# ---------------------------------------------------------------------------------------------------------------

def _as_finite(values, name: str, ndim: int) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be numbers (could not convert them to floats)") from None
    if array.ndim != ndim:
        what = "a 1-D array (one score per trial)" if ndim == 1 else "a 2-D array (rows x cohort members)"
        raise ParameterError(f"{name} must be {what}, got shape {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(array[where]) else "infinite"
        raise ParameterError(f"{name} holds {int(bad.sum())} non-finite value(s), e.g. {kind} at index "
                             f"{where if ndim > 1 else where[0]}")
    return array


def _check_cohort(cohort, name: str, n_rows: int | None, row_meaning: str) -> np.ndarray:
    cohort = _as_finite(cohort, name, 2)
    if n_rows is not None and cohort.shape[0] != n_rows:
        raise ParameterError(f"{name} has shape {cohort.shape} but needs one row per {row_meaning} "
                             f"({n_rows} rows)")
    if cohort.shape[1] == 0:
        raise ParameterError(f"{name} has shape {cohort.shape}: the cohort is empty")
    return cohort


def _check_top_n(top_n, cohort_size: int, name: str) -> int | None:
    """``None`` (use the whole cohort) or a valid ``top_n``; too large is clipped with a warning."""
    if top_n is None:
        return None
    if isinstance(top_n, bool) or not isinstance(top_n, (int, np.integer)):
        raise ParameterError(f"top_n must be a positive integer or None, got {top_n!r}")
    top_n = int(top_n)
    if top_n < 1:
        raise ParameterError(f"top_n must be >= 1, got {top_n}")
    if top_n > cohort_size:
        warnings.warn(f"top_n={top_n} exceeds the {cohort_size} columns of {name}; using all of them",
                      UserWarning, stacklevel=3)
        return cohort_size
    return top_n


# ---------------------------------------------------------------------------------------------------------------
# computation (arrays already checked)
# ---------------------------------------------------------------------------------------------------------------

def _stats(cohort: np.ndarray, top_n: int | None, std_floor: float = STD_FLOOR):
    if top_n is not None and top_n < cohort.shape[1]:
        kth = cohort.shape[1] - top_n
        cohort = np.partition(cohort, kth, axis=1)[:, kth:]
    return cohort.mean(axis=1), np.maximum(cohort.std(axis=1), std_floor)


def _normalize(scores, cohort, top_n):
    mean, std = _stats(cohort, top_n)
    return (scores - mean) / std


def _ztnorm(scores, model_cohort, test_cohort, cohort_cohort, top_n_z, top_n_t):
    z_scores = _normalize(scores, model_cohort, top_n_z)
    # cohort model k's scores on each test utterance, Z-normalised with k's own impostor statistics
    cc_mean, cc_std = _stats(cohort_cohort, top_n_z)
    test_cohort_z = (test_cohort - cc_mean) / cc_std
    return _normalize(z_scores, test_cohort_z, top_n_t)


# ---------------------------------------------------------------------------------------------------------------
# public building blocks
# ---------------------------------------------------------------------------------------------------------------

def cohort_stats(cohort_scores, top_n: int | None = None, *, std_floor: float = STD_FLOOR):
    """Mean and standard deviation of each row of cohort scores, optionally over its ``top_n`` highest only.

    Parameters
    ----------
    cohort_scores : array_like, shape (n_rows, n_cohort)
        One row of cohort scores per model (Z-norm) or per test utterance (T-norm).
    top_n : int, optional
        Use only the ``top_n`` highest scores of each row (adaptive normalisation). Must be >= 1; larger than
        ``n_cohort`` is clipped to ``n_cohort`` with a :class:`UserWarning`.
    std_floor : float
        Standard deviations (population, ``ddof=0``) below this are raised to it (default :data:`STD_FLOOR`).

    Returns
    -------
    mean, std : numpy.ndarray, shape (n_rows,)

    Examples
    --------
    >>> mean, std = cohort_stats([[1.0, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]])
    >>> mean.tolist(), std.tolist()
    ([3.0, 5.0], [1.8708286933869707, 1e-06])
    >>> mean, std = cohort_stats([[1.0, 2.0, 3.0, 6.0]], top_n=2)   # statistics of 3 and 6
    >>> mean.tolist(), std.tolist()
    ([4.5], [1.5])
    """
    cohort = _check_cohort(cohort_scores, "cohort_scores", None, "")
    std_floor = float(std_floor)
    if not std_floor > 0:
        raise ParameterError(f"std_floor must be positive, got {std_floor}")
    return _stats(cohort, _check_top_n(top_n, cohort.shape[1], "cohort_scores"), std_floor)


def znorm(scores, model_cohort, top_n: int | None = None) -> np.ndarray:
    """Z-norm: ``(s - mean_z) / std_z`` with the claimed model's scores on the cohort utterances [1]_.

    Parameters
    ----------
    scores : array_like, shape (n_trials,)
    model_cohort : array_like, shape (n_trials, n_cohort_utts)
        Row ``i``: trial ``i``'s claimed model scored against each cohort utterance.
    top_n : int, optional
        Adaptive Z-norm: statistics over each row's ``top_n`` highest scores (see :func:`cohort_stats`).

    Returns
    -------
    numpy.ndarray of float64, shape (n_trials,)

    Examples
    --------
    >>> znorm([3.0, 0.0], [[0.0, 2.0], [-1.0, -1.0]]).tolist()     # the constant row's std is floored
    [2.0, 1000000.0]
    """
    scores = _as_finite(scores, "scores", 1)
    model_cohort = _check_cohort(model_cohort, "model_cohort", len(scores), "trial")
    return _normalize(scores, model_cohort, _check_top_n(top_n, model_cohort.shape[1], "model_cohort"))


def tnorm(scores, test_cohort, top_n: int | None = None) -> np.ndarray:
    """T-norm: ``(s - mean_t) / std_t`` with the cohort models' scores on the trial's test utterance [2]_.

    Parameters
    ----------
    scores : array_like, shape (n_trials,)
    test_cohort : array_like, shape (n_trials, n_cohort_models)
        Row ``i``: each cohort model scored against trial ``i``'s test utterance.
    top_n : int, optional
        Adaptive T-norm (see :func:`cohort_stats`).

    Returns
    -------
    numpy.ndarray of float64, shape (n_trials,)

    Examples
    --------
    >>> tnorm([1.0], [[-1.0, 0.0, 1.0, 2.0]], top_n=2).tolist()    # mean 1.5, std 0.5 of the top two
    [-1.0]
    """
    scores = _as_finite(scores, "scores", 1)
    test_cohort = _check_cohort(test_cohort, "test_cohort", len(scores), "trial")
    return _normalize(scores, test_cohort, _check_top_n(top_n, test_cohort.shape[1], "test_cohort"))


def leave_out_tnorm(scores, cohort_scores, own) -> np.ndarray:
    """T-norm of one test file's trial scores by its scores against the enrolled speakers, each trial's own
    claimed speaker left out of its cohort.

    Parameters
    ----------
    scores : array_like, shape (n_trials,)
        The test file's scores for its claimed speakers.
    cohort_scores : array_like, shape (n_cohort,)
        The same file's scores (normalised the same way) against the enrolled cohort speakers.
    own : array_like of int, shape (n_trials,)
        Index in ``cohort_scores`` of each trial's claimed speaker, or -1 when it is not in the cohort.

    Returns
    -------
    numpy.ndarray of float64, shape (n_trials,)
        ``(s - mean) / std`` over the cohort without the trial's own speaker (population std, floored at
        :data:`STD_FLOOR`).

    Examples
    --------
    Scores against speakers a, b, c, d; the trial claims b (index 1), so mean and std are of a, c, d:

    >>> leave_out_tnorm([3.0], [1.0, 3.0, 2.0, 0.0], [1]).tolist()     # (3 - 1) / std([1, 2, 0])
    [2.449489742783178]
    """
    scores = _as_finite(scores, "scores", 1)
    cohort_scores = _as_finite(cohort_scores, "cohort_scores", 1)
    own = np.asarray(own, dtype=np.int64).reshape(-1)
    if len(own) != len(scores) or ((own < -1) | (own >= len(cohort_scores))).any():
        raise ParameterError(f"own must hold one index in [-1, {len(cohort_scores)}) per trial")
    inside = own >= 0
    n = len(cohort_scores) - inside
    if (n < 2).any():
        raise ParameterError("leave-out T-norm needs at least 2 cohort scores besides the claimed speaker's")
    shift = cohort_scores.mean()          # centred sums: no cancellation for large scores with a small spread
    centred = cohort_scores - shift
    left_out = np.where(inside, centred[np.maximum(own, 0)], 0.0)
    mean = (centred.sum() - left_out) / n
    var = ((centred ** 2).sum() - left_out ** 2) / n - mean ** 2
    std = np.maximum(np.sqrt(np.maximum(var, 0.0)), STD_FLOOR)   # rounding may leave var a hair below 0
    return (scores - shift - mean) / std


def snorm(scores, model_cohort, test_cohort, top_n: int | None = None) -> np.ndarray:
    """Symmetric S-norm: ``((s - mean_z) / std_z + (s - mean_t) / std_t) / 2`` [3]_; AS-norm with ``top_n`` [5]_.

    Arrays as in :func:`znorm` and :func:`tnorm`.

    Examples
    --------
    >>> snorm([3.0], [[0.0, 2.0]], [[1.0, 3.0]]).tolist()           # (2 + 1) / 2
    [1.5]
    """
    scores = _as_finite(scores, "scores", 1)
    model_cohort = _check_cohort(model_cohort, "model_cohort", len(scores), "trial")
    test_cohort = _check_cohort(test_cohort, "test_cohort", len(scores), "trial")
    top_n_z = _check_top_n(top_n, model_cohort.shape[1], "model_cohort")
    top_n_t = _check_top_n(top_n, test_cohort.shape[1], "test_cohort")
    return 0.5 * (_normalize(scores, model_cohort, top_n_z) + _normalize(scores, test_cohort, top_n_t))


def ztnorm(scores, model_cohort, test_cohort, cohort_cohort, top_n: int | None = None) -> np.ndarray:
    """ZT-norm: T-norm applied to Z-normalised scores.

    The trial score is Z-normalised with its model's statistics (a row of ``model_cohort``); the cohort models'
    scores on the test utterance (a row of ``test_cohort``) are Z-normalised with each cohort model's own
    statistics (the rows of ``cohort_cohort``); then the Z-normalised trial score is T-normalised with the
    statistics of those Z-normalised cohort scores. ``top_n``, when given, selects the highest scores in every
    statistic (the Z-norm ones and the T-norm one).

    Parameters
    ----------
    scores : array_like, shape (n_trials,)
    model_cohort : array_like, shape (n_trials, n_cohort_utts)
    test_cohort : array_like, shape (n_trials, n_cohort_models)
    cohort_cohort : array_like, shape (n_cohort_models, n_cohort_utts)
        Cohort model ``k`` scored against each cohort utterance (the same utterances as ``model_cohort``).
    top_n : int, optional

    Examples
    --------
    >>> # the model's cohort stats are (0, 1): the score stays 2; the cohort models' Z-normed scores are 0 and 2
    >>> ztnorm([2.0], [[-1.0, 1.0]], [[1.0, 3.0]], [[0.0, 2.0], [0.0, 2.0]]).tolist()
    [1.0]
    """
    scores = _as_finite(scores, "scores", 1)
    model_cohort = _check_cohort(model_cohort, "model_cohort", len(scores), "trial")
    test_cohort = _check_cohort(test_cohort, "test_cohort", len(scores), "trial")
    cohort_cohort = _check_cohort(cohort_cohort, "cohort_cohort", test_cohort.shape[1],
                                  "cohort model (a column of test_cohort)")
    if cohort_cohort.shape[1] != model_cohort.shape[1]:
        raise ParameterError(f"cohort_cohort has shape {cohort_cohort.shape} but model_cohort has shape "
                             f"{model_cohort.shape}: both need one column per cohort utterance "
                             f"(cohort_cohort is n_cohort_models x n_cohort_utts)")
    top_n_z = _check_top_n(top_n, model_cohort.shape[1], "model_cohort")
    top_n_t = _check_top_n(top_n, test_cohort.shape[1], "test_cohort")
    return _ztnorm(scores, model_cohort, test_cohort, cohort_cohort, top_n_z, top_n_t)


# ---------------------------------------------------------------------------------------------------------------
# one entry point
# ---------------------------------------------------------------------------------------------------------------

def normalize_scores(scores, method: str, *, model_cohort=None, test_cohort=None, cohort_cohort=None,
                     top_n: int | None = None) -> np.ndarray:
    """Normalise trial scores with one of :data:`METHODS`.

    Parameters
    ----------
    scores : array_like, shape (n_trials,)
        Raw trial scores.
    method : {"none", "znorm", "tnorm", "ztnorm", "snorm"}
        Case and ``-``/``_`` are ignored (``"S-norm"`` is ``"snorm"``). ``"none"`` (or ``None``) returns the
        scores as a float64 copy.
    model_cohort : array_like, shape (n_trials, n_cohort_utts), optional
        Needed by znorm, snorm and ztnorm.
    test_cohort : array_like, shape (n_trials, n_cohort_models), optional
        Needed by tnorm, snorm and ztnorm.
    cohort_cohort : array_like, shape (n_cohort_models, n_cohort_utts), optional
        Needed by ztnorm.
    top_n : int, optional
        Adaptive variant (e.g. AS-norm with ``"snorm"``): every cohort statistic uses only the ``top_n`` highest
        scores of its row. Must be >= 1; a ``top_n`` above a cohort's size is clipped with a warning. Equal to
        the cohort size, it gives the non-adaptive result.

    Returns
    -------
    numpy.ndarray of float64, shape (n_trials,)

    Raises
    ------
    ParameterError
        Unknown method; a cohort the method needs is missing; an array has the wrong shape (the message gives
        the shapes) or holds NaN/Inf; bad ``top_n``. Arrays the method does not need are ignored.

    Examples
    --------
    >>> normalize_scores([3.0], "znorm", model_cohort=[[0.0, 2.0]]).tolist()
    [2.0]
    >>> normalize_scores([3.0], "S-norm", model_cohort=[[0.0, 2.0]], test_cohort=[[1.0, 3.0]]).tolist()
    [1.5]
    """
    key = "none" if method is None else str(method).lower().replace("-", "").replace("_", "")
    if key not in _NEEDS:
        raise ParameterError(f"unknown score normalisation {method!r}; choose one of {', '.join(METHODS)}")
    given = {"model_cohort": model_cohort, "test_cohort": test_cohort, "cohort_cohort": cohort_cohort}
    missing = [name for name in _NEEDS[key] if given[name] is None]
    if missing:
        raise ParameterError(f"{key} needs {' and '.join(missing)}")
    if key == "none":
        if top_n is not None:
            _check_top_n(top_n, np.iinfo(np.int64).max, "")
        return _as_finite(scores, "scores", 1).copy()
    if key == "znorm":
        return znorm(scores, model_cohort, top_n)
    if key == "tnorm":
        return tnorm(scores, test_cohort, top_n)
    if key == "snorm":
        return snorm(scores, model_cohort, test_cohort, top_n)
    return ztnorm(scores, model_cohort, test_cohort, cohort_cohort, top_n)


def open_set_threshold(threshold: float, n_enrolled: int) -> float:
    """The threshold on normalised scores at which the best of ``n_enrolled`` impostor scores passes as often as one
    impostor score passes ``threshold``.

    Open-set identification accepts its top candidate when that score passes: a voice nobody enrolled is falsely
    identified when *any* of the N scores does, so at a fixed threshold the false-identification rate grows with
    N (1 - (1 - a)^N for a per-trial false-alarm rate a). Normalised impostor scores (Z-, T- or S-norm: about
    standard normal) give ``Q^-1(1 - (1 - Q(t))^(1/N))``, with Q the standard normal tail: the Sidak correction
    (Z. Sidak, "Rectangular confidence regions for the means of multivariate normal distributions", JASA 62,
    1967), which keeps the false-identification rate of independent impostor scores at a.

    Parameters
    ----------
    threshold : float
        The verification threshold on the normalised scale (e.g. 2.0: a = 2.3 %).
    n_enrolled : int
        N >= 1; N = 1 returns ``threshold``.

    Returns
    -------
    float
        The open-set threshold (2.0 -> 2.83, 3.50, 4.07 for N = 10, 100, 1000).

    Examples
    --------
    >>> round(open_set_threshold(2.0, 100), 2)
    3.5
    """
    from scipy.stats import norm

    n = int(n_enrolled)
    if n < 1:
        raise ParameterError(f"n_enrolled must be >= 1, got {n_enrolled!r}")
    if n == 1 or not np.isfinite(threshold):
        return float(threshold)
    alpha = float(norm.sf(threshold))
    return float(norm.isf(-np.expm1(np.log1p(-alpha) / n)))


def identification_threshold(threshold: float, source: str, scale: str, n_enrolled: int) -> tuple[float, str]:
    """``(threshold, source)`` of an open-set decision among ``n_enrolled`` speakers from a verification threshold
    and its source: raised by :func:`open_set_threshold` on a normalised ``scale``; on raw scores (``"none"``) as
    it is, since nothing says how impostor scores spread, and on calibrated LLRs (``"llr"``) too."""
    if scale in ("none", "llr") or n_enrolled <= 1:        # raw scores; calibrated LLRs (decided over N + 1)
        return float(threshold), source
    return open_set_threshold(threshold, n_enrolled), f"{source}; raised for {n_enrolled} enrolled speakers (Sidak)"
