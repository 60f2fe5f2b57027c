"""The i-vector backend: its adapter to the model directory and its training (``train-ivector``).

Training (Dehak et al., "Front-end factor analysis for speaker verification", IEEE TASLP 2011): Baum-Welch
statistics of background sessions against a UBM, the total-variability matrix T by EM, then LDA / WCCN / length
normalisation / PLDA on the i-vectors (:class:`~speakerid.models.ivector_system.IVectorSystem`). The saved
``ivector.npz`` holds a copy of its UBM, so scoring reads that file only.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np

from speakerid._utils.hashing import arrays_hash
from speakerid.backends._training import (
    check_count,
    drop_refused,
    open_model_dir,
    read_background,
    record_refused,
    training_workers,
    warn_overlap,
)
from speakerid.backends.base import Backend, register_backend
from speakerid.evaluation.metrics import eer
from speakerid.exceptions import ModelFormatError, NotFittedError, ParameterError
from speakerid.features.feature_store import extract_to_store
from speakerid.features.frontend import feature_dims
from speakerid.models.clipvec import frames_per_segment, segment_frames
from speakerid.models.gmm_ubm import GMMUBM
from speakerid.models.ivector_system import IVectorSystem
from speakerid.models.sharded import DEFAULT_SHARD_FRAMES, fit_ubm_sharded
from speakerid.models.sharded_ivector import fit_ivector_sharded
from speakerid.store import IVECTOR_FILE, UBM_FILE, check_feature_config

__all__ = ["IVectorBackend", "train_ivector", "segment_sessions", "training_eer"]


def segment_sessions(frames_per_file, speakers, segment_length: int) -> tuple[list, np.ndarray]:
    """Every file's frame arrays cut into segments of ``segment_length`` frames; ``(segments, speaker labels)``."""
    segments, labels = [], []
    for arrays, speaker in zip(frames_per_file, speakers):
        for frames in arrays:
            parts = segment_frames(frames, segment_length)
            segments.extend(parts)
            labels.extend([speaker] * len(parts))
    return segments, np.asarray(labels)


#: Training segments whose pairs give the stored training EER and default thresholds: all pairs of more would
#: cost O(n^2) memory (24,000 segments: 4.6 GB per score matrix); a seeded draw of this many (2 million pairs)
#: is used instead.
MAX_EER_SEGMENTS = 2000


def training_eer(system: IVectorSystem, labels, max_segments: int = MAX_EER_SEGMENTS, random_state=0) -> dict:
    """EER and its threshold of every scoring over all pairs of training segments (optimistic: seen speakers);
    over the pairs of a seeded draw of ``max_segments`` segments when there are more."""
    X = system.train_embeddings_
    labels = np.asarray(labels)
    if len(X) > max_segments:
        keep = np.sort(np.random.default_rng(random_state).choice(len(X), max_segments, replace=False))
        X, labels = X[keep], labels[keep]
    same = (labels[:, None] == labels[None, :])[np.triu_indices(len(X), 1)]
    out = {}
    for scoring in ("plda", "cosine"):
        scores = system.score_vectors(X, X, scoring=scoring)[np.triu_indices(len(X), 1)]
        value, threshold = eer(scores, same.astype(int), return_threshold=True)
        out[scoring] = (float(value), float(threshold))
    return out


#: Components of the i-vector system's own UBM unless told otherwise (chosen on dev, ``bench/eval_ivector.py``).
DEFAULT_UBM_COMPONENTS = 32


#: The background files ``train_ivector`` left out (``speaker,path,reason``), in the model directory.
REFUSED_IVECTOR_FILE = "refused-ivector.csv"


