"""Log-likelihood-ratio scoring of MAP-adapted speaker GMMs against their UBM (Reynolds, Quatieri & Dunn, 2000).

The UBM's side of a test utterance (its frames aligned to the UBM, with top-C Gaussian selection) is computed
once by :func:`ubm_alignment` and shared by every speaker model scored on it (:func:`aligned_llr`): claimed
speakers, the enrolled speakers of a T-norm, an impostor cohort. :func:`llr_scores` does both in one call. The
kernels are in :mod:`speakerid.models._gmm_math`.
"""

from __future__ import annotations

import numpy as np

from speakerid._utils.blas import one_blas_thread
from speakerid._utils.validation import check_is_fitted, resolve_jobs
from speakerid.exceptions import ParameterError
from speakerid.models import _gmm_math as gm
from speakerid.models.gmm import DiagGMM

__all__ = ["UBMAlignment", "ubm_alignment", "llr_deltas", "aligned_llr", "llr_scores"]
#: What the NotFittedError of an untrained model suggests.
_FIT_HINT = 'call fit() or build it with DiagGMM.from_params()'
_GATHER_RATIO = 24        # top-C groups the selected components when K > 24 C or there are 4+ speakers, else
_GROUP_MIN_SPEAKERS = 4   # one GEMM per speaker over all K is cheaper (K = 64, 110 speakers: 16 ms vs 91 ms)


def _check_top_c(top_c, k: int):  # None (exact) or C in [1, K]
    if top_c is not None and (int(top_c) != top_c or top_c < 0):
        raise ParameterError(f"top_c must be None or an integer >= 0, got {top_c!r}")
    return min(int(top_c), k) if top_c else None


class UBMAlignment:
    """The UBM's side of scoring one utterance (from :func:`ubm_alignment`), shared by every speaker model:
    per chunk, the augmented frames and each frame's C best UBM components with their log-likelihoods (Reynolds'
    Gaussian selection; all K exactly). About ``n_frames x (2 D + 1 + 2 C)`` float32 values (``+ K`` exactly)."""

    def __init__(self, chunks: list, top_c, n_frames: int, center: np.ndarray, k: int):
        self.chunks, self.top_c, self.n_frames, self.center, self.n_components = chunks, top_c, n_frames, center, k


def ubm_alignment(ubm: DiagGMM, X, top_c=None) -> UBMAlignment:
    """Align frames ``X`` (n_frames, n_dims) to the UBM once: see :class:`UBMAlignment` and :func:`llr_scores`.

    ``top_c``: ``None`` (or 0) keeps every component (exact scoring), C >= 1 the C best of each frame.
    """
    X = ubm._frames(X)
    k = ubm.means_.shape[0]
    c = _check_top_c(top_c, k)
    center = ubm._center()
    pt, c32 = ubm._pt32(center), center.astype(np.float32)

    def chunk(a, b, ws):
        return gm.align_chunk(X[a:b], c32, pt, c, ws)

    with one_blas_thread():   # small GEMMs: BLAS threads cost more than they give (and vary rounding)
        chunks = gm.map_chunks(chunk, len(X), ubm._rows(), resolve_jobs(ubm.n_jobs))
    return UBMAlignment(chunks, c, len(X), center, k)


def llr_deltas(ubm: DiagGMM, speakers, center=None) -> np.ndarray:
    """Each speaker's parameter matrix minus the UBM's, as float32 of shape (K, W, n_speakers).

    W = D + 1 when every speaker keeps the UBM's variances (the log-ratio is then linear in ``[x, 1]``), else
    2 D + 1. ``center`` defaults to the UBM's mean (the one :func:`ubm_alignment` uses).
    """
    speakers = list(speakers)
    check_is_fitted(ubm, "means_", _FIT_HINT)
    k, d = ubm.means_.shape
    for s in speakers:
        if not isinstance(s, DiagGMM):
            raise ParameterError(f"speakers must be DiagGMM models, got {type(s).__name__}")
        check_is_fitted(s, "means_", _FIT_HINT)
        if s.means_.shape != (k, d):
            raise ParameterError(f"speaker model shape {s.means_.shape} differs from the UBM's {(k, d)}")
    center = ubm._center() if center is None else center
    p_ubm = gm.param_matrix(ubm.weights_, ubm.means_, ubm.covariances_, center)
    if not speakers:
        return np.zeros((k, d + 1, 0), dtype=np.float32)
    delta = np.stack([gm.param_matrix(s.weights_, s.means_, s.covariances_, center) - p_ubm for s in speakers],
                     axis=2)                                            # (K, 2D+1, S)
    width = delta.shape[1] if np.any(delta[:, d + 1:]) else d + 1
    return np.ascontiguousarray(delta[:, :width], dtype=np.float32)


def aligned_llr(alignment: UBMAlignment, delta_kws: np.ndarray) -> np.ndarray:
    """Average frame log-likelihood ratios, shape (n_speakers,), from an alignment and :func:`llr_deltas`."""
    k = alignment.n_components
    if delta_kws.shape[0] != k or delta_kws.ndim != 3:
        raise ParameterError(f"speaker differences of shape {delta_kws.shape} do not fit a {k}-component UBM")
    if delta_kws.shape[2] == 0:
        return np.zeros(0)
    c = alignment.top_c
    gather = c is not None and (k > _GATHER_RATIO * c or delta_kws.shape[2] >= _GROUP_MIN_SPEAKERS)
    with one_blas_thread():
        total = sum(gm.llr_aligned_chunk(chunk, delta_kws, gather) for chunk in alignment.chunks)
    return total / alignment.n_frames


def llr_scores(ubm: DiagGMM, speakers, X, top_c=None) -> np.ndarray:
    """Average frame log-likelihood ratio ``log p(x|speaker) - log p(x|ubm)`` of every speaker model.

    Parameters
    ----------
    ubm : DiagGMM
    speakers : list of DiagGMM
        Models with the UBM's shape (typically :func:`map_adapt` results).
    X : array (n_frames, n_dims)
    top_c : int or None
        ``None`` (or 0) scores exactly; C >= 1 keeps, for every frame, the C components with the highest UBM
        log-likelihood and evaluates both the UBM and the speakers over those only (Reynolds' fast scoring).

    Returns
    -------
    ndarray of float64, shape (n_speakers,)

    Notes
    -----
    Speakers are handled as differences from the UBM: per component, log w'p'(x) - log w p(x) is linear in
    ``[x, x^2, 1]`` (in ``[x, 1]`` when the variances are the UBM's): small, precise numbers. The UBM pass
    (:func:`ubm_alignment`: one float32 GEMM per chunk, top C by C vectorised arg-max passes, ``np.argpartition``
    when C > 16) is shared by all the speakers; :func:`aligned_llr` then groups the selected (frame, component)
    pairs by component, one GEMM each against all speakers (K > 24 C or 4+ speakers), else one GEMM per speaker.
    """
    X = ubm._frames(X)
    delta = llr_deltas(ubm, speakers)
    alignment = ubm_alignment(ubm, X, top_c)
    return aligned_llr(alignment, delta)
