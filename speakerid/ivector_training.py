"""File-level training of the i-vector backend: a background manifest in, ``ivector.npz`` in the model directory.

:func:`train_ivector` needs the directory's UBM (``speakerid train-ubm`` first). It extracts every background
file's frames with the directory's :class:`~speakerid.features.FeatureConfig`, optionally adds noisy copies
(:func:`speakerid.augment.random_noisy_copy`), cuts every recording into ``segment_s``-second segments (the
"sessions" of its speaker), and trains :class:`~speakerid.models.ivector_system.IVectorSystem` on them. Then
``enroll``/``verify``/``identify``/``score`` work with ``--backend ivector``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ._progress import progress
from .augment import random_noisy_copy
from .backends import UBM_FILE
from .exceptions import DataLeakWarning, NotFittedError, ParameterError
from .features import extract
from .io import atomic_write, load_audio, read_manifest
from .metrics import eer
from .models.clipvec import frames_per_segment, segment_frames
from .models.gmm_ubm import GMMUBM
from .models.ivector_system import IVECTOR_FILE, IVectorSystem
from .store import check_feature_config
from .verifier import FEATURES_FILE, SpeakerVerifier

__all__ = ["train_ivector", "file_sessions", "segment_sessions", "training_eer"]


def file_sessions(path, config, n_augment: int = 0, seed: int = 0) -> list:
    """Frames of one audio file, followed by those of ``n_augment`` noisy copies (seeded by ``seed``)."""
    signal, rate = load_audio(path, sample_rate=config.sample_rate)
    out = [extract(signal, config)]
    rng = np.random.default_rng(seed)
    for _ in range(int(n_augment)):
        out.append(extract(random_noisy_copy(signal, rng, sample_rate=rate), config))
    return out


def segment_sessions(frames_per_file, speakers, segment_length: int) -> tuple[list, np.ndarray]:
    """Every file's frame arrays cut into segments of ``segment_length`` frames; ``(segments, speaker labels)``."""
    segments, labels = [], []
    for arrays, speaker in zip(frames_per_file, speakers):
        for frames in arrays:
            parts = segment_frames(frames, segment_length)
            segments.extend(parts)
            labels.extend([speaker] * len(parts))
    return segments, np.asarray(labels)


def training_eer(system: IVectorSystem, labels) -> dict:
    """EER and its threshold of every scoring over all pairs of training segments (optimistic: seen speakers)."""
    X = system.train_embeddings_
    same = (labels[:, None] == labels[None, :])[np.triu_indices(len(X), 1)]
    out = {}
    for scoring in ("plda", "cosine"):
        scores = system.score_vectors(X, X, scoring=scoring)[np.triu_indices(len(X), 1)]
        value, threshold = eer(scores, same.astype(int), return_threshold=True)
        out[scoring] = (float(value), float(threshold))
    return out


