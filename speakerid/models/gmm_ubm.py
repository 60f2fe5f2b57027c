"""GMM-UBM speaker verification (Reynolds, Quatieri & Dunn, 2000) on feature arrays.

A universal background model (a :class:`~speakerid.models.gmm.DiagGMM`) is trained by EM on many speakers; each
enrolled speaker is the UBM with its means (and optionally weights and variances) MAP-adapted to that speaker's
frames with relevance factor ``r``; a trial's score is the average per-frame log-likelihood ratio between the
speaker model and the UBM, computed exactly or with top-C Gaussian selection from the UBM.

This module works on arrays; :class:`speakerid.SpeakerVerifier` adds files, features and the model store.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict

import numpy as np

from speakerid._utils.estimator import BaseEstimator
from speakerid._utils.hashing import arrays_hash
from speakerid._utils.validation import check_is_fitted
from speakerid.exceptions import ModelFormatError, ParameterError
from speakerid.models._frame_checks import DegenerateFramesWarning, check_training_frames
from speakerid.models.gmm import DiagGMM, map_from_stats, map_stats
from speakerid.models.llr import UBMAlignment, aligned_llr, llr_deltas, ubm_alignment

__all__ = ["GMMUBM"]
#: What the NotFittedError of an untrained GMMUBM suggests.
_FIT_HINT = 'call fit() (or train-ubm) first'

_ADAPTABLE = ("means", "weights", "variances")
#: A UBM whose floored (collapsed) components hold more than this share of the frames is refused (a speech
#: UBM has none: 0 of 256 on the shared background set).
_MAX_FLOORED_SHARE = 0.25
#: Speaker models, and sets of them, whose differences from the UBM a GMMUBM keeps for scoring.
_MAX_MODELS, _MAX_SETS, _MAX_CACHED_BYTES = 256, 4, 1 << 25
_CACHE_LOCK = threading.Lock()


def _stack_frames(X, names=None, n_components=None, what="training", strict=False) -> np.ndarray:
    """One float32 (n_frames, D) array of an array or a list of them; with ``n_components``, also checked for
    degenerate frames (:func:`~speakerid.models._frame_checks.check_training_frames`)."""
    if n_components is not None:
        arrays = list(X) if isinstance(X, (list, tuple)) else [X]
        if arrays and all(np.ndim(x) == 2 and np.size(x) for x in arrays):
            check_training_frames(arrays, n_components, names, what, strict)
    if isinstance(X, (list, tuple)):
        if not X:
            raise ParameterError("no feature arrays given")
        dims = {np.shape(x)[-1] if np.ndim(x) == 2 else None for x in X}
        if None in dims or len(dims) != 1:
            raise ParameterError(f"feature arrays must all be 2-D with the same number of columns, got {dims}")
        X = np.concatenate([np.asarray(x, dtype=np.float32) for x in X], axis=0)
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ParameterError(f"expected a (n_frames, n_dims) feature array, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ParameterError("feature array holds NaN or infinite values")
    return X


def _check_collapse(gmm: DiagGMM, arrays, names) -> None:
    """Refuse a UBM whose components mostly collapsed onto the variance floor; warn when some did. Both name
    the inputs (``names``, else their positions) most of whose frames the collapsed components take."""
    floored = gmm.floored_components_
    if not floored:
        return
    culprits = [str(names[i]) if names is not None else f"array {i}" for i, A in enumerate(arrays)
                if np.isin(gmm.predict(A), floored).mean() > 0.5]
    check_collapse(gmm, culprits, sum(len(A) for A in arrays))


def check_collapse(gmm: DiagGMM, culprits, n_frames: int) -> None:
    """:func:`_check_collapse` given the names of the inputs most of whose ``n_frames`` frames the collapsed
    components take (map-reduce training finds them on its workers)."""
    floored = gmm.floored_components_
    if not floored:
        return
    share = float(gmm.weights_[floored].sum())
    shown = f" ({', '.join(culprits[:5])}{' and more' if len(culprits) > 5 else ''})" if culprits else ""
    text = (f"UBM training: {len(floored)} of {len(gmm.weights_)} components collapsed onto the variance floor, "
            f"holding {100 * share:.1f} % of the {n_frames} frames: the data contain "
            f"near-identical frames (tones, constant signals, repeated frames){shown}")
    if share > _MAX_FLOORED_SHARE:
        raise ParameterError(f"{text}; this is not speech a background model can be trained on")
    warnings.warn(text, DegenerateFramesWarning, stacklevel=4)


class GMMUBM(BaseEstimator):
    """Universal background model with MAP-adapted speaker models and LLR scoring.

    Parameters
    ----------
    n_components : int
        Gaussians in the UBM (Reynolds et al. used 2048 on telephone speech; 256 suits short lab corpora).
    relevance_factor : float
        MAP relevance factor r: a component needs about r frames before its speaker mean moves half-way
        from the UBM mean to the speaker's data.
    adapt : str or tuple of str
        What MAP adapts: any of "means", "weights", "variances" (``"means"`` is the classic, robust choice).
    top_c : int or None
        Gaussians kept per frame for fast scoring (Reynolds' top-C); ``None`` or 0 scores exactly.
    max_iter, tol, random_state
        EM settings for the UBM.

    Attributes
    ----------
    ubm_ : DiagGMM
        The background model.
    ubm_hash_ : str
        Fingerprint of the UBM's arrays; speaker models record it and are refused by another UBM.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> background = rng.normal(size=(4000, 3)).astype(np.float32)
    >>> model = GMMUBM(n_components=4, max_iter=5, random_state=0).fit(background)
    >>> alice = model.enroll(rng.normal(loc=1.0, size=(500, 3)))
    >>> bool(model.score([alice], rng.normal(loc=1.0, size=(300, 3)))[0] > 0)
    True
    """

    def __init__(self, n_components=256, relevance_factor=16.0, adapt="means", top_c=5, max_iter=10, tol=1e-3,
                 random_state=0, verbose=False):
        self.n_components = n_components
        self.relevance_factor = relevance_factor
        self.adapt = adapt
        self.top_c = top_c
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _adapt_tuple(self) -> tuple:
        adapt = (self.adapt,) if isinstance(self.adapt, str) else tuple(self.adapt)
        unknown = [a for a in adapt if a not in _ADAPTABLE]
        if not adapt or unknown:
            raise ParameterError(f"adapt must name some of {_ADAPTABLE}, got {self.adapt!r}")
        return adapt

    def _check_params(self):
        if int(self.n_components) < 1:
            raise ParameterError(f"n_components must be >= 1, got {self.n_components}")
        if not self.relevance_factor > 0:
            raise ParameterError(f"relevance_factor must be > 0, got {self.relevance_factor}")
        if self.top_c is not None and int(self.top_c) < 0:
            raise ParameterError(f"top_c must be >= 0 or None, got {self.top_c}")
        self._adapt_tuple()


    # ------------------------------------------------------------------ training and enrollment
    def fit(self, X, y=None, names=None):
        """Train the UBM by EM on background frames (an array, or a list of per-file arrays).

        ``names`` (one per array) are what messages about degenerate arrays call them (see
        :func:`~speakerid.models._frame_checks.check_training_frames`: too few distinct frames or a constant
        dimension is a :class:`ParameterError`, arrays of mostly repeated frames a warning).
        """
        self._check_params()
        arrays = X
        X = _stack_frames(X, names, int(self.n_components), "UBM training")
        trained = self.ubm_estimator().fit(X)
        _check_collapse(trained, arrays if isinstance(arrays, (list, tuple)) else [X], names)
        return self.adopt_ubm(trained)

    def ubm_estimator(self) -> DiagGMM:
        """The (unfitted) :class:`DiagGMM` that :meth:`fit` trains as the UBM."""
        return DiagGMM(n_components=int(self.n_components), max_iter=self.max_iter, tol=self.tol,
                       random_state=self.random_state, verbose=self.verbose)

    def adopt_ubm(self, trained: DiagGMM) -> GMMUBM:
        """Make a fitted :meth:`ubm_estimator` (trained here or by :mod:`speakerid.models.sharded`) the UBM."""
        # keep exactly what a saved model holds (float32), so scores before and after saving are identical
        self.ubm_ = DiagGMM.from_params(trained.weights_.astype(np.float32), trained.means_.astype(np.float32),
                                        trained.covariances_.astype(np.float32))
        for name in ("n_iter_", "converged_", "log_likelihood_history_", "lower_bound_", "n_reseeded_",
                     "reseeded_last_", "floored_components_", "em_seconds_"):
            if hasattr(trained, name):
                setattr(self.ubm_, name, getattr(trained, name))
        self.ubm_hash_ = arrays_hash(self._ubm_arrays())
        self.n_features_in_ = trained.means_.shape[1]
        return self

    def enroll(self, X, names=None) -> dict:
        """MAP-adapt the UBM to one speaker's frames; return the speaker model as a dict of arrays.

        Frames that are mostly repeated (in any of the arrays, named by ``names``) or constant in a dimension
        are refused with :class:`ParameterError`: such a model accepts near anything close to them.
        """
        return self.enroll_stats(self.enrollment_stats(X, names))

    def enrollment_stats(self, X, names=None) -> np.ndarray:
        """The MAP statistics of one speaker's frames (:func:`~speakerid.models.gmm.map_stats`), checked as
        :meth:`enroll` checks them: float64 (n_components, 2 * n_features + 2). Statistics of several sessions
        add up; :meth:`enroll_stats` of their sum is the model enrolled from all of them at once."""
        check_is_fitted(self, "ubm_", _FIT_HINT)
        X = self._check_dims(_stack_frames(X, names, 1, "enrollment", strict=True))
        return map_stats(self.ubm_, X)

    def enroll_stats(self, stats) -> dict:
        """The speaker model (dict of float32 arrays) MAP-adapted from statistics of :meth:`enrollment_stats`."""
        check_is_fitted(self, "ubm_", _FIT_HINT)
        adapted = map_from_stats(self.ubm_, stats, relevance_factor=float(self.relevance_factor),
                                 adapt=self._adapt_tuple())
        model = {"means": adapted.means_.astype(np.float32)}
        if "weights" in self._adapt_tuple():
            model["weights"] = adapted.weights_.astype(np.float32)
        if "variances" in self._adapt_tuple():
            model["variances"] = adapted.covariances_.astype(np.float32)
        return model

    def supervector(self, X) -> np.ndarray:
        """KL-normalised mean supervector of an utterance: its MAP-adapted means, centred on the UBM's and scaled
        by ``sqrt(w_c) / sigma_c``, stacked (Campbell, Sturim & Reynolds, "Support vector machines using GMM
        supervectors for speaker verification", IEEE SPL 13(5), 2006).

        Parameters
        ----------
        X : array-like of shape (n_frames, n_features)

        Returns
        -------
        numpy.ndarray of float32, shape (n_components * n_features,)
            Inner products of two supervectors approximate the KL-divergence kernel of their GMMs.
        """
        means = self.enroll(X)["means"].astype(np.float64)
        ubm = self.ubm_
        scale = np.sqrt(ubm.weights_)[:, None] / np.sqrt(ubm.covariances_)
        return ((means - ubm.means_) * scale).astype(np.float32).ravel()

    def _check_dims(self, X):
        if X.shape[1] != self.n_features_in_:
            raise ParameterError(f"features have {X.shape[1]} columns, the UBM was trained on {self.n_features_in_}")
        return X

    # ------------------------------------------------------------------ scoring
    def score(self, models, X, top_c="default") -> np.ndarray:
        """Average frame log-likelihood ratio of each speaker model against the UBM on frames ``X``.

        Parameters
        ----------
        models : list of dict
            Speaker models from :meth:`enroll`.
        X : array, shape (n_frames, n_dims)
        top_c : int, None or "default"
            Gaussian selection: "default" uses ``self.top_c``; ``None``/0 scores exactly.

        Returns
        -------
        numpy.ndarray of float64, shape (n_models,)
        """
        return self.score_aligned(models, self.align(X, top_c))

    def align(self, X, top_c="default") -> UBMAlignment:
        """The UBM alignment of frames ``X`` (n_frames, n_dims): the per-utterance work of :meth:`score`, done
        once and shared by every :meth:`score_aligned` call (claimed speakers, cohort models, ...)."""
        check_is_fitted(self, "ubm_", _FIT_HINT)
        X = self._check_dims(_stack_frames(X))
        c = self.top_c if top_c == "default" else top_c
        c = None if not c or int(c) >= self.ubm_.n_components else int(c)
        return ubm_alignment(self.ubm_, X, top_c=c)

    def score_aligned(self, models, alignment: UBMAlignment) -> np.ndarray:
        """:meth:`score` of speaker models on an utterance already aligned by :meth:`align`, float64 (n_models,).

        Each model's differences from the UBM are computed once and kept (keyed by the identity of its arrays,
        which the cache holds on to), as is the stack of a recurring set of models (a cohort).
        """
        check_is_fitted(self, "ubm_", _FIT_HINT)
        models = list(models)
        if not models:
            return np.zeros(0)
        key = tuple(id(m["means"]) if isinstance(m, dict) and "means" in m else id(m) for m in models)
        delta = self._cached("sets", key, models, lambda: self._stack_deltas(models), _MAX_SETS)
        return np.asarray(aligned_llr(alignment, delta), dtype=np.float64)

    def _stack_deltas(self, models) -> np.ndarray:
        rows = [self._cached("models", (id(m["means"]) if isinstance(m, dict) and "means" in m else id(m),), [m],
                             lambda m=m: llr_deltas(self.ubm_, [self._as_gmm(m)]), _MAX_MODELS) for m in models]
        width = max(r.shape[1] for r in rows)   # a narrow row's x^2 columns are exactly 0 (the UBM's variances)
        return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], axis=2)

    def _cached(self, kind, key, owners, make, limit):
        """``make()`` memoised per ``key`` (ids of ``owners``' arrays, held by the entry so no id is reused)."""
        with _CACHE_LOCK:
            cache = self.__dict__.setdefault("_delta_cache", {}).setdefault(kind, OrderedDict())
            hit = cache.get(key)
            if hit is not None:
                cache.move_to_end(key)
                return hit[1]
        value = make()
        if value.nbytes > _MAX_CACHED_BYTES:
            return value
        with _CACHE_LOCK:
            cache[key] = (list(owners), value)
            while len(cache) > limit:
                cache.popitem(last=False)
        return value

    def _as_gmm(self, model: dict) -> DiagGMM:
        weights = model.get("weights", self.ubm_.weights_)
        variances = model.get("variances", self.ubm_.covariances_)
        if np.shape(model["means"]) != self.ubm_.means_.shape:
            raise ModelFormatError(f"speaker model means have shape {np.shape(model['means'])}, "
                                   f"the UBM's are {self.ubm_.means_.shape}")
        return DiagGMM.from_params(weights, model["means"], variances)

    # ------------------------------------------------------------------ persistence
    def _ubm_arrays(self) -> dict:
        return {"weights": self.ubm_.weights_.astype(np.float32), "means": self.ubm_.means_.astype(np.float32),
                "variances": self.ubm_.covariances_.astype(np.float32)}

    def to_arrays(self) -> dict:
        """The UBM's arrays, for :func:`speakerid.store.save_model_file`."""
        check_is_fitted(self, "ubm_", _FIT_HINT)
        return self._ubm_arrays()

    @classmethod
    def from_arrays(cls, arrays: dict, params: dict) -> GMMUBM:
        """Rebuild from saved arrays and hyper-parameters (the inverse of :meth:`to_arrays`)."""
        missing = [k for k in ("weights", "means", "variances") if k not in arrays]
        if missing:
            raise ModelFormatError(f"UBM file lacks array(s) {missing}")
        means = arrays["means"]
        if means.ndim != 2 or arrays["weights"].shape != (means.shape[0],) or arrays["variances"].shape != means.shape:
            raise ModelFormatError(f"UBM arrays have inconsistent shapes: weights {arrays['weights'].shape}, "
                                   f"means {means.shape}, variances {arrays['variances'].shape}")
        known = {k: v for k, v in params.items() if k in cls._get_param_names()}
        model = cls(**known)
        model.ubm_ = DiagGMM.from_params(arrays["weights"], means, arrays["variances"])
        model.ubm_hash_ = arrays_hash(model._ubm_arrays())
        model.n_features_in_ = means.shape[1]
        return model
