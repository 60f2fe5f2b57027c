"""Total-variability modelling: Baum-Welch statistics from a UBM, the T matrix by EM, i-vector extraction.

An utterance's GMM mean supervector is modelled as ``M = m + T w`` with ``w ~ N(0, I)`` of low rank R
(Dehak, Kenny, Dehak, Dumouchel & Ouellet, "Front-end factor analysis for speaker verification", IEEE TASLP
2011). Everything is computed from the utterance's zeroth- and centred first-order Baum-Welch statistics::

    N_c = sum_t g_tc          F_c = sum_t g_tc (x_t - m_c)          (g_tc: UBM posterior of component c)

In the space whitened by the UBM covariances (``T^_c = S_c^{-1/2} T_c``, ``F^_c = S_c^{-1/2} F_c``) the posterior
of ``w`` is Gaussian (Kenny, Boulianne & Dumouchel, "Eigenvoice modeling with sparse training data", IEEE TSAP
2005)::

    precision  L = I + sum_c N_c T^_c' T^_c           mean  E[w] = L^{-1} T^' F^

and the i-vector is ``E[w]``. The matrices ``T^_c' T^_c`` are precomputed, so each utterance costs one weighted
sum (a GEMM over a batch of utterances) and one R x R solve. T is trained by EM (Kenny et al. 2005): with
``E[ww'] = L^{-1} + E[w]E[w]'``, ``T^_c = (sum_u F^_uc E[w_u]') (sum_u N_uc E[w_u w_u'])^{-1}``, followed by
the minimum-divergence step (Kenny, Ouellet, Dehak, Gupta & Dumouchel, "A study of interspeaker variability
in speaker verification", IEEE TASLP 2008): ``T <- T chol(mean_u E[w_u w_u'])``,
which re-estimates the prior's covariance (its mean is kept at zero, hence the uncentred second moment) and
folds it back into T. Both steps never lower the likelihood of
the statistics, whose T-dependent part per utterance is ``1/2 F^'T^ L^{-1} T^'F^ - 1/2 log|L|``
(:meth:`TotalVariability.log_likelihood`).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import scipy.linalg

from speakerid._utils.blas import one_blas_thread
from speakerid._utils.estimator import BaseEstimator
from speakerid._utils.validation import check_is_fitted, resolve_jobs
from speakerid.exceptions import ParameterError
from speakerid.models import _gmm_math as gm
from speakerid.models.gmm import DiagGMM

__all__ = ["baum_welch_stats", "TotalVariability", "MIN_OCCUPANCY"]
#: What the NotFittedError of an untrained TotalVariability suggests.
_FIT_HINT = 'call fit() or from_params()'

#: Components with less total occupancy (frames, summed over the training utterances) keep T_c = 0.
MIN_OCCUPANCY = 1.0


def _add_sums(acc, item):
    """``reduce`` of the E-step batches: adds (log-likelihood, A, C, second moment) in place."""
    for total, part in zip(acc[1:], item[1:]):
        total += part
    return (acc[0] + item[0], *acc[1:])


def _symmetric_from_lower(M):
    """(..., R, R) symmetric matrices from the lower triangles of ``M`` (the upper ones are ignored)."""
    lower = np.tril(M)
    return lower + np.swapaxes(np.tril(M, -1), -1, -2)


def _posterior(L, rhs):
    """Posterior of ``w`` for a stack of precisions ``L`` (n, R, R, lower triangles read) and ``rhs`` (n, R).

    Returns ``(log_det (n,), means L^-1 rhs (n, R), second moments L^-1 + E[w]E[w]' (n, R, R))``, the last
    valid in its lower triangles only. One Cholesky factorisation per utterance (batched) gives the
    log-determinant, the solve (LAPACK ``potrs``) and the inverse (``potri``, in place in the factor: a third
    of the work of an LU inverse). These are R x R problems: BLAS runs single-threaded, because a
    multi-threaded BLAS on many small matrices mostly waits for its threads.
    """
    with one_blas_thread():
        chol = np.linalg.cholesky(L)                        # lower G, L = G G'; its upper triangle is zero
        log_det = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        w = np.empty(rhs.shape)
        for i in range(len(chol)):
            upper = chol[i].T                               # U = G' as a Fortran-ordered view: no copy
            w[i] = scipy.linalg.lapack.dpotrs(upper, rhs[i], lower=0)[0]
            info = scipy.linalg.lapack.dpotri(upper, lower=0, overwrite_c=1)[1]
            if info != 0:
                raise np.linalg.LinAlgError(f"potri failed on utterance {i} (info {info})")
            chol[i] += np.outer(w[i], w[i])                 # lower triangle: L^-1 + E[w]E[w]'
    return log_det, w, chol


def _m_step(A, C, empty):
    """``T^_c = C_c A_c^{-1}`` for every component (A_c symmetric positive definite); ``(T^ (K, D, R), n ridged)``.

    Empty components keep ``T^_c = 0``; a system that is not numerically positive definite gets a ridge of
    ``1e-10 * trace(A_c) / R`` on its diagonal (and again x100 until the Cholesky succeeds).
    """
    k, d, r = C.shape
    Tw = np.zeros((k, d, r))
    n_ridged = 0
    for c in np.flatnonzero(~empty):
        ridge, system = 0.0, A[c]
        for _ in range(8):
            try:
                factor = scipy.linalg.cho_factor(system, lower=True, check_finite=False)
                break
            except np.linalg.LinAlgError:
                ridge = 1e-10 * max(np.trace(A[c]) / r, 1e-300) if ridge == 0 else ridge * 100
                system = A[c] + ridge * np.eye(r)
        else:
            raise np.linalg.LinAlgError(f"T-matrix M-step: component {c} has no positive definite system")
        n_ridged += ridge > 0
        Tw[c] = scipy.linalg.cho_solve(factor, C[c].T, check_finite=False).T
    return Tw, int(n_ridged)


def _utterance_stats(X, means_c, c32, pt, top_c, rows, ws):
    """``(N, F)`` of one utterance: float64 (K,) and (K, D), F centred at the component means."""
    n, d = X.shape
    k = pt.shape[1]
    N, F = np.zeros(k), np.zeros((k, d))
    for a in range(0, n, rows):
        A = gm.augment(X[a:a + rows], c32, ws)
        L = gm.log_lik(A, pt, ws)
        if top_c:
            idx, V = gm.top_c_select(L, top_c)                    # (c, rows) each; L is overwritten
            post = np.exp(V - gm.logsumexp0(V)).astype(np.float32)
            R = ws.get("R", L.shape)
            R.fill(0.0)
            np.put_along_axis(R, idx.T, post.T, axis=1)
        else:
            R = L                                                 # exp(L - rowmax), normalised in place
            s = gm.logsumexp_(L, ws)[1]
            R /= s[:, None]
        N += R.sum(axis=0, dtype=np.float64)
        F += np.matmul(R.T, A[:, :d], out=ws.get("F", (k, d)))
    F -= N[:, None] * means_c
    return N, F


def baum_welch_stats(ubm: DiagGMM, frames_list, top_c=None, n_jobs=1) -> tuple[np.ndarray, np.ndarray]:
    """Zeroth- and centred first-order Baum-Welch statistics of every utterance against a UBM.

    The UBM posteriors come from the same float32 GEMM as :meth:`DiagGMM.predict_proba` (one matrix product
    per chunk of frames); with ``top_c`` only the C most likely components of each frame keep a posterior
    (renormalised over them: the top-C selection of :func:`~speakerid.models._gmm_math.top_c_select`).

    Parameters
    ----------
    ubm : DiagGMM
    frames_list : list of arrays (n_frames_u, D)
    top_c : int or None
        ``None`` or 0 uses the full posteriors.
    n_jobs : int
        Threads over utterances.

    Returns
    -------
    N : ndarray (n_utterances, K)
        ``sum_t g_tc``.
    F : ndarray (n_utterances, K, D)
        ``sum_t g_tc (x_t - m_c)``.

    Examples
    --------
    >>> ubm = DiagGMM.from_params([0.5, 0.5], [[-5.0], [5.0]], [[1.0], [1.0]])
    >>> N, F = baum_welch_stats(ubm, [np.array([[-4.0], [5.5], [5.5]])])
    >>> N.round(3).tolist(), F.round(3).tolist()
    ([[1.0, 2.0]], [[[1.0], [1.0]]])
    """
    check_is_fitted(ubm, "means_", "call fit() or build it with DiagGMM.from_params()")
    frames_list = [gm.as_frames(f, f"frames_list[{i}]") for i, f in enumerate(frames_list)]
    if not frames_list:
        raise ParameterError("no utterances given")
    k, d = ubm.means_.shape
    for i, X in enumerate(frames_list):
        if X.shape[1] != d:
            raise ParameterError(f"frames_list[{i}] has {X.shape[1]} columns, the UBM was trained on {d}")
    if top_c is not None and not (gm.is_int(top_c) and top_c >= 0):
        raise ParameterError(f"top_c must be None or an integer >= 0, got {top_c!r}")
    c = int(top_c) if top_c and top_c < k else None
    center = ubm._center()
    c32, pt = center.astype(np.float32), ubm._pt32(center)
    means_c = ubm.means_ - center
    rows = ubm._rows()

    def batch(a, b, ws):
        return [_utterance_stats(frames_list[i], means_c, c32, pt, c, rows, ws) for i in range(a, b)]

    per_batch = max(1, len(frames_list) // (8 * max(1, resolve_jobs(n_jobs))))
    results = [s for part in gm.map_chunks(batch, len(frames_list), per_batch, resolve_jobs(n_jobs))
               for s in part]
    return np.stack([r[0] for r in results]), np.stack([r[1] for r in results])


class TotalVariability(BaseEstimator):
    """Total-variability (i-vector) extractor trained by EM on Baum-Welch statistics.

    Parameters
    ----------
    rank : int
        Dimension R of the i-vectors (100-400 is usual; at most ``K * D``).
    max_iter : int
        EM iterations.
    min_divergence : bool
        Apply the minimum-divergence step after every M-step.
    batch_size : int
        Utterances per batched E-step / extraction (memory ~ ``batch_size * R**2`` floats).
    random_state : int
        Seeds the random initial T.
    verbose : bool
        One line per EM iteration on stderr (average log-likelihood, time).
    n_jobs : int
        Threads over batches of utterances in the E-step (-1: every core).

    Attributes
    ----------
    T_ : ndarray (K, D, R)
        The total-variability matrix in the feature space.
    variances_ : ndarray (K, D)
        The UBM covariances the statistics are whitened with.
    log_likelihood_history_ : list of float
        Average per-utterance T-dependent log-likelihood of the training statistics before each M-step.
    occupancy_ : ndarray (K,)
        Total occupancy ``sum_u N_uc`` of every component in the training statistics (frames).
    empty_components_, n_empty_components_ : list of int, int
        Components with occupancy below :data:`MIN_OCCUPANCY`: their T_c is zero (not estimated).
    n_regularised_ : int
        M-step systems (component x iteration) that needed a ridge to be solved.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> N = rng.uniform(5, 20, (50, 4))
    >>> F = rng.normal(size=(50, 4, 3)) * np.sqrt(N)[:, :, None]
    >>> tv = TotalVariability(rank=2, max_iter=3).fit(N, F, np.ones((4, 3)))
    >>> tv.transform(N[:2], F[:2]).shape
    (2, 2)
    """

    def __init__(self, rank=200, max_iter=10, min_divergence=True, batch_size=256, random_state=0,
                 verbose=False, n_jobs=-1):
        self.rank = rank
        self.max_iter = max_iter
        self.min_divergence = min_divergence
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ checks
    def _check_params(self, k, d):
        checks = [(gm.is_int(self.rank) and 1 <= self.rank <= k * d, "rank", f"an integer in [1, {k * d}]"),
                  (gm.is_int(self.max_iter) and self.max_iter >= 0, "max_iter", "an integer >= 0"),
                  (gm.is_int(self.batch_size) and self.batch_size >= 1, "batch_size", "an integer >= 1")]
        for ok, name, rule in checks:
            if not ok:
                raise ParameterError(f"TotalVariability {name} must be {rule}, got {getattr(self, name)!r}")

    @staticmethod
    def _check_stats(N, F, k=None, d=None):
        N, F = np.asarray(N, dtype=np.float64), np.asarray(F, dtype=np.float64)
        if N.ndim != 2 or F.ndim != 3 or F.shape[:2] != N.shape or len(N) == 0:
            raise ParameterError(f"statistics must be N (n, K) and F (n, K, D), got {N.shape} and {F.shape}")
        if k is not None and F.shape[1:] != (k, d):
            raise ParameterError(f"statistics are for K={F.shape[1]}, D={F.shape[2]}; the extractor has "
                                 f"K={k}, D={d}")
        if not (np.isfinite(N).all() and np.isfinite(F).all()) or (N < 0).any():
            raise ParameterError("statistics must be finite with N >= 0")
        return N, F


    # ------------------------------------------------------------------ construction
    @classmethod
    def from_params(cls, T, variances, **params) -> TotalVariability:
        """A fitted extractor from ``T`` (K, D, R) and the UBM ``variances`` (K, D)."""
        T, var = np.array(T, dtype=np.float64), np.array(variances, dtype=np.float64)
        if T.ndim != 3 or var.shape != T.shape[:2] or not np.isfinite(T).all() or (var <= 0).any():
            raise ParameterError(f"inconsistent extractor parameters: T {T.shape}, variances {var.shape}")
        model = cls(**{**params, "rank": T.shape[2]})
        model.T_, model.variances_ = T, var
        model.log_likelihood_history_, model.empty_components_, model.n_empty_components_ = [], [], 0
        model.n_regularised_ = 0
        model._precompute()
        return model

    def _precompute(self):
        k, d, r = self.T_.shape
        self._Tw = (self.T_ / np.sqrt(self.variances_)[:, :, None]).reshape(k * d, r)
        tw = self._Tw.reshape(k, d, r)
        self._TT = np.einsum("kdr,kds->krs", tw, tw).reshape(k, r * r)
        # lower triangles only (flat indices into R x R): the two GEMMs over components touch half the entries
        self._lower = np.ravel_multi_index(np.tril_indices(r), (r, r))
        self._TTp = self._TT[:, self._lower]

    def _whiten(self, F):
        return (F / np.sqrt(self.variances_)).reshape(len(F), -1)

    # ------------------------------------------------------------------ training
    def fit(self, N, F, variances) -> TotalVariability:
        """Train T by EM on statistics ``N`` (n, K) and ``F`` (n, K, D) computed with a UBM of ``variances``.

        Components whose total occupancy ``sum_u N_uc`` is below :data:`MIN_OCCUPANCY` frames have no data to
        estimate ``T_c`` from: their rows of T are set to zero (such a component adds nothing to any i-vector)
        and listed in ``empty_components_``. A component's M-step system that is not numerically positive
        definite is solved with a ridge of ``1e-10 * trace / R`` and counted in ``n_regularised_``.
        """
        N, F = self._check_stats(N, F)
        n, k, d = F.shape
        self._check_params(k, d)
        var = np.asarray(variances, dtype=np.float64)
        if var.shape != (k, d) or not (var > 0).all():
            raise ParameterError(f"variances must be positive with shape {(k, d)}, got {var.shape}")
        self.variances_ = var
        Fw = self._whiten(F)
        self._start(N.sum(axis=0), float(np.mean(Fw ** 2)) / max(float(np.mean(N)), 1e-10))
        return self._run_em(lambda: self._e_step(N, Fw), n)

    def _start(self, occupancy, spread: float) -> None:
        """The random initial T (``variances_`` set), scaled to ``spread``: the mean squared whitened first-order
        statistic over the mean zeroth-order one. ``occupancy`` (K,) is ``sum_u N_uc``."""
        k, d = self.variances_.shape
        r = int(self.rank)
        rng = np.random.default_rng(self.random_state)
        empty = occupancy < MIN_OCCUPANCY
        # start from a random T scaled to the spread of the normalised first-order statistics
        self.T_ = rng.standard_normal((k, d, r)) * np.sqrt(spread / r) * np.sqrt(self.variances_)[:, :, None]
        self.T_[empty] = 0.0
        self._precompute()
        self.log_likelihood_history_ = []
        self.empty_components_ = [int(c) for c in np.flatnonzero(empty)]
        self.n_empty_components_ = len(self.empty_components_)
        self.occupancy_ = occupancy
        self.n_regularised_ = 0
        self.n_features_in_ = d

    def _run_em(self, e_step, n: int) -> TotalVariability:
        """EM from the current T: ``e_step()`` returns the summed (log-likelihood, A (K, R, R), C (K*D, R),
        sum_u E[ww']) of all ``n`` utterances (:meth:`_e_step` here; shards on workers in
        :mod:`speakerid.models.sharded_ivector`)."""
        k, d, r = self.T_.shape
        empty = np.zeros(k, dtype=bool)
        empty[self.empty_components_] = True
        var = self.variances_
        self.em_seconds_ = []
        for it in range(1, int(self.max_iter) + 1):
            tic = time.perf_counter()
            ll, A, C, second = e_step()
            self.log_likelihood_history_.append(ll / n)
            Tw, n_reg = _m_step(A, C.reshape(k, d, r), empty)
            self.n_regularised_ += n_reg
            if self.min_divergence:
                Tw = Tw @ np.linalg.cholesky(second / n)
            self.T_ = Tw * np.sqrt(var)[:, :, None]
            self._precompute()
            self.em_seconds_.append(time.perf_counter() - tic)
            if self.verbose:
                print(f"TotalVariability EM iteration {it}/{self.max_iter}: avg log-likelihood {ll / n:.4f}, "
                      f"{time.perf_counter() - tic:.1f} s", file=sys.stderr, flush=True)
        return self

    def _batches(self, n):
        step = int(self.batch_size)
        return [slice(a, min(a + step, n)) for a in range(0, n, step)]

    def _precision(self, N):
        """Precisions ``I + sum_c N_c T^_c' T^_c`` (n, R, R), lower triangles: one GEMM over components."""
        r = self._Tw.shape[1]
        L = np.zeros((len(N), r, r))                      # the factorisation reads the lower triangles only
        L.reshape(len(N), r * r)[:, self._lower] = N @ self._TTp
        L[:, np.arange(r), np.arange(r)] += 1.0
        return L

    def _e_step(self, N, Fw):
        """Sufficient statistics of the M-step: (log-likelihood, A (K, R, R), C (K*D, R), sum_u E[ww']).

        Batches of utterances run on ``n_jobs`` threads (NumPy and LAPACK release the GIL), each with a
        single-threaded BLAS; their sums are folded in batch order, so the result does not depend on timing.
        """
        k, r = N.shape[1], self._Tw.shape[1]

        def batch(a, b, ws):
            rhs = Fw[a:b] @ self._Tw
            log_det, w, moments = _posterior(self._precision(N[a:b]), rhs)
            return (0.5 * float(np.sum(rhs * w)) - 0.5 * float(log_det.sum()),
                    N[a:b].T @ moments.reshape(b - a, r * r)[:, self._lower],     # packed lower triangles
                    Fw[a:b].T @ w, moments.sum(axis=0))

        ll, A, C, second = gm.map_chunks(batch, len(N), int(self.batch_size), resolve_jobs(self.n_jobs),
                                         reduce=_add_sums)
        rows, cols = np.tril_indices(r)
        full = np.empty((k, r, r))
        full[:, rows, cols] = A
        full[:, cols, rows] = A
        return ll, full, C, _symmetric_from_lower(second)

    # ------------------------------------------------------------------ extraction
    def posterior(self, N, F) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean (n, R) and covariance (n, R, R) of ``w`` for each utterance's statistics."""
        check_is_fitted(self, "T_", _FIT_HINT)
        N, F = self._check_stats(N, F, *self.T_.shape[:2])
        Fw = self._whiten(F)
        means, covs = [], []
        for b in self._batches(len(N)):
            _, w, moments = _posterior(self._precision(N[b]), Fw[b] @ self._Tw)
            covs.append(_symmetric_from_lower(moments - w[:, :, None] * w[:, None, :]))
            means.append(w)
        return np.concatenate(means), np.concatenate(covs)

    def transform(self, N, F) -> np.ndarray:
        """i-vectors (posterior means of ``w``), shape (n, R): one batched solve per batch of utterances."""
        check_is_fitted(self, "T_", _FIT_HINT)
        N, F = self._check_stats(N, F, *self.T_.shape[:2])
        Fw = self._whiten(F)
        out = []
        for b in self._batches(len(N)):
            with one_blas_thread():   # R x R factorisations: BLAS threads only add contention
                chol = np.linalg.cholesky(self._precision(N[b]))
                out.append(np.stack([scipy.linalg.cho_solve((c, True), y) for c, y in
                                     zip(chol, Fw[b] @ self._Tw)]))
        return np.concatenate(out)

    def log_likelihood(self, N, F) -> float:
        """Average per-utterance T-dependent log-likelihood of the statistics (what EM increases)."""
        check_is_fitted(self, "T_", _FIT_HINT)
        N, F = self._check_stats(N, F, *self.T_.shape[:2])
        return self._e_step(N, self._whiten(F))[0] / len(N)
