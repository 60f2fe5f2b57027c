"""File-level training of the neural backends: a manifest of audio in, a model in the model directory out.

:func:`train_siamese` and :func:`train_mlp` extract every file's frames with the model directory's
:class:`~speakerid.features.FeatureConfig` (new directories get
:data:`~speakerid.models.clipvec.NEURAL_FEATURE_CONFIG`), cut them into fixed-length segments (one recording
gives several examples), turn each segment into a clip vector, train, and save ``siamese.npz`` / ``mlp.npz``
(arrays + JSON header, atomically) with the training curves beside it: ``history.csv`` and ``training.png``
for the Siamese network, ``history-mlp.csv`` and ``training-mlp.png`` for the MLP classifier. Then
``enroll``/``verify``/``identify``/``score`` work with ``--backend siamese`` or ``--backend mlp``.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from pathlib import Path

import numpy as np

from ._progress import progress
from .exceptions import DataLeakWarning, ParameterError
from .features import FeatureConfig
from .io import atomic_write, atomic_write_bytes, read_manifest
from .models.clipvec import NEURAL_FEATURE_CONFIG, check_neural_config, clip_examples, frames_per_segment
from .models.mlp import MLP_FILE, MLPSpeakerClassifier
from .models.pairs import check_speakers, split_speakers
from .models.siamese import SIAMESE_FILE, SiameseMLP
from .verifier import FEATURES_FILE, SpeakerVerifier, file_features

__all__ = ["train_siamese", "train_mlp", "load_clips", "write_history", "plot_history", "HISTORY_COLUMNS"]

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "val_eer", "seconds")


def load_clips(manifest, config: FeatureConfig, n_jobs: int = 1):
    """Frames of every file of a ``speaker,path`` manifest: ``(frames_list, speakers, manifest_frame)``."""
    frame = read_manifest(manifest)
    paths = list(frame["path"])
    if n_jobs in (None, 1) or len(paths) < 4:
        extracted = [file_features(p, config)[0] for p in progress(paths, desc="features", unit="file")]
    else:
        from joblib import Parallel, delayed

        jobs = (delayed(file_features)(p, config) for p in progress(paths, desc="features", unit="file"))
        extracted = [f for f, _ in Parallel(n_jobs=n_jobs)(jobs)]
    return extracted, frame["speaker"].astype(str).to_numpy(), frame


def _prepare_dir(model_dir, backend: str, feature_config, manifest, speakers):
    verifier = SpeakerVerifier(model_dir, backend=backend, feature_config=feature_config)
    if feature_config is None and not (verifier.model_dir / FEATURES_FILE).is_file():
        verifier = SpeakerVerifier(model_dir, backend=backend, feature_config=NEURAL_FEATURE_CONFIG)
    config = verifier.feature_config
    check_neural_config(config, f"model directory {verifier.model_dir}")
    enrolled = {s for b in verifier.store.backends() for s in verifier.store.speakers(b)}
    overlap = sorted(enrolled & set(speakers))
    if overlap:
        warnings.warn(f"{len(overlap)} speaker(s) of {manifest} are already enrolled "
                      f"({', '.join(overlap[:10])}): evaluation on them is optimistic; keep training and "
                      "test speakers disjoint",
                      DataLeakWarning, stacklevel=3)
    return verifier, config


def _save(verifier, name, arrays, header, history, stem, accuracy_label) -> dict:
    store = verifier.store
    with store.lock():
        features_path = verifier.model_dir / FEATURES_FILE
        if not features_path.is_file():
            with atomic_write(features_path, "w") as fh:
                fh.write(verifier.feature_config.to_json())
        path = store.save(name, arrays, header)
    history_path = verifier.model_dir / f"history{stem}.csv"
    plot_path = verifier.model_dir / f"training{stem}.png"
    write_history(history_path, history)
    plot_history(plot_path, history, title=f"{header['model_class']} on {Path(header['manifest']).name}",
                 accuracy_label=accuracy_label, best_epoch=header["best_epoch"])
    return {"model": str(path), "history": str(history_path), "plot": str(plot_path)}


def _header(model_class, model, config, manifest, speakers, n_examples, segment_s, history) -> dict:
    return {"model_class": model_class, "params": model.get_params(), "feature_config": config.to_dict(),
            "feature_hash": config.hash(), "manifest": str(manifest),
            "background_speakers": sorted(set(speakers)),
            "n_files": int(len(speakers)), "n_examples": int(n_examples), "segment_s": float(segment_s),
            "best_epoch": int(model.best_epoch_), "epochs_run": len(history)}


def train_siamese(model_dir, manifest, *, feature_config: FeatureConfig | None = None, hidden_sizes=(128, 64),
                  l2_normalize: bool = True, margin: float = 1.0, learning_rate: float = 1e-3,
                  batch_size: int = 64, epochs: int = 50, patience: int = 10, weight_decay: float = 1e-2,
                  hard_negatives: float = 0.5, pairs_per_epoch: int | None = None, scoring: str = "distance",
                  segment_s: float = 2.0, val_fraction: float = 0.2, seed: int = 0, n_jobs: int = 1,
                  on_epoch=None) -> dict:
    """Train the Siamese MLP on a ``speaker,path`` manifest and save it as ``siamese.npz`` in ``model_dir``.

    The speakers are split into training and validation speakers (``val_fraction``; disjoint); the input
    standardisation is learned on the training speakers' examples only; training stops early on the validation
    EER of fixed validation pairs. See :class:`~speakerid.models.siamese.SiameseMLP` for the hyper-parameters.

    Parameters
    ----------
    feature_config : FeatureConfig, optional
        Only for a new model directory (default :data:`~speakerid.models.clipvec.NEURAL_FEATURE_CONFIG`); an
        existing directory keeps its own and must not use per-utterance CMVN.
    segment_s : float
        Cut every recording into segments of this many seconds of (VAD-kept) speech; 0 = one example per file.
    on_epoch : callable, optional
        Called with every epoch's history record.

    Returns
    -------
    dict
        ``model``, ``history``, ``plot`` (paths), ``val_eer``, ``val_pair_accuracy`` (at the EER threshold),
        ``eer_threshold``, ``best_epoch``, ``best`` (that epoch's history record), ``epochs_run``, ``n_files``,
        ``n_examples``, ``n_speakers``, ``n_train_speakers``, ``n_val_speakers``.
    """
    frame = read_manifest(manifest)
    speakers = frame["speaker"].astype(str).to_numpy()
    check_speakers(speakers, str(manifest))
    train_mask, val_mask = split_speakers(speakers, val_fraction, seed, source=str(manifest))
    verifier, config = _prepare_dir(model_dir, "siamese", feature_config, manifest, speakers)
    frames_list, _, _ = load_clips(manifest, config, n_jobs)
    X, labels, owner = clip_examples(frames_list, speakers, frames_per_segment(segment_s, config))
    train, val = train_mask[owner], val_mask[owner]
    model = SiameseMLP(hidden_sizes=tuple(hidden_sizes), l2_normalize=l2_normalize, margin=margin,
                       learning_rate=learning_rate, batch_size=batch_size, max_epochs=epochs,
                       patience=patience, weight_decay=weight_decay, pairs_per_epoch=pairs_per_epoch,
                       hard_negatives=hard_negatives, scoring=scoring, random_state=seed)
    model.fit(X[train], labels[train], X[val] if val.any() else None, labels[val] if val.any() else None,
              callback=on_epoch, source=str(manifest))
    best = model.history_[model.best_epoch_ - 1]
    header = _header("SiameseMLP", model, config, manifest, speakers, len(X), segment_s, model.history_)
    val_pair_accuracy = math.nan
    if val.any():
        val_pair_accuracy = _val_pair_accuracy(model, X[val], labels[val], seed)
    header.update({"val_eer": _finite(model.val_eer_), "eer_threshold": _finite(model.val_eer_threshold_),
                   "val_pair_accuracy": _finite(val_pair_accuracy),
                   "train_speakers": int(len(set(speakers[train_mask]))),
                   "val_speakers": int(len(set(speakers[val_mask])))})
    paths = _save(verifier, SIAMESE_FILE, model.to_arrays(), header, model.history_, "",
                  f"pair accuracy (same speaker if distance < {margin / 2:g})")
    return {**paths, "val_eer": model.val_eer_, "val_pair_accuracy": val_pair_accuracy,
            "eer_threshold": model.val_eer_threshold_, "best_epoch": model.best_epoch_,
            "epochs_run": len(model.history_), "best": best, "n_files": len(speakers), "n_examples": len(X),
            "n_speakers": len(set(speakers)), "n_train_speakers": header["train_speakers"],
            "n_val_speakers": header["val_speakers"]}


def _val_pair_accuracy(model: SiameseMLP, X_val, labels_val, seed) -> float:
    """Accuracy of same/different decisions on the validation pairs at the validation EER threshold."""
    from .models.pairs import sample_pairs

    pairs = sample_pairs(labels_val, model.n_val_pairs, np.random.default_rng(seed + 1))
    scores = model.score_pairs(X_val[pairs.first], X_val[pairs.second])
    return float(np.mean((scores >= model.val_eer_threshold_) == (pairs.different == 0)))


def _finite(value):
    return float(value) if value is not None and math.isfinite(value) else None


def _stratified_holdout(labels, val_fraction, seed):
    """Per speaker, hold out ``val_fraction`` of the examples (at least one stays in training)."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(labels), dtype=bool)
    if val_fraction <= 0:
        return val
    for speaker in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == speaker))
        n_val = min(int(round(val_fraction * len(index))), len(index) - 1)
        val[index[:n_val]] = True
    return val


