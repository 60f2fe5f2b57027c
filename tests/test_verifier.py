"""SpeakerVerifier end to end on the synthetic corpus: UBM, enroll, verify, identify, store safety."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from speakerid.data.manifests import read_manifest
from speakerid.evaluation import metrics
from speakerid.exceptions import (
    ConfigMismatchError,
    DataLeakWarning,
    ModelFormatError,
    NotFittedError,
    ParameterError,
    UnknownSpeakerError,
)
from speakerid.features import FeatureConfig
from speakerid.verifier import SpeakerVerifier


@pytest.fixture(scope="module")
def trained(synth_corpus, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("models")
    verifier = SpeakerVerifier(model_dir)
    verifier.train(synth_corpus.background_csv, n_components=16, max_iter=5)
    verifier.enroll_manifest(synth_corpus.enroll_csv)
    return model_dir


def _trial_scores(verifier, trials_csv, **kwargs):
    trials = read_manifest(trials_csv, require_target=True)
    scores = [verifier.verify(row.speaker, row.path, **kwargs)["score"] for row in trials.itertuples()]
    return np.array(scores), trials["target"].to_numpy()


def test_enroll_verify_identify(trained, synth_corpus):
    verifier = SpeakerVerifier(trained)
    assert verifier.speakers() == sorted(synth_corpus.speakers)
    scores, labels = _trial_scores(verifier, synth_corpus.trials_csv)
    assert metrics.eer(scores, labels) < 0.25
    trials = read_manifest(synth_corpus.trials_csv, require_target=True)
    hits = 0
    test_files = trials[trials["target"] == 1]
    for row in test_files.itertuples():
        result = verifier.identify(row.path, top=3, threshold=-np.inf)
        assert len(result["candidates"]) == 3
        assert result["candidates"][0]["score"] >= result["candidates"][-1]["score"]
        hits += result["best"] == row.speaker
    assert hits / len(test_files) > 0.5
    rejected = verifier.identify(test_files.iloc[0]["path"], threshold=np.inf)
    assert rejected["best"] is None and rejected["rejected"] and rejected["candidates"]


def test_identification_raises_the_verification_threshold_for_the_enrolled_count(trained, synth_corpus):
    """6 enrolled speakers on the S-norm scale: the open-set decision uses the Sidak-raised threshold (the best
    of 6 impostor scores must not pass 6 times as often), a given threshold is used as it is."""
    from speakerid.evaluation.norm import open_set_threshold

    verifier = SpeakerVerifier(trained)
    path = read_manifest(synth_corpus.trials_csv, require_target=True)["path"].iloc[0]
    result = verifier.identify(path)
    assert verifier.score_scale != "none" and len(verifier.speakers()) == 6
    assert result["threshold"] == pytest.approx(open_set_threshold(verifier.threshold, 6))
    assert result["threshold"] > verifier.threshold
    assert result["threshold_source"].endswith("raised for 6 enrolled speakers (Sidak)")
    assert result["rejected"] == (result["candidates"][0]["score"] < result["threshold"])
    assert verifier.identify(path, threshold=1.5)["threshold"] == 1.5
    assert verifier.verify(result["candidates"][0]["speaker"], path)["threshold"] == verifier.threshold


def test_reloaded_models_score_identically(trained, synth_corpus):
    trials = read_manifest(synth_corpus.trials_csv, require_target=True).head(6)
    first = [SpeakerVerifier(trained).verify(r.speaker, r.path)["score"] for r in trials.itertuples()]
    again = [SpeakerVerifier(trained).verify(r.speaker, r.path)["score"] for r in trials.itertuples()]
    assert first == again


def test_exact_and_top_c_close(trained, synth_corpus):
    row = read_manifest(synth_corpus.trials_csv, require_target=True).iloc[0]
    fast = SpeakerVerifier(trained).verify(row["speaker"], row["path"])["score"]
    exact = SpeakerVerifier(trained, backend_params={"top_c": 0}).verify(row["speaker"], row["path"])["score"]
    assert fast == pytest.approx(exact, abs=0.1)


def test_other_feature_config_refused(trained):
    with pytest.raises(ConfigMismatchError, match="n_ceps"):
        _ = SpeakerVerifier(trained, feature_config=FeatureConfig(n_ceps=13)).feature_config


def test_speaker_model_from_other_config_refused(trained, synth_corpus, tmp_path):
    import shutil

    other = tmp_path / "other"
    verifier = SpeakerVerifier(other, feature_config=FeatureConfig(n_ceps=13))
    verifier.train(synth_corpus.background_csv, n_components=4, max_iter=2)
    verifier.enroll("spk001", list(read_manifest(synth_corpus.enroll_csv).query("speaker == 'spk001'")["path"]))
    copied = tmp_path / "copy"
    shutil.copytree(trained, copied)
    shutil.copy(verifier.store.speaker_path("spk001"), copied / "speakers" / "gmm-ubm" /
                verifier.store.speaker_path("spk001").name)
    path = read_manifest(synth_corpus.trials_csv).iloc[0]["path"]
    with pytest.raises(ConfigMismatchError):
        SpeakerVerifier(copied).verify("spk001", path)


def test_unknown_speaker_and_missing_ubm(trained, synth_corpus, tmp_path):
    path = read_manifest(synth_corpus.trials_csv).iloc[0]["path"]
    with pytest.raises(UnknownSpeakerError, match="nobody"):
        SpeakerVerifier(trained).verify("nobody", path)
    with pytest.raises(NotFittedError, match="train-ubm"):
        SpeakerVerifier(tmp_path / "empty").enroll("spk001", [path])


def test_corrupted_speaker_file(trained, synth_corpus, tmp_path):
    import shutil

    copied = tmp_path / "copy"
    shutil.copytree(trained, copied)
    victim = SpeakerVerifier(copied).store.speaker_path("spk002")
    victim.write_bytes(victim.read_bytes()[:200])
    before = sorted(p.name for p in victim.parent.iterdir())
    path = read_manifest(synth_corpus.trials_csv).iloc[0]["path"]
    with pytest.raises(ModelFormatError, match=victim.name):
        SpeakerVerifier(copied).verify("spk002", path)
    assert sorted(p.name for p in victim.parent.iterdir()) == before
    assert SpeakerVerifier(copied).verify("spk001", path)["speaker"] == "spk001"


@pytest.mark.parametrize("damage", ["negative variances", "weights not summing to 1", "NaN means"])
def test_ubm_with_valid_layout_but_impossible_values(trained, synth_corpus, tmp_path, damage):
    import shutil

    copied = tmp_path / "copy"
    shutil.copytree(trained, copied)
    store = SpeakerVerifier(copied).store
    header, arrays = store.load("ubm.npz", expected_class="GMMUBM")
    arrays = dict(arrays)
    if damage == "negative variances":
        arrays["variances"] = -arrays["variances"]
    elif damage == "NaN means":
        arrays["means"] = np.full_like(arrays["means"], np.nan)
    else:
        arrays["weights"] = arrays["weights"] * 3.0
    store.save("ubm.npz", arrays, header)
    path = read_manifest(synth_corpus.trials_csv).iloc[0]["path"]
    for _ in range(2):   # a failed load is not remembered as loaded
        with pytest.raises(ModelFormatError, match=r"ubm\.npz"):
            SpeakerVerifier(copied).verify("spk001", path)


def test_background_speaker_enrolled_warns(trained, synth_corpus, tmp_path):
    import shutil

    copied = tmp_path / "copy"
    shutil.copytree(trained, copied)
    background = read_manifest(synth_corpus.background_csv)
    speaker = background.iloc[0]["speaker"]
    with pytest.warns(DataLeakWarning, match=speaker):
        SpeakerVerifier(copied).enroll(speaker, list(background.query("speaker == @speaker")["path"]))


def test_concurrent_enroll_from_two_processes(trained, synth_corpus, tmp_path):
    import shutil

    copied = tmp_path / "copy"
    shutil.copytree(trained, copied)
    files = read_manifest(synth_corpus.trials_csv).drop_duplicates("path")["path"].tolist()
    procs = [subprocess.Popen([sys.executable, "-m", "speakerid", "enroll", "--model-dir", str(copied),
                               "--speaker", name, files[i], files[i + 1]],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i, name in ((0, "new-one"), (2, "new-two"))]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    speakers = SpeakerVerifier(copied).speakers()
    assert {"new-one", "new-two"} <= set(speakers)
    assert len(speakers) == len(synth_corpus.speakers) + 2


def test_per_speaker_gmm_backend(trained, synth_corpus, tmp_path):
    import shutil

    copied = tmp_path / "copy"
    shutil.copytree(trained, copied)
    verifier = SpeakerVerifier(copied, backend="gmm", backend_params={"n_components": 4})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataLeakWarning)
        verifier.enroll_manifest(synth_corpus.enroll_csv)
    assert verifier.speakers() == sorted(synth_corpus.speakers)
    scores, labels = _trial_scores(verifier, synth_corpus.trials_csv)
    assert metrics.eer(scores, labels) < 0.4
    assert SpeakerVerifier(copied).speakers() == sorted(synth_corpus.speakers)  # gmm-ubm ones still there


def test_api_parameters_are_checked(trained, synth_corpus):
    path = read_manifest(synth_corpus.trials_csv).iloc[0]["path"]
    for bad in (0, -2, 1.5, True, "2"):
        with pytest.raises(ParameterError, match="n_jobs"):
            SpeakerVerifier(trained, n_jobs=bad)
    verifier = SpeakerVerifier(trained)
    for bad in (float("nan"), "high"):
        with pytest.raises(ParameterError, match="threshold"):
            verifier.verify("spk001", path, threshold=bad)
        with pytest.raises(ParameterError, match="threshold"):
            verifier.identify(path, threshold=bad)
    for bad in (float("nan"), float("inf"), "high"):
        with pytest.raises(ParameterError, match="threshold"):
            verifier.set_threshold(bad)
    assert verifier.verify("spk001", path, threshold=-np.inf)["accepted"]       # ±inf: accept / reject all


def test_enroll_records_the_given_source_names(trained, synth_corpus, tmp_path):
    copied = tmp_path / "m"
    shutil.copytree(trained, copied)
    verifier = SpeakerVerifier(copied)
    paths = list(read_manifest(synth_corpus.enroll_csv).query("speaker == 'spk001'")["path"])[:2]
    verifier.enroll("spk001", paths, names=["first take.wav", "second.wav"])
    header, _ = verifier.store.load_speaker("spk001")
    assert header["files"] == ["first take.wav", "second.wav"]
    verifier.enroll("spk001", paths)
    assert verifier.store.load_speaker("spk001")[0]["files"] == [Path(p).name for p in paths]
    with pytest.raises(ParameterError, match="1 names given for 2 enrollment files"):
        verifier.enroll("spk001", paths, names=["one.wav"])


def test_verify_identify_and_score_give_the_same_scores(trained, synth_corpus, tmp_path):
    from speakerid.scoring.batch import score_trials

    result = score_trials(trained, synth_corpus.trials_csv, tmp_path / "s.csv")      # defaults on both sides
    assert result.normalization.startswith("snorm") and "enrolled" in result.normalization
    scored = read_manifest(synth_corpus.trials_csv).assign(score=pd.read_csv(tmp_path / "s.csv")["score"].to_numpy())
    verifier = SpeakerVerifier(trained)
    assert verifier.score_scale == "snorm+enrolled"
    verified = [verifier.verify(s, p) for s, p in zip(scored["speaker"], scored["path"])]
    np.testing.assert_allclose([v["score"] for v in verified], scored["score"], rtol=2e-6, atol=2e-6)
    assert {v["scale"] for v in verified} == {"snorm+enrolled"}
    path = scored["path"].iloc[0]
    ranked = {c["speaker"]: c["score"] for c in verifier.identify(path, top=100)["candidates"]}
    for row in scored[scored["path"] == path].itertuples():
        assert ranked[row.speaker] == pytest.approx(row.score, rel=2e-6, abs=2e-6)
    raw = SpeakerVerifier(trained, norm="none")
    assert raw.score_scale == "none" and raw.threshold == 0.0
    assert raw.verify(scored["speaker"].iloc[0], path)["score"] != pytest.approx(verified[0]["score"])


def test_threshold_is_kept_with_its_score_scale(trained, tmp_path):
    shutil.copytree(trained, tmp_path / "m")
    verifier = SpeakerVerifier(tmp_path / "m")
    assert verifier.threshold == 2.0                    # normalised scores: 2 impostor standard deviations
    verifier.set_threshold(1.5)
    assert SpeakerVerifier(tmp_path / "m").threshold == 1.5
    with pytest.raises(ConfigMismatchError, match="set for 'snorm\\+enrolled' scores, these are 'none'"):
        _ = SpeakerVerifier(tmp_path / "m", norm="none").threshold
    SpeakerVerifier(tmp_path / "m", norm="none").set_threshold(0.25)
    assert SpeakerVerifier(tmp_path / "m", norm="none").threshold == 0.25
