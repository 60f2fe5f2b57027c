"""Back end of i-vector systems: LDA, WCCN, length normalisation, cosine scoring and two-covariance PLDA.

* :class:`LDA` projects onto the directions maximising between-speaker over within-speaker scatter, scaled so
  the projected within-class covariance is the identity (and the between-class one diagonal).
* :class:`WCCN` (Hatch, Kajarekar & Stolcke, 2006) whitens the average within-class covariance.
* :func:`length_normalize` scales vectors to unit length (Garcia-Romero & Espy-Wilson, "Analysis of i-vector
  length normalization in speaker recognition systems", Interspeech 2011), which makes them close enough to
  Gaussian for PLDA.
* :class:`PLDA` is the two-covariance model (Ioffe, "Probabilistic linear discriminant analysis", ECCV 2006;
  Brümmer & de Villiers, "The speaker partitioning problem", Odyssey 2010): a speaker variable
  ``y ~ N(mu, B)`` and each of its vectors ``x = y + e``, ``e ~ N(0, W)``, trained by EM. Scores are
  log-likelihood ratios of "same speaker" against "different speakers".
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from speakerid._utils.estimator import BaseEstimator
from speakerid._utils.validation import check_is_fitted
from speakerid.exceptions import ParameterError

__all__ = ["length_normalize", "cosine_scores", "class_scatter", "LDA", "WCCN", "PLDA"]
#: What the NotFittedError of an untrained PLDA suggests.
_FIT_HINT = 'call fit() first'

_LOG_2PI = float(np.log(2.0 * np.pi))


def _check_xy(X, labels, what="X"):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) == 0 or not np.isfinite(X).all():
        raise ParameterError(f"{what} must be a finite, non-empty 2-D array, got shape {X.shape}")
    labels = np.asarray(labels)
    if labels.shape != (len(X),):
        raise ParameterError(f"labels must have one entry per row of {what} ({len(X)}), got shape {labels.shape}")
    classes, index = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ParameterError(f"need at least 2 classes (speakers), got {len(classes)}")
    return X, index, len(classes)


def _regularise(M, scale: float, rel: float = 1e-6) -> tuple[np.ndarray, bool]:
    """Symmetric ``M`` with its eigenvalues floored at ``rel * scale``; ``(matrix, whether any was floored)``.

    ``scale`` is a per-dimension variance of the data (so the floor follows the data's units); rank-deficient
    scatter (fewer vectors than dimensions, a constant dimension, speakers with one vector) becomes positive
    definite instead of making a factorisation fail.
    """
    M = (M + M.T) / 2
    values, vectors = np.linalg.eigh(M)
    floor = rel * max(scale, 1e-300)
    if values.min() >= floor:
        return M, False
    return (vectors * np.maximum(values, floor)) @ vectors.T, True


def _data_scale(X) -> float:
    """Mean per-dimension variance of ``X`` (the unit of the eigenvalue floors); 1.0 for constant data."""
    scale = float(np.var(X, axis=0).mean())
    return scale if scale > 0 else 1.0


def length_normalize(X) -> np.ndarray:
    """Rows of ``X`` scaled to unit Euclidean length (zero rows stay zero).

    >>> length_normalize([[3.0, 4.0], [0.0, 0.0]]).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=-1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def cosine_scores(models, tests) -> np.ndarray:
    """Cosine similarity of every model row against every test row, shape (n_models, n_tests).

    >>> cosine_scores([[1.0, 0.0]], [[2.0, 0.0], [0.0, 1.0]]).tolist()
    [[1.0, 0.0]]
    """
    return length_normalize(np.atleast_2d(models)) @ length_normalize(np.atleast_2d(tests)).T


def class_scatter(X, index, n_classes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(class means, counts, within, between)``: scatter matrices averaged over all rows.

    ``within = 1/n sum_i (x_i - m_s(i))(x_i - m_s(i))'`` and ``between = 1/n sum_s n_s (m_s - m)(m_s - m)'``.
    """
    counts = np.bincount(index, minlength=n_classes).astype(np.float64)
    means = np.zeros((n_classes, X.shape[1]))
    np.add.at(means, index, X)
    means /= counts[:, None]
    centred = X - means[index]
    within = centred.T @ centred / len(X)
    offsets = (means - X.mean(axis=0)) * np.sqrt(counts)[:, None]
    between = offsets.T @ offsets / len(X)
    return means, counts, within, between


class LDA(BaseEstimator):
    """Linear discriminant analysis to ``n_components`` dimensions (< number of classes).

    Solves ``S_b v = lambda S_w v`` with ``v' S_w v = 1``: after the projection the within-class scatter is the
    identity and the between-class scatter is ``diag(lambda)`` (largest first).

    Parameters
    ----------
    n_components : int
    reg : float
        Added to the diagonal of ``S_w`` (relative to its mean eigenvalue) so few samples per dimension stay
        solvable.

    Attributes
    ----------
    regularised_ : bool
        ``S_w`` still had eigenvalues below ``1e-6`` x the data's mean per-dimension variance (a singular
        within-class scatter, e.g. a constant dimension) and they were floored there.
    """

    def __init__(self, n_components=150, reg=1e-6):
        self.n_components = n_components
        self.reg = reg

    def fit(self, X, labels) -> LDA:
        X, index, n_classes = _check_xy(X, labels)
        dim = int(self.n_components)
        if not 1 <= dim < min(n_classes, X.shape[1] + 1):
            raise ParameterError(f"LDA n_components must be in [1, {min(n_classes - 1, X.shape[1])}] "
                                 f"({n_classes} speakers, {X.shape[1]} dimensions), got {self.n_components}")
        self.mean_ = X.mean(axis=0)
        _, _, within, between = class_scatter(X, index, n_classes)
        within += float(self.reg) * np.trace(within) / len(within) * np.eye(len(within))
        within, self.regularised_ = _regularise(within, _data_scale(X))
        values, vectors = scipy.linalg.eigh(between, within)       # v' S_w v = I, ascending values
        order = np.argsort(values)[::-1][:dim]
        self.eigenvalues_, self.components_ = values[order], vectors[:, order]
        return self

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "components_", _FIT_HINT)
        return (np.asarray(X, dtype=np.float64) - self.mean_) @ self.components_


class WCCN(BaseEstimator):
    """Within-class covariance normalisation: ``x -> B' x`` with ``B B' = W^{-1}``.

    ``W = 1/S sum_s 1/n_s sum_i (x_i - m_s)(x_i - m_s)'`` (the within-class covariance of each speaker,
    averaged over speakers; Hatch et al. 2006), so after the transform that average is the identity.
    ``regularised_`` says whether ``W`` had to be floored as in :class:`LDA`.
    """

    def __init__(self, reg=1e-6):
        self.reg = reg

    def fit(self, X, labels) -> WCCN:
        X, index, n_classes = _check_xy(X, labels)
        counts = np.bincount(index, minlength=n_classes).astype(np.float64)
        means = np.zeros((n_classes, X.shape[1]))
        np.add.at(means, index, X)
        means /= counts[:, None]
        centred = (X - means[index]) / np.sqrt(counts[index] * n_classes)[:, None]
        W = centred.T @ centred
        W += float(self.reg) * np.trace(W) / len(W) * np.eye(len(W))
        W, self.regularised_ = _regularise(W, _data_scale(X))
        self.transform_ = np.linalg.cholesky(np.linalg.inv(W))
        return self

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "transform_", _FIT_HINT)
        return np.asarray(X, dtype=np.float64) @ self.transform_


class PLDA(BaseEstimator):
    """Two-covariance PLDA trained by EM; scores are same-speaker log-likelihood ratios.

    Parameters
    ----------
    max_iter : int
        EM iterations after the closed-form start (class-mean scatter for ``B``, pooled scatter for ``W``).

    Attributes
    ----------
    mean_, between_, within_ : ndarray
        ``mu``, ``B`` and ``W``.
    transform_, psi_ : ndarray (d, d), (d,)
        Simultaneous diagonalisation: ``V' W V = I`` and ``V' B V = diag(psi)``; scores are computed per
        dimension in that basis.
    n_regularised_ : int
        How many times (start and every M-step, B and W counted apart) a covariance had eigenvalues below
        ``1e-6`` x the data's mean per-dimension variance and was floored there: rank-deficient statistics
        (fewer speakers or vectors than dimensions, speakers with one vector, constant dimensions).

    Notes
    -----
    Multi-enrollment scoring is by the book, not by averaging scores: a speaker enrolled with ``n`` vectors of
    mean ``a`` (in the diagonal basis) has the posterior ``y_k ~ N(n psi_k a_k / (1 + n psi_k),
    psi_k / (1 + n psi_k))``, and the LLR of a test ``b`` is
    ``log N(b; that mean, 1 + that variance) - log N(b; 0, 1 + psi)``. The mean of the enrollment vectors and
    their count are sufficient; with ``n = 1`` this is the usual pairwise LLR.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> speakers = rng.normal(0, 2, (50, 3))
    >>> X = np.repeat(speakers, 4, axis=0) + rng.normal(0, 0.5, (200, 3))
    >>> plda = PLDA().fit(X, np.repeat(np.arange(50), 4))
    >>> same, other = plda.score(X[:1], X[[1, 4]])[0]      # X[1]: the same speaker, X[4]: another one
    >>> bool(same > other)
    True
    """

    def __init__(self, max_iter=10):
        self.max_iter = max_iter

    def fit(self, X, labels) -> PLDA:
        X, index, n_classes = _check_xy(X, labels)
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 0):
            raise ParameterError(f"PLDA max_iter must be an integer >= 0, got {self.max_iter!r}")
        d = X.shape[1]
        means, counts, within, _ = class_scatter(X, index, n_classes)
        mu = X.mean(axis=0)
        scale = _data_scale(X)
        B, b_reg = _regularise(np.cov(means.T, bias=True).reshape(d, d), scale)
        W, w_reg = _regularise(within, scale)
        self.n_regularised_ = int(b_reg) + int(w_reg)
        sums = np.zeros((n_classes, d))
        np.add.at(sums, index, X)
        scatter = X.T @ X
        for _ in range(int(self.max_iter)):
            # E-step: posterior of every speaker variable y_s given its n_s vectors
            B_inv, W_inv = np.linalg.inv(B), np.linalg.inv(W)
            # the posterior covariance depends on the count only: one inverse per distinct count
            distinct, which = np.unique(counts, return_inverse=True)
            post_cov = np.linalg.inv(B_inv[None] + distinct[:, None, None] * W_inv[None])[which]
            post_mean = np.einsum("sij,sj->si", post_cov, B_inv @ mu + sums @ W_inv)
            second = post_cov + post_mean[:, :, None] * post_mean[:, None, :]
            # M-step
            mu = post_mean.mean(axis=0)
            B = second.mean(axis=0) - np.outer(mu, mu)
            W = (scatter - sums.T @ post_mean - post_mean.T @ sums
                 + np.einsum("s,sij->ij", counts, second)) / len(X)
            (B, b_reg), (W, w_reg) = _regularise(B, scale), _regularise(W, scale)
            self.n_regularised_ += int(b_reg) + int(w_reg)
        self.mean_, self.between_, self.within_ = mu, B, W
        self._diagonalise()
        return self

    @classmethod
    def from_params(cls, mean, between, within, **params) -> PLDA:
        """A fitted PLDA from ``mu``, ``B`` and ``W``."""
        model = cls(**params)
        model.mean_ = np.array(mean, dtype=np.float64)
        model.between_, model.within_ = np.array(between, dtype=np.float64), np.array(within, dtype=np.float64)
        d = len(model.mean_)
        if model.between_.shape != (d, d) or model.within_.shape != (d, d):
            raise ParameterError(f"PLDA shapes disagree: mean {model.mean_.shape}, between "
                                 f"{model.between_.shape}, within {model.within_.shape}")
        model._diagonalise()
        return model

    def _diagonalise(self):
        psi, V = scipy.linalg.eigh(self.between_, self.within_)
        self.psi_, self.transform_ = np.maximum(psi, 0.0), V


    def project(self, X) -> np.ndarray:
        """Vectors in the diagonal basis (``V'(x - mu)``)."""
        check_is_fitted(self, "transform_", _FIT_HINT)
        return (np.atleast_2d(np.asarray(X, dtype=np.float64)) - self.mean_) @ self.transform_

    def score(self, models, tests, counts=None) -> np.ndarray:
        """LLR of every model against every test vector, shape (n_models, n_tests).

        ``models`` holds each speaker's mean enrollment vector, ``counts`` how many vectors it averages
        (default 1 each); see the class notes.
        """
        a, b = self.project(models), self.project(tests)
        n = np.ones(len(a)) if counts is None else np.asarray(counts, dtype=np.float64).reshape(len(a))
        psi = self.psi_
        shrink = n[:, None] * psi / (1.0 + n[:, None] * psi)               # (S, d)
        pred_mean = shrink * a                                              # (S, d)
        pred_var = 1.0 + psi / (1.0 + n[:, None] * psi)                     # (S, d)
        tot = 1.0 + psi
        inv_var = 1.0 / pred_var
        # sum_k -(b - m)^2 / (2 v) expanded so the (S, T) cross term is one matrix product
        quad = (-0.5 * (pred_mean ** 2 * inv_var).sum(1)[:, None] + (pred_mean * inv_var) @ b.T
                - 0.5 * inv_var @ (b ** 2).T)
        const = -0.5 * np.log(pred_var).sum(1)[:, None] + 0.5 * np.log(tot).sum()
        return quad + const + 0.5 * ((b ** 2) / tot).sum(1)[None, :]