def train_mlp(model_dir, manifest, *, feature_config: FeatureConfig | None = None, hidden_sizes=(256, 128),
              alpha: float = 1e-3, learning_rate: float = 1e-3, batch_size: int = 64, epochs: int = 100,
              patience: int = 10, segment_s: float = 2.0, val_fraction: float = 0.2, seed: int = 0,
              n_jobs: int = 1, on_epoch=None) -> dict:
    """Train the MLP speaker classifier on a manifest and save it as ``mlp.npz`` in ``model_dir``.

    Closed set: the validation examples are a share ``val_fraction`` of every speaker's segments (so
    validation accuracy is measured on the training speakers, on held-out segments). Returns the paths,
    ``val_accuracy`` (top-1), ``val_top5_accuracy``, ``val_pair_eer`` (cosine of the embeddings over held-out
    segment pairs) and its ``eer_threshold`` (saved: the default decision threshold of ``--backend mlp``),
    ``best_epoch``, ``epochs_run``, ``n_examples``, ``n_speakers``.
    """
    val_fraction = float(val_fraction)
    if not 0.0 <= val_fraction < 1.0:
        raise ParameterError(f"val_fraction must be in [0, 1), got {val_fraction}")
    frame = read_manifest(manifest)
    speakers = frame["speaker"].astype(str).to_numpy()
    check_speakers(speakers, str(manifest))
    verifier, config = _prepare_dir(model_dir, "mlp", feature_config, manifest, speakers)
    frames_list, _, _ = load_clips(manifest, config, n_jobs)
    X, labels, _ = clip_examples(frames_list, speakers, frames_per_segment(segment_s, config))
    val = _stratified_holdout(labels, val_fraction, seed)
    model = MLPSpeakerClassifier(hidden_sizes=tuple(hidden_sizes), alpha=alpha, learning_rate=learning_rate,
                                 batch_size=batch_size, max_epochs=epochs, patience=patience,
                                 random_state=seed)
    model.fit(X[~val], labels[~val], X[val] if val.any() else None, labels[val] if val.any() else None,
              callback=on_epoch, source=str(manifest))
    top1 = top5 = pair_eer = threshold = math.nan
    if val.any():
        top1, top5 = (model.top_n_accuracy(X[val], labels[val], n) for n in (1, 5))
        if len(set(labels[val])) >= 2:
            pair_eer, threshold = _embedding_pair_eer(model, X[val], labels[val], seed)
    header = _header("MLPSpeakerClassifier", model, config, manifest, speakers, len(X), segment_s,
                     model.history_)
    header.update({"val_accuracy": _finite(top1), "val_top5_accuracy": _finite(top5),
                   "val_pair_eer": _finite(pair_eer), "eer_threshold": _finite(threshold)})
    paths = _save(verifier, MLP_FILE, model.to_arrays(), header, model.history_, "-mlp",
                  "speaker classification accuracy")
    return {**paths, "val_accuracy": top1, "val_top5_accuracy": top5, "val_pair_eer": pair_eer,
            "eer_threshold": threshold, "best_epoch": model.best_epoch_, "epochs_run": len(model.history_),
            "n_files": len(speakers), "n_examples": len(X), "n_speakers": len(set(speakers))}


