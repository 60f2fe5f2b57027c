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

from speakerid._utils.files import atomic_write, atomic_write_bytes
from speakerid._utils.progress import progress
from speakerid.data.manifests import read_manifest
from speakerid.exceptions import DataLeakWarning
from speakerid.features import FeatureConfig
from speakerid.features.pipeline import file_features
from speakerid.models.clipvec import (
    NEURAL_FEATURE_CONFIG,
    check_neural_config,
)
from speakerid.models.pairs import Pairs, _rng, sample_pairs, split_speakers
from speakerid.store import FEATURES_FILE
from speakerid.verifier import SpeakerVerifier

__all__ = [ "load_clips", "write_history", "plot_history", "HISTORY_COLUMNS"]

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






def _finite(value):
    return float(value) if value is not None and math.isfinite(value) else None








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


def manifest_pairs(manifest, n_pairs: int, *, val_fraction: float = 0.2, n_val_pairs: int | None = None,
                   random_state=0) -> tuple[Pairs, Pairs]:
    """Balanced training and validation pairs of the rows of a ``speaker,path`` manifest, speakers disjoint.

    Parameters
    ----------
    manifest : str, os.PathLike or pandas.DataFrame
        A manifest path (read with :func:`speakerid.data.manifests.read_manifest`) or an already read one.
    n_pairs, n_val_pairs : int
        Training and validation pairs (``n_val_pairs`` defaults to ``n_pairs``); no validation pairs when
        ``val_fraction`` is 0.

    Returns
    -------
    (Pairs, Pairs)
        Indices are row positions in the manifest.

    Raises
    ------
    ParameterError
        Naming the manifest, when it has fewer than 2 speakers, or too few to split.
    """
    if hasattr(manifest, "columns"):
        frame, source = manifest, "the manifest"
    else:
        from speakerid.data.manifests import read_manifest

        frame, source = read_manifest(manifest, check_files=False), str(manifest)
    labels = frame["speaker"].astype(str).to_numpy()
    train, val = split_speakers(labels, val_fraction, random_state, source=source)
    rng = _rng(random_state)
    train_idx = np.flatnonzero(train)
    pairs = sample_pairs(labels[train_idx], n_pairs, rng, source=source)
    train_pairs = Pairs(train_idx[pairs.first], train_idx[pairs.second], pairs.different)
    if not val.any():
        empty = np.zeros(0, dtype=np.int64)
        return train_pairs, Pairs(empty, empty, np.zeros(0, dtype=np.int8))
    val_idx = np.flatnonzero(val)
    pairs = sample_pairs(labels[val_idx], n_val_pairs or n_pairs, rng,
                         source=f"{source} (validation speakers)")
    return train_pairs, Pairs(val_idx[pairs.first], val_idx[pairs.second], pairs.different)
