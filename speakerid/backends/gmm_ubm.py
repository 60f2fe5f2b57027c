"""The GMM-UBM (MAP) and per-speaker GMM backends: adapters to the model directory and UBM training (``train-ubm``).

Both read the directory's UBM (``ubm.npz``): the GMM-UBM backend needs it (speakers are MAP-adapted from it,
Reynolds, Quatieri & Dunn, 2000), the per-speaker GMM backend uses it, when present, to normalise its scores.
:func:`train_ubm` trains that UBM on background speech (with noisy copies: multi-condition training) and records
a draw of the background speakers as the directory's default score-normalisation cohort, whose speaker models
and utterance frames it prepares at once from the frames it extracted (``cohort-gmm-ubm.npz``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from speakerid.backends._cohort import directory_cohort
from speakerid.backends._training import (
    DEFAULT_COHORT_SPEAKERS,
    check_count,
    drop_refused,
    open_model_dir,
    read_background,
    record_cohort,
    record_refused,
    training_workers,
    warn_overlap,
)
from speakerid.backends.base import Backend, register_backend
from speakerid.data.augment import augment_header, check_n_augment
from speakerid.data.manifests import read_manifest
from speakerid.exceptions import ModelFormatError, ParameterError
from speakerid.features.feature_store import extract_to_store, read_entry
from speakerid.models.gmm import DiagGMM
from speakerid.models.gmm_ubm import GMMUBM
from speakerid.models.llr import UBMAlignment
from speakerid.models.sharded import DEFAULT_SHARD_FRAMES, fit_ubm_sharded
from speakerid.models.speaker_gmm import SpeakerGMM
from speakerid.store import UBM_FILE

__all__ = ["GMMUBMBackend", "SpeakerGMMBackend", "train_ubm", "DEFAULT_UBM_AUGMENT", "DEFAULT_COHORT_SPEAKERS"]

#: Noisy copies per background file in :func:`train_ubm` unless told otherwise (multi-condition training; chosen
#: on the development protocol by ``bench/frontend_ablation.py`` among 1, 2 and 4 copies: with the enrollment
#: following the UBM it cut the dev noisy EER from 30.3 % to 14.9 % and the mean dev EER over clean/short/noisy/8k
#: from 15.7 % to 12.8 %).
DEFAULT_UBM_AUGMENT = 1
_UBM_CLASS = "GMMUBM"


#: The background files ``train_ubm`` left out (``speaker,path,reason``), in the model directory.
REFUSED_UBM_FILE = "refused-ubm.csv"


def train_ubm(model_dir, manifest, *, feature_config=None, n_jobs=1, random_state: int = 0, verbose=False,
              n_components: int = 256, relevance_factor: float = 16.0, top_c: int = 5, max_iter: int = 10,
              n_augment: int = DEFAULT_UBM_AUGMENT,
              cohort_speakers: int | None = DEFAULT_COHORT_SPEAKERS, scheduler=None, cache_dir=None,
              subsample: int = 1, shard_frames: int = DEFAULT_SHARD_FRAMES) -> dict:
    """Train the universal background model on a ``speaker,path`` manifest and save it as ``ubm.npz``.

    The features go to an on-disk store first (:func:`speakerid.features.feature_store.extract_to_store`), then
    the UBM is trained by map-reduce EM over shards of it (:func:`speakerid.models.sharded.fit_ubm_sharded`):
    this process never holds all the frames, and the model is the same with any ``n_jobs`` or ``scheduler``.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The model directory (created when needed).
    manifest : str, os.PathLike or pandas.DataFrame
        Background speech (keep its speakers disjoint from the evaluated ones).
    feature_config : FeatureConfig, optional
        For a new directory; an existing one keeps its own (a different one is a ConfigMismatchError).
    n_jobs : int
        Worker processes for feature extraction and EM statistics (1: this process; -1: every core); with
        ``scheduler="local"`` the number of Dask workers.
    random_state : int
        Seeds the noisy copies (file ``i`` gets ``[random_state, i]``, see :mod:`speakerid.features.pipeline`),
        the EM initialisation and the cohort draw.
    verbose : bool or callable
        One line per EM iteration on stderr (a callable returning the bool is asked once the features are made).
    n_components, relevance_factor, top_c, max_iter
        See :class:`~speakerid.models.gmm_ubm.GMMUBM`.
    n_augment : int
        Noisy copies of every background file added to the training frames (0: clean training only); the header
        records it and enrollment makes as many copies by default.
    cohort_speakers : int or None
        Background speakers drawn into the default cohort (``cohort.csv``); ``None`` keeps all of them, 0 none.
    scheduler : str or dask.distributed.Client, optional
        Run on Dask (``"local"``: a LocalCluster; ``"tcp://host:port"``: a running scheduler, which needs
        ``cache_dir`` on a file system its workers share), see :class:`~speakerid._utils.parallel.TaskRunner`.
    cache_dir : str or os.PathLike, optional
        The feature store's folder: kept, so a rerun (after an interruption, or with other EM settings) extracts
        only what is missing. ``None``: a temporary folder, removed at the end.
    subsample : int
        EM on every ``subsample``-th frame (Kaldi's ``--subsample``; 1 = all frames).
    shard_frames : int
        Frames per map-reduce shard (:data:`~speakerid.models.sharded.DEFAULT_SHARD_FRAMES`).

    Returns
    -------
    dict
        ``model`` (path), ``n_components``, ``n_features``, ``n_iter`` (EM iterations run), ``n_files`` (used),
        ``n_refused`` (left out), ``n_frames``, ``n_extracted`` (files whose features were not in the store),
        ``extract_seconds``,
        ``log_likelihood_history``,
        ``em_seconds`` (per iteration) and ``cohort`` (path, or ``None``).

    Raises
    ------
    ParameterError
        For a remote scheduler without ``cache_dir``, and bad hyper-parameters or degenerate training frames.
    AudioError
        When no background file can be used.

    Warns
    -----
    DataLeakWarning
        When already-enrolled speakers are among the background speakers.
    AudioWarning
        When some background files cannot be used (unreadable, or no usable speech): they are left out and listed
        with the reason in ``refused-ubm.csv`` (:data:`REFUSED_UBM_FILE`) in the model directory.
    """
    n_augment = check_n_augment(n_augment)
    max_iter = check_count(max_iter, "max_iter", 1)
    subsample, shard_frames = check_count(subsample, "subsample", 1), check_count(shard_frames, "shard_frames", 1)
    frame, source = read_background(manifest)
    store, config = open_model_dir(model_dir, feature_config)
    speakers = sorted(set(frame["speaker"].astype(str)))
    warn_overlap(set(speakers) & store.enrolled_speakers(), "already enrolled")
    model = GMMUBM(n_components=n_components, relevance_factor=relevance_factor, top_c=top_c, max_iter=max_iter,
                   random_state=random_state)
    model._check_params()
    with training_workers(n_jobs, scheduler, cache_dir) as (runner, cache):
        tic = time.perf_counter()
        refused = {}
        entries, n_extracted = extract_to_store(frame["path"], config, cache, n_augment=n_augment,
                                                random_state=random_state, runner=runner, desc="UBM features",
                                                refused=refused)
        extract_seconds = time.perf_counter() - tic
        usable, listed = drop_refused(frame, refused, source)
        speakers = sorted(set(usable["speaker"].astype(str)))
        model.verbose = verbose() if callable(verbose) else verbose    # (a callable: decided after the features)
        fit_ubm_sharded(model, entries, runner, subsample=subsample, shard_frames=shard_frames)
        history = [float(v) for v in getattr(model.ubm_, "log_likelihood_history_", [])]
        header = {"model_class": _UBM_CLASS, "params": model.get_params(), "feature_config": config.to_dict(),
                  "feature_hash": config.hash(), "ubm_hash": model.ubm_hash_, "n_files": len(usable),
                  "n_frames": int(sum(e.n_frames for e in entries)), "background_speakers": speakers,
                  "augment": augment_header(n_augment, random_state), "log_likelihood_history": history,
                  "em": {"subsample": subsample, "shard_frames": shard_frames},
                  "numerics": {"reseeded": int(getattr(model.ubm_, "n_reseeded_", 0)),
                               "floored_components": list(getattr(model.ubm_, "floored_components_", []))}}
        path = store.save_background(UBM_FILE, model.to_arrays(), header, config)
        record_refused(store, REFUSED_UBM_FILE, listed, len(frame))
        cohort = (record_cohort(store, usable, cohort_speakers, random_state)
                  if cohort_speakers is None or cohort_speakers else None)
        if cohort is not None:   # its models and frames now, from the store (no file is read twice)
            backend = GMMUBMBackend()
            backend.model, backend.background_hash = model, model.ubm_hash_
            clean = {str(Path(frame["path"].iloc[e.file_index]).resolve()): e for e in entries if e.copy == 0}
            directory_cohort(store, backend, GMMUBMBackend.name, config,
                             frames=[read_entry(clean[str(Path(p).resolve())])
                                     for p in read_manifest(cohort)["path"]])
    return {"model": str(path), "n_components": int(model.ubm_.n_components), "n_features": model.n_features_in_,
            "n_iter": getattr(model.ubm_, "n_iter_", None), "n_files": len(usable), "n_refused": len(refused),
            "n_frames": header["n_frames"],
            "n_extracted": n_extracted, "extract_seconds": extract_seconds, "log_likelihood_history": history, "em_seconds": list(getattr(model.ubm_, "em_seconds_", [])),
            "cohort": None if cohort is None else str(cohort)}


class _UsesUBM(Backend):
    """What both GMM backends share: they read the directory's UBM and train it with :func:`train_ubm`."""

    background_files = (UBM_FILE,)
    uses_ubm = True
    train_command = "train-ubm"
    trainer = staticmethod(train_ubm)


@register_backend
class GMMUBMBackend(_UsesUBM):
    """MAP-adapted GMM-UBM, scored by the average log-likelihood ratio (top-C by default)."""

    name = "gmm-ubm"
    speaker_class = "GMMUBMSpeaker"

    def load_background(self, name, header, arrays):
        self.check_model_class(name, header, _UBM_CLASS)
        self.model = GMMUBM.from_arrays(arrays, {**header.get("params", {}), **self.params})
        self.background_hash = self.model.ubm_hash_

    def enroll(self, frames_list):
        self.check_ready()
        return self._model(self.model.enrollment_stats(frames_list))

    def add_to(self, arrays, frames_list):
        """The MAP statistics kept with the model (``map_stats``) plus the new sessions' (Reynolds et al. 2000:
        the adapted model depends on the frames through these sums only)."""
        self.check_ready()
        if "map_stats" not in arrays:
            raise ParameterError("this speaker model keeps no MAP statistics (enrolled before speakerid kept enrollment statistics): "
                                 "enroll the speaker again from all the files (--replace)")
        return self._model(_unpack_stats(arrays["map_stats"], self.model.ubm_.means_.shape[1])
                           + self.model.enrollment_stats(frames_list))

    def _model(self, stats):
        arrays = self.model.enroll_stats(stats)
        arrays["map_stats"] = _pack_stats(stats, "variances" in self.model._adapt_tuple())
        return arrays, {"relevance_factor": float(self.model.relevance_factor), "adapt": self.model.adapt}

    def prepare(self, frames):
        """The test utterance's UBM alignment (top-C selection), shared by every model it is scored against."""
        self.check_ready()
        return self.model.align(frames)

    def score(self, prepared, speaker_models):
        self.check_ready()
        if not isinstance(prepared, UBMAlignment):
            prepared = self.model.align(prepared)
        return self.model.score_aligned(speaker_models, prepared)

    has_embedding = True

    def embed(self, frames):
        """The utterance's KL-normalised GMM mean supervector (:meth:`GMMUBM.supervector`)."""
        self.check_ready()
        return self.model.supervector(frames)


def _pack_stats(stats: np.ndarray, second_order: bool) -> np.ndarray:
    """MAP statistics as kept in a speaker file: float32, without the second-order sums unless variances are
    adapted (K x (D + 2) instead of K x (2D + 2))."""
    d = (stats.shape[1] - 2) // 2
    keep = stats if second_order else np.hstack([stats[:, :d + 1], stats[:, -1:]])
    return keep.astype(np.float32)


def _unpack_stats(packed, d: int) -> np.ndarray:
    """The float64 (K, 2D + 2) statistics of :func:`_pack_stats` (second-order sums 0 when not kept)."""
    packed = np.asarray(packed, np.float64)
    if packed.ndim != 2 or packed.shape[1] not in (d + 2, 2 * d + 2):
        raise ModelFormatError(f"malformed MAP statistics of shape {packed.shape} for {d}-dimensional features")
    if packed.shape[1] == 2 * d + 2:
        return packed
    return np.hstack([packed[:, :d + 1], np.zeros((len(packed), d)), packed[:, -1:]])


@register_backend
class SpeakerGMMBackend(_UsesUBM):
    """Independent per-speaker EM GMMs; scores are normalized by the UBM when the directory has one."""

    name = "gmm"
    speaker_class = "SpeakerGMM"
    background_required = False     # the UBM only normalizes its scores

    def __init__(self, params=None):
        super().__init__(params)
        self.ubm = None
        self.estimator = SpeakerGMM(**{k: v for k, v in self.params.items()
                                       if k in SpeakerGMM._get_param_names()})

    def load_background(self, name, header, arrays):
        self.check_model_class(name, header, _UBM_CLASS)
        self.ubm = DiagGMM.from_params(arrays["weights"], arrays["means"], arrays["variances"])
        if "normalize" not in self.params:
            self.estimator.normalize = "ubm"

    def check_speaker_header(self, header, path):
        """Speaker GMMs are trained on their own data: any UBM (or none) scores them."""

    def enroll(self, frames_list):
        arrays = self.estimator.enroll(frames_list)
        return arrays, {"n_components": int(arrays["means"].shape[0])}

    def score(self, prepared, speaker_models):
        return self.estimator.score(speaker_models, prepared, ubm=self.ubm)
