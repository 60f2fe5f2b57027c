"""Adding a backend is one module and one registration: a toy backend goes through every public path.

The toy ("mean-cosine") models an utterance by its frames' second moments (with per-utterance CMVN, their
correlation matrix) minus the background's, which it trains; a speaker is the mean over its files, and trials are
scored by cosine similarity. It is registered from this test only, trained through the same
``train`` hook as the built-in backends, then used by :class:`SpeakerVerifier` (enroll, verify, identify,
identify segments) and by batch scoring, without any other change to the package.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speakerid.backends.base import BACKENDS, Backend, available_backends, get_backend, register_backend
from speakerid.data.manifests import read_manifest
from speakerid.evaluation import metrics
from speakerid.exceptions import ModelFormatError, NotFittedError, ParameterError
from speakerid.features.pipeline import many_features
from speakerid.scoring.batch import score_trials
from speakerid.store import ModelStore
from speakerid.verifier import SpeakerVerifier

TOY_FILE = "toy-mean.npz"


def _moments(frames) -> np.ndarray:
    """Upper triangle of the (n_dims, n_dims) second-moment matrix of (n_frames, n_dims) frames."""
    frames = np.asarray(frames, dtype=np.float64)
    return (frames.T @ frames / len(frames))[np.triu_indices(frames.shape[1])]


class MeanCosineBackend(Backend):
    """Cosine between background-centred frame correlations (a deliberately weak, but working, speaker model)."""

    name = "mean-cosine"
    speaker_class = "MeanCosineSpeaker"
    background_files = (TOY_FILE,)

    @classmethod
    def train(cls, model_dir, manifest, *, feature_config=None, n_jobs=1, random_state=0, verbose=False,
              n_augment=0):
        store = ModelStore(model_dir)
        config = store.feature_config(feature_config)
        frame = read_manifest(manifest)
        extracted = many_features(frame["path"], config, n_jobs=n_jobs, n_augment=n_augment,
                                  random_state=random_state)
        moments = [_moments(f) for sessions, _ in extracted for f in sessions]
        header = {"model_class": "MeanFrame", "feature_config": config.to_dict(), "n_sessions": len(moments)}
        path = store.save_background(TOY_FILE, {"mean": np.mean(moments, axis=0)}, header, config)
        return {"model": str(path), "n_sessions": len(moments)}

    def load_background(self, name, header, arrays):
        self.check_model_class(name, header, "MeanFrame")
        self.model = np.asarray(arrays["mean"], dtype=np.float64)
        self.background_hash = f"{float(self.model.sum()):.6f}"

    def _vector(self, frames):
        vector = _moments(frames) - self.model
        return vector / max(np.linalg.norm(vector), 1e-12)

    def enroll(self, frames_list):
        vector = np.mean([self._vector(frames) for frames in frames_list], axis=0)
        return {"vector": vector / max(np.linalg.norm(vector), 1e-12)}, {"n_files": len(frames_list)}

    def prepare(self, frames):
        return self._vector(frames)

    def score(self, prepared, speaker_models):
        if not speaker_models:
            return np.zeros(0)
        return np.stack([m["vector"] for m in speaker_models]) @ prepared


@pytest.fixture
def toy_backend():
    register_backend(MeanCosineBackend)
    yield MeanCosineBackend
    BACKENDS.pop(MeanCosineBackend.name, None)


def test_registration_makes_it_a_backend_name(toy_backend):
    assert "mean-cosine" in available_backends() and get_backend("mean-cosine") is toy_backend
    with pytest.raises(ParameterError, match="Backend subclass"):
        register_backend(object)


def test_a_toy_backend_goes_through_every_path(toy_backend, synth_corpus, tmp_path):
    model_dir = tmp_path / "models"
    verifier = SpeakerVerifier(model_dir, backend="mean-cosine")
    with pytest.raises(NotFittedError, match=f"no {TOY_FILE}.*train the mean-cosine backend first"):
        verifier.enroll("spk001", [read_manifest(synth_corpus.enroll_csv).iloc[0]["path"]])
    assert "mean-cosine" in verifier.missing_background()

    trained = verifier.train(synth_corpus.background_csv, n_augment=1)
    assert trained["n_sessions"] == 2 * len(read_manifest(synth_corpus.background_csv)) and ModelStore(model_dir).exists(TOY_FILE)
    assert verifier.missing_background() is None
    enrolled = verifier.enroll_manifest(synth_corpus.enroll_csv)
    assert {r["backend"] for r in enrolled} == {"mean-cosine"}
    assert ModelStore(model_dir).backends() == ["mean-cosine"]        # its own speaker folder

    trials = read_manifest(synth_corpus.trials_csv, require_target=True)
    target = trials[trials["target"] == 1].iloc[0]
    claim = SpeakerVerifier(model_dir, backend="mean-cosine", norm="none").verify(target["speaker"], target["path"])
    assert claim["backend"] == "mean-cosine" and -1.0 - 1e-9 <= claim["score"] <= 1.0 + 1e-9   # raw: a cosine
    assert verifier.score_scale == "enrolled"     # by default: T-norm over the other 5 enrolled speakers
    ranked = verifier.identify(target["path"], top=3, threshold=-1.0)
    assert len(ranked["candidates"]) == 3 and ranked["best"] == ranked["candidates"][0]["speaker"]
    pieces = verifier.identify_segments(target["path"], threshold=-1.0)
    assert pieces and all(p["speaker"] in verifier.speakers() for p in pieces if p["score"] is not None)

    # batch scoring finds the backend by name and gives the same scores as the facade, trial by trial
    result = score_trials(model_dir, synth_corpus.trials_csv, backend="mean-cosine", norm="none")
    assert result.n_errors == 0 and result.n_scored == len(trials)
    facade = [SpeakerVerifier(model_dir, norm="none").verify(row.speaker, row.path)["score"]
              for row in trials.head(5).itertuples()]
    np.testing.assert_allclose(result.frame["score"].astype(float).to_numpy()[:5], facade, rtol=1e-6)
    # weak but far from chance on distinct synthetic voices (0.28 measured)
    assert metrics.eer(result.frame["score"].astype(float), trials["target"]) < 0.4


def test_a_foreign_background_file_is_refused_naming_it(toy_backend, synth_corpus, tmp_path):
    store = ModelStore(tmp_path)
    config = store.feature_config()
    store.save_background(TOY_FILE, {"mean": np.zeros(3)}, {"model_class": "Other", "feature_config":
                                                            config.to_dict()}, config)
    with pytest.raises(ModelFormatError, match=f"{TOY_FILE}.*'Other'"):
        SpeakerVerifier(tmp_path, backend="mean-cosine").enroll("x", [pd.read_csv(synth_corpus.enroll_csv)
                                                                     .iloc[0]["path"]])


def test_built_in_backends_declare_their_files_and_training():
    from speakerid.store import IVECTOR_FILE, MLP_FILE, SIAMESE_FILE, UBM_FILE

    declared = {name: (get_backend(name).background_files, get_backend(name).uses_ubm)
                for name in ("gmm-ubm", "gmm", "ivector", "siamese", "mlp")}
    assert declared == {"gmm-ubm": ((UBM_FILE,), True), "gmm": ((UBM_FILE,), True),
                        "ivector": ((IVECTOR_FILE,), True), "siamese": ((SIAMESE_FILE,), False),
                        "mlp": ((MLP_FILE,), False)}
    trainers = {name: get_backend(name).trainer.__name__ for name in declared}
    assert trainers == {"gmm-ubm": "train_ubm", "gmm": "train_ubm", "ivector": "train_ivector",
                        "siamese": "train_siamese", "mlp": "train_mlp"}
    with pytest.raises(ParameterError, match="nothing to train"):
        Backend.train("unused", "unused")
