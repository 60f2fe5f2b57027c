"""Numerical kernels of :mod:`speakerid.models.gmm`: chunked float32 E-steps, Gaussian selection, validation.

The log-density of frame x under a diagonal Gaussian k is expanded so a whole chunk of frames is scored against
all K components by one matrix product::

    log w_k + log N(x; mu_k, s_k) = [x, 1, x*x] . [mu_k/s_k, c_k, -1/(2 s_k)]
    c_k = log w_k - 1/2 sum_d (log(2 pi s_kd) + mu_kd^2 / s_kd)

Frames are shifted by a centre (the data or mixture mean) before the expansion, which keeps the terms small
and the float32 cancellation harmless as long as variances are not tiny relative to the data spread (the
variance floor guarantees that). The augmented frame matrix ``A = [x, 1, x*x]`` is built per chunk, so memory
stays bounded whatever the number of frames; sufficient statistics ``R^T A`` are one more matrix product per
chunk, accumulated in float64.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np

from speakerid._utils.blas import one_blas_thread
from speakerid.exceptions import ParameterError

__all__ = ["as_frames", "chunk_rows", "Workspace", "map_chunks", "add_stats", "augment",
           "param_matrix", "transposed32", "log_lik", "logsumexp_", "logsumexp0", "em_stats_chunk", "top_c_select",
           "align_chunk", "llr_aligned_chunk", "moments", "partition_stats", "is_int", "is_real", "checked_array",
           "m_step", "floored_components", "mixture_variance"]

_LOG_2PI = float(np.log(2.0 * np.pi))
#: Bytes of the (rows x K) float32 log-likelihood block of one chunk: ~4 MB stays in cache on most CPUs.
CHUNK_BYTES = 1 << 22
#: Below this many selected components per frame, repeated arg-max beats np.argpartition (measured ~20x).
_ARGMAX_MAX_C = 16


def as_frames(X, what: str = "X") -> np.ndarray:
    """Return ``X`` as a 2-D float32/float64 array (no copy when it already is one), checked finite."""
    try:
        X = np.asarray(X)
    except ValueError as exc:               # ragged nested sequences
        raise ParameterError(f"{what} is not a 2-D (n_frames, n_dims) array: {exc}") from None
    if X.dtype not in (np.float32, np.float64):
        if X.dtype.kind not in "fiub":
            raise ParameterError(f"{what} must be numeric, got dtype {X.dtype}")
        X = X.astype(np.float32)
    if X.ndim != 2:
        raise ParameterError(f"{what} must be a 2-D (n_frames, n_dims) array, got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ParameterError(f"{what} is empty (shape {X.shape})")
    step = max(1, (1 << 22) // X.shape[1])
    for i in range(0, X.shape[0], step):
        if not np.isfinite(X[i:i + step]).all():
            raise ParameterError(f"{what} holds NaN or infinite values (first bad frame at or after row {i}); "
                                 "drop or repair those frames")
    return X


def chunk_rows(n_components: int, n_dims: int, chunk_size=None) -> int:
    """Rows per chunk: ``chunk_size`` if given, else sized so a chunk's float32 work arrays hold ~4 MB."""
    if chunk_size is not None:
        return int(chunk_size)
    width = max(n_components, 2 * n_dims + 1)
    return int(np.clip(CHUNK_BYTES // (4 * width), 256, 16384))


class Workspace:
    """Scratch arrays reused from chunk to chunk: fresh multi-megabyte arrays cost page faults on every chunk."""

    def __init__(self):
        self._bufs = {}

    def get(self, name: str, shape, dtype=np.float32) -> np.ndarray:
        size = int(np.prod(shape))
        buf = self._bufs.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = self._bufs[name] = np.empty(size, dtype=dtype)
        return buf[:size].reshape(shape)


def map_chunks(func, n: int, rows: int, n_jobs: int, reduce=None):
    """Run ``func(start, stop, workspace)`` on every chunk of ``n`` frames, on up to ``n_jobs`` threads.

    Without ``reduce`` the results come back as a list in chunk order. With ``reduce(acc, result)`` they are
    folded in chunk order as soon as they arrive, so only a few chunk results exist at any time (memory stays
    bounded however many frames there are) and the floating-point sum does not depend on thread timing.

    Each thread owns a :class:`Workspace` and pulls the next chunk when done (dynamic scheduling copes with
    cores shared with other work). With several threads BLAS is limited to one thread each: NumPy releases the
    GIL in BLAS calls and ufuncs, so threads over chunks also parallelise the element-wise passes (max, exp,
    sum) that a multi-threaded BLAS alone leaves on one core.
    """
    bounds = [(i, min(i + rows, n)) for i in range(0, n, rows)]
    state = {"acc": None, "next": 0, "pending": {}, "list": []}
    lock = threading.Lock()

    def deliver(i, result):
        if reduce is None:
            state["list"].append((i, result))
            return
        with lock:
            state["pending"][i] = result
            while state["next"] in state["pending"]:
                item = state["pending"].pop(state["next"])
                state["acc"] = item if state["acc"] is None else reduce(state["acc"], item)
                state["next"] += 1

    n_jobs = min(n_jobs, len(bounds))
    if n_jobs <= 1:
        ws = Workspace()
        with one_blas_thread():       # the same sums as on threads or workers (see speakerid._utils.blas)
            for i, (a, b) in enumerate(bounds):
                deliver(i, func(a, b, ws))
    else:
        todo = itertools.count()      # next() on a count is atomic under the GIL

        def worker():
            ws = Workspace()
            while (i := next(todo)) < len(bounds):
                deliver(i, func(*bounds[i], ws))

        from concurrent.futures import ThreadPoolExecutor

        with one_blas_thread(), ThreadPoolExecutor(n_jobs, thread_name_prefix="speakerid-gmm") as pool:
            for done in [pool.submit(worker) for _ in range(n_jobs)]:
                done.result()         # a worker's exception is raised here
    if reduce is not None:
        return state["acc"]
    return [result for _, result in sorted(state["list"], key=lambda item: item[0])]


def add_stats(acc: tuple, item: tuple) -> tuple:
    """``reduce`` for :func:`em_stats_chunk` results: adds log-likelihood sums and statistics (in place)."""
    np.add(acc[1], item[1], out=acc[1])
    return acc[0] + item[0], acc[1]


def augment(X: np.ndarray, center: np.ndarray, ws: Workspace, quad: bool = True) -> np.ndarray:
    """``[x - c, 1, (x - c)^2]`` (or ``[x - c, 1]``) as float32 in the workspace; ``[:, :D+1]`` is the linear part."""
    n, d = X.shape
    A = ws.get("A", (n, 2 * d + 1 if quad else d + 1))
    np.subtract(X, center, out=A[:, :d], casting="unsafe")
    A[:, d] = 1.0
    if quad:
        np.square(A[:, :d], out=A[:, d + 1:])
    return A


def param_matrix(weights, means, variances, center) -> np.ndarray:
    """float64 (K, 2D+1) ``[mu/s, c, -1/(2s)]`` (centred means): ``augment(X) @ P.T`` is log w_k p(x|k)."""
    mu = np.asarray(means, np.float64) - center
    var = np.asarray(variances, np.float64)
    prec = 1.0 / var
    logw = np.log(np.maximum(np.asarray(weights, np.float64), 1e-300))
    const = logw - 0.5 * (mu.shape[1] * _LOG_2PI + np.log(var).sum(1) + (mu * mu * prec).sum(1))
    return np.hstack([mu * prec, const[:, None], -0.5 * prec])


def transposed32(P: np.ndarray) -> np.ndarray:
    """Contiguous float32 ``P.T``: the right operand of the per-chunk GEMM."""
    return np.ascontiguousarray(P.T, dtype=np.float32)


def log_lik(A: np.ndarray, PT: np.ndarray, ws: Workspace, name: str = "L") -> np.ndarray:
    """Per-frame, per-component weighted log-likelihoods (float32, n x K): one GEMM into the workspace."""
    return np.matmul(A, PT, out=ws.get(name, (A.shape[0], PT.shape[1])))


def logsumexp_(L: np.ndarray, ws: Workspace, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row log-sum-exp of float32 ``L`` (float64 result) and the row sums of ``E = exp(L - rowmax)``.

    ``E`` is written to ``out`` (``L`` itself when ``out`` is None, which keeps ``L`` intact otherwise).
    """
    n = L.shape[0]
    m = L.max(axis=1, out=ws.get("m", (n,)))
    E = np.subtract(L, m[:, None], out=L if out is None else out)
    np.exp(E, out=E)
    s = E.sum(axis=1, out=ws.get("s", (n,)))
    return m + np.log(s, dtype=np.float64), s


def em_stats_chunk(X, center, PT, ws: Workspace) -> tuple[float, np.ndarray]:
    """One chunk's E-step: (sum of frame log-likelihoods, float64 ``[sum r x, sum r, sum r x^2]``, (K, 2D+1))."""
    A = augment(X, center, ws)
    L = log_lik(A, PT, ws)
    lse, s = logsumexp_(L, ws)
    np.reciprocal(s, out=s)
    A *= s[:, None]               # responsibilities r = E / rowsum: scale the narrower matrix instead of E
    G = np.matmul(L.T, A, out=ws.get("G", (L.shape[1], A.shape[1])))
    return float(lse.sum()), G.astype(np.float64)


def top_c_select(L: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values, both (c, n), of each row's ``c`` largest entries; ``L`` (n, K) may be overwritten.

    For small ``c`` this repeats a vectorised arg-max and masks the winner: ``c`` passes over the block, far
    faster than ``np.argpartition`` (a selection loop per row, ~20x slower for c = 5, K = 256). Larger ``c``
    uses ``np.argpartition``. Rows of the results are not sorted.
    """
    n, k = L.shape
    if c >= k:
        return np.broadcast_to(np.arange(k)[:, None], (k, n)), L.T
    if c > _ARGMAX_MAX_C:
        idx = np.argpartition(L, k - c, axis=1)[:, k - c:]
        return idx.T, np.take_along_axis(L, idx, axis=1).T
    L = np.ascontiguousarray(L)
    flat, offsets = L.reshape(-1), np.arange(n) * k
    idx = np.empty((c, n), dtype=np.intp)
    vals = np.empty((c, n), dtype=L.dtype)
    for j in range(c):
        L.argmax(axis=1, out=idx[j])
        pos = idx[j] + offsets
        vals[j] = flat[pos]
        flat[pos] = -np.inf
    return idx, vals


def logsumexp0(V: np.ndarray) -> np.ndarray:
    """Log-sum-exp over axis 0 of a short (c, n) block (element-wise across rows: fast), as float64."""
    m = V.max(axis=0)
    E = np.exp(V - m)
    return m + np.log(E.sum(axis=0), dtype=np.float64)


def align_chunk(X, center, PT, c, ws: Workspace) -> tuple:
    """One chunk's UBM alignment, the per-frame work every speaker model of a trial shares.

    Returns ``(A, idx, V, lse)``: ``A`` the augmented frames ``[x - c, 1, (x - c)^2]`` (float32, n x (2D+1), a
    copy); with top-C (``c`` an int) ``idx`` and ``V`` (c, n) are each frame's C best UBM components and their
    weighted log-likelihoods minus the frame's best, ``lse`` (n,) float64 the UBM log-likelihood over those C
    (same shift); exactly (``c`` None) ``idx`` is None, ``V`` (n, K) all components minus the frame's best and
    ``lse`` the log-sum over all K.
    """
    A = augment(X, center, ws)
    L = log_lik(A, PT, ws)
    if c is None:
        m = L.max(axis=1)
        V = np.subtract(L, m[:, None])
        E = np.exp(V)
        return A.copy(), None, V, np.log(E.sum(axis=1), dtype=np.float64)
    idx, V = top_c_select(L, c)
    V = V - V.max(axis=0)
    return A.copy(), np.ascontiguousarray(idx), V, logsumexp0(V)


def llr_aligned_chunk(aligned: tuple, delta_kws: np.ndarray, gather: bool) -> np.ndarray:
    """Sum over one aligned chunk's frames of log p(x|speaker) - log p(x|ubm), for every speaker.

    ``delta_kws`` (K, W, S) float32 holds each speaker's parameter matrix minus the UBM's, component-major,
    truncated to the W = D+1 linear columns when the speakers share the UBM's variances. With top-C, ``gather``
    evaluates the selected components only: the (frame, component) pairs are grouped by component and each
    group is one GEMM against all S speakers (C x n x W x S multiply-adds); otherwise (or exactly) one GEMM
    per speaker over all K components (K x n x W each) is cheaper.
    """
    A, idx, V, lse = aligned
    k, width, n_speakers = delta_kws.shape
    n = A.shape[0]
    Ac = A[:, :width]
    if idx is None or not gather:
        out = np.empty(n_speakers)
        for i in range(n_speakers):
            T = Ac @ delta_kws[:, :, i].T                           # (n, K)
            if idx is None:
                T += V
                out[i] = (logsumexp_(T, Workspace())[0] - lse).sum()
            else:
                T = np.take_along_axis(T.T, idx, axis=0) + V        # (c, n)
                out[i] = (logsumexp0(T) - lse).sum()
        return out
    c = idx.shape[0]
    flat = idx.reshape(-1)                          # pair p = (selection j, frame p % n)
    order = np.argsort(flat, kind="stable")
    counts = np.bincount(flat, minlength=k)
    ends = np.cumsum(counts)
    grouped = Ac[order % n]                         # the frames of each pair, grouped by component
    T_grouped = np.empty((c * n, n_speakers), dtype=np.float32)
    for comp in np.flatnonzero(counts):
        a, b = ends[comp] - counts[comp], ends[comp]
        np.matmul(grouped[a:b], delta_kws[comp], out=T_grouped[a:b])
    T = np.empty_like(T_grouped)
    T[order] = T_grouped
    T = T.reshape(c, n, n_speakers)
    T += V[:, :, None]
    m = T.max(axis=0)
    T -= m
    np.exp(T, out=T)
    lse_s = m + np.log(T.sum(axis=0), dtype=np.float64)          # (n, S)
    return (lse_s - lse[:, None]).sum(axis=0)


def moments(X) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension sum and sum of squares (float64) of a chunk."""
    X = np.asarray(X, dtype=np.float64)
    return X.sum(axis=0), np.einsum("ij,ij->j", X, X)


def kmeans_plusplus(X, n_clusters: int, rng: np.random.RandomState) -> np.ndarray:
    """Rows of ``X`` chosen as k-means++ seeds: ``(n_clusters,)`` int indices (the seeds are ``X[indices]``).

    Greedy k-means++ (Arthur & Vassilvitskii, "k-means++: the advantages of careful seeding", SODA 2007): the first
    seed is a uniformly drawn row; each next one is the best (lowest total squared distance to the nearest seed) of
    ``2 + floor(ln k)`` candidates drawn with probability proportional to that squared distance. The draws and the
    float32 arithmetic of the potential follow scikit-learn's ``kmeans_plusplus`` (squared distances computed in
    float64, kept in float32), so the same ``rng`` state picks the same rows without importing scikit-learn
    (1 s, the largest share of ``train-ubm``'s start-up).
    """
    X = np.asarray(X, dtype=np.float32)
    n = len(X)
    X64 = X.astype(np.float64)
    norms = np.einsum("ij,ij->i", X64, X64)
    ones = np.ones(n, dtype=np.float32)
    trials = 2 + int(np.log(n_clusters))

    def sq_dist(rows):
        d = -2.0 * (X64[rows] @ X64.T)
        d += norms[rows][:, None]
        d += norms[None, :]
        return np.maximum(d.astype(np.float32), np.float32(0))

    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = rng.choice(n, p=ones / ones.sum())
    closest = sq_dist(indices[:1])[0]
    potential = closest @ ones
    for c in range(1, n_clusters):
        draws = rng.uniform(size=trials) * potential
        candidates = np.minimum(np.searchsorted(np.cumsum(ones * closest), draws), n - 1)
        dist = np.minimum(closest, sq_dist(candidates))
        totals = dist @ ones.reshape(-1, 1)
        best = int(np.argmin(totals))
        potential, closest, indices[c] = totals[best], dist[best], candidates[best]
    return indices


def partition_stats(sub, seeds, data_var, floor):
    """Weights, means and variances of the nearest-seed partition of a (centred) subsample."""
    k, d = seeds.shape
    dist = (seeds * seeds).sum(1) - 2.0 * (sub @ seeds.T)
    labels = dist.argmin(axis=1)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.stack([np.bincount(labels, sub[:, j], minlength=k) for j in range(d)], axis=1)
    sq = np.stack([np.bincount(labels, sub[:, j].astype(np.float64) ** 2, minlength=k) for j in range(d)], axis=1)
    safe = np.maximum(counts, 1.0)[:, None]
    mu = np.where(counts[:, None] > 0, sums / safe, seeds)
    var = np.where(counts[:, None] > 1, sq / safe - mu * mu, data_var)
    w = np.maximum(counts, 1.0)
    return w / w.sum(), mu, np.maximum(var, floor)


def is_int(value) -> bool:
    """True for Python/NumPy integers (not bools)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value) -> bool:
    """True for Python/NumPy real numbers (not bools)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def checked_array(value, shape, name) -> np.ndarray:
    """``value`` as a finite float64 array of the given shape, else :class:`ParameterError`."""
    arr = np.array(value, dtype=np.float64)
    if arr.shape != shape or not np.isfinite(arr).all():
        raise ParameterError(f"{name} must be a finite array of shape {shape}, got shape {arr.shape}")
    return arr


def m_step(stats, n, center, floor, reg_covar, min_count, split):
    """M-step from :func:`em_stats_chunk` statistics, re-seeding empty components by splitting the heaviest.

    Returns (weights, means, variances, indices re-seeded); ``floor`` is the per-dimension variance floor.
    """
    d = len(center)
    nk = stats[:, d] + 10 * np.finfo(np.float64).eps
    mu = stats[:, :d] / nk[:, None]
    var = np.maximum(stats[:, d + 1:] / nk[:, None] - mu * mu, floor) + reg_covar
    w = nk / n
    mu += center
    empty = np.flatnonzero(nk < min(min_count, 0.1 * n / len(nk)))
    for j in empty:              # split the heaviest component into two
        h = int(np.argmax(w))
        step = split * np.sqrt(var[h])
        mu[j], var[j] = mu[h] + step, var[h]
        mu[h] -= step
        w[h] /= 2.0
        w[j] = w[h]
    return w / w.sum(), mu, var, empty


def floored_components(variances, floor, reg_covar) -> np.ndarray:
    """Indices of components whose variances sit at the floor in at least half of the dimensions.

    Such a component models (near-)identical frames: a constant signal, a tone, repeated frames.
    """
    at_floor = np.asarray(variances) <= (np.asarray(floor) + reg_covar) * (1.0 + 1e-6)
    return np.flatnonzero(at_floor.mean(axis=1) >= 0.5)


def mixture_variance(weights, means, variances) -> np.ndarray:
    """Per-dimension variance of the whole mixture: ``sum w (s + mu^2) - (sum w mu)^2``."""
    w = np.asarray(weights, np.float64)
    mu = np.asarray(means, np.float64)
    mean = w @ mu
    return np.maximum(w @ (np.asarray(variances, np.float64) + mu * mu) - mean * mean, 0.0)
