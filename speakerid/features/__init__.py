"""The feature front end: a waveform in, a float32 ``frames x dims`` matrix out, exactly as a
:class:`FeatureConfig` says (see :mod:`speakerid.features.frontend` for the order of the steps).

Modules: ``config`` (FeatureConfig), ``framing``, ``mfcc``, ``spectral``, ``vad``, ``normalize``, ``warping``,
``rasta``, ``denoise``, ``stats`` (one small function per step), ``frontend`` (:func:`extract`: all of them in
order), ``pipeline`` (the one audio file -> frames path), ``cache`` (features on disk), ``quality`` (signal
quality measures).
"""

from __future__ import annotations

from speakerid.features.config import FEATURE_NAMES, FeatureConfig
from speakerid.features.denoise import denoise_power
from speakerid.features.frontend import (
    apply_cmvn,
    extract,
    extract_file,
    feature_dims,
    feature_table,
    frame_energy,
)
from speakerid.features.mfcc import delta
from speakerid.features.normalize import cmvn, sliding_cmvn
from speakerid.features.rasta import rasta_filter
from speakerid.features.stats import clip_vector, clip_vectors, utterance_stats
from speakerid.features.vad import gmm_vad_mask, vad_mask
from speakerid.features.warping import feature_warp

__all__ = ["FEATURE_NAMES", "FeatureConfig", "extract", "extract_file", "feature_dims", "frame_energy", "feature_table", "vad_mask", "gmm_vad_mask", "cmvn", "feature_warp", "rasta_filter", "denoise_power", "sliding_cmvn", "apply_cmvn", "delta", "utterance_stats", "clip_vector", "clip_vectors"]
