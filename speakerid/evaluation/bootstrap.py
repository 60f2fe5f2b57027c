"""Confidence intervals of verification metrics by resampling speakers, and the paired comparison of two systems.

Trials of one speaker are not independent (they share an enrollment model and a voice), so resampling trials gives
intervals that are too narrow. The *subsets bootstrap* [1]_ resamples groups (speakers) with replacement instead:
every trial of a group drawn ``k`` times counts ``k`` times. The interval is the percentile interval of the
resampled metric [2]_.

The scores are sorted once; each replicate's weighted miss / false-alarm counts at every operating point are
cumulative sums over that order, for a block of replicates at a time, read with the conventions of
:mod:`speakerid.evaluation.metrics` (unit weights give its EER, minDCF and actDCF bit for bit, Cllr and minCllr to
rounding; :mod:`speakerid.evaluation._bootstrap_sweep`). 1000 replicates of 100 000 trials take about a second.

References
----------
.. [1] R. M. Bolle, N. K. Ratha and S. Pankanti, "Error analysis of pattern recognition systems -- the subsets
       bootstrap", Computer Vision and Image Understanding 93(1):1-33, 2004.
.. [2] B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman & Hall, 1993 (ch. 13,
       percentile intervals).
"""

from __future__ import annotations

import numpy as np

from speakerid.evaluation import metrics
from speakerid.evaluation._bootstrap_sweep import Trials, draw, metric_names, prepare, replicate_metrics
from speakerid.evaluation._sweep import check_cost, check_trials, positions
from speakerid.exceptions import ParameterError

__all__ = ["bootstrap_metrics", "figures_with_intervals", "paired_comparison", "check_bootstrap", "speaker_groups", "GROUP_COLUMNS",
           "METHOD_REFERENCES"]

#: The references of the method, in full (reports cite them).
METHOD_REFERENCES = ('R. M. Bolle, N. K. Ratha and S. Pankanti, "Error analysis of pattern recognition systems - the '
                     'subsets bootstrap", Computer Vision and Image Understanding 93(1):1-33, 2004; B. Efron and '
                     'R. J. Tibshirani, An Introduction to the Bootstrap, Chapman & Hall, 1993')

#: The score-file columns resampled when none is named, the first a file has: the enrolled speaker of a protocol's
#: trial list, else the claimed speaker.
GROUP_COLUMNS = ("enroll_speaker", "speaker")

# replicates x trials held in memory at once (32- or 64-bit sums: tens of MB)
_BLOCK_ELEMENTS = 2_000_000
# a replicate without a target or without a non-target trial is drawn again, at most this many times
_MAX_REDRAWS = 100


# ---------------------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------------------

