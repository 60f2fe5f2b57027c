"""Diagonal-covariance Gaussian mixtures written for speed, MAP adaptation and log-likelihood-ratio scoring.

:class:`DiagGMM` trains by EM in float32 with frames processed in chunks: each chunk's component
log-likelihoods are one matrix product (see :mod:`speakerid.models._gmm_math`), its sufficient statistics one
more, accumulated in float64. Threads work on chunks in parallel (BLAS is then single-threaded per thread).

Variance floor: every variance is kept at or above ``var_floor`` times the data's per-dimension variance
(``1e-3`` by default, at least ``1e-10``), then ``reg_covar`` is added (as in scikit-learn). The floor also keeps
the float32 expansion precise (see :mod:`speakerid.models._gmm_math`).

Empty components, whose responsibility mass after an M-step is below 10 frames (below 0.1 n/K frames when the
data are tiny), are re-seeded by splitting the heaviest component: its mean moves by -0.2 sigma and the
re-seeded one's by +0.2 sigma, both keep its variance and get half its weight. An iteration that re-seeds never
counts as converged.

:func:`map_adapt` derives a speaker model from a UBM (Reynolds, Quatieri & Dunn, 2000); :mod:`speakerid.models.llr`
scores frames against many speaker models at once, exactly or with top-C Gaussian selection.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from speakerid._utils.estimator import BaseEstimator
from speakerid._utils.validation import check_is_fitted, check_random_state, resolve_jobs
from speakerid.exceptions import ParameterError
from speakerid.models import _gmm_math as gm

__all__ = ["DiagGMM", "map_adapt", "map_stats", "map_from_stats", "init_subsample"]
#: What the NotFittedError of an untrained DiagGMM suggests.
_FIT_HINT = 'call fit() or build it with DiagGMM.from_params()'

_INITS = ("kmeans++", "kmeans", "random")
_ADAPTABLE = ("weights", "means", "variances")
_MIN_COUNT = 10.0         # a component with less responsibility mass than 10 frames is re-seeded (Kaldi's
                          # min_gaussian_occupancy): one- or two-frame components sit on outliers at the floor
_SPLIT = 0.2              # re-seeding offset, in standard deviations
_ABS_FLOOR = 1e-10        # absolute variance floor under the relative one
_INIT_FRAMES = 40         # frames per component in the initialisation subsample (at least 10,000)


class DiagGMM(BaseEstimator):
    """Gaussian mixture with diagonal covariances, fitted by chunked float32 EM.

    Parameters
    ----------
    n_components : int
        Number of Gaussians K.
    max_iter : int
        EM iterations at most (0 keeps the initial parameters).
    tol : float
        Stop when the average frame log-likelihood changes by less than this between iterations.
    var_floor : float
        Relative variance floor: variances stay >= ``var_floor`` x the data's per-dimension variance.
    reg_covar : float
        Added to every variance after flooring (scikit-learn's ``reg_covar``).
    init : {"kmeans++", "kmeans", "random"}
        How initial means are drawn from a random subsample of ``max(10000, 40 K)`` frames (or all of them):
        k-means++ seeding (:func:`speakerid.models._gmm_math.kmeans_plusplus`: scikit-learn's draws, without
        importing it), scikit-learn KMeans, or random frames. Weights and variances then come from the
        partition of the subsample by nearest mean.
    weights_init, means_init, variances_init : array or None
        Initial parameters (shapes (K,), (K, D), (K, D)); any that is given replaces the computed one.
    chunk_size : int or None
        Frames per chunk; ``None`` sizes chunks so the (frames x K) float32 block is about 4 MB.
    n_jobs : int or None
        Threads over chunks (default -1: every core; ``None`` = 1, negative counts from the number of cores, see
        :func:`speakerid._utils.validation.resolve_jobs`).
    random_state : int, RandomState or None
        Seeds the subsample and the initialisation.
    verbose : int or bool
        Print the log-likelihood of every iteration to stderr.

    Attributes
    ----------
    weights_ : ndarray (K,)
    means_ : ndarray (K, D)
    covariances_ : ndarray (K, D)
        Diagonal variances.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Average frame log-likelihood at the last E-step (before the last M-step, as in scikit-learn).
    log_likelihood_history_ : list of float
        Average frame log-likelihood at every iteration's E-step.
    em_seconds_ : list of float
        Wall-clock seconds of every EM iteration (E-step statistics and M-step).
    n_reseeded_ : int
        Components re-seeded during training (occupancy below 10 frames after an M-step, summed over
        iterations).
    reseeded_last_ : list of int
        Components re-seeded by the last M-step: they died and were replaced by a split of the heaviest one.
    floored_components_ : list of int
        Components whose variances sit at the floor in at least half of the dimensions: they model
        (near-)identical frames (constant signals, tones, repeated frames), see :class:`GMMUBM`'s checks.
    n_features_in_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3, 1, (500, 2)), rng.normal(3, 1, (500, 2))])
    >>> gmm = DiagGMM(n_components=2, random_state=0).fit(X)
    >>> np.sort(gmm.means_[:, 0]).round(0)
    array([-3.,  3.])
    >>> bool(gmm.score(X) > gmm.score(X + 5))
    True
    """

    def __init__(self, n_components=256, *, max_iter=20, tol=1e-3, var_floor=1e-3, reg_covar=1e-6, init="kmeans++",
                 weights_init=None, means_init=None, variances_init=None, chunk_size=None, n_jobs=-1,
                 random_state=None, verbose=0):
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.var_floor = var_floor
        self.reg_covar = reg_covar
        self.init = init
        self.weights_init = weights_init
        self.means_init = means_init
        self.variances_init = variances_init
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        checks = [
            (gm.is_int(self.n_components) and self.n_components >= 1, "n_components", "an integer >= 1"),
            (gm.is_int(self.max_iter) and self.max_iter >= 0, "max_iter", "an integer >= 0"),
            (gm.is_real(self.tol) and self.tol >= 0, "tol", ">= 0"),
            (gm.is_real(self.var_floor) and 0 <= self.var_floor < 1, "var_floor", "in [0, 1)"),
            (gm.is_real(self.reg_covar) and self.reg_covar >= 0, "reg_covar", ">= 0"),
            (self.init in _INITS, "init", f"one of {_INITS}"),
            (self.chunk_size is None or gm.is_int(self.chunk_size) and self.chunk_size >= 1, "chunk_size",
             "None or an integer >= 1"),
            (self.n_jobs is None or gm.is_int(self.n_jobs) and self.n_jobs != 0, "n_jobs", "None or a non-zero integer"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise ParameterError(f"DiagGMM {name} must be {rule}, got {getattr(self, name)!r}")


    def _frames(self, X) -> np.ndarray:
        check_is_fitted(self, "means_", _FIT_HINT)
        X = gm.as_frames(X)
        if X.shape[1] != self.means_.shape[1]:
            raise ParameterError(f"X has {X.shape[1]} columns, the GMM was trained on {self.means_.shape[1]}")
        return X

    def _rows(self) -> int:
        return gm.chunk_rows(len(self.weights_), self.means_.shape[1], self.chunk_size)

    def _center(self) -> np.ndarray:
        return self.weights_ @ self.means_

    def _pt32(self, center) -> np.ndarray:
        return gm.transposed32(gm.param_matrix(self.weights_, self.means_, self.covariances_, center))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_params(cls, weights, means, variances, **params) -> DiagGMM:
        """A fitted model from parameters (weights are renormalised when they sum to 1 within 1e-3)."""
        w = np.array(weights, dtype=np.float64)
        mu = np.array(means, dtype=np.float64)
        var = np.array(variances, dtype=np.float64)
        if mu.ndim != 2 or w.shape != (mu.shape[0],) or var.shape != mu.shape or mu.size == 0:
            raise ParameterError(f"inconsistent GMM parameter shapes: weights {w.shape}, means {mu.shape}, "
                                 f"variances {var.shape} (expected (K,), (K, D), (K, D))")
        if not (np.isfinite(w).all() and np.isfinite(mu).all() and np.isfinite(var).all()):
            raise ParameterError("GMM parameters hold NaN or infinite values")
        if (var <= 0).any() or (w < 0).any() or abs(w.sum() - 1.0) > 1e-3:
            raise ParameterError(f"GMM variances must be > 0 and weights >= 0 summing to 1 (sum {w.sum():.6g})")
        model = cls(**{**params, "n_components": mu.shape[0]})
        model.weights_, model.means_, model.covariances_ = w / w.sum(), mu, var
        model.converged_, model.n_iter_, model.n_reseeded_ = True, 0, 0
        model.reseeded_last_, model.floored_components_ = [], []
        model.lower_bound_, model.log_likelihood_history_ = -np.inf, []
        model.n_features_in_ = mu.shape[1]
        return model

    # ------------------------------------------------------------------ training
    def fit(self, X, y=None) -> DiagGMM:
        """Estimate the parameters by EM on frames ``X`` of shape (n_frames, n_dims)."""
        self._check_params()
        X = gm.as_frames(X)
        n, d = X.shape
        k = int(self.n_components)
        if n < k:
            raise ParameterError(f"{n} frames cannot fit {k} components: give at least {k} frames (ideally "
                                 f"10 or more per component) or lower n_components")
        rows, jobs = gm.chunk_rows(k, d, self.chunk_size), resolve_jobs(self.n_jobs)
        sums, squares = gm.map_chunks(lambda a, b, ws: gm.moments(X[a:b]), n, rows, jobs, reduce=gm.add_stats)
        center, data_var, floor = self._data_floor(sums, squares, n)
        w, mu, var = self._initial_params(X, center, data_var, floor, check_random_state(self.random_state))
        c32 = center.astype(np.float32)

        def e_step(pt):
            return gm.map_chunks(lambda a, b, ws: gm.em_stats_chunk(X[a:b], c32, pt, ws), n, rows, jobs,
                                 reduce=gm.add_stats)

        return self._run_em(e_step, n, d, center, floor, (w, mu, var))

    def _data_floor(self, sums, squares, n):
        """``(center, data_var, floor)`` from the per-dimension sums and sums of squares of ``n`` frames."""
        center = sums / n
        data_var = np.maximum(squares / n - center * center, 0.0)
        return center, data_var, np.maximum(self.var_floor * data_var, _ABS_FLOOR)

    def _run_em(self, e_step, n, d, center, floor, params) -> DiagGMM:
        """EM from initial ``params`` ``(w, mu, var)``; ``e_step(pt)`` returns the summed frame log-likelihood and
        the float64 ``[sum r x, sum r, sum r x^2]`` statistics (K, 2D+1) of all ``n`` frames under the transposed
        float32 parameter matrix ``pt`` (chunks in memory here, shards on workers in
        :mod:`speakerid.models.sharded`). Sets the fitted attributes; returns ``self``."""
        w, mu, var = params
        history, seconds, converged, reseeded, prev, new = [], [], False, 0, -np.inf, []
        for it in range(1, int(self.max_iter) + 1):
            tic = time.perf_counter()
            ll, stats = e_step(gm.transposed32(gm.param_matrix(w, mu, var, center)))
            ll /= n
            w, mu, var, new = gm.m_step(stats, n, center, floor, self.reg_covar, _MIN_COUNT, _SPLIT)
            n_new = len(new)
            history.append(ll)
            seconds.append(time.perf_counter() - tic)
            reseeded += n_new
            if self.verbose:
                print(f"DiagGMM EM iteration {it}/{self.max_iter}: avg log-likelihood {ll:.6f} "
                      f"(change {ll - prev:+.6f}), {n_new} re-seeded, {time.perf_counter() - tic:.2f} s",
                      file=sys.stderr)
            if n_new == 0 and abs(ll - prev) < self.tol:
                converged = True
                break
            prev = ll
        self.weights_, self.means_, self.covariances_ = w, mu, var
        self.converged_, self.n_iter_, self.n_reseeded_ = converged, len(history), reseeded
        self.reseeded_last_ = [int(j) for j in new] if history else []
        self.floored_components_ = [int(j) for j in gm.floored_components(var, floor, self.reg_covar)]
        self.log_likelihood_history_, self.em_seconds_ = history, seconds
        self.lower_bound_ = history[-1] if history else -np.inf
        self.n_features_in_ = d
        return self

    def _initial_params(self, X, center, data_var, floor, rng):
        n, d = X.shape
        k = int(self.n_components)
        if self.means_init is not None:
            mu = gm.checked_array(self.means_init, (k, d), "means_init")
            w, var = np.full(k, 1.0 / k), np.tile(np.maximum(data_var, floor) + self.reg_covar, (k, 1))
        else:
            w, mu, var = self._seed_params(X[init_subsample(n, k, rng)], center, data_var, floor, rng)
        if self.weights_init is not None:
            w = gm.checked_array(self.weights_init, (k,), "weights_init")
            if (w < 0).any() or abs(w.sum() - 1) > 1e-3:
                raise ParameterError("weights_init must be >= 0 and sum to 1")
            w = w / w.sum()
        if self.variances_init is not None:
            var = gm.checked_array(self.variances_init, (k, d), "variances_init")
            if (var <= 0).any():
                raise ParameterError("variances_init must be > 0")
        return w, mu, var

    def _seed_params(self, sub, center, data_var, floor, rng):
        """Weights, means and variances seeded on the frames ``sub`` (the :func:`init_subsample` rows)."""
        k = int(self.n_components)
        sub = np.asarray(sub - center, dtype=np.float32)
        if self.init == "kmeans++":
            seeds = sub[gm.kmeans_plusplus(sub, k, rng)]
        elif self.init == "kmeans":
            from sklearn.cluster import KMeans
            seeds = KMeans(k, n_init=1, random_state=rng).fit(sub).cluster_centers_
        else:
            seeds = sub[rng.choice(len(sub), k, replace=False)]
        w, mu, var = gm.partition_stats(sub, np.asarray(seeds, np.float32), data_var, floor)
        return w, mu + center, var + self.reg_covar

    # ------------------------------------------------------------------ scoring
    def score_samples(self, X) -> np.ndarray:
        """Log-likelihood of every frame, float64 array of shape (n_frames,)."""
        X = self._frames(X)
        center = self._center()
        c32, pt = center.astype(np.float32), self._pt32(center)

        def chunk(a, b, ws):
            return gm.logsumexp_(gm.log_lik(gm.augment(X[a:b], c32, ws), pt, ws), ws)[0]

        return np.concatenate(gm.map_chunks(chunk, len(X), self._rows(), resolve_jobs(self.n_jobs)))

    def score(self, X, y=None) -> float:
        """Average frame log-likelihood of ``X``."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X) -> np.ndarray:
        """Component posteriors (responsibilities), float64 array of shape (n_frames, K)."""
        X = self._frames(X)
        center = self._center()
        c32, pt = center.astype(np.float32), self._pt32(center)

        def chunk(a, b, ws):
            L = gm.log_lik(gm.augment(X[a:b], c32, ws), pt, ws)
            s = gm.logsumexp_(L, ws)[1]
            return L / s.astype(np.float64)[:, None]

        return np.concatenate(gm.map_chunks(chunk, len(X), self._rows(), resolve_jobs(self.n_jobs)))

    def predict(self, X) -> np.ndarray:
        """Most likely component of every frame."""
        return self.predict_proba(X).argmax(axis=1)


