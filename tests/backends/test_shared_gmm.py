"""GMM-UBM on the real-speech protocols in ../shared (skipped when it is absent)."""

from __future__ import annotations

import warnings

import pytest

from speakerid.data.manifests import read_manifest
from speakerid.evaluation import metrics
from speakerid.exceptions import BandwidthWarning
from speakerid.features import FeatureConfig
from speakerid.verifier import SpeakerVerifier

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def _scores(verifier, trials):
    return [float(verifier.score_frames([row.speaker], verifier.features(row.path))[0])
            for row in trials.itertuples()]


@pytest.fixture(scope="module")
def librispeech_models(shared_dir, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("ls-models")
    verifier = SpeakerVerifier(model_dir)
    verifier.train(shared_dir / "protocols" / "librispeech-background.csv", n_components=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # background and test speakers are disjoint: no DataLeakWarning
        verifier.enroll_manifest(shared_dir / "protocols" / "librispeech-test-other-enroll.csv")
    return model_dir


def test_test_other_is_solved_by_gmm_ubm(librispeech_models, shared_dir):
    trials = read_manifest(shared_dir / "protocols" / "librispeech-test-other-trials.csv", require_target=True)
    trials = trials.groupby("target").head(150)  # every target trial, a fixed share of impostor ones
    verifier = SpeakerVerifier(librispeech_models)
    assert metrics.eer(_scores(verifier, trials), trials["target"]) <= 0.02


def test_fsdd_at_16k_warns_about_bandwidth(librispeech_models, shared_dir):
    trials = read_manifest(shared_dir / "protocols" / "fsdd-trials.csv", require_target=True)
    with pytest.warns(BandwidthWarning, match="8000 Hz"):
        SpeakerVerifier(librispeech_models).features(trials.iloc[0]["path"])


def test_fsdd_with_an_8k_model(shared_dir, tmp_path):
    verifier = SpeakerVerifier(tmp_path, feature_config=FeatureConfig(sample_rate=8000))
    verifier.train(shared_dir / "protocols" / "librispeech-background.csv", n_components=32, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BandwidthWarning)  # 8 kHz digits on an 8 kHz model: no warning
        verifier.enroll_manifest(shared_dir / "protocols" / "fsdd-enroll.csv")
        trials = read_manifest(shared_dir / "protocols" / "fsdd-trials.csv", require_target=True)
        trials = trials.groupby("target").head(120)
        assert metrics.eer(_scores(verifier, trials), trials["target"]) < 0.35
