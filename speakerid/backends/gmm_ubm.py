"""The GMM-UBM (MAP) and per-speaker GMM backends: adapters to the model directory and UBM training (``train-ubm``).

Both read the directory's UBM (``ubm.npz``): the GMM-UBM backend needs it (speakers are MAP-adapted from it,
Reynolds, Quatieri & Dunn, 2000), the per-speaker GMM backend uses it, when present, to normalise its scores.
:func:`train_ubm` trains that UBM on background speech (with noisy copies: multi-condition training) and records
a draw of the background speakers as the directory's default score-normalisation cohort, whose speaker models
and utterance frames it prepares at once from the frames it extracted (``cohort-gmm-ubm.npz``).
"""

from __future__ import annotations

from pathlib import Path

from speakerid.backends._cohort import directory_cohort
from speakerid.backends._training import (
    DEFAULT_COHORT_SPEAKERS,
    check_count,
    open_model_dir,
    read_background,
    record_cohort,
    warn_overlap,
)
from speakerid.backends.base import Backend, register_backend
from speakerid.data.augment import augment_header, check_n_augment
from speakerid.data.manifests import read_manifest
from speakerid.features.pipeline import many_features
from speakerid.models.gmm import DiagGMM
from speakerid.models.gmm_ubm import GMMUBM
from speakerid.models.llr import UBMAlignment
from speakerid.models.speaker_gmm import SpeakerGMM
from speakerid.store import UBM_FILE

__all__ = ["GMMUBMBackend", "SpeakerGMMBackend", "train_ubm", "DEFAULT_UBM_AUGMENT", "DEFAULT_COHORT_SPEAKERS"]

#: Noisy copies per background file in :func:`train_ubm` unless told otherwise (multi-condition training; chosen
#: on the development protocol by ``bench/frontend_ablation.py`` among 1, 2 and 4 copies: with the enrollment
#: following the UBM it cut the dev noisy EER from 30.3 % to 14.9 % and the mean dev EER over clean/short/noisy/8k
#: from 15.7 % to 12.8 %).
DEFAULT_UBM_AUGMENT = 1
_UBM_CLASS = "GMMUBM"


def train_ubm(model_dir, manifest, *, feature_config=None, n_jobs=1, random_state: int = 0, verbose=False,
              n_components: int = 256, relevance_factor: float = 16.0, top_c: int = 5, max_iter: int = 10,
              n_augment: int = DEFAULT_UBM_AUGMENT,
              cohort_speakers: int | None = DEFAULT_COHORT_SPEAKERS) -> dict:
    """Train the universal background model on a ``speaker,path`` manifest and save it as ``ubm.npz``.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The model directory (created when needed).
    manifest : str, os.PathLike or pandas.DataFrame
        Background speech (keep its speakers disjoint from the evaluated ones).
    feature_config : FeatureConfig, optional
        For a new directory; an existing one keeps its own (a different one is a ConfigMismatchError).
    n_jobs : int
        Processes for feature extraction.
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

    Returns
    -------
    dict
        ``model`` (path), ``n_components``, ``n_features``, ``n_iter`` (EM iterations run), ``n_files``,
        ``n_frames``, ``log_likelihood_history`` and ``cohort`` (path, or ``None``).

    Warns
    -----
    DataLeakWarning
        When already-enrolled speakers are among the background speakers.
    """
    n_augment = check_n_augment(n_augment)
    max_iter = check_count(max_iter, "max_iter", 1)
    frame, _ = read_background(manifest)
    store, config = open_model_dir(model_dir, feature_config)
    speakers = sorted(set(frame["speaker"].astype(str)))
    warn_overlap(set(speakers) & store.enrolled_speakers(), "already enrolled")
    extracted = many_features(frame["path"], config, n_jobs=n_jobs, n_augment=n_augment,
                              random_state=random_state, desc="UBM features")
    features = [frames for sessions, _ in extracted for frames in sessions]
    verbose = verbose() if callable(verbose) else verbose    # (a callable: decided now, after the features)
    names = [f"{path}{f' (noisy copy {j})' if j else ''}" for path, (sessions, _) in zip(frame["path"], extracted)
             for j in range(len(sessions))]
    model = GMMUBM(n_components=n_components, relevance_factor=relevance_factor, top_c=top_c, max_iter=max_iter,
                   random_state=random_state, verbose=verbose).fit(features, names=names)
    history = [float(v) for v in getattr(model.ubm_, "log_likelihood_history_", [])]
    header = {"model_class": _UBM_CLASS, "params": model.get_params(), "feature_config": config.to_dict(),
              "feature_hash": config.hash(), "ubm_hash": model.ubm_hash_, "n_files": len(frame),
              "n_frames": int(sum(len(f) for f in features)), "background_speakers": speakers,
              "augment": augment_header(n_augment, random_state), "log_likelihood_history": history,
              "numerics": {"reseeded": int(getattr(model.ubm_, "n_reseeded_", 0)),
                           "floored_components": list(getattr(model.ubm_, "floored_components_", []))}}
    path = store.save_background(UBM_FILE, model.to_arrays(), header, config)
    cohort = (record_cohort(store, frame, cohort_speakers, random_state)
              if cohort_speakers is None or cohort_speakers else None)
    if cohort is not None:   # its models and frames now, from the frames at hand (no file is read twice)
        backend = GMMUBMBackend()
        backend.model, backend.background_hash = model, model.ubm_hash_
        clean = {str(Path(p).resolve()): sessions[0] for p, (sessions, _) in zip(frame["path"], extracted)}
        directory_cohort(store, backend, GMMUBMBackend.name, config,
                         frames=[clean[str(Path(p).resolve())] for p in read_manifest(cohort)["path"]])
    return {"model": str(path), "n_components": int(model.ubm_.n_components), "n_features": model.n_features_in_,
            "n_iter": getattr(model.ubm_, "n_iter_", None), "n_files": len(frame), "n_frames": header["n_frames"],
            "log_likelihood_history": history, "cohort": None if cohort is None else str(cohort)}


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
        arrays = self.model.enroll(frames_list)
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
