"""Linear fusion of several systems' scores into one calibrated LLR per trial (``speakerid fuse``).

:class:`LinearFusion` is :class:`~speakerid.evaluation.calibration.LinearCalibration` with one weight per system,
fitted the same way (prior-weighted logistic regression, BOSARIS ``train_linear_fusion`` [1]_);
:func:`fuse_score_files` lines score files up trial by trial and writes the fused file.

References
----------
.. [1] N. Brümmer and E. de Villiers, "The BOSARIS toolkit: theory, algorithms and code for surviving the
       new DCF", arXiv:1304.2865, 2013.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write
from speakerid._utils.lazy import lazy_import
from speakerid.data.trials import read_score_file, trial_key
from speakerid.evaluation._sweep import check_trials
from speakerid.evaluation.calibration import (
    _FORMAT,
    LinearCalibration,
    _AffineLLR,
    _check_scores,
    _finite,
    _read_json,
)
from speakerid.evaluation.metrics import summary
from speakerid.exceptions import ManifestError, ModelFormatError, ParameterError

pd = lazy_import("pandas")

__all__ = ["LinearFusion", "load_calibration", "fuse_score_files"]


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
        _, labels = check_trials(matrix[:, 0], labels)
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


def _check_matrix(score_matrix, n_systems: int | None) -> np.ndarray:
    matrix = _check_scores(score_matrix, "score_matrix")
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ParameterError(f"score_matrix must be 2-D (n_trials, n_systems), got shape {matrix.shape}")
    if n_systems is not None and matrix.shape[1] != n_systems:
        raise ParameterError(f"score_matrix has {matrix.shape[1]} column(s) but the fusion was fitted on "
                             f"{n_systems} systems")
    return matrix


def load_calibration(path):
    """Read a :class:`LinearCalibration` or :class:`LinearFusion` saved with ``save``, whichever it is."""
    data = _read_json(path)
    kinds = {cls.__name__: cls for cls in (LinearCalibration, LinearFusion)}
    name = data.get("class") if isinstance(data, dict) else None
    if name not in kinds and isinstance(data, dict) and data.get("format") == _FORMAT:
        raise ModelFormatError(f"{path}: holds a {name!r}, expected one of {', '.join(map(repr, kinds))}")
    return kinds.get(name, LinearCalibration).from_dict(data, source=str(path))


def _trial_keys(frame: pd.DataFrame, path) -> pd.Index:
    """One key per row: claimed speaker and test path, compared as :func:`check_unique_trials` compares them (the
    reader has refused files that list a trial twice)."""
    missing = [c for c in ("speaker", "path") if c not in frame.columns]
    if missing:
        raise ManifestError(f"missing column(s) {', '.join(missing)} (needed to line up the systems' trials)", path)
    return pd.MultiIndex.from_tuples([trial_key(s, p) for s, p in zip(frame["speaker"], frame["path"])])


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


def fuse_score_files(score_paths, out_path, *, train_paths=None, fusion=None, fusion_out=None,
                     p_target: float = 0.5, names=None, inputs=None) -> dict:
    """Fuse several systems' score files into one calibrated LLR per trial.

    Either learn the fusion on development score files of the same systems (``train_paths``, one per
    system, in the same order as ``score_paths``, with a ``target`` column; trials of the development and
    evaluation files need not be the same) or apply a saved one (``fusion``: a JSON path written through
    ``fusion_out`` earlier, or a fitted :class:`LinearFusion`). With one system this is plain calibration.

    The output keeps the first score file's rows and columns; ``score`` becomes the fused LLR and each
    system's raw score is added as ``score_<name>``. Rows where any system has no usable score get an empty
    score and an ``error`` naming the systems that lack one.

    ``inputs`` (with a saved ``fusion`` only): a callable ``inputs(frame, matrix)`` giving the fusion's input
    matrix from the first file's rows (a frame) and the systems' scores (n_rows, n_systems), e.g. with quality
    measures (:class:`~speakerid.scoring.quality.QualityInputs`); it is called on the usable rows.

    Returns
    -------
    dict
        ``systems`` (names), ``weights``, ``bias``, ``n_fused``, ``n_skipped``, ``out``; with training,
        ``train``: the :func:`~speakerid.evaluation.metrics.summary` (at ``p_target`` 0.01, scores read as LLRs:
        EER, minDCF, actDCF, Cllr, ...) of each system and of the fusion on the development trials; when the
        scored files have a ``target`` column, ``eval`` with the same figures on them.
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
        result["train"] = {name: _figures(dev[usable, j], dev_labels[usable])
                           for j, name in enumerate(names)}
        result["train"]["fusion"] = _figures(model.transform(dev[usable]), dev_labels[usable])
        if fusion_out is not None:
            model.save(fusion_out)
    else:
        model = fusion if isinstance(fusion, _AffineLLR) else load_calibration(fusion)
        if not isinstance(model, LinearFusion):
            model_as_fusion = LinearFusion(p_target=model.p_target)
            model_as_fusion.weights_, model_as_fusion.bias_ = np.array([model.a_]), model.b_
            model_as_fusion.n_systems_, model_as_fusion.n_target_ = 1, model.n_target_
            model_as_fusion.n_nontarget_ = model.n_nontarget_
            model = model_as_fusion
        if inputs is None and model.n_systems_ != len(score_paths):
            raise ParameterError(f"the fusion in {fusion} combines {model.n_systems_} system(s) but "
                                 f"{len(score_paths)} score file(s) were given")
        names = names or getattr(model, "system_names_", None) or [p.stem for p in score_paths]

    if inputs is not None and train_paths is not None:
        raise ParameterError("inputs applies to a saved fusion only")
    frame, matrix, labels, names = _score_matrix(score_paths, require_target=False, names=names)
    usable = np.isfinite(matrix).all(axis=1)
    fused = np.full(len(frame), "", dtype=object)
    llr = np.full(len(frame), np.nan)
    if usable.any():
        llr[usable] = model.transform(matrix[usable] if inputs is None
                                      else inputs(frame.loc[usable], matrix[usable]))
        fused[usable] = [repr(float(x)) for x in llr[usable]]
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
            result["eval"] = {name: _figures(matrix[ok, j], labels[ok])
                              for j, name in enumerate(names)}
            result["eval"]["fusion"] = _figures(llr[ok], labels[ok])
    return result


def _figures(scores: np.ndarray, labels: np.ndarray) -> dict:
    return summary(scores, labels, p_target=0.01, llr=True)