def init_subsample(n_frames: int, n_components: int, rng) -> np.ndarray:
    """Sorted rows of the seeded initialisation subsample: ``max(10000, 40 K)`` of ``n_frames`` (or all).

    The frames are only indexed, so a trainer that keeps its frames on disk (:mod:`speakerid.models.sharded`)
    reads these rows alone and draws the same subsample as :meth:`DiagGMM.fit` on the concatenated frames.
    """
    size = min(n_frames, max(10000, _INIT_FRAMES * int(n_components)))
    return np.sort(rng.choice(n_frames, size, replace=False))


# ---------------------------------------------------------------------- MAP adaptation
def map_adapt(ubm: DiagGMM, X, relevance_factor=16.0, adapt=("means",)) -> DiagGMM:
    """MAP-adapt a UBM to frames ``X`` (Reynolds, Quatieri & Dunn, 2000).

    With n_k the UBM responsibility mass of component k and alpha_k = n_k / (n_k + r)::

        w_k'   = alpha_k n_k / T + (1 - alpha_k) w_k          (then renormalised to sum 1)
        mu_k'  = alpha_k E_k[x] + (1 - alpha_k) mu_k
        s_k'   = alpha_k E_k[x^2] + (1 - alpha_k) (s_k + mu_k^2) - mu_k'^2   (floored)

    where mu_k' is the adapted mean when means are adapted, else the UBM mean. The variance floor is the UBM's
    ``var_floor`` times the mixture's per-dimension variance (at least 1e-10).

    Parameters
    ----------
    ubm : DiagGMM
        Fitted background model.
    X : array (n_frames, n_dims)
    relevance_factor : float
        r > 0; the larger, the closer the result stays to the UBM (``inf`` returns the UBM).
    adapt : tuple of str or str
        Any of "weights", "means", "variances".

    Returns
    -------
    DiagGMM
        A new fitted model with the UBM's hyper-parameters.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ubm = DiagGMM.from_params([0.5, 0.5], [[-1.0], [1.0]], [[1.0], [1.0]])
    >>> spk = map_adapt(ubm, rng.normal(2.0, 1.0, (200, 1)), relevance_factor=16.0)
    >>> bool(spk.means_[1, 0] > 1.5), bool(abs(spk.means_[0, 0] + 1) < abs(spk.means_[1, 0] - 1))
    (True, True)
    """
    X = ubm._frames(X)
    return map_from_stats(ubm, map_stats(ubm, X), relevance_factor, adapt)


