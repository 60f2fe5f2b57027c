"""Score calibration: map raw scores to log-likelihood ratios (LLRs); the base of the fusion of several systems.

Calibration and fusion (:mod:`speakerid.evaluation.fusion`) are affine and fitted by prior-weighted logistic
regression, the BOSARIS recipe [1]_, [2]_: the target trials get total weight ``p_target`` and the non-target
trials ``1 - p_target``, so the fit minimises Cllr at the effective prior ``p_target``; the regression then outputs
log *posterior* odds at that prior, and ``logit(p_target)`` is subtracted so that the result is an LLR, usable
with any prior afterwards (e.g. with the Bayes threshold of :func:`speakerid.evaluation.metrics.bayes_threshold`).
Being monotone, a calibration never changes EER, minDCF or min Cllr; it makes actual DCF and Cllr approach them.

Models are saved as small JSON files (format name, format version, speakerid version, class, parameters),
written atomically; :func:`speakerid.evaluation.fusion.load_calibration` reads either kind back.
:func:`fit_score_file` and :func:`apply_score_file` do the same on score CSV files (``speakerid calibrate``), read
by :func:`speakerid.data.trials.read_score_file`.

References
----------
.. [1] N. Brümmer and J. du Preez, "Application-independent evaluation of speaker detection",
       Computer Speech & Language 20(2-3):230-275, 2006.
.. [2] N. Brümmer and E. de Villiers, "The BOSARIS toolkit: theory, algorithms and code for surviving the
       new DCF", arXiv:1304.2865, 2013 (``train_linear_calibration``, ``train_linear_fusion``).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write
from speakerid._utils.validation import check_is_fitted
from speakerid._version import __version__
from speakerid.data.trials import read_score_file
from speakerid.evaluation._sweep import check_trials
from speakerid.evaluation.metrics import cllr, min_cllr
from speakerid.exceptions import ManifestError, ModelFormatError, ParameterError

__all__ = ["LinearCalibration", "fit_score_file", "apply_score_file", "FORMAT_VERSION"]

#: Version of the calibration JSON layout; files from a newer version are refused.
FORMAT_VERSION = 1
_FORMAT = "speakerid-calibration"
#: Inverse L2 strength on standardised scores: negligible, but keeps separable data from diverging.
_C = 1e6


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def _fit_affine(features: np.ndarray, labels: np.ndarray, p_target: float, max_iter: int):
    """Prior-weighted logistic regression of ``labels`` on ``features``; returns LLR ``(weights, bias)``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    n_tar = int(labels.sum())
    n_non = len(labels) - n_tar
    weight = np.where(labels == 1, p_target / n_tar, (1.0 - p_target) / n_non) * len(labels)
    # standardised features keep lbfgs well conditioned whatever the scale of the raw scores
    center = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=_C, solver="lbfgs", tol=1e-10, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit((features - center) / scale, labels, sample_weight=weight)
    weights = model.coef_[0] / scale
    bias = float(model.intercept_[0] - weights @ center) - _logit(p_target)
    return weights.astype(np.float64), bias