def bootstrap_metrics(scores, labels, groups=None, *, p_targets=(0.01, 0.1), n_boot: int = 1000,
                      confidence: float = 0.95, random_state=0, llr: bool = True) -> dict:
    """Metrics of one score set, each with a bootstrap confidence interval that resamples speakers.

    Parameters
    ----------
    scores : array_like of float, shape (n_trials,)
        Higher means "more likely the claimed speaker"; read as natural-log likelihood ratios by the
        calibration-dependent metrics (``act_dcf``, ``cllr``, ``nontarget_accept``).
    labels : array_like of {0, 1}, shape (n_trials,)
        1 for target trials, 0 for non-target trials.
    groups : array_like, shape (n_trials,), optional
        The resampling unit of each trial, usually its claimed (enrolled) speaker; any hashable values. ``None``
        resamples trials, which understates the uncertainty when a speaker's trials are correlated.
    p_targets : float or sequence of float
        Target priors of ``min_dcf@<p>`` and ``act_dcf@<p>`` (normalised, C_miss = C_fa = 1), each in (0, 1).
    n_boot, confidence : int, float
        Number of bootstrap replicates (>= 1; 1000 or more for 95 % intervals); coverage of the intervals, in (0, 1).
    random_state : None, int or numpy.random.Generator
        Seed of the resampling.
    llr : bool
        Also report the metrics that read the scores as calibrated LLRs: ``act_dcf@<p>`` (cost at the Bayes
        threshold), ``cllr`` and ``nontarget_accept`` (share of non-target trials with score >= 0).

    Returns
    -------
    dict
        For each metric (``eer``, ``min_dcf@<p>``, ``act_dcf@<p>``, ``cllr``, ``min_cllr``, ``nontarget_accept``;
        rates and costs as fractions, ``<p>`` written with ``format(p, "g")``) a dict ``{"value", "low",
        "high"}``: the figure on all trials (as :mod:`speakerid.evaluation.metrics` computes it) and the percentile
        interval. Also ``n_groups``, ``n_target``, ``n_nontarget``, ``n_boot``, ``confidence``, ``resampled``
        (``"groups"`` or ``"trials"``), ``n_redrawn`` (replicates drawn again because they lacked a target or a
        non-target trial) and ``method`` (one sentence naming the method and its references).

    Raises
    ------
    ParameterError
        Scores and labels differ in length, are empty, hold NaN or infinite scores or only one class; ``groups``
        is not one value per trial, misses values or has one group; bad ``p_targets``, ``n_boot``, ``confidence``
        or ``random_state``.

    References
    ----------
    Bolle, Ratha & Pankanti (2004), the subsets bootstrap; Efron & Tibshirani (1993): see the module docstring.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.tile([1, 0, 0, 0], 50)
    >>> scores = rng.normal(size=200) + 2.0 * labels
    >>> result = bootstrap_metrics(scores, labels, np.repeat(np.arange(20), 10), n_boot=200)
    >>> result["eer"]["value"] == metrics.eer(scores, labels)
    True
    >>> result["eer"]["low"] <= result["eer"]["value"] <= result["eer"]["high"], result["n_groups"]
    (True, 20)
    """
    return with_intervals(scores, labels, groups, p_targets=p_targets, n_boot=n_boot, confidence=confidence,
                          random_state=random_state, llr=llr)


def figures_with_intervals(scores, labels, groups, *, llr: bool = False, p_target: float = 0.01,
                           n_boot: int = 1000, random_state=0) -> dict:
    """The usual figures of one score set as a flat table row, each beside its 95 % interval over ``groups``.

    What ``speakerid train`` stores as its development figures and what the benches print.

    Parameters
    ----------
    scores, labels, groups : array_like, shape (n_trials,)
        As :func:`bootstrap_metrics`.
    llr : bool
        The scores are calibrated LLRs: also ``act_dcf`` and ``cllr``.
    p_target : float
        Prior of ``min_dcf`` and ``act_dcf``.
    n_boot : int
    random_state : int

    Returns
    -------
    dict
        ``eer_pct`` (percent, 2 decimals), ``min_dcf``, ``min_cllr`` [, ``act_dcf``, ``cllr``] (4 decimals), each
        with ``<key>_ci`` = ``[low, high]``; ``n_speakers``, ``n_target``, ``n_nontarget``.

    Examples
    --------
    >>> labels = np.tile([1, 0, 0, 0], 50)
    >>> scores = np.random.default_rng(0).normal(size=200) + 2.0 * labels
    >>> row = figures_with_intervals(scores, labels, np.repeat(np.arange(20), 10), n_boot=200)
    >>> row["n_speakers"], row["n_target"], row["eer_pct_ci"][0] <= row["eer_pct"] <= row["eer_pct_ci"][1]
    (20, 50, True)
    """
    b = bootstrap_metrics(scores, labels, groups, p_targets=(p_target,), n_boot=n_boot, random_state=random_state,
                          llr=llr)
    names = {"eer_pct": "eer", "min_dcf": f"min_dcf@{p_target:g}", "min_cllr": "min_cllr"}
    if llr:
        names.update(act_dcf=f"act_dcf@{p_target:g}", cllr="cllr")
    out = {}
    for key, metric in names.items():
        scale, digits = (100.0, 2) if key == "eer_pct" else (1.0, 4)
        out[key] = round(scale * b[metric]["value"], digits)
        out[f"{key}_ci"] = [round(scale * b[metric]["low"], digits), round(scale * b[metric]["high"], digits)]
    return {**out, "n_speakers": int(b["n_groups"]), "n_target": int(b["n_target"]),
            "n_nontarget": int(b["n_nontarget"])}


