"""Clip vectors for the neural models: fixed-length segments of a file's frames, their ``[mean, std]`` vectors
(:func:`speakerid.features.clip_vector`), and a standardiser learned on training examples only.

The frames are whatever the model directory's :class:`~speakerid.features.FeatureConfig` produces (after VAD
and CMVN), so that configuration decides which features feed the networks. Per-utterance CMVN with variance
normalisation makes every clip's mean 0 and standard deviation 1 -- constant vectors that carry no speaker
information -- so it is refused by :func:`check_neural_config`; :data:`NEURAL_FEATURE_CONFIG` is the default
for new neural model directories.
"""

from __future__ import annotations

import numpy as np

from speakerid.exceptions import ConfigMismatchError, ParameterError
from speakerid.features import FeatureConfig, clip_vector

__all__ = ["NEURAL_FEATURE_CONFIG", "check_neural_config", "segment_frames", "frames_per_segment",
           "clip_examples", "Standardizer"]

#: Front end of new neural model directories: 20 MFCC (c0 = log-energy) + delta, energy VAD, no CMVN (the clip
#: statistics *are* the speaker information; the standardiser scales them). Adding log-mel bands, ZCR,
#: roll-off, flux and chroma (``features=...``) lowered the validation EER on same-recording segment pairs but
#: raised the cross-session EER on LibriSpeech test-other (they capture the recording as much as the voice);
#: measured by ``bench/eval_neural_shared.py``.
NEURAL_FEATURE_CONFIG = FeatureConfig(delta_order=1, cmvn="none")


def check_neural_config(config: FeatureConfig, where: str = "the model directory") -> None:
    """Refuse a feature configuration whose clip vectors are constant (per-utterance CMVN)."""
    if config.cmvn == "utterance":
        raise ConfigMismatchError(
            f"{where} normalises features per utterance (cmvn='utterance'), which makes every clip's mean 0 "
            "(and std 1): clip vectors carry no speaker information. Use a model directory whose feature "
            "configuration has cmvn 'none' or 'sliding' (train-siamese / train-mlp create one when the "
            "directory is new)")


def frames_per_segment(segment_s: float, config: FeatureConfig) -> int:
    """Frames in a ``segment_s``-second segment at the configuration's frame shift (0: no segmenting).

    Examples
    --------
    >>> frames_per_segment(2.0, FeatureConfig()), frames_per_segment(0, FeatureConfig())
    (200, 0)
    """
    segment_s = float(segment_s or 0.0)
    if segment_s < 0 or not np.isfinite(segment_s):
        raise ParameterError(f"segment_s must be >= 0 seconds, got {segment_s}")
    return int(round(segment_s * 1000.0 / config.frame_shift_ms)) if segment_s else 0


def segment_frames(frames: np.ndarray, segment_length: int, min_fraction: float = 0.5) -> list:
    """Cut ``frames`` into consecutive non-overlapping blocks of ``segment_length`` frames.

    A trailing block shorter than ``min_fraction * segment_length`` is dropped; a clip shorter than one
    segment stays one block. ``segment_length = 0`` returns the whole clip. Segments count the frames the VAD
    kept, so a 2 s segment spans 2 s of speech.

    Examples
    --------
    >>> [len(s) for s in segment_frames(np.zeros((450, 2)), 200)]
    [200, 200]
    >>> [len(s) for s in segment_frames(np.zeros((550, 2)), 200)], len(segment_frames(np.zeros((50, 2)), 200))
    ([200, 200, 150], 1)
    """
    frames = np.asarray(frames)
    segment_length = int(segment_length)
    if segment_length <= 0 or len(frames) <= segment_length:
        return [frames]
    blocks = [frames[start:start + segment_length] for start in range(0, len(frames), segment_length)]
    if len(blocks[-1]) < min_fraction * segment_length:
        blocks.pop()
    return blocks


def clip_examples(frames_list, labels=None, segment_length: int = 0):
    """Clip vectors of every segment of every clip: ``(X, example_labels, example_clip)``.

    ``example_clip[k]`` is the index in ``frames_list`` of the clip example ``k`` was cut from.
    """
    vectors, owners = [], []
    for index, frames in enumerate(frames_list):
        for block in segment_frames(frames, segment_length):
            vectors.append(clip_vector(block))
            owners.append(index)
    if not vectors:
        raise ParameterError("no clips to make examples from")
    owners = np.asarray(owners)
    example_labels = None if labels is None else np.asarray(labels)[owners]
    return np.stack(vectors).astype(np.float64), example_labels, owners


class Standardizer:
    """Per-dimension ``(x - mean_) / scale_``; constant dimensions keep scale 1.

    Examples
    --------
    >>> s = Standardizer().fit(np.array([[0.0, 5.0], [2.0, 5.0]]))
    >>> s.transform(np.array([[1.0, 5.0], [3.0, 6.0]])).tolist()
    [[0.0, 0.0], [2.0, 1.0]]
    """

    def fit(self, X) -> Standardizer:
        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 1e-8 * np.maximum(1.0, np.abs(self.mean_)), std, 1.0)
        return self

    def transform(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.mean_):
            raise ConfigMismatchError(f"clip vectors have {X.shape[-1]} dimensions, the model expects "
                                      f"{len(self.mean_)} (another feature configuration?)")
        return (X - self.mean_) / self.scale_

    def to_arrays(self) -> dict:
        return {"input_mean": self.mean_, "input_scale": self.scale_}

    @classmethod
    def from_arrays(cls, arrays: dict) -> Standardizer:
        standardizer = cls()
        standardizer.mean_ = np.asarray(arrays["input_mean"], dtype=np.float64)
        standardizer.scale_ = np.asarray(arrays["input_scale"], dtype=np.float64)
        return standardizer
