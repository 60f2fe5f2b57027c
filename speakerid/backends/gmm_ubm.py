"""The GMM-UBM (MAP) and per-speaker GMM backends: adapters to the model directory and their training."""

from __future__ import annotations

from speakerid.backends.base import Backend, register_backend
from speakerid.exceptions import NotFittedError
from speakerid.models.gmm import DiagGMM
from speakerid.models.gmm_ubm import GMMUBM
from speakerid.models.speaker_gmm import SpeakerGMM
from speakerid.store import UBM_FILE


@register_backend
class GMMUBMBackend(Backend):
    """MAP-adapted GMM-UBM, scored by the average log-likelihood ratio (top-C by default)."""

    name = "gmm-ubm"
    speaker_class = "GMMUBMSpeaker"
    background_file = UBM_FILE
    default_threshold = 0.0

    def __init__(self, params=None):
        super().__init__(params)
        self.model = None

    def load_background(self, header, arrays):
        params = {**header.get("params", {}), **self.params}
        self.model = GMMUBM.from_arrays(arrays, params)
        self.background_hash = self.model.ubm_hash_

    def check_ready(self):
        if self.model is None:
            raise NotFittedError("no UBM in the model directory: run 'speakerid train-ubm' first")

    def enroll(self, frames_list):
        self.check_ready()
        arrays = self.model.enroll(frames_list)
        return arrays, {"relevance_factor": float(self.model.relevance_factor), "adapt": self.model.adapt}

    def score(self, prepared, speaker_models):
        self.check_ready()
        return self.model.score(speaker_models, prepared)



@register_backend
class SpeakerGMMBackend(Backend):
    """Independent per-speaker EM GMMs; scores are normalised by the UBM when the directory has one."""

    name = "gmm"
    speaker_class = "SpeakerGMM"
    background_file = None
    default_threshold = 0.0

    def __init__(self, params=None):
        super().__init__(params)
        self.ubm = None
        self.estimator = SpeakerGMM(**{k: v for k, v in self.params.items()
                                       if k in SpeakerGMM._get_param_names()})

    def use_ubm(self, arrays) -> None:
        self.ubm = DiagGMM.from_params(arrays["weights"], arrays["means"], arrays["variances"])
        if "normalize" not in self.params:
            self.estimator.normalize = "ubm"

    def enroll(self, frames_list):
        arrays = self.estimator.enroll(frames_list)
        return arrays, {"n_components": int(arrays["means"].shape[0])}

    def score(self, prepared, speaker_models):
        return self.estimator.score(speaker_models, prepared, ubm=self.ubm)