def with_intervals(scores, labels, groups=None, *, p_targets, n_boot, confidence, random_state, llr,
                   known=None) -> dict:
    """:func:`bootstrap_metrics`, taking the figures on all trials that the caller already has (``known``:
    ``{"cllr": ..., "min_cllr": ...}`` as :func:`speakerid.evaluation.metrics.summary` gives them) instead of
    computing them again: minCllr's PAV is the slowest of them (a second for a million trials)."""
    scores, labels = check_trials(scores, labels)
    group_index, n_groups = _group_index(groups, len(scores))
    p_targets, n_boot, confidence, rng = _check_options(p_targets, n_boot, confidence, random_state)
    trials = prepare(scores, labels, group_index, n_groups, p_targets)
    point = _point_values(scores, labels, trials, p_targets, llr, known or {})
    replicates, n_redrawn = _run(trials, [trials], n_boot, rng, p_targets, llr)
    result = {name: _interval(value, replicates[0][name], confidence) for name, value in point.items()}
    return {**result, **_about(trials, groups is None, n_boot, confidence, n_redrawn)}


def paired_comparison(scores_a, scores_b, labels, groups=None, *, p_targets=(0.01, 0.1), n_boot: int = 1000,
                      confidence: float = 0.95, random_state=0, llr: bool = True) -> dict:
    """Compare two systems scored on the same trials: each metric's difference B - A with its bootstrap interval.

    The same resamples (of speakers, as :func:`bootstrap_metrics`) are applied to both systems, so what the trials
    have in common cancels out of the difference: a paired bootstrap.

    Parameters
    ----------
    scores_a, scores_b : array_like of float, shape (n_trials,)
        The two systems' scores of the same trials, in the same order.
    labels, groups, p_targets, n_boot, confidence, random_state, llr
        As :func:`bootstrap_metrics`.

    Returns
    -------
    dict
        For each metric of :func:`bootstrap_metrics` a dict with ``a`` and ``b`` (each ``{"value", "low",
        "high"}``), ``difference`` (``{"value", "low", "high"}`` of B - A), ``significant`` (the interval of the
        difference excludes 0) and ``better``: ``"a"``, ``"b"`` (every metric is an error rate or a cost: lower
        is better) or ``None`` when the difference is not significant. Also ``n_groups``, ``n_target``,
        ``n_nontarget``, ``n_boot``, ``confidence``, ``resampled``, ``n_redrawn`` and ``method``.

    Raises
    ------
    ParameterError
        As :func:`bootstrap_metrics`, for either system's scores (the message says which).

    References
    ----------
    The paired bootstrap of Bolle, Ratha & Pankanti (2004), percentile intervals (Efron & Tibshirani, 1993).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.tile([1, 0, 0, 0], 100)
    >>> noise = rng.normal(size=400)
    >>> weak, strong = noise + 1.0 * labels, noise + 3.0 * labels
    >>> result = paired_comparison(weak, strong, labels, np.repeat(np.arange(40), 10), n_boot=200)
    >>> result["eer"]["significant"], result["eer"]["better"]
    (True, 'b')
    """
    systems = []
    for name, scores in (("scores_a", scores_a), ("scores_b", scores_b)):
        try:
            systems.append(check_trials(scores, labels))
        except ParameterError as exc:
            raise ParameterError(f"{name}: {exc}") from None
    labels = systems[0][1]
    group_index, n_groups = _group_index(groups, len(labels))
    p_targets, n_boot, confidence, rng = _check_options(p_targets, n_boot, confidence, random_state)
    prepared = [prepare(s, labels, group_index, n_groups, p_targets) for s, _ in systems]
    points = [_point_values(s, labels, t, p_targets, llr, {}) for (s, _), t in zip(systems, prepared)]
    (reps_a, reps_b), n_redrawn = _run(prepared[0], prepared, n_boot, rng, p_targets, llr)
    result = {}
    for name in points[0]:
        difference = _interval(points[1][name] - points[0][name], reps_b[name] - reps_a[name], confidence)
        significant = bool(difference["low"] > 0 or difference["high"] < 0)
        result[name] = {"a": _interval(points[0][name], reps_a[name], confidence),
                        "b": _interval(points[1][name], reps_b[name], confidence),
                        "difference": difference, "significant": significant,
                        "better": None if not significant else ("b" if difference["high"] < 0 else "a")}
    return {**result, **_about(prepared[0], groups is None, n_boot, confidence, n_redrawn)}


# ---------------------------------------------------------------------------------------------------------------
# checks and the result's description
# ---------------------------------------------------------------------------------------------------------------

