"""Siamese MLP: finite-difference gradient checks, training on synthetic speakers, store and verifier use."""

from __future__ import annotations

import numpy as np
import pytest

from speakerid.data.manifests import read_manifest
from speakerid.evaluation import metrics
from speakerid.exceptions import ConfigMismatchError, ModelFormatError, NotFittedError, ParameterError
from speakerid.features import FeatureConfig, extract_file
from speakerid.models._nn import MLP, Adam, Dense, L2Norm, ReLU, contrastive_loss
from speakerid.models.clipvec import (
    NEURAL_FEATURE_CONFIG,
    Standardizer,
    check_neural_config,
    clip_examples,
    segment_frames,
)
from speakerid.models.pairs import sample_pairs
from speakerid.models.siamese import SiameseMLP, embedding_scores
from speakerid.store import ModelStore
from speakerid.verifier import SpeakerVerifier

TOLERANCE = 1e-5


# -------------------------------------------------------------------------------------------- gradient checks

def _relative_error(numeric, analytic) -> float:
    numeric, analytic = np.ravel(numeric), np.ravel(analytic)
    scale = max(np.linalg.norm(numeric) + np.linalg.norm(analytic), 1e-300)
    return float(np.linalg.norm(numeric - analytic) / scale)


def _numeric_gradient(loss_of, array, step=1e-6) -> np.ndarray:
    """Central differences of the scalar ``loss_of()`` with respect to every entry of ``array`` (in place)."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + step
        up = loss_of()
        array[index] = saved - step
        down = loss_of()
        array[index] = saved
        grad[index] = (up - down) / (2 * step)
    return grad


def _check_layer(layer, x, rng):
    """d(sum(upstream * layer(x)))/dx and /d(params) against finite differences."""
    upstream = rng.normal(size=layer.forward(x).shape)

    def loss_of():
        return float(np.sum(upstream * layer.forward(x)))

    layer.forward(x)
    grad_x = layer.backward(upstream)
    analytic_params = {name: g.copy() for name, g in layer.grads.items()}
    assert _relative_error(_numeric_gradient(loss_of, x), grad_x) < TOLERANCE
    for name, value in layer.params.items():
        assert _relative_error(_numeric_gradient(loss_of, value), analytic_params[name]) < TOLERANCE, name


def test_dense_gradients(rng):
    _check_layer(Dense(5, 4, rng), rng.normal(size=(6, 5)), rng)


def test_relu_gradient(rng):
    x = rng.normal(size=(6, 5))
    x[np.abs(x) < 0.05] = 0.5  # keep finite differences away from the kink
    _check_layer(ReLU(), x, rng)


def test_l2norm_gradient(rng):
    _check_layer(L2Norm(), rng.normal(size=(6, 5)), rng)


def test_contrastive_loss_gradient(rng):
    first, second = rng.normal(size=(8, 4)), rng.normal(size=(8, 4))
    different, margin = np.array([0, 1] * 4), 2.2
    _, grad_first, grad_second, distances = contrastive_loss(first, second, different, margin)
    impostor = distances[different == 1]
    assert np.any(impostor < margin - 0.1) and np.any(impostor > margin + 0.1)  # both sides of the hinge

    def loss_of():
        return contrastive_loss(first, second, different, margin)[0]

    assert _relative_error(_numeric_gradient(loss_of, first), grad_first) < TOLERANCE
    assert _relative_error(_numeric_gradient(loss_of, second), grad_second) < TOLERANCE


def test_contrastive_loss_values():
    a = np.zeros((3, 2))
    b = np.array([[3.0, 4.0], [0.3, 0.4], [3.0, 4.0]])
    loss, _, _, d = contrastive_loss(a, b, np.array([0, 1, 1]), margin=1.0)
    # same pair: 25 / 2; impostor inside the margin: 0.5^2 / 2; impostor beyond the margin: 0
    assert loss == pytest.approx((12.5 + 0.125 + 0.0) / 3)
    assert d == pytest.approx([5.0, 0.5, 5.0])


def test_whole_siamese_network_gradient(rng):
    """Every Dense weight and bias of the shared network through L2Norm and the contrastive loss."""
    net = MLP([6, 5, 4, 3], l2_normalize=True, rng=rng)
    for layer in net.dense_layers:  # non-zero biases: no all-dead row giving an exactly zero embedding
        layer.params["bias"] = rng.normal(scale=0.5, size=layer.params["bias"].shape)
    x1, x2 = rng.normal(size=(5, 6)), rng.normal(size=(5, 6))
    different = np.array([0, 1, 1, 0, 1])

    def loss_of():
        out = net.forward(np.concatenate([x1, x2]))
        return contrastive_loss(out[:5], out[5:], different, 1.5)[0]

    out = net.forward(np.concatenate([x1, x2]))
    _, g1, g2, _ = contrastive_loss(out[:5], out[5:], different, 1.5)
    net.backward(np.concatenate([g1, g2]))
    analytic = [layer.grads[name].copy() for layer, name in net.parameters()]
    for (layer, name), expected in zip(net.parameters(), analytic):
        assert _relative_error(_numeric_gradient(loss_of, layer.params[name]), expected) < TOLERANCE, name


def test_adam_minimises_a_quadratic(rng):
    layer = Dense(3, 1, rng)
    target = np.array([[1.0], [-2.0], [0.5]])
    optimizer = Adam([(layer, "weight"), (layer, "bias")], learning_rate=0.05)
    x = rng.normal(size=(64, 3))
    for _ in range(600):
        residual = layer.forward(x) - x @ target
        layer.backward(2 * residual / len(x))
        optimizer.step()
    assert layer.params["weight"] == pytest.approx(target, abs=1e-3)


# ----------------------------------------------------------------------------------------------- clip vectors

def test_segments_and_standardizer():
    frames = np.arange(1100, dtype=np.float64).reshape(550, 2)
    assert [len(s) for s in segment_frames(frames, 200)] == [200, 200, 150]
    X, labels, owner = clip_examples([frames, frames[:50]], ["a", "b"], 200)
    assert X.shape == (4, 4) and labels.tolist() == ["a", "a", "a", "b"] and owner.tolist() == [0, 0, 0, 1]
    standardized = Standardizer().fit(X).transform(X)
    assert standardized.mean(axis=0) == pytest.approx(0, abs=1e-12)
    with pytest.raises(ConfigMismatchError, match="dimensions"):
        Standardizer().fit(X).transform(X[:, :3])


def test_per_utterance_cmvn_refused():
    with pytest.raises(ConfigMismatchError, match="cmvn"):
        check_neural_config(FeatureConfig())
    check_neural_config(NEURAL_FEATURE_CONFIG)


# --------------------------------------------------------------------------------------------------- training

@pytest.fixture(scope="module")
def synth_vectors(synth_corpus):
    """1 s segment clip vectors of the background (training) and evaluated (validation) speakers."""
    background = read_manifest(synth_corpus.background_csv)
    evaluated = read_manifest(synth_corpus.utterances_csv)
    evaluated = evaluated[evaluated["speaker"].isin(synth_corpus.speakers)]
    out = []
    for frame in (background, evaluated):
        frames = [extract_file(p, NEURAL_FEATURE_CONFIG) for p in frame["path"]]
        X, labels, _ = clip_examples(frames, frame["speaker"].to_numpy(), 100)
        out += [X, labels]
    return tuple(out)


@pytest.fixture(scope="module")
def trained_model(synth_vectors):
    X, y, X_val, y_val = synth_vectors
    model = SiameseMLP(hidden_sizes=(64, 32), max_epochs=25, patience=25, random_state=0)
    return model.fit(X, y, X_val, y_val)


def test_training_loss_decreases(trained_model):
    losses = [r["train_loss"] for r in trained_model.history_]
    assert losses[-1] < 0.5 * losses[0]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    keys = {"train_loss", "val_loss", "train_accuracy", "val_accuracy", "val_eer"}
    assert set(trained_model.history_[0]) >= keys


def test_beats_random_projection_baseline(trained_model, synth_vectors):
    """Speaker-disjoint validation EER: trained network vs the same architecture with random weights."""
    _, _, X_val, y_val = synth_vectors
    pairs = sample_pairs(y_val, 2000, random_state=7)

    def pair_eer(model):
        return metrics.eer(model.score_pairs(X_val[pairs.first], X_val[pairs.second]), 1 - pairs.different)

    untrained = SiameseMLP.from_arrays(trained_model.to_arrays(), trained_model.get_params())
    untrained.network_ = MLP(trained_model.network_.sizes, True, np.random.default_rng(0))
    trained_eer, random_eer = pair_eer(trained_model), pair_eer(untrained)
    assert trained_eer < random_eer - 0.02, (trained_eer, random_eer)
    assert trained_model.val_eer_ < 0.4


def test_seeded_training_is_reproducible(synth_vectors):
    X, y, X_val, y_val = synth_vectors
    runs = [SiameseMLP(hidden_sizes=(16,), max_epochs=3, random_state=5).fit(X, y, X_val, y_val)
            for _ in range(2)]
    assert np.array_equal(runs[0].embed(X_val), runs[1].embed(X_val))
    other = SiameseMLP(hidden_sizes=(16,), max_epochs=3, random_state=6).fit(X, y, X_val, y_val)
    assert not np.array_equal(runs[0].embed(X_val), other.embed(X_val))


def test_arrays_round_trip_and_errors(trained_model, synth_vectors):
    _, _, X_val, _ = synth_vectors
    again = SiameseMLP.from_arrays(trained_model.to_arrays(), trained_model.get_params())
    assert np.array_equal(again.embed(X_val), trained_model.embed(X_val))
    arrays = trained_model.to_arrays()
    del arrays["bias_1"]
    with pytest.raises(ModelFormatError, match="bias_1"):
        SiameseMLP.from_arrays(arrays, trained_model.get_params())
    with pytest.raises(NotFittedError):
        SiameseMLP().embed(X_val)
    with pytest.raises(ParameterError, match="margin"):
        SiameseMLP(margin=0).fit(X_val, np.arange(len(X_val)) % 2)


def test_embedding_scores():
    speakers = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert embedding_scores(np.array([1.0, 0.0]), speakers).tolist() == pytest.approx([0.0, -np.sqrt(2)])
    with pytest.raises(ParameterError):
        embedding_scores(np.zeros(2), speakers, "manhattan")


# ----------------------------------------------------------------------------------------- file level + store

@pytest.fixture(scope="module")
def siamese_dir(synth_corpus, tmp_path_factory):
    from speakerid.backends.siamese import train_siamese

    model_dir = tmp_path_factory.mktemp("siamese")
    result = train_siamese(model_dir, synth_corpus.background_csv, hidden_sizes=(32, 16), max_epochs=6,
                           segment_s=1.0, val_fraction=0.34, random_state=0)
    return model_dir, result


def test_train_siamese_writes_model_history_and_plot(siamese_dir):
    model_dir, result = siamese_dir
    assert (model_dir / "siamese.npz").is_file() and (model_dir / "features.json").is_file()
    lines = (model_dir / "history.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,train_loss,val_loss") and len(lines) == 1 + result["epochs_run"]
    assert (model_dir / "training.png").read_bytes()[:4] == b"\x89PNG"
    assert FeatureConfig.from_json((model_dir / "features.json").read_text()) == NEURAL_FEATURE_CONFIG
    assert 0.0 <= result["val_eer"] <= 1.0 and 0.0 <= result["val_pair_accuracy"] <= 1.0
    assert result["n_train_speakers"] + result["n_val_speakers"] == 6


def test_enroll_verify_through_the_verifier(siamese_dir, synth_corpus):
    model_dir, _ = siamese_dir
    verifier = SpeakerVerifier(model_dir, backend="siamese")
    verifier.enroll_manifest(synth_corpus.enroll_csv)
    assert verifier.speakers() == sorted(synth_corpus.speakers)
    trials = read_manifest(synth_corpus.trials_csv, require_target=True)
    first = [verifier.verify(r.speaker, r.path)["score"] for r in trials.head(8).itertuples()]
    again = [SpeakerVerifier(model_dir, backend="siamese").verify(r.speaker, r.path)["score"]
             for r in trials.head(8).itertuples()]
    assert first == again  # save/load round trip: identical scores
    result = verifier.verify(trials.iloc[0]["speaker"], trials.iloc[0]["path"])
    assert result["backend"] == "siamese" and np.isfinite(result["threshold"])
    best = verifier.identify(trials.iloc[0]["path"], top=3, threshold=-np.inf)
    assert len(best["candidates"]) == 3


def test_siamese_in_a_cmvn_directory_refused(synth_corpus, tmp_path):
    from speakerid.backends.siamese import train_siamese

    ModelStore(tmp_path).save_feature_config(FeatureConfig())
    with pytest.raises(ConfigMismatchError, match="cmvn"):
        train_siamese(tmp_path, synth_corpus.background_csv, max_epochs=1)


def test_enroll_before_training_says_what_to_do(synth_corpus, tmp_path):
    path = read_manifest(synth_corpus.enroll_csv).iloc[0]["path"]
    with pytest.raises(NotFittedError, match="train-siamese"):
        SpeakerVerifier(tmp_path, backend="siamese").enroll("spk001", [path])


def test_train_siamese_cli_in_process(synth_corpus, tmp_path, capsys):
    import json

    from speakerid.cli.main import main

    model_dir = tmp_path / "cli"
    manifest = str(synth_corpus.background_csv)
    status = main(["train-siamese", "--manifest", manifest, "--model-dir", str(model_dir), "--epochs", "3",
                   "--hidden", "16,8", "--segment-s", "1", "--val-fraction", "0.34",
                   "--features", "mfcc,chroma", "--seed", "1"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "epoch   3" in out and "validation EER" in out and "training.png" in out
    config = FeatureConfig.from_json((model_dir / "features.json").read_text())
    assert config.features == ("mfcc", "chroma") and config.cmvn == "none"
    assert main(["enroll", "--manifest", str(synth_corpus.enroll_csv), "--model-dir", str(model_dir),
                 "--backend", "siamese"]) == 0
    row = read_manifest(synth_corpus.trials_csv, require_target=True).iloc[0]
    capsys.readouterr()
    assert main(["verify", "--model-dir", str(model_dir), "--backend", "siamese", "--speaker", row["speaker"],
                 row["path"], "--json", "--norm", "none"]) == 0                  # raw: a distance
    result = json.loads(capsys.readouterr().out)
    assert result["backend"] == "siamese" and result["score"] <= 0.0  # -distance
    assert main(["train-siamese", "--manifest", manifest, "--model-dir", str(model_dir),
                 "--val-fraction", "1.5"]) == 2          # speakers are enrolled: refused without --force
    assert "--force" in capsys.readouterr().err
    assert main(["train-siamese", "--manifest", manifest, "--model-dir", str(model_dir),
                 "--val-fraction", "1.5", "--force"]) == 2
    assert "val_fraction" in capsys.readouterr().err