def map_stats(ubm: DiagGMM, X) -> np.ndarray:
    """The sufficient statistics of MAP adaptation: float64 (n_components, 2 * n_dims + 2).

    Columns: the first-order sums of the frames (centred as the UBM computes them), the zeroth-order
    (responsibility) mass, the second-order sums, and the frame count (same in every row). They add up over
    sessions: :func:`map_from_stats` of the sum of two sessions' statistics is the model adapted to both at once
    (enrollment that grows, e.g. ``speakerid enroll --add``)."""
    X = ubm._frames(X)
    center = ubm._center()
    c32, pt = center.astype(np.float32), ubm._pt32(center)
    stats = gm.map_chunks(lambda a, b, ws: gm.em_stats_chunk(X[a:b], c32, pt, ws), len(X), ubm._rows(),
                          resolve_jobs(ubm.n_jobs), reduce=gm.add_stats)[1]
    return np.hstack([np.asarray(stats, np.float64), np.full((len(stats), 1), float(len(X)))])


def map_from_stats(ubm: DiagGMM, stats, relevance_factor=16.0, adapt=("means",)) -> DiagGMM:
    """The MAP-adapted model of :func:`map_adapt` from statistics of :func:`map_stats` (summed over sessions)."""
    adapt = (adapt,) if isinstance(adapt, str) else tuple(adapt)
    if not adapt or any(a not in _ADAPTABLE for a in adapt):
        raise ParameterError(f"adapt must name some of {_ADAPTABLE}, got {adapt!r}")
    r = float(relevance_factor)
    if not r > 0:
        raise ParameterError(f"relevance_factor must be > 0, got {relevance_factor!r}")
    stats = np.asarray(stats, np.float64)
    d = ubm.means_.shape[1]
    if stats.shape != (len(ubm.weights_), 2 * d + 2):
        raise ParameterError(f"MAP statistics of shape {stats.shape} do not fit a UBM of "
                             f"{ubm.means_.shape[0]} components in {ubm.means_.shape[1]} dimensions")
    n_frames = stats[0, -1]
    center = ubm._center()
    nk = stats[:, d]
    alpha = (nk / (nk + r))[:, None]
    safe = np.maximum(nk, 1e-300)[:, None]
    mu0, var0 = ubm.means_ - center, ubm.covariances_
    mu = alpha * (stats[:, :d] / safe) + (1 - alpha) * mu0 if "means" in adapt else mu0
    w = ubm.weights_
    if "weights" in adapt:
        w = alpha[:, 0] * nk / n_frames + (1 - alpha[:, 0]) * w
        w = w / w.sum()
    var = var0
    if "variances" in adapt:
        floor = np.maximum(ubm.var_floor * gm.mixture_variance(ubm.weights_, ubm.means_, var0), _ABS_FLOOR)
        second = stats[:, d + 1:2 * d + 1] / safe
        var = np.maximum(alpha * second + (1 - alpha) * (var0 + mu0 * mu0) - mu * mu, floor)
    return DiagGMM.from_params(w, mu + center, var, **{k: v for k, v in ubm.get_params().items()
                                                       if k not in ("weights_init", "means_init", "variances_init")})
