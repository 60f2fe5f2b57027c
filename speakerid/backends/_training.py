"""What every backend's training shares: opening the model directory, reading the background, leak warnings.

Each backend module trains itself (``train_ubm`` in :mod:`~speakerid.backends.gmm_ubm`, ``train_ivector``,
``train_siamese``, ``train_mlp``), through :class:`~speakerid.store.ModelStore` and
:func:`speakerid.features.pipeline.many_features` only. The neural backends also share their model-directory
header and their training curves (``history*.csv`` and ``training*.png`` beside the model).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write, atomic_write_bytes
from speakerid._utils.lazy import lazy_import
from speakerid._utils.validation import shorten
from speakerid.data.manifests import read_manifest
from speakerid.exceptions import AudioError, AudioWarning, DataLeakWarning, ParameterError
from speakerid.features import FeatureConfig
from speakerid.features.pipeline import many_features
from speakerid.models.clipvec import (
    NEURAL_FEATURE_CONFIG,
    check_neural_config,
    clip_examples,
    frames_per_segment,
)
from speakerid.models.pairs import Pairs, _rng, check_speakers, sample_pairs, split_speakers
from speakerid.store import ModelStore

pd = lazy_import("pandas")

__all__ = ["open_model_dir", "read_background", "training_workers", "warn_overlap", "record_cohort", "check_count",
           "read_neural_background", "neural_examples", "neural_header", "save_neural", "write_history",
           "plot_history", "manifest_pairs", "HISTORY_COLUMNS"]

#: Background speakers drawn into a model directory's default score-normalization cohort.
DEFAULT_COHORT_SPEAKERS = 100
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "val_eer", "seconds")


def open_model_dir(model_dir, feature_config: FeatureConfig | None = None,
                   default: FeatureConfig | None = None) -> tuple[ModelStore, FeatureConfig]:
    """``(store, config)`` of a model directory: its saved feature configuration, else the one given."""
    store = ModelStore(model_dir)
    return store, store.feature_config(feature_config, default)


@contextlib.contextmanager
def training_workers(n_jobs=1, scheduler=None, cache_dir=None):
    """``(runner, cache_dir)`` of a map-reduce training: an opened
    :class:`~speakerid._utils.parallel.TaskRunner` (``n_jobs`` processes, or Dask with ``scheduler``; a task
    whose Dask worker died is run again) and the feature store's folder (``cache_dir``, else a temporary one,
    removed on exit). Both are closed on exit.

    Raises
    ------
    ParameterError
        For a remote scheduler without ``cache_dir``: its workers cannot see this machine's temporary folder.
    """
    from speakerid._utils.parallel import TaskRunner

    if cache_dir is None and isinstance(scheduler, str) and scheduler != "local":
        raise ParameterError(f"training on the Dask scheduler {scheduler} needs a feature store its workers "
                             "can read: give --cache DIR (cache_dir) on a shared file system")
    with contextlib.ExitStack() as stack:
        cache = (Path(cache_dir) if cache_dir is not None else
                 Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="speakerid-features-",
                                                                    ignore_cleanup_errors=True))))
        runner = stack.enter_context(TaskRunner(n_jobs=n_jobs, scheduler=scheduler, retries=2))
        yield runner, cache


def read_background(manifest) -> tuple[pd.DataFrame, str]:
    """A background ``speaker,path`` manifest (path or frame) and how messages name it.

    Raises
    ------
    ManifestError
        Naming the file and row, when the manifest is malformed or a file is missing.
    ParameterError
        When it lists no file.
    """
    if isinstance(manifest, pd.DataFrame):
        frame, source = manifest, "the background manifest"
    else:
        frame, source = read_manifest(manifest), str(manifest)
    if frame.empty:
        raise ParameterError(f"{source}: no background files given")
    return frame, source


#: The background files ``speakerid train`` left out (``speaker,path,reason``).
REFUSED_FILE = "refused-background.csv"


def drop_refused(frame: pd.DataFrame, refused: dict, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(usable rows, refused rows with a reason column)`` of a background manifest, from the ``{path: reason}``
    feature extraction gave; :class:`AudioError` when no file is usable."""
    bad = frame["path"].isin(refused).to_numpy()
    if bad.all():
        first = frame["path"].iloc[0]
        raise AudioError(f"{source}: none of the {len(frame)} background file(s) can be used; the first: "
                         f"{refused[first]}")
    listed = frame.loc[bad, ["speaker", "path"]].assign(reason=lambda f: f["path"].map(refused))
    return frame.loc[~bad], listed


def record_refused(store: ModelStore, name: str, listed: pd.DataFrame, n_files: int) -> None:
    """After a training saved its model: list the files it left out in ``name`` (replacing the previous run's
    list; removed when none was) and count them in an :class:`AudioWarning`. Each trainer keeps its own list, so
    ``train-ivector`` does not erase what ``train-ubm`` left out of the same directory."""
    path = store.model_dir / name
    if listed.empty:
        path.unlink(missing_ok=True)
        return
    with atomic_write(path, "w") as fh:
        listed.to_csv(fh, index=False, lineterminator="\n")
    shown = "; ".join(listed["reason"].head(3)) + ("; ..." if len(listed) > 3 else "")
    warnings.warn(f"{len(listed)} of {n_files} background file(s) left out, listed with the reason in {path}: "
                  f"{shown}", AudioWarning, stacklevel=3)