def train_ivector(model_dir, manifest, *, feature_config=None, n_jobs=1, random_state: int = 0,
                  verbose: bool = False, rank: int = 200, lda_dim: int = 0, segment_s: float = 1.5,
                  n_augment: int = 2, max_iter: int = 10, top_c: int | None = None, scoring: str = "cosine",
                  enroll: str = "pool", wccn: bool = True, plda_max_iter: int = 10,
                  ubm_components: int | None = DEFAULT_UBM_COMPONENTS, scheduler=None, cache_dir=None,
                  shard_frames: int = DEFAULT_SHARD_FRAMES) -> dict:
    """Train the i-vector extractor and its back end on a ``speaker,path`` manifest; save ``ivector.npz``.

    Parameters
    ----------
    model_dir : path
        A model directory holding a UBM (``ubm.npz``), unless ``ubm_components`` is given.
    manifest : path or pandas.DataFrame
        Background speakers (keep them disjoint from the evaluated ones).
    feature_config : FeatureConfig, optional
        For a new model directory (an existing one keeps its own; a different one is a
        :class:`~speakerid.exceptions.ConfigMismatchError`).
    n_jobs : int
        Worker processes for feature extraction, Baum-Welch statistics and T-matrix EM (map-reduce over shards
        of the feature store, :mod:`speakerid.models.sharded_ivector`: the same model with any count); with
        ``scheduler="local"`` the number of Dask workers.
    scheduler, cache_dir, shard_frames
        Dask scheduler, feature store folder (kept for reruns; ``None``: a temporary one) and frames per shard,
        as in :func:`speakerid.backends.gmm_ubm.train_ubm`.
    random_state : int
        Seeds the noisy copies (file ``i`` gets ``[random_state, i]``, the rule of
        :mod:`speakerid.features.pipeline`), the UBM and T's initialisation.
    verbose : bool
        Print one line per T-matrix EM iteration on stderr.
    rank, lda_dim, max_iter, top_c, scoring, enroll, wccn, plda_max_iter
        See :class:`~speakerid.models.ivector_system.IVectorSystem` (``max_iter``: T-matrix EM iterations).
    segment_s : float
        Cut every recording into segments of this many seconds of VAD-kept speech (0: whole files).
    n_augment : int
        Noisy copies of every file added to the training sessions.
    ubm_components : int or None
        Train the system's own UBM with this many components on the manifest's (clean) recordings (default
        :data:`DEFAULT_UBM_COMPONENTS` = 32, chosen on the development protocol: mean dev EER 13.8 % against
        15.2 % with the 256-component GMM-UBM's UBM, see the README); ``None`` uses the directory's ``ubm.npz``.

    Returns
    -------
    dict
        ``model`` (path), ``n_files``, ``n_speakers``, ``n_segments``, ``rank``, ``dim`` (back-end
        dimension), ``train_eer`` (per scoring, on training segment pairs), ``seconds``,
        ``log_likelihood_history``.

    Raises
    ------
    NotFittedError
        When the directory has no UBM and ``ubm_components`` is not given.
    ParameterError
        For a hyper-parameter out of range (checked before any audio is read), or fewer than 2 speakers with usable
        audio.
    AudioError
        When no background file can be used.

    Warns
    -----
    AudioWarning
        When some background files cannot be used (unreadable, or no usable speech): they are left out and listed
        with the reason in ``refused-ivector.csv`` (:data:`REFUSED_IVECTOR_FILE`) in the model directory.
    """
    start = time.perf_counter()
    n_augment = check_count(n_augment, "n_augment", 0)
    max_iter = check_count(max_iter, "max_iter", 1)
    system = IVectorSystem(rank=rank, max_iter=max_iter, lda_dim=lda_dim, wccn=wccn, plda_max_iter=plda_max_iter,
                           top_c=top_c, scoring=scoring, enroll=enroll, random_state=random_state,
                           n_jobs=n_jobs or 1, verbose=verbose)
    system._check_params()
    if ubm_components is not None:
        check_count(ubm_components, "ubm_components", 1)
    store, config = open_model_dir(model_dir, feature_config)
    if ubm_components is None:
        if not store.exists(UBM_FILE):
            raise NotFittedError(f"no UBM in {store.model_dir}: run 'speakerid train-ubm --model-dir "
                                 f"{store.model_dir}' first (or give the i-vector system its own UBM)")
        header, arrays = store.load(UBM_FILE, expected_class="GMMUBM")
        check_feature_config(header, config, f"{store.path(UBM_FILE)}")
        ubm = GMMUBM.from_arrays(arrays, header.get("params", {}))
        k, d = ubm.ubm_.means_.shape
    else:
        ubm, k = None, int(ubm_components)         # trained below, on the training sessions
        d = sum(feature_dims(config).values())
    frame, source = read_background(manifest)
    files, speakers = list(frame["path"]), frame["speaker"].astype(str).tolist()
    if len(set(speakers)) < 2:
        raise ParameterError(f"{source}: the background needs at least 2 speakers, got {len(set(speakers))}")
    if d is not None and rank > k * d:
        raise ParameterError(f"rank must be at most the supervector size K * D = {k} * {d} = {k * d}, got {rank}")
    if lda_dim and not lda_dim < min(len(set(speakers)), rank + 1):
        raise ParameterError(f"lda_dim must be < the number of background speakers ({len(set(speakers))}) and "
                             f"<= rank ({rank}), got {lda_dim}")
    warn_overlap(set(speakers) & store.enrolled_speakers(), "already enrolled")
    with training_workers(n_jobs, scheduler, cache_dir) as (runner, cache):
        tic = time.perf_counter()
        refused = {}
        entries, n_extracted = extract_to_store(files, config, cache, n_augment=n_augment,
                                                random_state=random_state, runner=runner, desc="i-vector features",
                                                refused=refused)
        extract_seconds = time.perf_counter() - tic
        usable, listed = drop_refused(frame, refused, source)
        if usable["speaker"].nunique() < 2:
            raise ParameterError(f"{source}: only {usable['speaker'].nunique()} background speaker(s) have usable "
                                 f"audio ({len(listed)} file(s) unusable, e.g. {listed['path'].iloc[0]}: "
                                 f"{listed['reason'].iloc[0]}); at least 2 are needed")
        if ubm is None:
            # on the clean recordings only: adding the noisy copies did not help on the dev protocol
            ubm = fit_ubm_sharded(GMMUBM(n_components=k, random_state=random_state, verbose=verbose),
                                  [e for e in entries if e.copy == 0], runner, shard_frames=shard_frames)
        system, labels = fit_ivector_sharded(system, ubm.ubm_, entries, speakers, runner,
                                             segment_length=frames_per_segment(segment_s, config),
                                             work_dir=cache, shard_frames=shard_frames)
    train = training_eer(system, labels)
    out_header = {"model_class": "IVectorSystem", "params": system.get_params(),
                  "feature_config": config.to_dict(), "feature_hash": config.hash(), "ubm_hash": ubm.ubm_hash_,
                  "manifest": source, "background_speakers": sorted(set(usable["speaker"].astype(str))),
                  "n_files": len(usable), "n_segments": len(labels), "segment_s": float(segment_s),
                  # "augment" is what the verifier reads to augment enrollment (GMM-UBM): none for i-vectors
                  "noisy_copies": n_augment, "augment": None, "own_ubm": ubm_components is not None,
                  "log_likelihood_history": [float(v) for v in system.tv_.log_likelihood_history_],
                  "numerics": {**system.numerics_, **({"ubm_floored_components": list(
                      ubm.ubm_.floored_components_)} if ubm_components is not None else {})},
                  "train_eer": {k: v[0] for k, v in train.items()},
                  "eer_thresholds": {k: v[1] for k, v in train.items()}}
    path = store.save_background(IVECTOR_FILE, system.to_arrays(), out_header, config)
    record_refused(store, REFUSED_IVECTOR_FILE, listed, len(frame))
    return {"model": str(path), "n_files": len(usable), "n_refused": len(refused),
            "n_speakers": int(usable["speaker"].nunique()),
            "n_segments": len(labels), "rank": int(rank), "dim": int(system.projection_.shape[1]),
            "train_eer": out_header["train_eer"], "seconds": round(time.perf_counter() - start, 1),
            "log_likelihood_history": out_header["log_likelihood_history"],
            "em_seconds": list(system.tv_.em_seconds_), "n_extracted": n_extracted,
            "extract_seconds": extract_seconds}


