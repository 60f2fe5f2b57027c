"""MLP speaker classifier: numpy forward = scikit-learn's, top-N accuracy, pickle-free store, mlp backend."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speakerid.cli.main import main
from speakerid.data.manifests import read_manifest
from speakerid.exceptions import ModelFormatError, NotFittedError, ParameterError
from speakerid.features import extract_file
from speakerid.models.clipvec import NEURAL_FEATURE_CONFIG, clip_examples
from speakerid.models.mlp import MLPSpeakerClassifier, top_n_accuracy
from speakerid.store import load_model_file
from speakerid.verifier import SpeakerVerifier


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("n_classes", [2, 5])
def test_numpy_forward_equals_sklearn(rng, n_classes):
    from sklearn.neural_network import MLPClassifier

    X = rng.normal(size=(60, 7))
    y = np.arange(60) % n_classes
    net = MLPClassifier(hidden_layer_sizes=(9, 4), max_iter=30, random_state=0).fit(X, y)
    model = MLPSpeakerClassifier()
    model.classes_ = np.array([f"c{i}" for i in range(n_classes)])
    model.standardizer_ = type("Identity", (), {"transform": staticmethod(lambda a: np.asarray(a, float))})()
    model._take_weights(net)
    assert np.allclose(model.predict_proba(X), net.predict_proba(X), atol=1e-12)
    hidden = np.maximum(X @ net.coefs_[0] + net.intercepts_[0], 0)
    hidden = np.maximum(hidden @ net.coefs_[1] + net.intercepts_[1], 0)
    assert np.allclose(model.embed(X), hidden)


def test_top_n_accuracy_function():
    proba = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5]])
    assert [top_n_accuracy(proba, np.array([2, 1, 2]), n) for n in (1, 2, 3)] == [1 / 3, 2 / 3, 1.0]
    with pytest.raises(ParameterError):
        top_n_accuracy(proba, np.array([0, 0, 0]), 0)


@pytest.fixture(scope="module")
def background_vectors(synth_corpus):
    frame = read_manifest(synth_corpus.background_csv)
    frames = [extract_file(p, NEURAL_FEATURE_CONFIG) for p in frame["path"]]
    X, labels, owner = clip_examples(frames, frame["speaker"].to_numpy(), 100)
    return X, labels, owner


def test_closed_set_identification(background_vectors):
    X, labels, owner = background_vectors
    held_out = np.isin(owner, [3, 7, 11, 15, 19, 23])  # one recording of each of the 6 speakers
    model = MLPSpeakerClassifier(hidden_sizes=(32, 16), max_epochs=60, random_state=0)
    model.fit(X[~held_out], labels[~held_out], X[held_out], labels[held_out])
    top1, top3 = (model.top_n_accuracy(X[held_out], labels[held_out], n) for n in (1, 3))
    assert top1 > 2 / 6 and top3 >= top1 and top3 > 0.6  # chance: 1/6 and 1/2
    assert model.predict(X[:2]).dtype.kind == "U"
    assert model.top_n_accuracy(X[:3], ["nobody"] * 3, 5) == 0.0
    history = model.history_
    assert history[-1]["train_loss"] < history[0]["train_loss"] and model.best_epoch_ <= len(history)
    assert model.embed(X).shape == (len(X), 16)


def test_arrays_round_trip(background_vectors):
    X, labels, _ = background_vectors
    model = MLPSpeakerClassifier(hidden_sizes=(8,), max_epochs=3).fit(X, labels)
    arrays = model.to_arrays()
    assert all(np.asarray(a).dtype.kind in "fU" for a in arrays.values())
    again = MLPSpeakerClassifier.from_arrays(arrays, model.get_params())
    assert np.array_equal(again.predict_proba(X), model.predict_proba(X))
    assert np.array_equal(again.classes_, model.classes_)
    del arrays["coef_1"]
    with pytest.raises(ModelFormatError, match="coef_1"):
        MLPSpeakerClassifier.from_arrays(arrays, {})
    with pytest.raises(NotFittedError):
        MLPSpeakerClassifier().embed(X)
    with pytest.raises(ParameterError, match="not training speakers"):
        MLPSpeakerClassifier(max_epochs=1).fit(X, labels, X[:2], ["x", "y"])


def test_train_mlp_cli_then_verify(synth_corpus, tmp_path, capsys):
    model_dir = tmp_path / "models"
    status = main(["train-mlp", "--manifest", str(synth_corpus.background_csv), "--model-dir", str(model_dir),
                   "--hidden", "32,16", "--epochs", "8", "--segment-s", "1", "--json"])
    assert status == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["n_speakers"] == 6 and 0 <= result["val_accuracy"] <= 1
    assert "epoch   1" in err  # progress lines on stderr with --json
    assert (model_dir / "history-mlp.csv").is_file() and (model_dir / "training-mlp.png").is_file()
    header, arrays = load_model_file(model_dir / "mlp.npz", expected_class="MLPSpeakerClassifier")
    assert header["feature_config"] == NEURAL_FEATURE_CONFIG.to_dict() and "coef_0" in arrays

    assert main(["enroll", "--manifest", str(synth_corpus.enroll_csv), "--model-dir", str(model_dir),
                 "--backend", "mlp"]) == 0
    trials = read_manifest(synth_corpus.trials_csv, require_target=True).head(6)
    first, again = ([SpeakerVerifier(model_dir, backend="mlp", norm="none").verify(r.speaker, r.path)["score"]
                     for r in trials.itertuples()] for _ in range(2))
    assert first == again and all(-1.0 <= s <= 1.0 for s in first)  # cosine scores, reproducible
    capsys.readouterr()
    assert main(["verify", "--model-dir", str(model_dir), "--backend", "mlp",
                 "--speaker", trials.iloc[0]["speaker"], trials.iloc[0]["path"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["backend"] == "mlp"


def test_cli_rejects_bad_hidden_sizes(synth_corpus, tmp_path, capsys):
    status = main(["train-mlp", "--manifest", str(synth_corpus.background_csv), "--model-dir", str(tmp_path),
                   "--hidden", "32,x"])
    assert status == 2 and "--hidden" in capsys.readouterr().err