class _AffineLLR:
    """Shared fit checks, persistence and repr of the two affine models."""

    def __init__(self, p_target: float = 0.5, *, max_iter: int = 1000):
        self.p_target = p_target
        self.max_iter = max_iter

    def _check_params(self):
        p_target = float(self.p_target)
        if not 0.0 < p_target < 1.0:
            raise ParameterError(f"p_target must be strictly between 0 and 1, got {self.p_target}")
        if int(self.max_iter) < 1:
            raise ParameterError(f"max_iter must be >= 1, got {self.max_iter}")
        return p_target

    def _fit(self, features, labels):
        p_target = self._check_params()
        weights, bias = _fit_affine(features, labels, p_target, int(self.max_iter))
        llr = features @ weights + bias
        if llr[labels == 1].min() > llr[labels == 0].max():
            warnings.warn("the scores separate target and non-target trials perfectly: the calibration is "
                          "ill-determined (its slope is limited only by regularisation); use more trials",
                          UserWarning, stacklevel=3)
        self.n_target_, self.n_nontarget_ = int(labels.sum()), int(len(labels) - labels.sum())
        return weights, bias

    def _check_fitted(self):
        check_is_fitted(self, "n_target_", hint="call fit(...) first")

    # -------------------------------------------------------------------------------------------- persistence

    def to_dict(self) -> dict:
        """A JSON-able dict of the fitted model (format header, class name, hyper-parameters, parameters)."""
        self._check_fitted()
        return {"format": _FORMAT, "format_version": FORMAT_VERSION, "speakerid_version": __version__,
                "class": type(self).__name__, "p_target": float(self.p_target),
                "n_target": self.n_target_, "n_nontarget": self.n_nontarget_, **self._params()}

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "calibration"):
        """Rebuild a fitted model from :meth:`to_dict` output; :class:`ModelFormatError` if it is not one."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ModelFormatError(f"{source}: not a speakerid calibration (no 'format': '{_FORMAT}')")
        version = data.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ModelFormatError(f"{source}: invalid format_version {version!r}")
        if version > FORMAT_VERSION:
            raise ModelFormatError(f"{source}: calibration format version {version} was written by a newer "
                                   f"speakerid ({data.get('speakerid_version', '?')}); this is {__version__}, "
                                   f"which reads up to version {FORMAT_VERSION}. Upgrade speakerid.")
        if data.get("class") != cls.__name__:
            raise ModelFormatError(f"{source}: holds a {data.get('class')!r}, expected {cls.__name__!r}")
        try:
            model = cls(p_target=float(data["p_target"]))
            model._check_params()
            model.n_target_, model.n_nontarget_ = int(data["n_target"]), int(data["n_nontarget"])
            model._set_params(data)
        except (KeyError, TypeError, ValueError) as exc:
            reason = f"missing field {exc}" if isinstance(exc, KeyError) else " ".join(str(exc).split())
            raise ModelFormatError(f"{source}: invalid calibration ({reason})") from None
        return model

    def save(self, path) -> Path:
        """Write the fitted model to ``path`` as JSON, atomically; return the path."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        with atomic_write(path, "w") as fh:
            fh.write(text + "\n")
        return Path(path)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`; :class:`ModelFormatError` naming the file on any problem."""
        return cls.from_dict(_read_json(path), source=str(path))

    def __repr__(self) -> str:
        fitted = ", ".join(f"{k}={v}" for k, v in self._params().items()) if hasattr(self, "n_target_") else ""
        return f"{type(self).__name__}(p_target={self.p_target}{', ' + fitted if fitted else ''})"


def _finite(value, what: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} is not finite")
    return value

class LinearCalibration(_AffineLLR):
    """Affine calibration of one system's scores: ``llr = a_ * score + b_``.

    Parameters
    ----------
    p_target : float
        Effective target prior the fit optimises Cllr for (default 0.5); the outputs are LLRs whatever it is.
    max_iter : int
        Iterations of the logistic-regression solver at most.

    Attributes
    ----------
    a_, b_ : float
        Slope and offset of the fitted map.
    n_target_, n_nontarget_ : int
        Trials it was fitted on.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> llr = np.r_[rng.normal(2, 2, 20000), rng.normal(-2, 2, 20000)]  # exact LLRs (variance = 2 * mean)
    >>> labels = np.r_[np.ones(20000), np.zeros(20000)]
    >>> cal = LinearCalibration().fit(3.0 * llr + 1.0, labels)         # distorted scores
    >>> round(3 * cal.a_, 1), round(3 * cal.b_, 1)                     # about the inverse map (s - 1) / 3
    (1.0, -1.0)
    """

    def fit(self, scores, labels):
        """Fit on ``scores`` (n_trials,) and ``labels`` (1 target, 0 non-target); return ``self``."""
        scores, labels = check_trials(scores, labels)
        weights, bias = self._fit(scores[:, None], labels)
        self.a_, self.b_ = float(weights[0]), bias
        return self

    def transform(self, scores) -> np.ndarray:
        """Calibrated LLRs of ``scores`` (any shape of finite numbers)."""
        self._check_fitted()
        return self.a_ * _check_scores(scores, "scores") + self.b_

    def _params(self) -> dict:
        return {"a": self.a_, "b": self.b_} if hasattr(self, "a_") else {}

    def _set_params(self, data: dict) -> None:
        self.a_, self.b_ = _finite(data["a"], "a"), _finite(data["b"], "b")


def _check_scores(scores, name: str) -> np.ndarray:
    try:
        scores = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be numbers (could not convert them to floats)") from None
    bad = ~np.isfinite(scores)
    if bad.any():
        raise ParameterError(f"{name} hold {int(bad.sum())} NaN or infinite value(s), first at index "
                             f"{tuple(int(i) for i in np.argwhere(bad)[0])}")
    return scores


def _read_json(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such calibration file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: not a JSON calibration file ({' '.join(str(exc).split())})") from None
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None


def fit_score_file(scores_path, out_path, p_target: float = 0.5) -> dict:
    """Fit a :class:`LinearCalibration` on a score file, save it to ``out_path``, and report how it did.

    Returns
    -------
    dict
        ``a``, ``b``, ``cllr_before`` (the raw scores read as LLRs), ``cllr_after``, ``min_cllr`` (in bits),
        ``n_target``, ``n_nontarget``, ``n_skipped`` (rows without a score or with an error), ``out``.
    """
    calibration = LinearCalibration(p_target=p_target)
    calibration._check_params()
    data = read_score_file(scores_path, require_target=True)
    try:
        calibration.fit(data.scores, data.labels)
    except ParameterError as exc:   # p_target is valid: it is the file's trials (one class, none at all)
        raise ManifestError(f"cannot fit a calibration: {exc}", scores_path) from None
    calibration.save(out_path)
    return {"a": calibration.a_, "b": calibration.b_, "p_target": float(p_target),
            "cllr_before": cllr(data.scores, data.labels),
            "cllr_after": cllr(calibration.transform(data.scores), data.labels),
            "min_cllr": min_cllr(data.scores, data.labels),
            "n_target": calibration.n_target_, "n_nontarget": calibration.n_nontarget_,
            "n_skipped": data.n_skipped, "out": str(out_path)}


def apply_score_file(calibration_path, scores_path, out_path) -> dict:
    """Write ``scores_path`` to ``out_path`` with ``score`` replaced by the calibrated LLR.

    The raw score goes to a new ``raw_score`` column right after ``score``; rows without a usable score keep
    an empty ``score``. Every other column is copied as it was. Returns ``n_calibrated``, ``n_skipped``, ``out``.
    """
    calibration = LinearCalibration.load(calibration_path)
    data = read_score_file(scores_path, require_target=False)
    frame = data.frame.copy()
    if "raw_score" in frame.columns:
        raise ManifestError("already has a raw_score column (is it calibrated already?)", scores_path)
    llr = np.full(len(frame), "", dtype=object)
    llr[data.usable] = [repr(float(x)) for x in calibration.transform(data.scores)]
    frame.insert(frame.columns.get_loc("score") + 1, "raw_score", frame["score"])
    frame["score"] = llr
    with atomic_write(out_path, "w") as fh:
        frame.to_csv(fh, index=False, lineterminator="\n")
    return {"n_calibrated": int(data.usable.sum()), "n_skipped": data.n_skipped, "out": str(out_path)}