def warn_overlap(overlap, how: str, stacklevel: int = 3) -> None:
    """:class:`DataLeakWarning` when some speakers are both background and ``how`` (enrolled, cohort) speakers."""
    if overlap:
        warnings.warn(f"{len(overlap)} speaker(s) are both background and {how} speakers "
                      f"({shorten(sorted(overlap))}): evaluation on them is optimistic; keep background and test "
                      "speakers disjoint", DataLeakWarning, stacklevel=stacklevel)


def record_cohort(store: ModelStore, manifest, max_speakers: int | None, random_state: int = 0) -> Path:
    """Write a seeded draw of ``max_speakers`` speakers of ``manifest`` (every file of each) as ``cohort.csv``.

    ``None`` keeps every speaker. Warns with :class:`DataLeakWarning` when cohort speakers are enrolled.
    """
    frame = manifest if isinstance(manifest, pd.DataFrame) else read_manifest(manifest)
    speakers = sorted(frame["speaker"].unique())
    if not speakers:
        raise ParameterError("the cohort manifest holds no speakers")
    if max_speakers is not None:
        if isinstance(max_speakers, bool) or int(max_speakers) < 2:
            raise ParameterError(f"a cohort needs at least 2 speakers, got max_speakers={max_speakers!r}")
        if len(speakers) > int(max_speakers):
            rng = np.random.default_rng(random_state)
            speakers = sorted(rng.choice(speakers, size=int(max_speakers), replace=False).tolist())
    warn_overlap(set(speakers) & store.enrolled_speakers(), "enrolled", stacklevel=4)
    chosen = frame[frame["speaker"].isin(speakers)]
    return store.save_cohort(chosen["speaker"], chosen["path"])


def check_count(value, name: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum``; :class:`ParameterError` naming ``name`` otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# -------------------------------------------------------------------------------------------- neural backends

def read_neural_background(manifest) -> tuple[pd.DataFrame, str, np.ndarray]:
    """``(frame, source, speakers)`` of a neural backend's training manifest, checked before any audio is read."""
    frame, source = read_background(manifest)
    speakers = frame["speaker"].astype(str).to_numpy()
    check_speakers(speakers, source)
    return frame, source, speakers


def neural_examples(model_dir, feature_config, frame: pd.DataFrame, source: str, n_jobs, segment_s: float):
    """``(store, config, X, labels, owner)``: the clip vectors of every ``segment_s`` segment of every file.

    The directory's feature configuration (a new one defaults to ``NEURAL_FEATURE_CONFIG``) must not use
    per-utterance CMVN; the clean frames come from the one file -> frames path; ``owner`` is each example's row
    in ``frame``.
    """
    store, config = open_model_dir(model_dir, feature_config, default=NEURAL_FEATURE_CONFIG)
    check_neural_config(config, f"model directory {store.model_dir}")
    warn_overlap(set(frame["speaker"].astype(str)) & store.enrolled_speakers(), "enrolled")
    frames_list = [sessions[0] for sessions, _ in many_features(frame["path"], config, n_jobs=n_jobs,
                                                                check_band=False)]
    X, labels, owner = clip_examples(frames_list, frame["speaker"].astype(str).to_numpy(),
                                     frames_per_segment(segment_s, config))
    return store, config, X, labels, owner


def save_neural(store: ModelStore, config, name, arrays, header, history, stem, accuracy_label) -> dict:
    """Save a neural background model with its training curves; their paths."""
    path = store.save_background(name, arrays, header, config)
    history_path = store.model_dir / f"history{stem}.csv"
    plot_path = store.model_dir / f"training{stem}.png"
    write_history(history_path, history)
    plot_history(plot_path, history, title=f"{header['model_class']} on {Path(header['manifest']).name}",
                 accuracy_label=accuracy_label, best_epoch=header["best_epoch"])
    return {"model": str(path), "history": str(history_path), "plot": str(plot_path)}


def neural_header(model_class, model, config, source, speakers, n_examples, segment_s, **figures) -> dict:
    """The header of a neural background model (what it is, what it was trained on, what it measured).

    ``figures`` are floats stored as such, or as ``null`` when missing or not finite (JSON holds no NaN).
    """
    return {"model_class": model_class, "params": model.get_params(), "feature_config": config.to_dict(),
            "feature_hash": config.hash(), "manifest": source,
            "background_speakers": sorted(set(speakers)),
            "n_files": int(len(speakers)), "n_examples": int(n_examples), "segment_s": float(segment_s),
            "best_epoch": int(model.best_epoch_), "epochs_run": len(model.history_),
            **{k: float(v) if v is not None and math.isfinite(v) else None for k, v in figures.items()}}


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
                 best_epoch: int | None = None):
    """Loss and pair/classification accuracy per epoch (train and validation) as a PNG, atomically; a dotted
    vertical line marks ``best_epoch`` (the kept weights). The validation EER, when recorded (a fraction in
    ``history``), is drawn in percent on its own right-hand axis. Returns the matplotlib Figure."""
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
    eers = [100.0 * r.get("val_eer", math.nan) for r in history]   # a fraction in the history, % on the plot
    if any(math.isfinite(v) for v in eers):
        eer_ax = acc_ax.twinx()   # its own axis: an error rate in % is not an accuracy
        eer_ax.plot(epochs, eers, ":", color="tab:red", label="val EER (%)")
        eer_ax.set_ylabel("validation EER (%)")
        eer_ax.legend(fontsize=8, loc="center right")
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
    return figure


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
