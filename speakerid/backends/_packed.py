"""The packed cohort format of a shipped model (written by :mod:`speakerid.pretrained.pack`): 8-bit codes read back
as the float32 frames and MAP means that :mod:`speakerid.backends._cohort` scores."""

from __future__ import annotations

import numpy as np

__all__ = ["quantize", "unpack_arrays"]


def quantize(rows: np.ndarray) -> tuple:
    """int8 codes and one float16 scale per row: ``rows ~= codes * scale`` (error at most half a step)."""
    scale = (np.abs(rows).max(axis=1) / 127.0).astype(np.float16).astype(np.float32)
    scale[scale == 0] = 1.0
    return np.clip(np.rint(rows / scale[:, None]), -127, 127).astype(np.int8), scale.astype(np.float16)


def unpack_arrays(arrays: dict) -> dict:
    """The arrays of a packed GMM-UBM cohort as :mod:`speakerid.backends._cohort` keeps them (float32 frames and
    MAP means); any other cohort's arrays unchanged."""
    if "frames_q" not in arrays:
        return arrays
    out = {"frames": arrays["frames_q"] * arrays["frames_scale"].astype(np.float32)[:, None],
           "lengths": arrays["lengths"]}
    mean, std = arrays["ubm_means"], arrays["ubm_std"]
    for name in arrays:
        if name.endswith(":means_q"):
            stem = name[: -len("_q")]
            delta = arrays[name] * arrays[stem + "_scale"].astype(np.float32)[:, None]
            out[stem] = (mean + delta * std).astype(np.float32)
    return out
