"""The feature front end: a waveform in, a float32 ``frames x dims`` matrix out, exactly as a
:class:`FeatureConfig` says (see :mod:`speakerid.features.frontend` for the order of the steps).

Modules: ``config`` (FeatureConfig), ``framing``, ``mfcc``, ``spectral``, ``vad``, ``normalize``, ``warping``,
``rasta``, ``denoise``, ``stats`` (one small function per step), ``frontend`` (:func:`extract`: all of them in
order), ``pipeline`` (the one audio file -> frames path), ``cache`` (features on disk), ``quality`` (signal
quality measures).
"""

from __future__ import annotations

from speakerid._utils.lazy import lazy_exports
from speakerid.features.config import FEATURE_NAMES, FeatureConfig

#: The other public names, imported from their module on first use (PEP 562): a FeatureConfig alone (the CLI's
#: option parsing) does not load the FFT and filter code.
_EXPORTS = {
    "FEATURE_NAMES": "speakerid.features.config",
    "FeatureConfig": "speakerid.features.config",
    "denoise_power": "speakerid.features.denoise",
    "apply_cmvn": "speakerid.features.frontend",
    "extract": "speakerid.features.frontend",
    "extract_file": "speakerid.features.frontend",
    "feature_dims": "speakerid.features.frontend",
    "feature_table": "speakerid.features.frontend",
    "frame_energy": "speakerid.features.frontend",
    "delta": "speakerid.features.mfcc",
    "cmvn": "speakerid.features.normalize",
    "sliding_cmvn": "speakerid.features.normalize",
    "rasta_filter": "speakerid.features.rasta",
    "clip_vector": "speakerid.features.stats",
    "clip_vectors": "speakerid.features.stats",
    "utterance_stats": "speakerid.features.stats",
    "gmm_vad_mask": "speakerid.features.vad",
    "vad_mask": "speakerid.features.vad",
    "feature_warp": "speakerid.features.warping"
}

__all__ = ["FEATURE_NAMES", "FeatureConfig", *(n for n in _EXPORTS if n not in ("FEATURE_NAMES", "FeatureConfig"))]


__getattr__, __dir__ = lazy_exports("speakerid.features", _EXPORTS)