def _group_index(groups, n_trials: int):
    """``(index of each trial's group (n_trials,), n_groups)``; each trial its own group when ``groups`` is None."""
    if groups is None:
        return np.arange(n_trials), n_trials
    import pandas as pd

    values = np.asarray(groups, dtype=object) if not isinstance(groups, np.ndarray) else groups
    if values.ndim != 1:
        raise ParameterError(f"groups must be a 1-D array (one group per trial), got shape {values.shape}")
    if len(values) != n_trials:
        raise ParameterError(f"groups and scores differ in length: {len(values)} groups, {n_trials} scores")
    index, uniques = pd.factorize(values)
    if (index < 0).any():
        raise ParameterError(f"missing groups (None or NaN) at positions {positions(index < 0)}")
    if len(uniques) < 2:
        raise ParameterError(f"a single group ({uniques[0]!r}) cannot be resampled: give one per speaker, or "
                             "groups=None to resample trials")
    return index.astype(np.int64), len(uniques)


def _check_options(p_targets, n_boot, confidence, random_state):
    try:
        p_list = [float(p) for p in np.atleast_1d(np.asarray(p_targets, dtype=np.float64))]
    except (TypeError, ValueError):
        raise ParameterError(f"p_targets must be numbers in (0, 1), got {p_targets!r}") from None
    if not p_list:
        raise ParameterError("give at least one p_target")
    for p in p_list:
        check_cost(p, 1.0, 1.0)
    p_list = list(dict.fromkeys(p_list))
    n_boot, confidence = check_bootstrap(n_boot, confidence)
    try:
        rng = np.random.default_rng(random_state)
    except (TypeError, ValueError):
        raise ParameterError(f"random_state must be None, an integer >= 0 or a numpy Generator, "
                             f"got {random_state!r}") from None
    return p_list, n_boot, confidence, rng


def check_bootstrap(n_boot, confidence, *, allow_zero: bool = False):
    """``(n_boot, confidence)`` as int and float, or :class:`ParameterError`: a whole number of replicates >= 1
    (>= 0 with ``allow_zero``: no intervals) and a coverage strictly between 0 and 1.

    Examples
    --------
    >>> check_bootstrap(1000, "0.9")
    (1000, 0.9)
    """
    minimum = 0 if allow_zero else 1
    if isinstance(n_boot, (bool, np.bool_)) or not isinstance(n_boot, (int, np.integer)) or n_boot < minimum:
        raise ParameterError(f"n_boot must be a whole number >= {minimum}, got {n_boot!r}")
    try:
        confidence = float(confidence)
    except (TypeError, ValueError):
        confidence = float("nan")
    if not 0.0 < confidence < 1.0:
        raise ParameterError(f"confidence must be strictly between 0 and 1, e.g. 0.95; got {confidence!r}")
    return int(n_boot), confidence


def speaker_groups(frame, usable, group_column=None, where: str = "scores"):
    """What to resample in a score file: ``(groups, column, n_speakers, note)``.

    Parameters
    ----------
    frame : pandas.DataFrame, shape (n_rows, n_columns)
        The score file's rows (:attr:`speakerid.data.trials.ScoreFile.frame`).
    usable : numpy.ndarray of bool, shape (n_rows,)
        The rows evaluated.
    group_column : str, optional
        The column of the speakers; default the first of :data:`GROUP_COLUMNS` the frame has.
    where : str
        How error messages name the file.

    Returns
    -------
    tuple
        ``groups`` (the column's stripped text on the usable rows, shape (n_usable,); None to resample trials:
        no such column, or a single value), ``column``, ``n_speakers`` (distinct values, None without a column)
        and ``note`` (why trials are resampled, or None).

    Raises
    ------
    ParameterError
        ``group_column`` is not a column, or a usable row has an empty one.
    """
    if group_column is not None and group_column not in frame.columns:
        raise ParameterError(f"{where}: no column {group_column!r} to group the trials by (the file has "
                             f"{', '.join(map(str, frame.columns))})")
    column = group_column or next((c for c in GROUP_COLUMNS if c in frame.columns), None)
    if column is None:
        return None, None, None, "the score file has no speaker column: trials were resampled as if independent"
    text = frame[column].astype(str).str.strip().to_numpy(dtype=object)
    text[frame[column].isna().to_numpy()] = ""
    text = text[usable]
    if (text == "").any():
        raise ParameterError(f"{where}: {int((text == '').sum())} scored row(s) have an empty {column!r}: every "
                             "trial needs its speaker to resample speakers (or give another group column)")
    n_speakers = len(set(text))
    if n_speakers < 2:
        return None, column, n_speakers, (f"every trial has the same {column} ({text[0]!r}): trials were "
                                          "resampled as if independent")
    return text, column, n_speakers, None


