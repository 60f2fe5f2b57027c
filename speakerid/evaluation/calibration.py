"""Score calibration: map raw scores to log-likelihood ratios (LLRs), and fuse several systems into one LLR.

Both models are affine and fitted by prior-weighted logistic regression, the BOSARIS recipe [1]_, [2]_: the
target trials get total weight ``p_target`` and the non-target trials ``1 - p_target``, so the fit minimises
Cllr at the effective prior ``p_target``; the regression then outputs log *posterior* odds at that prior, and
``logit(p_target)`` is subtracted so that the result is an LLR, usable with any prior afterwards (e.g. with the
Bayes threshold of :func:`speakerid.evaluation.metrics.bayes_threshold`). Being monotone, a calibration never changes
EER, minDCF or min Cllr; it makes actual DCF and Cllr approach them.

Models are saved as small JSON files (format name, format version, speakerid version, class, parameters),
written atomically; :func:`load_calibration` reads either kind back. :func:`fit_score_file` and
:func:`apply_score_file` do the same on score CSV files (``speakerid calibrate``).

References
----------
.. [1] N. Brümmer and J. du Preez, "Application-independent evaluation of speaker detection",
       Computer Speech & Language 20(2-3):230-275, 2006.
.. [2] N. Brümmer and E. de Villiers, "The BOSARIS toolkit: theory, algorithms and code for surviving the
       new DCF", arXiv:1304.2865, 2013 (``train_linear_calibration``, ``train_linear_fusion``).
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from speakerid._utils.files import atomic_write
from speakerid._version import __version__
from speakerid.evaluation.metrics import _check_trials
from speakerid.exceptions import ManifestError, ModelFormatError, NotFittedError, ParameterError

__all__ = ["LinearCalibration", "LinearFusion", "load_calibration", "read_score_file", "fit_score_file",
           "apply_score_file", "fuse_score_files", "ScoreFile", "FORMAT_VERSION"]

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
        if not hasattr(self, "n_target_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(...) first")

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
        scores, labels = _check_trials(scores, labels)
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


class LinearFusion(_AffineLLR):
    """Linear fusion of several systems into one LLR: ``llr = score_matrix @ weights_ + bias_``.

    Fitted like :class:`LinearCalibration` (which is the one-system case), so the output is calibrated too.

    Attributes
    ----------
    weights_ : numpy.ndarray, shape (n_systems,)
    bias_ : float
    n_systems_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.r_[np.ones(2000), np.zeros(2000)]
    >>> clean = np.where(labels == 1, 1.0, -1.0)
    >>> systems = np.c_[clean + rng.normal(0, 1, 4000), clean + rng.normal(0, 1, 4000)]
    >>> fusion = LinearFusion().fit(systems, labels)
    >>> fusion.weights_.round(0).tolist()                 # equal noise: equal weights (2 each, in theory)
    [2.0, 2.0]
    """

    def fit(self, score_matrix, labels):
        """Fit on ``score_matrix`` (n_trials, n_systems) and ``labels``; return ``self``."""
        matrix = _check_matrix(score_matrix, None)
        _, labels = _check_trials(matrix[:, 0], labels)
        self.weights_, self.bias_ = self._fit(matrix, labels)
        self.n_systems_ = matrix.shape[1]
        return self

    def transform(self, score_matrix) -> np.ndarray:
        """Fused LLRs, shape (n_trials,), of a (n_trials, n_systems) matrix."""
        self._check_fitted()
        return _check_matrix(score_matrix, self.n_systems_) @ self.weights_ + self.bias_

    def _params(self) -> dict:
        if not hasattr(self, "weights_"):
            return {}
        params = {"weights": [float(w) for w in self.weights_], "bias": self.bias_}
        if getattr(self, "system_names_", None):
            params["systems"] = list(self.system_names_)
        return params

    def _set_params(self, data: dict) -> None:
        weights = data["weights"]
        if not isinstance(weights, list) or not weights:
            raise ValueError("weights must be a non-empty list")
        self.weights_ = np.array([_finite(w, "a weight") for w in weights], dtype=np.float64)
        self.bias_ = _finite(data["bias"], "bias")
        self.n_systems_ = len(self.weights_)
        systems = data.get("systems")
        if systems is not None:
            if not isinstance(systems, list) or len(systems) != self.n_systems_:
                raise ValueError("systems must list one name per weight")
            self.system_names_ = [str(n) for n in systems]


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


def _check_matrix(score_matrix, n_systems: int | None) -> np.ndarray:
    matrix = _check_scores(score_matrix, "score_matrix")
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ParameterError(f"score_matrix must be 2-D (n_trials, n_systems), got shape {matrix.shape}")
    if n_systems is not None and matrix.shape[1] != n_systems:
        raise ParameterError(f"score_matrix has {matrix.shape[1]} column(s) but the fusion was fitted on "
                             f"{n_systems} systems")
    return matrix


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


def load_calibration(path):
    """Read a :class:`LinearCalibration` or :class:`LinearFusion` saved with ``save``, whichever it is."""
    data = _read_json(path)
    kinds = {cls.__name__: cls for cls in (LinearCalibration, LinearFusion)}
    name = data.get("class") if isinstance(data, dict) else None
    if name not in kinds and isinstance(data, dict) and data.get("format") == _FORMAT:
        raise ModelFormatError(f"{path}: holds a {name!r}, expected one of {', '.join(map(repr, kinds))}")
    return kinds.get(name, LinearCalibration).from_dict(data, source=str(path))


# ---------------------------------------------------------------------------------------------------------------
# score files (speaker,path,target,score[,error] as written by ``speakerid score``)
# ---------------------------------------------------------------------------------------------------------------

class ScoreFile(NamedTuple):
    """A score CSV read by :func:`read_score_file`."""

    frame: pd.DataFrame      # every row, every column, as text
    usable: np.ndarray       # bool per row: has a score and no error
    scores: np.ndarray       # float64 scores of the usable rows
    labels: np.ndarray | None  # int64 labels of the usable rows, when the file has a target column


def read_score_file(path, *, require_target: bool = True) -> ScoreFile:
    """Read a ``speaker,path,target,score[,error]`` file; rows without a score, or with an error, are unusable.

    Raises
    ------
    ManifestError
        Missing or unreadable file, no ``score`` column (or no ``target`` column with ``require_target``),
        a score that is not a finite number or a target that is not 0/1 (the message names the file and lines).
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError("no such score file", path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ManifestError("the score file is empty (expected a header with 'target,score')", path) from None
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error, OSError) as exc:
        raise ManifestError(f"not a readable CSV ({' '.join(str(exc).split())})", path) from None
    frame = frame.rename(columns=lambda c: str(c).strip())
    wanted = ["score"] + (["target"] if require_target else [])
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ManifestError(f"missing column(s) {', '.join(missing)}; found header '{','.join(frame.columns)}' "
                            "(expected a score file as written by 'speakerid score')", path)
    raw = frame["score"].str.strip()
    usable = np.array(raw != "", dtype=bool)
    if "error" in frame.columns:
        usable &= (frame["error"].str.strip() == "").to_numpy()
    lines = np.arange(2, len(frame) + 2)[usable]   # CSV line numbers, header being line 1
    scores = pd.to_numeric(raw[usable], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(scores)
    if bad.any():
        raise ManifestError(f"score is not a finite number on line(s) {_lines(lines[bad])}", path)
    labels = None
    if "target" in frame.columns:
        mapping = {"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0, "target": 1, "nontarget": 0}
        target = frame["target"].str.strip().str.lower()[usable].map(mapping)
        if target.isna().any():
            raise ManifestError(f"target must be 0 or 1 on line(s) {_lines(lines[target.isna().to_numpy()])}",
                                path)
        labels = target.to_numpy(dtype=np.int64)
    return ScoreFile(frame, usable, scores, labels)


def _lines(lines, limit: int = 10) -> str:
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return ", ".join(str(int(x)) for x in lines[:limit]) + more


def fit_score_file(scores_path, out_path, p_target: float = 0.5) -> dict:
    """Fit a :class:`LinearCalibration` on a score file, save it to ``out_path``, and report how it did.

    Returns
    -------
    dict
        ``a``, ``b``, ``cllr_before`` (the raw scores read as LLRs), ``cllr_after``, ``min_cllr`` (in bits),
        ``n_target``, ``n_nontarget``, ``n_skipped`` (rows without a score or with an error), ``out``.
    """
    from speakerid.evaluation.metrics import cllr, min_cllr

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
            "n_skipped": int((~data.usable).sum()), "out": str(out_path)}


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
    return {"n_calibrated": int(data.usable.sum()), "n_skipped": int((~data.usable).sum()), "out": str(out_path)}


# ---------------------------------------------------------------------------------------------------------------
# fusion of score files (``speakerid fuse``)
# ---------------------------------------------------------------------------------------------------------------

def _trial_keys(frame: pd.DataFrame, path) -> pd.Index:
    """One key per row: claimed speaker, test path and the occurrence number of that pair (duplicates allowed)."""
    missing = [c for c in ("speaker", "path") if c not in frame.columns]
    if missing:
        raise ManifestError(f"missing column(s) {', '.join(missing)} (needed to line up the systems' trials)", path)
    speaker, test = frame["speaker"].str.strip(), frame["path"].str.strip()
    occurrence = frame.groupby([speaker, test], sort=False).cumcount()
    return pd.MultiIndex.from_arrays([speaker, test, occurrence])


def _score_matrix(paths, *, require_target: bool, names=None):
    """Line the score files up trial by trial (by speaker, path) in the first file's order.

    Returns the first file's frame, the matrix (n_rows, n_systems; NaN where a system has no usable score),
    the labels of the first file (or None) and the system names.
    """
    paths = [Path(p) for p in paths]
    files = [read_score_file(p, require_target=require_target and i == 0) for i, p in enumerate(paths)]
    first = files[0]
    keys = _trial_keys(first.frame, paths[0])
    matrix = np.full((len(keys), len(files)), np.nan)
    for j, (path, data) in enumerate(zip(paths, files)):
        own = _trial_keys(data.frame, path)
        column = pd.Series(np.nan, index=own)
        column[data.usable] = data.scores
        if j == 0:
            matrix[:, 0] = column.to_numpy()
            continue
        absent = keys.difference(own)
        if len(absent):
            example = absent[0]
            raise ManifestError(f"has no row for {len(absent)} trial(s) of {paths[0]} (e.g. speaker "
                                f"{example[0]!r}, path {example[1]!r}); fused files must score the same trials",
                                path)
        matrix[:, j] = column.reindex(keys).to_numpy()
    labels = None
    if first.labels is not None:
        labels = np.full(len(keys), -1, dtype=np.int64)
        labels[first.usable] = first.labels
    if names is None:
        names = [p.stem for p in paths]
    if len(set(names)) != len(names):
        names = [f"{i + 1}:{n}" for i, n in enumerate(names)]
    return first.frame, matrix, labels, list(names)


def _system_figures(scores: np.ndarray, labels: np.ndarray) -> dict:
    from speakerid.evaluation.metrics import cllr, eer, min_dcf
    return {"eer": float(eer(scores, labels)), "min_dcf": float(min_dcf(scores, labels, p_target=0.01)),
            "cllr": float(cllr(scores, labels))}


def fuse_score_files(score_paths, out_path, *, train_paths=None, fusion=None, fusion_out=None,
                     p_target: float = 0.5, names=None) -> dict:
    """Fuse several systems' score files into one calibrated LLR per trial.

    Either learn the fusion on development score files of the same systems (``train_paths``, one per
    system, in the same order as ``score_paths``, with a ``target`` column; trials of the development and
    evaluation files need not be the same) or apply a saved one (``fusion``: a JSON path written through
    ``fusion_out`` earlier). With one system this is plain calibration.

    The output keeps the first score file's rows and columns; ``score`` becomes the fused LLR and each
    system's raw score is added as ``score_<name>``. Rows where any system has no usable score get an empty
    score and an ``error`` naming the systems that lack one.

    Returns
    -------
    dict
        ``systems`` (names), ``weights``, ``bias``, ``n_fused``, ``n_skipped``, ``out``; with training,
        ``train`` (EER, minDCF(0.01), Cllr of each system and of the fusion on the development trials); when
        the scored files have a ``target`` column, ``eval`` with the same figures on them.
    """
    score_paths = [Path(p) for p in score_paths]
    if not score_paths:
        raise ParameterError("give at least one score file to fuse")
    if (train_paths is None) == (fusion is None):
        raise ParameterError("give either development score files to learn the fusion from, or a saved fusion")
    result = {}
    if fusion is None:
        train_paths = [Path(p) for p in train_paths]
        if len(train_paths) != len(score_paths):
            raise ParameterError(f"{len(score_paths)} score file(s) but {len(train_paths)} development file(s): "
                                 "give one development score file per system, in the same order")
        _, dev, dev_labels, names = _score_matrix(train_paths, require_target=True,
                                                  names=names or [p.stem for p in score_paths])
        usable = np.isfinite(dev).all(axis=1) & (dev_labels >= 0)
        if not usable.any():
            raise ManifestError("no trial has a usable score in every development file", train_paths[0])
        model = LinearFusion(p_target=p_target)
        model._check_params()
        try:
            model.fit(dev[usable], dev_labels[usable])
        except ParameterError as exc:
            raise ManifestError(f"cannot learn a fusion: {exc}", train_paths[0]) from None
        model.system_names_ = names
        result["train"] = {name: _system_figures(dev[usable, j], dev_labels[usable])
                           for j, name in enumerate(names)}
        result["train"]["fusion"] = _system_figures(model.transform(dev[usable]), dev_labels[usable])
        if fusion_out is not None:
            model.save(fusion_out)
    else:
        model = load_calibration(fusion)
        if not isinstance(model, LinearFusion):
            model_as_fusion = LinearFusion(p_target=model.p_target)
            model_as_fusion.weights_, model_as_fusion.bias_ = np.array([model.a_]), model.b_
            model_as_fusion.n_systems_, model_as_fusion.n_target_ = 1, model.n_target_
            model_as_fusion.n_nontarget_ = model.n_nontarget_
            model = model_as_fusion
        if model.n_systems_ != len(score_paths):
            raise ParameterError(f"the fusion in {fusion} combines {model.n_systems_} system(s) but "
                                 f"{len(score_paths)} score file(s) were given")
        names = names or getattr(model, "system_names_", None) or [p.stem for p in score_paths]

    frame, matrix, labels, names = _score_matrix(score_paths, require_target=False, names=names)
    usable = np.isfinite(matrix).all(axis=1)
    fused = np.full(len(frame), "", dtype=object)
    if usable.any():
        fused[usable] = [repr(float(x)) for x in model.transform(matrix[usable])]
    out = frame.copy()
    for j, name in enumerate(names):
        column = f"score_{name}"
        out[column] = ["" if not np.isfinite(v) else repr(float(v)) for v in matrix[:, j]]
    out["score"] = fused
    if not usable.all():
        lacking = [", ".join(n for n, ok in zip(names, np.isfinite(row)) if not ok) for row in matrix]
        errors = out["error"] if "error" in out.columns else pd.Series("", index=out.index)
        out["error"] = [e if ok or e else f"no score from {lack}"
                        for e, ok, lack in zip(errors, usable, lacking)]
    with atomic_write(out_path, "w") as fh:
        out.to_csv(fh, index=False, lineterminator="\n")
    result.update({"systems": names, "weights": [float(w) for w in model.weights_], "bias": float(model.bias_),
                   "n_fused": int(usable.sum()), "n_skipped": int((~usable).sum()), "out": str(out_path)})
    if labels is not None:
        ok = usable & (labels >= 0)
        if ok.any() and len(np.unique(labels[ok])) == 2:
            result["eval"] = {name: _system_figures(matrix[ok, j], labels[ok])
                              for j, name in enumerate(names)}
            result["eval"]["fusion"] = _system_figures(model.transform(matrix[ok]), labels[ok])
    return result
