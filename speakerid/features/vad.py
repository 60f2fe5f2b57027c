"""Voice activity detection on frame log-energy: which frames to keep.

Two rules: a fixed threshold below the utterance's loudest frame (:func:`vad_mask`), and a two-Gaussian model
of the utterance's frame log-energies (:func:`gmm_vad_mask`) that finds the noise floor by itself.

The decision is made on the frame log-energy only; :func:`speakerid.features.extract` computes every feature
(deltas included) on all frames first and drops the rejected frames last, so deltas see their true neighbours.
"""

from __future__ import annotations

import math

import numpy as np

from speakerid.exceptions import ParameterError

__all__ = ["vad_mask", "gmm_vad_mask", "db_to_log_energy"]

#: EM iterations of the two-Gaussian energy model (it converges in a handful on one dimension).
GMM_VAD_ITERATIONS = 20
#: Variance floor of the energy model (natural-log energy squared).
GMM_VAD_VAR_FLOOR = 1e-2


def db_to_log_energy(decibels: float) -> float:
    """A power ratio in dB as a difference of natural-log energies (``dB / 10 * ln 10``).

    Examples
    --------
    >>> round(db_to_log_energy(10.0), 4)
    2.3026
    """
    return float(decibels) / 10.0 * math.log(10.0)


def vad_mask(log_energy, threshold_db: float = 30.0, min_frames: int = 20) -> np.ndarray:
    """Boolean mask of the frames to keep: log-energy at most ``threshold_db`` dB below the loudest frame.

    The mask never silently empties an utterance. If fewer than ``min_frames`` frames pass the threshold, the
    ``min_frames`` loudest frames are kept instead (ties broken by time, earliest first); an utterance with fewer
    than ``min_frames`` frames in all keeps every frame. Kept frames stay in time order.

    Parameters
    ----------
    log_energy : array_like, shape (n_frames,)
        Natural-log frame energies (as :func:`speakerid.features.framing.frame_log_energy` returns).
    threshold_db : float
        How far below the loudest frame a frame may be and still be kept (dB, > 0).
    min_frames : int
        Fewest frames kept (>= 1), see above.

    Returns
    -------
    numpy.ndarray of bool, shape (n_frames,)

    Examples
    --------
    >>> energy = np.log(np.array([1.0, 1e-6, 0.5, 1e-6]))
    >>> vad_mask(energy, threshold_db=30.0, min_frames=1)
    array([ True, False,  True, False])
    >>> vad_mask(energy, threshold_db=30.0, min_frames=3)   # too few pass: keep the 3 loudest
    array([ True,  True,  True, False])
    """
    log_energy = _check_vad_args("vad_mask", log_energy, threshold_db, min_frames)
    return _vad_mask(log_energy, threshold_db, int(min_frames))


def _check_vad_args(name: str, log_energy, threshold_db, min_frames) -> np.ndarray:
    log_energy = np.asarray(log_energy, dtype=np.float64)
    if log_energy.ndim != 1 or len(log_energy) == 0:
        raise ParameterError(f"{name} expects a non-empty 1-D array of frame energies, got shape "
                             f"{log_energy.shape}")
    if not np.all(np.isfinite(log_energy)):
        raise ParameterError(f"{name}: frame energies hold NaN or infinity")
    if threshold_db <= 0:
        raise ParameterError(f"threshold_db must be positive, got {threshold_db}")
    if int(min_frames) < 1:
        raise ParameterError(f"min_frames must be >= 1, got {min_frames}")
    return log_energy


def gmm_vad_mask(log_energy, threshold_db: float = 30.0, min_frames: int = 20) -> np.ndarray:
    """Boolean mask of speech frames from a two-Gaussian model of the utterance's frame log-energies.

    A one-dimensional mixture of two Gaussians (noise and speech) is fitted by EM to the frame log-energies,
    started from their 10th and 90th percentiles. A frame is kept when the louder component's posterior is at
    least 1/2 (the threshold sits where the speech component starts to dominate) *and* it is within
    ``threshold_db`` of the loudest frame (as :func:`vad_mask`). When the energies are not bimodal (a clip that
    is all speech or all noise) the two components overlap and most frames are kept. The ``min_frames`` rule of
    :func:`vad_mask` applies: a short clip always keeps at least ``min_frames`` frames (the loudest).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> energy = np.concatenate([rng.normal(0.0, 0.5, 50), rng.normal(8.0, 1.0, 50)])   # silence, then speech
    >>> mask = gmm_vad_mask(energy, threshold_db=60.0, min_frames=1)
    >>> int(mask[:50].sum()), int(mask[50:].sum())
    (0, 50)
    """
    log_energy = _check_vad_args("gmm_vad_mask", log_energy, threshold_db, min_frames)
    return _gmm_vad_mask(log_energy, threshold_db, int(min_frames))


def _speech_posterior(log_energy: np.ndarray) -> np.ndarray:
    """Posterior of the louder of two Gaussians fitted by EM to the energies (1-D, a few vectorised steps)."""
    means = np.percentile(log_energy, [10.0, 90.0])
    if means[1] - means[0] < 1e-6:  # flat energy: nothing to separate, everything is "speech"
        return np.ones_like(log_energy)
    variances = np.full(2, max(np.var(log_energy) / 4.0, GMM_VAD_VAR_FLOOR))
    weights = np.full(2, 0.5)
    for _ in range(GMM_VAD_ITERATIONS):
        log_density = (np.log(weights) - 0.5 * np.log(2 * np.pi * variances)
                       - 0.5 * np.square(log_energy[:, None] - means) / variances)
        log_density -= log_density.max(axis=1, keepdims=True)
        resp = np.exp(log_density)
        resp /= resp.sum(axis=1, keepdims=True)
        counts = resp.sum(axis=0) + 1e-10
        weights = counts / counts.sum()
        means = (resp * log_energy[:, None]).sum(axis=0) / counts
        variances = np.maximum((resp * np.square(log_energy[:, None] - means)).sum(axis=0) / counts,
                               GMM_VAD_VAR_FLOOR)
    return resp[:, int(np.argmax(means))]


def _gmm_vad_mask(log_energy: np.ndarray, threshold_db: float, min_frames: int) -> np.ndarray:
    mask = (_speech_posterior(log_energy) >= 0.5) & _vad_mask(log_energy, threshold_db, 1)
    return _at_least(mask, log_energy, min_frames)


def _vad_mask(log_energy: np.ndarray, threshold_db: float, min_frames: int) -> np.ndarray:
    mask = log_energy >= log_energy.max() - db_to_log_energy(threshold_db)
    return _at_least(mask, log_energy, min_frames)


def _at_least(mask: np.ndarray, log_energy: np.ndarray, min_frames: int) -> np.ndarray:
    """``mask``, or the ``min_frames`` loudest frames when it keeps fewer (all frames of a shorter clip)."""
    if np.count_nonzero(mask) >= min_frames:
        return mask
    if len(log_energy) <= min_frames:
        return np.ones(len(log_energy), dtype=bool)
    loudest = np.argsort(-log_energy, kind="stable")[:min_frames]
    mask = np.zeros(len(log_energy), dtype=bool)
    mask[loudest] = True
    return mask
