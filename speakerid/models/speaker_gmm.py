"""Per-speaker GMMs trained by EM on each speaker's own frames: the honest baseline beside GMM-UBM.

Each speaker gets an independent :class:`~speakerid.models.gmm.DiagGMM` (default 16 components). A trial's score
is the test frames' average log-likelihood under the claimed speaker's model, optionally normalised by
subtracting the average log-likelihood under a UBM (a likelihood ratio) or the mean of a cohort of other
speakers' models.
"""

from __future__ import annotations

import numpy as np

from speakerid._utils.estimator import BaseEstimator
from speakerid.exceptions import ModelFormatError, ParameterError
from speakerid.models.gmm import DiagGMM
from speakerid.models.gmm_ubm import _stack_frames

__all__ = ["SpeakerGMM"]

_NORMALIZE = ("none", "ubm", "cohort")


class SpeakerGMM(BaseEstimator):
    """One EM-trained GMM per speaker.

    Parameters
    ----------
    n_components : int
        Gaussians per speaker (reduced automatically when a speaker has few frames: at least 10 frames per
        component are kept so EM stays well-posed).
    max_iter, tol, random_state
        EM settings.
    normalize : {"none", "ubm", "cohort"}
        Score normalisation: raw average log-likelihood, minus the UBM's, or minus the mean of the other
        scored speakers' (a cohort).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> gmm = SpeakerGMM(n_components=2, random_state=0)
    >>> a = gmm.enroll(rng.normal(0.0, 1.0, size=(400, 3)))
    >>> b = gmm.enroll(rng.normal(3.0, 1.0, size=(400, 3)))
    >>> scores = gmm.score([a, b], rng.normal(0.0, 1.0, size=(200, 3)))
    >>> bool(scores[0] > scores[1])
    True
    """

    def __init__(self, n_components=16, max_iter=50, tol=1e-3, random_state=0, normalize="none"):
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.normalize = normalize

    def enroll(self, X) -> dict:
        """Fit a GMM to one speaker's frames; return it as a dict of arrays."""
        if int(self.n_components) < 1:
            raise ParameterError(f"n_components must be >= 1, got {self.n_components}")
        X = _stack_frames(X, None, 1, "per-speaker GMM enrollment", strict=True)
        n_components = max(1, min(int(self.n_components), X.shape[0] // 10))
        gmm = DiagGMM(n_components=n_components, max_iter=self.max_iter, tol=self.tol,
                      random_state=self.random_state).fit(X)
        return {"weights": gmm.weights_.astype(np.float32), "means": gmm.means_.astype(np.float32),
                "variances": gmm.covariances_.astype(np.float32)}

    def score(self, models, X, ubm: DiagGMM | None = None) -> np.ndarray:
        """Average log-likelihood of frames ``X`` under each speaker model, normalised as configured."""
        if self.normalize not in _NORMALIZE:
            raise ParameterError(f"normalize must be one of {_NORMALIZE}, got {self.normalize!r}")
        X = _stack_frames(X)
        scores = np.array([self._as_gmm(m, X.shape[1]).score(X) for m in models], dtype=np.float64)
        if self.normalize == "ubm":
            if ubm is None:
                raise ParameterError("normalize='ubm' needs a UBM: train one (train-ubm) or use normalize='none'")
            scores -= float(ubm.score(X))
        elif self.normalize == "cohort" and len(scores) > 1:
            total = scores.sum()
            scores = scores - (total - scores) / (len(scores) - 1)
        return scores

    @staticmethod
    def _as_gmm(model: dict, n_dims: int) -> DiagGMM:
        try:
            gmm = DiagGMM.from_params(model["weights"], model["means"], model["variances"])
        except KeyError as exc:
            raise ModelFormatError(f"speaker GMM lacks array {exc}") from None
        if gmm.means_.shape[1] != n_dims:
            raise ParameterError(f"features have {n_dims} columns, the speaker model expects {gmm.means_.shape[1]}")
        return gmm