def _about(trials, by_trials: bool, n_boot: int, confidence: float, n_redrawn: int) -> dict:
    n_groups = trials.tar_cost.shape[0]
    level = f"{100 * confidence:g} %"
    efron = f"{level} percentile intervals (Efron & Tibshirani, An Introduction to the Bootstrap, 1993)"
    if by_trials:
        method = (f"trial bootstrap: {n_boot} resamples of the {n_groups} trials with replacement; {efron}. No "
                  "speakers given, so trials were taken as independent: the intervals are too narrow when a "
                  "speaker's trials are correlated (resample speakers: Bolle, Ratha & Pankanti, CVIU 93(1), 2004)")
    else:
        method = (f"subsets bootstrap: {n_boot} resamples of the {n_groups} speakers with replacement, each trial "
                  f"weighted by how often its speaker was drawn (Bolle, Ratha & Pankanti, CVIU 93(1), 2004); {efron}")
    return {"n_groups": n_groups, "n_target": len(trials.tar_group), "n_nontarget": len(trials.non_group),
            "n_boot": n_boot, "confidence": confidence, "resampled": "trials" if by_trials else "groups",
            "n_redrawn": n_redrawn, "method": method}


def _interval(value, replicates: np.ndarray, confidence: float) -> dict:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return {"value": float(value), "low": float(low), "high": float(high)}


def _point_values(scores, labels, trials: Trials, p_targets, llr: bool, known: dict) -> dict:
    """The figures on all trials: the weighted sweep with every weight 1 (which is metrics' arithmetic exactly),
    and metrics' own Cllr and minCllr (summed in its order)."""
    values = replicate_metrics(trials, np.ones((1, len(trials.tar_cost)), np.int64), p_targets, llr,
                               with_min_cllr=False)
    values = {name: float(v[0]) for name, v in values.items()}
    if llr:
        values["cllr"] = known["cllr"] if "cllr" in known else metrics.cllr(scores, labels)
    values["min_cllr"] = known["min_cllr"] if "min_cllr" in known else metrics.min_cllr(scores, labels)
    return {name: values[name] for name in metric_names(p_targets, llr)}


# ---------------------------------------------------------------------------------------------------------------
# replicates
# ---------------------------------------------------------------------------------------------------------------

def _run(reference: Trials, systems, n_boot: int, rng, p_targets, llr: bool):
    """Draw ``n_boot`` resamples of the groups (redrawing those without both classes) and evaluate every system on
    each: ``([{metric: (n_boot,) values} per system], n_redrawn)``."""
    n_groups = len(reference.tar_cost)
    tar_per_group = np.bincount(reference.tar_group, minlength=n_groups)
    non_per_group = np.bincount(reference.non_group, minlength=n_groups)
    n_trials = len(reference.tar_group) + len(reference.non_group)
    block = max(1, min(n_boot, _BLOCK_ELEMENTS // max(n_groups, n_trials)))
    values = [{name: [] for name in metric_names(p_targets, llr)} for _ in systems]
    n_redrawn, done = 0, 0
    while done < n_boot:
        size = min(block, n_boot - done)
        counts = draw(rng, size, n_groups)
        for _ in range(_MAX_REDRAWS):
            bad = (counts @ tar_per_group == 0) | (counts @ non_per_group == 0)
            if not bad.any():
                break
            n_redrawn += int(bad.sum())
            counts[bad] = draw(rng, int(bad.sum()), n_groups)
        else:
            raise ParameterError(f"could not draw a resample with both target and non-target trials in "
                                 f"{_MAX_REDRAWS} tries: too few groups hold one of the classes")
        for trials, store in zip(systems, values):
            for name, block_values in replicate_metrics(trials, counts, p_targets, llr).items():
                store[name].append(block_values)
        done += size
    return [{name: np.concatenate(v) for name, v in store.items()} for store in values], n_redrawn


