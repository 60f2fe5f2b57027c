"""The i-vector verification system (UBM -> T -> LDA -> WCCN -> length norm -> cosine / PLDA) and its backend.

:class:`IVectorSystem` chains :func:`~speakerid.models.ivector.baum_welch_stats`,
:class:`~speakerid.models.ivector.TotalVariability` and the back end of :mod:`speakerid.models.plda`, all trained
on background "sessions" with speaker labels. :class:`IVectorBackend` (``--backend ivector``) makes it a
verification backend; its background file ``ivector.npz`` holds a copy of the UBM it was trained with, so it is
self-contained.

Limits of single-session backgrounds: when every background speaker has one recording, its "sessions" are
segments of that recording (``speakerid train-ivector --segment-s``). They share the channel, the microphone and
the recording day, so the within-speaker covariance that LDA, WCCN and PLDA learn is underestimated (only
phonetic content and segment length vary) and the between/within ratio is optimistic; noisy copies
(``--augment``) add some, but not real, session variability. Real multi-session data would help these back ends
far more than any setting here.
"""

from __future__ import annotations

import numpy as np

from speakerid._utils.estimator import BaseEstimator
from speakerid._utils.validation import check_is_fitted
from speakerid.exceptions import ModelFormatError, ParameterError
from speakerid.models import _gmm_math as gm
from speakerid.models._frame_checks import check_training_frames
from speakerid.models.gmm import DiagGMM
from speakerid.models.ivector import TotalVariability, baum_welch_stats
from speakerid.models.plda import LDA, PLDA, WCCN, cosine_scores, length_normalize

IVECTOR_FILE = "ivector.npz"  # what its errors call the file

__all__ = ["IVectorSystem", "IVECTOR_FILE", "SCORINGS", "ENROLL_MODES"]
#: What the NotFittedError of an untrained IVectorSystem suggests.
_FIT_HINT = "train it ('speakerid train-ivector')"

SCORINGS = ("plda", "cosine")
ENROLL_MODES = ("pool", "average")
_ARRAYS = ("ubm_weights", "ubm_means", "ubm_variances", "T", "ivector_mean", "projection", "plda_mean",
           "plda_between", "plda_within")


