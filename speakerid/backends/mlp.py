"""The MLP-classifier embedding backend: its adapter to the model directory and its training (``train-mlp``).

A closed-set speaker classifier over clip vectors; its last hidden layer is the embedding, scored like the
Siamese backend's (cosine by default). Training saves ``mlp.npz`` with ``history-mlp.csv`` and
``training-mlp.png``.
"""

from __future__ import annotations

import math

import numpy as np

from speakerid.backends._training import neural_examples, neural_header, read_neural_background, save_neural
from speakerid.backends.base import register_backend
from speakerid.backends.siamese import SiameseBackend
from speakerid.evaluation.metrics import eer
from speakerid.exceptions import ParameterError
from speakerid.features import FeatureConfig
from speakerid.models.mlp import MLPSpeakerClassifier
from speakerid.models.pairs import sample_pairs
from speakerid.store import MLP_FILE


def _stratified_holdout(labels, val_fraction, random_state):
    """Per speaker, hold out ``val_fraction`` of the examples (at least one stays in training)."""
    rng = np.random.default_rng(random_state)
    val = np.zeros(len(labels), dtype=bool)
    if val_fraction <= 0:
        return val
    for speaker in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == speaker))
        n_val = min(int(round(val_fraction * len(index))), len(index) - 1)
        val[index[:n_val]] = True
    return val


def train_mlp(model_dir, manifest, *, feature_config: FeatureConfig | None = None, n_jobs=1, random_state: int = 0,
              verbose: bool = False, hidden_sizes=(256, 128), alpha: float = 1e-3, learning_rate: float = 1e-3,
              batch_size: int = 64, max_epochs: int = 100, patience: int = 10, segment_s: float = 2.0,
              val_fraction: float = 0.2, on_epoch=None) -> dict:
    """Train the MLP speaker classifier on a manifest and save it as ``mlp.npz`` in ``model_dir``.

    Closed set: the validation examples are a share ``val_fraction`` of every speaker's segments (so
    validation accuracy is measured on the training speakers, on held-out segments). ``feature_config``,
    ``n_jobs``, ``random_state``, ``verbose``, ``segment_s`` and ``on_epoch`` as in
    :func:`~speakerid.backends.siamese.train_siamese`; the rest: :class:`~speakerid.models.mlp.MLPSpeakerClassifier`.

    Returns
    -------
    dict
        The paths, ``val_accuracy`` (top-1), ``val_top5_accuracy``, ``val_pair_eer`` (cosine of the embeddings
        over held-out segment pairs) and its ``eer_threshold`` (saved: the default decision threshold of
        ``--backend mlp``), ``best_epoch``, ``epochs_run``, ``n_files``, ``n_examples``, ``n_speakers``.

    Raises
    ------
    ParameterError
        When ``val_fraction`` is outside [0, 1) or the manifest has fewer than 2 speakers.
    """
    val_fraction = float(val_fraction)
    if not 0.0 <= val_fraction < 1.0:
        raise ParameterError(f"val_fraction must be in [0, 1), got {val_fraction}")
    frame, source, speakers = read_neural_background(manifest)
    store, config, X, labels, _ = neural_examples(model_dir, feature_config, frame, source, n_jobs, segment_s)
    val = _stratified_holdout(labels, val_fraction, random_state)
    model = MLPSpeakerClassifier(hidden_sizes=tuple(hidden_sizes), alpha=alpha, learning_rate=learning_rate,
                                 batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                                 random_state=random_state)
    model.fit(X[~val], labels[~val], X[val] if val.any() else None, labels[val] if val.any() else None,
              callback=on_epoch, source=source)
    top1 = top5 = pair_eer = threshold = math.nan
    if val.any():
        top1, top5 = (model.top_n_accuracy(X[val], labels[val], n) for n in (1, 5))
        if len(set(labels[val])) >= 2:
            pair_eer, threshold = _embedding_pair_eer(model, X[val], labels[val], random_state)
    header = neural_header("MLPSpeakerClassifier", model, config, source, speakers, len(X), segment_s,
                           val_accuracy=top1, val_top5_accuracy=top5, val_pair_eer=pair_eer, eer_threshold=threshold)
    paths = save_neural(store, config, MLP_FILE, model.to_arrays(), header, model.history_, "-mlp",
                        "speaker classification accuracy")
    return {**paths, "val_accuracy": top1, "val_top5_accuracy": top5, "val_pair_eer": pair_eer,
            "eer_threshold": threshold, "best_epoch": model.best_epoch_, "epochs_run": len(model.history_),
            "n_files": len(speakers), "n_examples": len(X), "n_speakers": len(set(speakers))}


def _embedding_pair_eer(model: MLPSpeakerClassifier, X_val, labels_val, random_state):
    """EER and its threshold of the cosine of embeddings over held-out segment pairs (training speakers, so
    optimistic; the threshold becomes the mlp backend's default)."""
    pairs = sample_pairs(labels_val, 2000, np.random.default_rng(random_state + 1))
    first, second = model.embed(X_val[pairs.first]), model.embed(X_val[pairs.second])
    norms = np.maximum(np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1), 1e-12)
    return eer(np.sum(first * second, axis=1) / norms, 1 - pairs.different, return_threshold=True)


@register_backend
class MLPBackend(SiameseBackend):
    """Last-hidden-layer embeddings of the MLP classifier, cosine-scored against mean enrollment embeddings.

    Backend parameters: ``scoring`` (``"cosine"`` default, or ``"distance"``), ``segment_s``.
    """

    name = "mlp"
    speaker_class = "MLPSpeaker"
    background_files = (MLP_FILE,)
    train_command = "train-mlp"
    trainer = staticmethod(train_mlp)
    model_class = "MLPSpeakerClassifier"
    default_threshold = 0.5

    @staticmethod
    def _model_from(arrays, params):
        model = MLPSpeakerClassifier.from_arrays(arrays, params)
        model.scoring = params.get("scoring", "cosine")
        return model
