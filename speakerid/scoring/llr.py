"""The fused system's file (``fusion.json``) and the decisions its LLRs support: the posterior of a claim, and
open-set identification over N + 1 hypotheses.

:mod:`speakerid.scoring.fused` re-exports everything here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write
from speakerid._version import __version__
from speakerid.evaluation.fusion import LinearFusion
from speakerid.exceptions import ModelFormatError, NotFittedError, ParameterError
from speakerid.scoring.quality import QualityInputs
from speakerid.scoring.systems import SYSTEMS
from speakerid.store import COHORT_FILE, FUSION_FILE

__all__ = ["FUSION_KEY", "fixed_norm", "input_name", "posterior", "open_set_posteriors", "check_p_target",
           "has_fusion", "write_fusion", "read_fusion"]

_FORMAT, _VERSION = "speakerid-fused-system", 1
#: The key of the fusion applied in ``fusion.json``: the one learned on scores without the enrolled-speaker T-norm
#: (files of speakerid <= 0.x also hold an ``"enrolled"`` one, which is no longer used).
FUSION_KEY = "plain"


def fixed_norm(system_dir) -> str:
    """The normalisation of a fused system's input: S-norm with the system's own cohort when it has one, else
    none; never a T-norm over the enrolled speakers (so a score does not depend on who else is enrolled)."""
    return "snorm" if (Path(system_dir) / COHORT_FILE).is_file() else "none"


def input_name(name: str) -> str:
    """The fusion input a ``--system`` name stands for: an input itself (``"ivector-plda"``), or a system's first
    input (``"ivector"`` -> ``"ivector-cosine"``), whose scores are the ``score_<input>`` column of a score file."""
    return SYSTEMS[name][1][0][0] if name in SYSTEMS else name


def posterior(llr, p_target: float) -> np.ndarray:
    """P(same speaker | the trial) of LLRs (natural log) at the prior ``p_target``.

    >>> round(float(posterior(0.0, 0.5)), 3), round(float(posterior(np.log(9), 0.5)), 3)
    (0.5, 0.9)
    """
    p = check_p_target(p_target)
    z = np.asarray(llr, dtype=np.float64) + math.log(p) - math.log1p(-p)
    return 0.5 * (1.0 + np.tanh(0.5 * z))   # the logistic sigmoid without overflow


def open_set_posteriors(llrs, p_target: float) -> tuple[np.ndarray, float, float]:
    """Open-set identification over N + 1 hypotheses from N calibrated verification LLRs.

    The prior ``p_target`` that the voice is one of the N enrolled speakers is shared evenly among them
    (``p_target / N`` each) and ``1 - p_target`` goes to "nobody enrolled"; each speaker's LLR stands for the
    likelihood ratio of "this speaker" against "nobody enrolled" (the verification LLR against the population).

    Parameters
    ----------
    llrs : array-like, shape (n_speakers,)
        Natural-log likelihood ratios of the enrolled speakers for one test recording.
    p_target : float
        Prior that the voice is an enrolled one, in (0, 1).

    Returns
    -------
    (numpy.ndarray of shape (n_speakers,), float, float)
        ``(posteriors, p_nobody, open_llr)``: each speaker's posterior and that of nobody enrolled (together they
        sum to 1), and the LLR of "one of the enrolled speakers" against "nobody", ``log(mean(exp(llrs)))``,
        which equals the LLR itself when N = 1 (so the decision ``open_llr >= -logit(p_target)`` is the
        verification decision for one speaker).

    Examples
    --------
    >>> post, nobody, open_llr = open_set_posteriors([0.0, 0.0], 0.5)
    >>> [round(float(x), 3) for x in post], round(nobody, 3), round(open_llr, 3)
    ([0.25, 0.25], 0.5, 0.0)
    """
    p = check_p_target(p_target)
    llrs = np.asarray(llrs, dtype=np.float64).ravel()
    if llrs.size == 0 or not np.isfinite(llrs).all():
        raise ParameterError(f"need at least one finite LLR, got {llrs.size} value(s)")
    log_terms = np.append(llrs + math.log(p) - math.log(llrs.size), math.log1p(-p))
    log_norm = float(np.logaddexp.reduce(log_terms))
    probabilities = np.exp(log_terms - log_norm)
    open_llr = float(np.logaddexp.reduce(llrs) - math.log(llrs.size))
    return probabilities[:-1], float(probabilities[-1]), open_llr


def check_p_target(p_target) -> float:
    try:
        p = float(p_target)
    except (TypeError, ValueError):
        raise ParameterError(f"p_target must be a number, got {p_target!r}") from None
    if not 0.0 < p < 1.0:
        raise ParameterError(f"p_target must be strictly between 0 and 1, got {p_target}")
    return p


def has_fusion(model_dir) -> bool:
    """Whether ``model_dir`` is a fused system built by ``speakerid train``."""
    return (Path(model_dir) / FUSION_FILE).is_file()


def write_fusion(model_dir, data: dict) -> Path:
    """Write ``fusion.json`` (atomically) from the fields :func:`read_fusion` returns."""
    path = Path(model_dir) / FUSION_FILE
    body = {"format": _FORMAT, "format_version": _VERSION, "speakerid_version": __version__, **data}
    with atomic_write(path, "w") as fh:
        fh.write(json.dumps(body, indent=1, sort_keys=True) + "\n")
    return path


def read_fusion(model_dir) -> dict:
    """The checked content of ``fusion.json``: ``systems``, ``inputs``, ``p_target``, ``fusions`` (fitted
    :class:`LinearFusion` under ``"plain"``), ``quality`` (the fusion's
    :class:`~speakerid.scoring.quality.QualityInputs`, or None: scores only), ``dev``; :class:`ModelFormatError`
    naming the file."""
    from speakerid.scoring.training_state import check_complete

    check_complete(model_dir)
    path = Path(model_dir) / FUSION_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFittedError(f"{path}: no fused system here: run 'speakerid train' first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: not a fused-system file ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ModelFormatError(f"{path}: not a fused-system file (no 'format': '{_FORMAT}')")
    if not isinstance(data.get("format_version"), int) or data["format_version"] > _VERSION:
        raise ModelFormatError(f"{path}: format version {data.get('format_version')!r} is not readable by "
                               f"speakerid {__version__} (reads up to {_VERSION})")
    try:
        systems = [str(s) for s in data["systems"]]
        unknown = sorted(set(systems) - set(SYSTEMS))
        if unknown or not systems:
            raise ValueError(f"unknown system(s) {unknown}" if unknown else "no systems")
        inputs = [name for s in systems for name, _ in SYSTEMS[s][1]]
        fusions = {key: LinearFusion.from_dict(value, source=f"{path} [{key}]")
                   for key, value in data["fusions"].items()}
        quality = data.get("quality")
        if quality is not None:
            quality = QualityInputs.from_dict(quality, source=str(path))
            if quality.systems != inputs:
                raise ValueError(f"the quality measures are set for {quality.systems}, not {inputs}")
        expected = inputs if quality is None else quality.names
        for key, model in fusions.items():
            if getattr(model, "system_names_", None) != expected:
                raise ValueError(f"fusion {key!r} combines {getattr(model, 'system_names_', None)}, "
                                 f"not {expected}")
        if FUSION_KEY not in fusions:
            raise ValueError(f"no {FUSION_KEY!r} fusion (only {sorted(fusions)}); retrain with 'speakerid train'")
        p_target = check_p_target(data["p_target"])
    except (KeyError, TypeError, ValueError, ParameterError) as exc:
        reason = f"missing field {exc}" if isinstance(exc, KeyError) else " ".join(str(exc).split())
        raise ModelFormatError(f"{path}: invalid fused system ({reason})") from None
    return {**data, "systems": systems, "inputs": inputs, "fusions": fusions, "p_target": p_target,
            "quality": quality}
