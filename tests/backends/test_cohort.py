"""Score normalisation shared by verify and batch scoring (speakerid.backends._cohort): the cohort kept in the model
directory, the speakers' cohort scores kept in their headers -- identical to recomputing them, and never stale."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from speakerid.backends._cohort import COHORT_SCORES, ScoreNormalizer, cohort_path
from speakerid.data.manifests import read_manifest
from speakerid.evaluation.norm import leave_out_tnorm, normalize_scores
from speakerid.scoring.batch import score_trials
from speakerid.store import COHORT_FILE, load_model_file, save_model_file
from speakerid.verifier import SpeakerVerifier

F32 = dict(rtol=2e-6, atol=2e-6)     # scores are written as float32


@pytest.fixture(scope="module")
def model_dir(synth_corpus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort-models")
    verifier = SpeakerVerifier(folder)
    verifier.train(synth_corpus.background_csv, n_components=8, max_iter=3)
    verifier.enroll_manifest(synth_corpus.enroll_csv)
    return folder


@pytest.fixture
def copy(model_dir, tmp_path):
    shutil.copytree(model_dir, tmp_path / "m")
    return tmp_path / "m"


def _scores(folder, trials, out, **kwargs):
    score_trials(folder, trials, out, **kwargs)
    return pd.read_csv(out)["score"].to_numpy(float)


def _reference(folder, trials_csv, cohort_csv):
    """S-norm + enrolled T-norm from scratch: raw scores, a freshly enrolled cohort, no stored statistics."""
    verifier = SpeakerVerifier(folder, norm="none")
    backend, speakers = verifier.backend, verifier.speakers()
    cohort = read_manifest(cohort_csv).reset_index(drop=True)
    cohort_frames = [verifier.features(p) for p in cohort["path"]]
    verifier.score_frames(speakers[:1], cohort_frames[0])          # loads the background model
    models = [backend.enroll([cohort_frames[i] for i in idx])[0]
              for idx in cohort.groupby("speaker", sort=True).indices.values()]
    z = np.stack([verifier.score_frames(speakers, f) for f in cohort_frames], axis=1)    # (speakers, utts)
    trials = read_manifest(trials_csv)
    out = []
    for claimed, path in zip(trials["speaker"], trials["path"]):
        frames = verifier.features(path)
        raw = verifier.score_frames(speakers, frames)
        t = np.asarray(backend.score(backend.prepare(frames), models), float)
        normed = normalize_scores(raw, "snorm", model_cohort=z, test_cohort=np.tile(t, (len(raw), 1)))
        i = speakers.index(claimed)
        out.append(leave_out_tnorm(normed[i:i + 1], normed, [i])[0])
    return np.array(out)


def test_stored_statistics_give_the_scores_of_recomputing_them(copy, synth_corpus, tmp_path):
    header, _ = load_model_file(SpeakerVerifier(copy).store.speaker_files()[0])
    assert len(header[COHORT_SCORES]["scores"]) == len(read_manifest(copy / COHORT_FILE))   # kept at enrollment
    assert cohort_path(SpeakerVerifier(copy).store, "gmm-ubm").is_file()                    # made by train-ubm
    stored = _scores(copy, synth_corpus.trials_csv, tmp_path / "stored.csv")
    expected = _reference(copy, synth_corpus.trials_csv, copy / COHORT_FILE)
    np.testing.assert_allclose(stored, expected, **F32)
    # drop every stored statistic: they are recomputed, to the same scores, and kept again
    cohort_path(SpeakerVerifier(copy).store, "gmm-ubm").unlink()
    for path in SpeakerVerifier(copy).store.speaker_files():
        header, arrays = load_model_file(path)
        del header[COHORT_SCORES]
        save_model_file(path, arrays, header)
    again = _scores(copy, synth_corpus.trials_csv, tmp_path / "again.csv")
    np.testing.assert_allclose(again, stored, **F32)
    assert cohort_path(SpeakerVerifier(copy).store, "gmm-ubm").is_file()
    assert all(COHORT_SCORES in load_model_file(p)[0] for p in SpeakerVerifier(copy).store.speaker_files())


def test_a_changed_cohort_list_rebuilds_everything(copy, synth_corpus, tmp_path):
    store = SpeakerVerifier(copy).store
    before_key = load_model_file(cohort_path(store, "gmm-ubm"))[0]["key"]
    first = store.speaker_files()[0]
    before_rows = load_model_file(first)[0][COHORT_SCORES]
    SpeakerVerifier(copy).set_cohort(synth_corpus.background_csv, max_speakers=3, random_state=5)
    scores = _scores(copy, synth_corpus.trials_csv, tmp_path / "s.csv")
    np.testing.assert_allclose(scores, _reference(copy, synth_corpus.trials_csv, copy / COHORT_FILE), **F32)
    assert load_model_file(cohort_path(store, "gmm-ubm"))[0]["key"] != before_key
    after_rows = load_model_file(first)[0][COHORT_SCORES]
    assert after_rows["key"] != before_rows["key"] and len(after_rows["scores"]) < len(before_rows["scores"])


def test_a_cohort_file_of_another_ubm_is_rebuilt_not_used(copy, synth_corpus, tmp_path):
    other = tmp_path / "other"
    SpeakerVerifier(other).train(synth_corpus.background_csv, n_components=8, max_iter=3, random_state=7)
    good = _scores(copy, synth_corpus.trials_csv, tmp_path / "good.csv")
    shutil.copy(cohort_path(SpeakerVerifier(other).store, "gmm-ubm"), cohort_path(SpeakerVerifier(copy).store,
                                                                                   "gmm-ubm"))
    np.testing.assert_allclose(_scores(copy, synth_corpus.trials_csv, tmp_path / "s.csv"), good, **F32)
    header = load_model_file(cohort_path(SpeakerVerifier(copy).store, "gmm-ubm"))[0]
    assert header["background_hash"] == load_model_file(copy / "ubm.npz")[0]["ubm_hash"]     # rebuilt for this UBM


def test_speaker_statistics_under_another_key_are_not_trusted(copy, synth_corpus, tmp_path):
    good = _scores(copy, synth_corpus.trials_csv, tmp_path / "good.csv")
    for path in SpeakerVerifier(copy).store.speaker_files():        # stale statistics: a key of another cohort
        header, arrays = load_model_file(path)
        header[COHORT_SCORES] = {"key": "stale", "scores": [9.0] * len(header[COHORT_SCORES]["scores"])}
        save_model_file(path, arrays, header)
    np.testing.assert_allclose(_scores(copy, synth_corpus.trials_csv, tmp_path / "s.csv"), good, **F32)


def test_exact_scoring_does_not_use_statistics_of_top_c_scoring(copy, synth_corpus, tmp_path):
    exact = _scores(copy, synth_corpus.trials_csv, tmp_path / "exact.csv", top_c=0)
    verifier = SpeakerVerifier(copy, backend_params={"top_c": 0})
    trials = read_manifest(synth_corpus.trials_csv)
    expected = [verifier.verify(s, p)["score"] for s, p in zip(trials["speaker"], trials["path"])]
    np.testing.assert_allclose(exact, expected, **F32)
    assert not np.allclose(exact, _scores(copy, synth_corpus.trials_csv, tmp_path / "top.csv"), rtol=1e-6)


def test_normalizer_file_round_trip(tmp_path):
    normalizer = ScoreNormalizer("snorm", 2, [{"means": np.arange(6.0).reshape(2, 3)},
                                             {"means": np.ones((2, 3)), "weights": np.ones(2) / 2}],
                                 {"a": np.array([1.0, 2.0, 3.0]), "b": np.array([0.0, 1.0, 5.0]), "c": np.ones(3)},
                                 None, ("a", "b", "c"), "snorm top 2+enrolled")
    normalizer.save(tmp_path / "n.npz")
    loaded = ScoreNormalizer.load(tmp_path / "n.npz")
    assert [sorted(m) for m in loaded.cohort_models] == [["means"], ["means", "weights"]]
    assert (loaded.method, loaded.top_n, loaded.enrolled, loaded.scale) == ("snorm", 2, ("a", "b", "c"),
                                                                           "snorm top 2+enrolled")
    np.testing.assert_array_equal(loaded.model_cohort["b"], [0.0, 1.0, 5.0])
    raw, test = np.array([2.0, 1.0, 0.5]), np.array([0.0, 1.0, 4.0])
    np.testing.assert_array_equal(loaded.normalize(raw, ["a", "b", "c"], 1, test),
                                  normalizer.normalize(raw, ["a", "b", "c"], 1, test))