def _embedding_pair_eer(model: MLPSpeakerClassifier, X_val, labels_val, seed):
    """EER and its threshold of the cosine of embeddings over held-out segment pairs (training speakers, so
    optimistic; the threshold becomes the mlp backend's default)."""
    from .metrics import eer
    from .models.pairs import sample_pairs

    pairs = sample_pairs(labels_val, 2000, np.random.default_rng(seed + 1))
    first, second = model.embed(X_val[pairs.first]), model.embed(X_val[pairs.second])
    norms = np.maximum(np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1), 1e-12)
    return eer(np.sum(first * second, axis=1) / norms, 1 - pairs.different, return_threshold=True)


# -------------------------------------------------------------------------------------------- training curves

def write_history(path, history) -> None:
    """Write per-epoch records as CSV (columns :data:`HISTORY_COLUMNS`; missing values empty), atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    for record in history:
        row = []
        for column in HISTORY_COLUMNS:
            value = record.get(column, math.nan)
            row.append("" if isinstance(value, float) and not math.isfinite(value) else
                       (f"{value:.6g}" if isinstance(value, float) else value))
        writer.writerow(row)
    with atomic_write(path, "w") as fh:
        fh.write(buffer.getvalue())


def plot_history(path, history, title: str = "training", accuracy_label: str = "accuracy",
                 best_epoch: int | None = None) -> None:
    """Loss and pair/classification accuracy per epoch (train and validation) as a PNG, atomically; a dotted
    vertical line marks ``best_epoch`` (the kept weights)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in history]
    figure = Figure(figsize=(9, 3.6), dpi=100)
    loss_ax, acc_ax = figure.subplots(1, 2)
    for ax, key, label in ((loss_ax, "loss", "loss"), (acc_ax, "accuracy", accuracy_label)):
        for split, style in (("train", "-"), ("val", "--")):
            values = [r.get(f"{split}_{key}", math.nan) for r in history]
            if any(math.isfinite(v) for v in values):
                ax.plot(epochs, values, style, label=f"{split} {key}")
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    eers = [r.get("val_eer", math.nan) for r in history]
    if any(math.isfinite(v) for v in eers):
        acc_ax.plot(epochs, eers, ":", label="val EER")
    for ax in (loss_ax, acc_ax):
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle=":", linewidth=1,
                       label=f"kept (epoch {best_epoch})")
        ax.legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
