"""Energy voice activity detection: which frames are loud enough, relative to the utterance's loudest, to keep.

The decision is made on the frame log-energy only; :func:`speakerid.features.extract` computes every feature
(deltas included) on all frames first and drops the rejected frames last, so deltas see their true neighbours.
"""

from __future__ import annotations

import math

import numpy as np

from ..exceptions import ParameterError

__all__ = ["vad_mask", "db_to_log_energy"]


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
    log_energy = np.asarray(log_energy, dtype=np.float64)
    if log_energy.ndim != 1 or len(log_energy) == 0:
        raise ParameterError(f"vad_mask expects a non-empty 1-D array of frame energies, got shape "
                             f"{log_energy.shape}")
    if not np.all(np.isfinite(log_energy)):
        raise ParameterError("vad_mask: frame energies hold NaN or infinity")
    if threshold_db <= 0:
        raise ParameterError(f"threshold_db must be positive, got {threshold_db}")
    if int(min_frames) < 1:
        raise ParameterError(f"min_frames must be >= 1, got {min_frames}")
    return _vad_mask(log_energy, threshold_db, int(min_frames))


def _vad_mask(log_energy: np.ndarray, threshold_db: float, min_frames: int) -> np.ndarray:
    mask = log_energy >= log_energy.max() - db_to_log_energy(threshold_db)
    if np.count_nonzero(mask) >= min_frames:
        return mask
    if len(log_energy) <= min_frames:
        return np.ones(len(log_energy), dtype=bool)
    loudest = np.argsort(-log_energy, kind="stable")[:min_frames]
    mask = np.zeros(len(log_energy), dtype=bool)
    mask[loudest] = True
    return mask