def train_ivector(model_dir, manifest, *, feature_config=None, rank: int = 200, lda_dim: int = 0,
                  segment_s: float = 1.5, augment: int = 2, iterations: int = 10, top_c: int | None = None,
                  scoring: str = "cosine", enroll: str = "pool", wccn: bool = True, plda_iter: int = 10,
                  ubm_components: int | None = None, seed: int = 0, n_jobs: int = 1, verbose: bool = False) -> dict:
    """Train the i-vector extractor and its back end on a ``speaker,path`` manifest; save ``ivector.npz``.

    Parameters
    ----------
    model_dir : path
        A model directory holding a UBM (``ubm.npz``).
    manifest : path
        Background speakers (keep them disjoint from the evaluated ones).
    feature_config : FeatureConfig, optional
        For a new model directory (an existing one keeps its own; a different one is a
        :class:`~speakerid.exceptions.ConfigMismatchError`).
    rank, lda_dim, iterations, top_c, scoring, enroll, wccn, plda_iter
        See :class:`~speakerid.models.ivector_system.IVectorSystem` (``iterations`` is its ``max_iter``).
    segment_s : float
        Cut every recording into segments of this many seconds of VAD-kept speech (0: whole files).
    augment : int
        Noisy copies of every file added to the training sessions.
    ubm_components : int, optional
        Train the system's own UBM with this many components on the manifest's (clean) recordings instead of
        using the directory's ``ubm.npz``. i-vectors trained on little data prefer a
        smaller UBM than MAP adaptation does (see the README's measurements).
    seed : int
        Seeds the noise, the UBM and T's initialisation.
    n_jobs : int
        Processes for feature extraction (and threads for the statistics).
    verbose : bool
        Print one line per T-matrix EM iteration on stderr.

    Returns
    -------
    dict
        ``model`` (path), ``n_files``, ``n_speakers``, ``n_segments``, ``rank``, ``dim`` (back-end
        dimension), ``train_eer`` (per scoring, on training segment pairs), ``seconds``,
        ``log_likelihood_history``.
    """
    start = time.perf_counter()
    if not (isinstance(augment, (int, np.integer)) and augment >= 0):
        raise ParameterError(f"augment must be an integer >= 0, got {augment!r}")
    system = IVectorSystem(rank=rank, max_iter=iterations, lda_dim=lda_dim, wccn=wccn, plda_iter=plda_iter,
                           top_c=top_c, scoring=scoring, enroll=enroll, random_state=seed,
                           n_jobs=n_jobs or 1, verbose=verbose)
    system._check_params()
    if not (isinstance(iterations, (int, np.integer)) and iterations >= 1):
        raise ParameterError(f"iterations must be an integer >= 1, got {iterations!r}")
    if ubm_components is not None and not (isinstance(ubm_components, (int, np.integer)) and ubm_components >= 1):
        raise ParameterError(f"ubm_components must be an integer >= 1, got {ubm_components!r}")
    verifier = SpeakerVerifier(model_dir, backend="gmm-ubm", feature_config=feature_config)
    store = verifier.store
    config = verifier.feature_config
    if ubm_components is None:
        if not store.exists(UBM_FILE):
            raise NotFittedError(f"no UBM in {verifier.model_dir}: run 'speakerid train-ubm --model-dir "
                                 f"{verifier.model_dir}' first (or give the i-vector system its own UBM)")
        header, arrays = store.load(UBM_FILE, expected_class="GMMUBM")
        check_feature_config(header, config, f"{store.path(UBM_FILE)}")
        ubm = GMMUBM.from_arrays(arrays, header.get("params", {}))
        k, d = ubm.ubm_.means_.shape
    else:
        ubm, k, d = None, int(ubm_components), None          # trained below, on the training sessions
    frame = read_manifest(manifest)
    files, speakers = list(frame["path"]), frame["speaker"].astype(str).tolist()
    if len(set(speakers)) < 2:
        raise ParameterError(f"{manifest}: the background needs at least 2 speakers, got {len(set(speakers))}")
    if d is not None and rank > k * d:
        raise ParameterError(f"rank must be at most the supervector size K * D = {k} * {d} = {k * d}, got {rank}")
    if lda_dim and not lda_dim < min(len(set(speakers)), rank + 1):
        raise ParameterError(f"lda_dim must be < the number of background speakers ({len(set(speakers))}) and "
                             f"<= rank ({rank}), got {lda_dim}")
    enrolled = {s for b in store.backends() for s in store.speakers(b)}
    overlap = sorted(enrolled & set(speakers))
    if overlap:
        warnings.warn(f"{len(overlap)} speaker(s) of {manifest} are already enrolled ({', '.join(overlap[:10])})"
                      ": evaluation on them is optimistic; keep background and test speakers disjoint",
                      DataLeakWarning, stacklevel=2)
    if n_jobs in (None, 1) or len(files) < 4:
        per_file = [file_sessions(p, config, augment, seed + i)
                    for i, p in enumerate(progress(files, desc="i-vector features", unit="file"))]
    else:
        from joblib import Parallel, delayed

        per_file = Parallel(n_jobs=n_jobs)(delayed(file_sessions)(p, config, augment, seed + i) for i, p in
                                           enumerate(progress(files, desc="i-vector features", unit="file")))
    if ubm is None:
        # on the clean recordings only: adding the noisy copies did not help on the dev protocol
        ubm = GMMUBM(n_components=k, random_state=seed, verbose=verbose).fit([arrays[0] for arrays in per_file])
        if rank > ubm.ubm_.means_.size:
            raise ParameterError(f"rank must be at most the supervector size K * D = {ubm.ubm_.means_.size}, "
                                 f"got {rank}")
    segments, labels = segment_sessions(per_file, speakers, frames_per_segment(segment_s, config))
    system.fit(ubm.ubm_, segments, labels)
    train = training_eer(system, labels)
    saved = system.to_arrays()
    out_header = {"model_class": "IVectorSystem", "params": system.get_params(),
                  "feature_config": config.to_dict(), "feature_hash": config.hash(), "ubm_hash": ubm.ubm_hash_,
                  "manifest": str(manifest), "background_speakers": sorted(set(speakers)),
                  "n_files": len(files), "n_segments": len(segments), "segment_s": float(segment_s),
                  # "augment" is what the verifier reads to augment enrollment (GMM-UBM): none for i-vectors
                  "noisy_copies": int(augment), "augment": None, "own_ubm": ubm_components is not None,
                  "log_likelihood_history": [float(v) for v in system.tv_.log_likelihood_history_],
                  "train_eer": {k: v[0] for k, v in train.items()},
                  "eer_thresholds": {k: v[1] for k, v in train.items()}}
    with store.lock():
        features_path = verifier.model_dir / FEATURES_FILE
        if not features_path.is_file():
            with atomic_write(features_path, "w") as fh:
                fh.write(config.to_json())
        path = store.save(IVECTOR_FILE, saved, out_header)
    return {"model": str(path), "n_files": len(files), "n_speakers": len(set(speakers)),
            "n_segments": len(segments), "rank": int(rank), "dim": int(system.projection_.shape[1]),
            "train_eer": out_header["train_eer"], "seconds": round(time.perf_counter() - start, 1),
            "log_likelihood_history": out_header["log_likelihood_history"]}
