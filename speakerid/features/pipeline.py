"""The one path from an audio file to frames: load, resample, warn about bandwidth, add noisy copies, extract."""

from __future__ import annotations

import warnings

import numpy as np
import soundfile as sf
from joblib import Parallel, delayed

from speakerid._utils.progress import progress
from speakerid.data.audio import load_audio
from speakerid.data.augment import noisy_copies
from speakerid.exceptions import BandwidthWarning
from speakerid.features import extract
from speakerid.features.config import FeatureConfig


def file_features(path, config: FeatureConfig) -> tuple[np.ndarray, float]:
    """Load one audio file and return ``(frames, seconds)`` under ``config``.

    Warns with :class:`BandwidthWarning` when the file's rate is below the configuration's (upsampling adds no
    information above the file's Nyquist frequency; train the model at the lower rate instead).
    """
    signal, rate = load_audio(path, sample_rate=config.sample_rate)  # first: it refuses pipes, devices, ...
    try:
        native_rate = sf.info(str(path)).samplerate
    except Exception:  # replaced since: the warning is all that is lost
        native_rate = None
    if native_rate is not None and native_rate < config.sample_rate:
        warnings.warn(f"{path}: {native_rate} Hz audio upsampled to the model's {config.sample_rate} Hz; the band "
                      f"above {native_rate // 2} Hz is empty (consider a model at --sample-rate {native_rate})",
                      BandwidthWarning, stacklevel=2)
    return extract(signal, config), len(signal) / rate



def augmented_features(path, config: FeatureConfig, copies: int = 0, seed=0) -> tuple[list, float]:
    """``([frames of the file, frames of each noisy copy], seconds)``: multi-condition training material.

    The copies come from :func:`speakerid.data.augment.noisy_copies` (generic white/pink/brown noise at 0-20 dB SNR)
    seeded with ``seed``; the file is read once.
    """
    if not copies:
        frames, seconds = file_features(path, config)
        return [frames], seconds
    signal, rate = load_audio(path, sample_rate=config.sample_rate)
    signals = [signal] + noisy_copies(signal, copies, seed, sample_rate=config.sample_rate)
    return [extract(s, config) for s in signals], len(signal) / rate



def _many_features(paths, config, n_jobs=1, desc="features", copies=0, seed=0):
    """Per file ``(frames, seconds)``; with ``copies``, ``([frames, noisy frames, ...], seconds)``."""
    paths = [str(p) for p in paths]
    if copies:  # seeded by the file's position, so the noise does not depend on n_jobs
        if n_jobs in (None, 1):
            return [augmented_features(p, config, copies, [seed, i])
                    for i, p in enumerate(progress(paths, desc=desc, unit="file"))]
        return Parallel(n_jobs=n_jobs)(delayed(augmented_features)(p, config, copies, [seed, i])
                                       for i, p in enumerate(progress(paths, desc=desc, unit="file")))
    if n_jobs in (None, 1) or len(paths) < 4:
        return [file_features(p, config) for p in progress(paths, desc=desc, unit="file")]
    return Parallel(n_jobs=n_jobs)(delayed(file_features)(p, config)
                                   for p in progress(paths, desc=desc, unit="file"))

