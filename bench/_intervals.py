"""The benches' accuracy figures with their 95 % interval and their trial and speaker counts: the project rule is
that a figure without its interval and trial count is not a result.

One place for what every bench reports: :func:`figures` (EER %, minDCF(0.01) and minCllr, plus actDCF(0.01) and
Cllr when the scores are calibrated LLRs, each with the interval of a bootstrap that resamples *speakers*,
:func:`speakerid.evaluation.bootstrap.bootstrap_metrics`), :func:`groups_of` (the speaker of each trial),
:func:`fmt` / :func:`counts` / :func:`line` (the text of a table cell). Keys are those the benches already wrote
(``eer_pct``, ``min_dcf``, ...), each interval beside its figure as ``<key>_ci`` = ``[low, high]``: the row of
:func:`speakerid.evaluation.bootstrap.figures_with_intervals`, which the development figures of ``speakerid train``
are made of too.

>>> import numpy as np
>>> labels = np.tile([1, 0, 0, 0], 50)
>>> scores = np.random.default_rng(0).normal(size=200) + 2.0 * labels
>>> fig = figures(scores, labels, np.repeat(np.arange(20), 10), n_boot=200)
>>> fig["n_speakers"], fig["n_target"], fig["n_nontarget"], fig["eer_pct_ci"][0] <= fig["eer_pct"]
(20, 50, 150, True)
"""

from __future__ import annotations

import numpy as np

# GROUP_COLUMNS: the column naming the resampled speaker, the first one present: the enrolled speaker of a protocol
# built by speakerid.evaluation.protocols.build_protocol (its `speaker` is the model id when a speaker has several
# enrollment sets), else the claimed speaker.
from speakerid.evaluation.bootstrap import GROUP_COLUMNS, figures_with_intervals

#: Bootstrap replicates and seed of every interval (1000: the usual count for 95 % percentile intervals).
N_BOOT = 1000
SEED = 0
P_TARGET = 0.01


def groups_of(trials) -> np.ndarray:
    """The speaker each trial's figures are resampled by: ``enroll_speaker`` when the list has it, else ``speaker``
    (the claimed speaker), as text, shape (n_trials,)."""
    column = next(c for c in GROUP_COLUMNS if c in trials.columns)
    return trials[column].astype(str).to_numpy()


def figures(scores, labels, groups, llr: bool = False, n_boot: int = N_BOOT) -> dict:
    """EER %, minDCF(P_target = 0.01) and minCllr (and with ``llr`` actDCF(0.01) and Cllr) of one score set, each
    with its 95 % interval from a bootstrap over ``groups`` (speakers), and the counts they rest on.

    Parameters
    ----------
    scores : array_like of float, shape (n_trials,)
        Trials whose score is NaN or infinite (not scored) are left out and counted in ``n_unscored``.
    labels : array_like of {0, 1}, shape (n_trials,)
    groups : array_like, shape (n_trials,)
        The claimed (enrolled) speaker of each trial (:func:`groups_of`).
    llr : bool
        The scores are calibrated natural-log likelihood ratios: also actDCF and Cllr.
    n_boot : int

    Returns
    -------
    dict
        ``eer_pct`` (percent), ``min_dcf``, ``min_cllr`` [, ``act_dcf``, ``cllr``], each with ``<key>_ci`` =
        ``[low, high]``; ``n_speakers``, ``n_target``, ``n_nontarget``, ``n_trials``, ``n_unscored``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels, groups = np.asarray(labels).astype(int), np.asarray(groups, dtype=object)
    ok = np.isfinite(scores)
    row = figures_with_intervals(scores[ok], labels[ok], groups[ok], llr=llr, p_target=P_TARGET, n_boot=n_boot,
                                 random_state=SEED)
    return {**row, "n_trials": row["n_target"] + row["n_nontarget"], "n_unscored": int((~ok).sum())}


def count_trials(labels, groups) -> dict:
    """``n_speakers``, ``n_target``, ``n_nontarget`` of a trial list without any scores (for a header line).

    >>> count_trials([1, 0, 0, 1], ["a", "a", "b", "b"])
    {'n_speakers': 2, 'n_target': 2, 'n_nontarget': 2}
    """
    labels = np.asarray(labels).astype(int)
    return {"n_speakers": len(set(np.asarray(groups, dtype=object).tolist())), "n_target": int(labels.sum()),
            "n_nontarget": int((labels == 0).sum())}


def fmt(fig: dict, key: str = "eer_pct", digits: int | None = None) -> str:
    """``"2.86 [2.02, 3.56]"``: a figure and its interval (2 decimals for ``eer_pct``, 3 for the others).

    >>> fmt({"eer_pct": 2.857, "eer_pct_ci": [2.02, 3.564]})
    '2.86 [2.02, 3.56]'
    """
    digits = (2 if key.endswith("_pct") else 3) if digits is None else digits
    low, high = fig[f"{key}_ci"]
    return f"{fig[key]:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def counts(fig: dict) -> str:
    """``"70 tar / 630 non, 10 spk"``: what a figure rests on (and the trials left unscored, if any).

    >>> counts({"n_target": 70, "n_nontarget": 630, "n_speakers": 10})
    '70 tar / 630 non, 10 spk'
    """
    unscored = f", {fig['n_unscored']} unscored" if fig.get("n_unscored") else ""
    return f"{fig['n_target']} tar / {fig['n_nontarget']} non, {fig['n_speakers']} spk{unscored}"


def line(fig: dict) -> str:
    """One figure set as text: ``"EER 2.86 [2.02, 3.56] %, minDCF 0.412 [0.301, 0.530], minCllr 0.281 [0.203,
    0.355]; 70 tar / 630 non, 10 spk"`` (with actDCF and Cllr when the set has them)."""
    text = f"EER {fmt(fig)} %, minDCF {fmt(fig, 'min_dcf')}"
    if "cllr" in fig:
        text += f", actDCF {fmt(fig, 'act_dcf')}, Cllr {fmt(fig, 'cllr')}"
    return f"{text}, minCllr {fmt(fig, 'min_cllr')}; {counts(fig)}"
