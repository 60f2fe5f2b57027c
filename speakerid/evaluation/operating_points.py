"""Operating points: minDCF/actDCF at the priors evaluations report, and choosing a decision threshold on dev scores.

The detection cost is NIST's normalised DCF with C_miss = C_fa = 1 unless told otherwise (the SRE and VoxSRC
convention, also Kaldi's ``sid/compute_min_dcf.py``):
``DCF(t) = (C_miss P_target P_miss(t) + C_fa (1 - P_target) P_fa(t)) / min(C_miss P_target, C_fa (1 - P_target))``,
computed by :mod:`speakerid.evaluation.metrics` (one sort of the scores for every prior).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speakerid.evaluation import metrics
from speakerid.exceptions import ParameterError

__all__ = ["DEFAULT_P_TARGETS", "dcf_table", "parse_criterion", "choose_threshold", "ThresholdChoice"]

#: The priors of the usual reports: SRE 2008-2010 (0.01), SRE 2012+/VoxSRC (0.05 and 0.01), SRE 2010 new DCF (0.001).
DEFAULT_P_TARGETS = (0.01, 0.001, 0.05)


def dcf_table(scores, labels, p_targets=DEFAULT_P_TARGETS, *, threshold: float | None = None) -> list:
    """minDCF and actDCF (C_miss = C_fa = 1) at each prior.

    Parameters
    ----------
    scores, labels : array_like, shape (n_trials,)
        Scores (higher = more likely the same speaker) and labels (1 target, 0 non-target).
    p_targets : sequence of float
        Priors of a target trial, each in (0, 1).
    threshold : float, optional
        Decision threshold of ``act_dcf``; by default the Bayes threshold of each prior, i.e. the scores are
        taken as calibrated natural-log likelihood ratios.

    Returns
    -------
    list of dict
        Per prior: ``p_target``, ``min_dcf``, ``min_dcf_threshold``, ``act_dcf``, ``act_dcf_threshold``.

    Examples
    --------
    >>> rows = dcf_table([-2.0, -1.0, 1.0, 3.0], [0, 0, 1, 1], p_targets=[0.5])
    >>> rows[0]["min_dcf"], rows[0]["act_dcf"], rows[0]["act_dcf_threshold"]
    (0.0, 0.0, 0.0)
    """
    p_targets = [float(p) for p in np.atleast_1d(p_targets)]
    if not p_targets:
        raise ParameterError("give at least one p_target")
    rows = []
    for p_target in p_targets:
        value, at = metrics.min_dcf(scores, labels, p_target, return_threshold=True)
        act_threshold = metrics.bayes_threshold(p_target) if threshold is None else float(threshold)
        rows.append({"p_target": p_target, "min_dcf": value, "min_dcf_threshold": at,
                     "act_dcf": metrics.act_dcf(scores, labels, act_threshold, p_target),
                     "act_dcf_threshold": act_threshold})
    return rows


def parse_criterion(text: str) -> tuple:
    """``(name, value)`` of a threshold criterion: ``eer``, ``far=<rate>`` or ``min-dcf[:<p_target>]``.

    Examples
    --------
    >>> parse_criterion("eer"), parse_criterion("far=0.01"), parse_criterion("min-dcf"), parse_criterion("min-dcf:0.05")
    (('eer', None), ('far', 0.01), ('min-dcf', 0.01), ('min-dcf', 0.05))
    """
    text = str(text).strip().lower()
    try:
        if text == "eer":
            return "eer", None
        if text.startswith("far="):
            far = float(text[4:])
            if 0.0 <= far <= 1.0:
                return "far", far
        elif text == "min-dcf" or text.startswith("min-dcf:"):
            p_target = float(text[8:]) if ":" in text else 0.01
            if 0.0 < p_target < 1.0:
                return "min-dcf", p_target
    except ValueError:
        pass
    raise ParameterError(f"criterion must be eer, far=<rate in [0, 1]> or min-dcf[:<p_target in (0, 1)>], got {text!r}")


@dataclass(frozen=True)
class ThresholdChoice:
    """A decision threshold and how it was chosen.

    Attributes
    ----------
    threshold : float
        Accept a trial when ``score >= threshold``.
    criterion : str
        As given to :func:`choose_threshold` (e.g. ``"far=0.01"``).
    far, frr : float
        False-acceptance and false-rejection rates at the threshold on the scores it was chosen on.
    n_target, n_nontarget : int
    """

    threshold: float
    criterion: str
    far: float
    frr: float
    n_target: int
    n_nontarget: int

    def as_dict(self) -> dict:
        return {"threshold": self.threshold, "criterion": self.criterion, "far": self.far, "frr": self.frr,
                "n_target": self.n_target, "n_nontarget": self.n_nontarget}


def choose_threshold(scores, labels, criterion: str = "eer") -> ThresholdChoice:
    """Choose a decision threshold on (dev) scores.

    Parameters
    ----------
    scores, labels : array_like, shape (n_trials,)
    criterion : str
        ``eer``: the threshold of the equal-error operating point; ``far=<rate>``: the lowest threshold whose
        false-acceptance rate is at most ``rate`` (so the miss rate is as low as it can be); ``min-dcf[:p]``: the
        threshold reaching the minimum normalised DCF at prior ``p`` (0.01 by default). When only rejecting
        every trial meets the criterion, the threshold is the next float above the highest score (finite, so
        it can be stored).

    Returns
    -------
    ThresholdChoice

    Raises
    ------
    ParameterError
        An unknown criterion, or scores without both target and non-target trials.

    Examples
    --------
    >>> scores, labels = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7], [0, 0, 0, 0, 1, 1]
    >>> choice = choose_threshold(scores, labels, "far=0.25")
    >>> choice.threshold, choice.far, choice.frr
    (0.4, 0.25, 0.0)
    """
    name, value = parse_criterion(criterion)
    if name == "eer":
        _, threshold = metrics.eer(scores, labels, return_threshold=True)
    elif name == "far":
        threshold = metrics.threshold_at_far(scores, labels, value)
    else:
        _, threshold = metrics.min_dcf(scores, labels, value, return_threshold=True)
    if np.isinf(threshold):  # only rejecting everything is low enough: just above the highest score does that
        threshold = float(np.nextafter(np.max(np.asarray(scores, dtype=float)), np.inf))
    far, frr = metrics.far_frr_at(scores, labels, threshold)
    labels = np.asarray(labels)
    n_target = int(np.sum(labels == 1))
    return ThresholdChoice(float(threshold), str(criterion).strip().lower(), far, frr, n_target,
                           int(len(labels) - n_target))