class IVectorSystem(BaseEstimator):
    """i-vector extractor with its LDA / WCCN / length-norm / PLDA back end, trained on labelled sessions.

    Parameters
    ----------
    rank : int
        i-vector dimension R.
    max_iter : int
        EM iterations of the T matrix.
    lda_dim : int
        LDA output dimension (< number of background speakers); 0 (default) skips LDA: LDA 50 did not help on
        the dev protocol (WCCN alone, on the full i-vector, did as well or better).
    wccn : bool
        Apply WCCN after LDA.
    plda_max_iter : int
        EM iterations of the PLDA.
    top_c : int or None
        Baum-Welch statistics from the UBM's top-C posteriors per frame (``None``: all components).
    scoring : {"cosine", "plda"}
        Default trial score (cosine had the lower mean EER on the dev protocol, PLDA was better on noisy tests).
    enroll : {"pool", "average"}
        ``"pool"``: one i-vector from the statistics of all a speaker's enrollment files (count 1);
        ``"average"``: one i-vector per file, the speaker being their mean (PLDA then scores by the book with
        the count, see :class:`~speakerid.models.plda.PLDA`).
    batch_size, random_state, n_jobs, verbose
        Extraction batch size, seed of T's initialisation, threads for the statistics, EM progress lines.
    """

    def __init__(self, rank=200, max_iter=10, lda_dim=0, wccn=True, plda_max_iter=10, top_c=None, scoring="cosine",
                 enroll="pool", batch_size=256, random_state=0, n_jobs=1, verbose=False):
        self.rank = rank
        self.max_iter = max_iter
        self.lda_dim = lda_dim
        self.wccn = wccn
        self.plda_max_iter = plda_max_iter
        self.top_c = top_c
        self.scoring = scoring
        self.enroll = enroll
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _check_params(self):
        checks = [(gm.is_int(self.rank) and self.rank >= 1, "rank", "an integer >= 1"),
                  (gm.is_int(self.lda_dim) and self.lda_dim >= 0, "lda_dim", "an integer >= 0 (0: no LDA)"),
                  (gm.is_int(self.plda_max_iter) and self.plda_max_iter >= 0, "plda_max_iter", "an integer >= 0"),
                  (self.scoring in SCORINGS, "scoring", f"one of {SCORINGS}"),
                  (self.enroll in ENROLL_MODES, "enroll", f"one of {ENROLL_MODES}")]
        for ok, name, rule in checks:
            if not ok:
                raise ParameterError(f"IVectorSystem {name} must be {rule}, got {getattr(self, name)!r}")


    # ------------------------------------------------------------------ training
    def fit(self, ubm: DiagGMM, frames_list, labels, names=None) -> IVectorSystem:
        """Train T on the sessions ``frames_list`` (list of (n_frames, D) arrays), then the back end on their
        i-vectors with the speaker ``labels`` (one per session).

        Sessions are checked as UBM training data is (``names`` name them in messages): too few distinct frames
        or a constant dimension is a :class:`ParameterError`, sessions of mostly repeated frames a warning.
        """
        self._check_params()
        labels = np.asarray(labels)
        if labels.shape != (len(frames_list),):
            raise ParameterError(f"need one speaker label per session: {len(frames_list)} sessions, "
                                 f"labels of shape {labels.shape}")
        n_speakers = len(np.unique(labels))
        if self.lda_dim and self.lda_dim >= n_speakers:
            raise ParameterError(f"lda_dim must be < the number of background speakers ({n_speakers}), got "
                                 f"{self.lda_dim}")
        check_training_frames(frames_list, 1, names, "i-vector training")
        self.ubm_ = ubm
        N, F = baum_welch_stats(ubm, frames_list, self.top_c, self.n_jobs)
        self.tv_ = TotalVariability(rank=self.rank, max_iter=self.max_iter, batch_size=self.batch_size,
                                    random_state=self.random_state, verbose=self.verbose)
        self.tv_.fit(N, F, ubm.covariances_)
        self.train_ivectors_ = self.tv_.transform(N, F)        # kept (not saved) to retrain the back end
        self.fit_backend(self.train_ivectors_, labels)
        return self

    @property
    def numerics_(self) -> dict:
        """What training had to do about degenerate statistics, for the model header: T-matrix components
        without occupancy (T_c = 0), M-step systems solved with a ridge, LDA/WCCN/PLDA covariances whose
        eigenvalues were floored (see :class:`TotalVariability`, :class:`~speakerid.models.plda.PLDA`)."""
        check_is_fitted(self, "plda_", _FIT_HINT)
        tv = getattr(self, "tv_", None)
        return {"tv_empty_components": list(getattr(tv, "empty_components_", [])),
                "tv_regularised": int(getattr(tv, "n_regularised_", 0)),
                "lda_regularised": bool(getattr(self, "lda_regularised_", False)),
                "wccn_regularised": bool(getattr(self, "wccn_regularised_", False)),
                "plda_regularised": int(getattr(self.plda_, "n_regularised_", 0))}

    def fit_backend(self, ivectors, labels) -> IVectorSystem:
        """(Re)train LDA, WCCN and PLDA on raw i-vectors with speaker labels (the extractor is kept)."""
        self._check_params()
        ivectors = np.asarray(ivectors, dtype=np.float64)
        counts = np.unique(np.asarray(labels), return_counts=True)[1]
        if len(counts) < 2 or counts.max() < 2:
            raise ParameterError(f"the back end needs at least 2 speakers and several sessions per speaker "
                                 f"(got {len(counts)} speakers, at most {counts.max()} session each): cut the "
                                 f"recordings into segments (segment_s > 0) or give more files per speaker")
        mean = ivectors.mean(axis=0)
        X = ivectors - mean
        projection = np.eye(X.shape[1])
        if self.lda_dim:
            lda = LDA(n_components=int(self.lda_dim)).fit(X, labels)
            self.lda_regularised_ = lda.regularised_
            mean, projection = mean + lda.mean_, lda.components_
            X = lda.transform(X)
        if self.wccn:
            wccn = WCCN().fit(X, labels)
            self.wccn_regularised_ = wccn.regularised_
            projection = projection @ wccn.transform_
            X = wccn.transform(X)
        self.ivector_mean_, self.projection_ = mean, projection
        self.train_embeddings_ = length_normalize(X)
        self.plda_ = PLDA(max_iter=int(self.plda_max_iter)).fit(self.train_embeddings_, labels)
        return self

    # ------------------------------------------------------------------ extraction and scoring
    def ivectors(self, frames_list) -> np.ndarray:
        """Raw i-vectors (n, R) of utterances."""
        check_is_fitted(self, "plda_", _FIT_HINT)
        return self.tv_.transform(*baum_welch_stats(self.ubm_, frames_list, self.top_c, self.n_jobs))

    def embed_ivectors(self, ivectors) -> np.ndarray:
        """Centred, projected (LDA, WCCN) and length-normalised i-vectors."""
        check_is_fitted(self, "plda_", _FIT_HINT)
        return length_normalize((np.atleast_2d(ivectors) - self.ivector_mean_) @ self.projection_)

    def embed(self, frames_list) -> np.ndarray:
        """Back-end vectors (n, d) of utterances: what is scored."""
        return self.embed_ivectors(self.ivectors(frames_list))

    def speaker_model(self, frames_list) -> tuple[np.ndarray, int]:
        """``(vector, count)`` of a speaker enrolled from several utterances (see ``enroll``)."""
        return self.speaker_model_from_stats(self.speaker_stats(frames_list))

    def speaker_stats(self, frames_list) -> dict:
        """What a speaker model is made from, as sums over the utterances (so that sessions added later add up):
        ``enroll="pool"``: the Baum-Welch statistics ``bw_n`` (K,) and ``bw_f`` (K, D) of all the frames (the
        statistics of pooled frames are the sum of each utterance's); ``"average"``: ``vector_sum`` (d,) of the
        utterances' back-end vectors; and ``count``, the number of vectors averaged (1 when pooled)."""
        check_is_fitted(self, "plda_", _FIT_HINT)
        if self.enroll == "pool":
            N, F = baum_welch_stats(self.ubm_, list(frames_list), self.top_c, self.n_jobs)
            return {"bw_n": N.sum(axis=0), "bw_f": F.sum(axis=0), "count": 1}
        vectors = self.embed(frames_list)
        return {"vector_sum": vectors.sum(axis=0), "count": len(vectors)}

    def speaker_model_from_stats(self, stats: dict) -> tuple[np.ndarray, int]:
        """``(vector, count)`` from :meth:`speaker_stats` (or the sum of several)."""
        check_is_fitted(self, "plda_", _FIT_HINT)
        if self.enroll == "pool":
            if "bw_n" not in stats:
                raise ParameterError("the speaker's statistics are i-vector averages, the system pools frames")
            N = np.asarray(stats["bw_n"], np.float64)[None]
            F = np.asarray(stats["bw_f"], np.float64)[None]
            return self.embed_ivectors(self.tv_.transform(N, F))[0], 1
        if "vector_sum" not in stats:
            raise ParameterError("the speaker's statistics are pooled frames, the system averages i-vectors")
        return np.asarray(stats["vector_sum"], np.float64) / int(stats["count"]), int(stats["count"])

    def score_vectors(self, models, tests, counts=None, scoring=None) -> np.ndarray:
        """Scores (n_models, n_tests) of back-end vectors: PLDA LLR or cosine."""
        check_is_fitted(self, "plda_", _FIT_HINT)
        scoring = self.scoring if scoring is None else scoring
        if scoring == "cosine":
            return cosine_scores(models, tests)
        if scoring == "plda":
            return self.plda_.score(models, tests, counts)
        raise ParameterError(f"scoring must be one of {SCORINGS}, got {scoring!r}")

    # ------------------------------------------------------------------ persistence
    def to_arrays(self) -> dict:
        check_is_fitted(self, "plda_", _FIT_HINT)
        return {"ubm_weights": self.ubm_.weights_, "ubm_means": self.ubm_.means_,
                "ubm_variances": self.ubm_.covariances_, "T": self.tv_.T_, "ivector_mean": self.ivector_mean_,
                "projection": self.projection_, "plda_mean": self.plda_.mean_,
                "plda_between": self.plda_.between_, "plda_within": self.plda_.within_}

    @classmethod
    def from_arrays(cls, arrays: dict, params: dict) -> IVectorSystem:
        """Rebuild from :meth:`to_arrays` output and hyper-parameters; :class:`ModelFormatError` if malformed."""
        missing = [name for name in _ARRAYS if name not in arrays]
        if missing:
            raise ModelFormatError(f"{IVECTOR_FILE} lacks array(s) {missing}")
        model = cls(**{k: v for k, v in params.items() if k in cls._get_param_names()})
        model._check_params()
        T, proj = np.asarray(arrays["T"]), np.asarray(arrays["projection"])
        try:
            model.ubm_ = DiagGMM.from_params(arrays["ubm_weights"], arrays["ubm_means"], arrays["ubm_variances"])
            if T.ndim != 3 or T.shape[:2] != model.ubm_.means_.shape:
                raise ParameterError(f"T has shape {T.shape}, the UBM's means {model.ubm_.means_.shape}")
            if proj.shape[0] != T.shape[2] or arrays["ivector_mean"].shape != (T.shape[2],):
                raise ParameterError(f"projection {proj.shape} and i-vector mean "
                                     f"{arrays['ivector_mean'].shape} do not fit rank {T.shape[2]}")
            model.tv_ = TotalVariability.from_params(T, model.ubm_.covariances_, batch_size=model.batch_size)
            model.plda_ = PLDA.from_params(arrays["plda_mean"], arrays["plda_between"], arrays["plda_within"])
            if len(model.plda_.mean_) != proj.shape[1]:
                raise ParameterError(f"PLDA dimension {len(model.plda_.mean_)} differs from the projection's "
                                     f"{proj.shape[1]}")
        except ParameterError as exc:
            raise ModelFormatError(f"{IVECTOR_FILE}: inconsistent arrays: {exc}") from None
        model.ivector_mean_ = np.asarray(arrays["ivector_mean"], dtype=np.float64)
        model.projection_ = np.asarray(proj, dtype=np.float64)
        model.rank = int(T.shape[2])
        return model