#: The last i-vector system rebuilt from its arrays, by (array hash, parameters but the scoring): the inputs of a
#: fused directory (cosine and PLDA scoring of one system) share its precomputation (0.1 s) in one process.
_LOADED: dict = {}


@register_backend
class IVectorBackend(Backend):
    """i-vectors scored by PLDA (default) or cosine; see :class:`IVectorSystem`.

    Backend parameters (``backend_params``): ``scoring`` (``"plda"`` or ``"cosine"``) and ``enroll``
    (``"pool"`` or ``"average"``), both defaulting to what the model was trained with. The default decision
    threshold is the EER threshold on pairs of training segments saved at training (training speakers, so only
    a starting point: calibrate on development data).
    """

    name = "ivector"
    speaker_class = "IVectorSpeaker"
    background_files = (IVECTOR_FILE,)
    uses_ubm = True              # to train (unless it trains its own); scoring reads ivector.npz only
    train_command = "train-ivector"
    trainer = staticmethod(train_ivector)
    model_class = "IVectorSystem"
    default_threshold = 0.0

    def threshold_key(self) -> str:
        """``ivector``, or ``ivector-plda`` / ``ivector-cosine`` when a scoring is asked for: PLDA and cosine scores
        are on different scales, so each keeps its own saved threshold."""
        scoring = self.params.get("scoring")
        return self.name if scoring is None else f"{self.name}-{scoring}"

    def load_background(self, name, header, arrays):
        self.check_model_class(name, header, self.model_class)
        params = {**header.get("params", {}), **self.params}
        self.background_hash = arrays_hash(arrays)
        key = (self.background_hash, repr(sorted((k, repr(v)) for k, v in params.items() if k != "scoring")))
        try:
            if key in _LOADED:           # the same system, another scoring (a fused directory's cosine and PLDA)
                self.model = copy.copy(_LOADED[key])
                self.model.set_params(scoring=params.get("scoring", IVectorSystem().scoring))._check_params()
            else:
                self.model = IVectorSystem.from_arrays(arrays, params)
                _LOADED.clear()
                _LOADED[key] = copy.copy(self.model)
        except ParameterError as exc:
            raise ParameterError(f"ivector backend: {exc}") from None
        threshold = (header.get("eer_thresholds") or {}).get(self.model.scoring)
        if isinstance(threshold, (int, float)) and math.isfinite(threshold):
            self.default_threshold = float(threshold)
            self.threshold_meaning = ("the EER threshold of pairs of the training speakers' own segments: "
                                      "optimistic, it accepts many more impostors among new speakers; choose one "
                                      "on development trials (set-threshold) or use 'speakerid train'")

    def enroll(self, frames_list):
        self.check_ready()
        return self._model(self.model.speaker_stats(list(frames_list)))

    def add_to(self, arrays, frames_list):
        """The statistics kept with the model (pooled Baum-Welch statistics, or the sum of the averaged
        i-vectors) plus the new sessions'."""
        self.check_ready()
        kept = {k: np.asarray(arrays[k], np.float64) for k in ("bw_n", "bw_f", "vector_sum") if k in arrays}
        if not kept:
            raise ParameterError("this speaker model keeps no statistics (enrolled before speakerid kept enrollment statistics): enroll "
                                 "the speaker again from all the files (--replace)")
        new = self.model.speaker_stats(list(frames_list))
        if set(kept) != set(new) - {"count"}:
            raise ParameterError(f"the speaker was enrolled with enroll={'pool' if 'bw_n' in kept else 'average'}, "
                                 f"the system now uses enroll={self.model.enroll}: enroll the speaker again "
                                 "(--replace)")
        total = {k: kept[k] + new[k] for k in kept}
        total["count"] = int(np.asarray(arrays.get("count", 1))) + new["count"] if "vector_sum" in kept else 1
        return self._model(total)

    def _model(self, stats):
        vector, count = self.model.speaker_model_from_stats(stats)
        arrays = {"vector": vector, "count": np.array(count, dtype=np.int64)}
        # the sums, kept for sessions added later (float32: a fifth of a pooled model's size in float64)
        arrays.update({k: np.asarray(v, np.float32 if k != "vector_sum" else np.float64)
                       for k, v in stats.items() if k != "count"})
        return arrays, {"enroll": self.model.enroll, "n_vectors": int(count)}

    has_embedding = True

    def embed(self, frames):
        """The utterance's i-vector (as scored: :meth:`prepare`)."""
        return self.prepare(frames)

    def prepare(self, frames):
        self.check_ready()
        return self.model.embed([frames])[0]

    def score(self, prepared, speaker_models):
        self.check_ready()
        if not speaker_models:
            return np.zeros(0)
        try:
            vectors = np.stack([np.asarray(m["vector"], dtype=np.float64) for m in speaker_models])
            counts = np.array([int(m["count"]) for m in speaker_models])
        except (KeyError, ValueError) as exc:
            raise ModelFormatError(f"malformed i-vector speaker model ({exc})") from None
        if vectors.shape[1] != len(prepared):
            raise ModelFormatError(f"i-vector speaker models have dimension {vectors.shape[1]}, the back end "
                                   f"{len(prepared)}: enroll them again")
        return self.model.score_vectors(vectors, prepared[None, :], counts)[:, 0]
