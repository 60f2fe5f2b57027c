"""Siamese MLP on clip vectors: one shared-weight network trained with the contrastive loss, in numpy.

:class:`SiameseMLP` is the estimator (standardise -> ``Dense -> ReLU -> ... -> Dense [-> L2Norm]``), trained
on balanced same/different-speaker pairs (:mod:`speakerid.models.pairs`) with mini-batch Adam, decoupled
weight decay and early stopping on the validation EER. :class:`SiameseBackend` (``--backend siamese``) makes
it a verification backend: a speaker model is the mean embedding of the enrollment files, a trial's score the
negative Euclidean distance (or the cosine) between the test embedding and it.
"""

from __future__ import annotations

import math
import time

import numpy as np

from speakerid._utils.validation import check_is_fitted
from speakerid.evaluation.metrics import eer
from speakerid.exceptions import ModelFormatError, ParameterError
from speakerid.models._nn import MLP, Adam, NetworkParams, contrastive_loss, pair_distances
from speakerid.models.clipvec import Standardizer, clip_examples
from speakerid.models.pairs import check_speakers, sample_pairs

__all__ = ["SiameseMLP", "embedding_scores"]
#: What the NotFittedError of an untrained SiameseMLP suggests.
_FIT_HINT = "call fit() (or 'speakerid train-siamese')"

_SCORINGS = ("distance", "cosine")


def embedding_scores(test: np.ndarray, speakers: np.ndarray, scoring: str = "distance") -> np.ndarray:
    """Scores of one test embedding against each row of ``speakers``: ``-|t - s|`` or ``cos(t, s)``.

    Examples
    --------
    >>> embedding_scores(np.array([1.0, 0.0]), np.array([[1.0, 0.0], [0.0, 2.0]])).round(4).tolist()
    [-0.0, -2.2361]
    >>> embedding_scores(np.array([1.0, 0.0]), np.array([[1.0, 0.0], [0.0, 2.0]]), "cosine").tolist()
    [1.0, 0.0]
    """
    test, speakers = np.asarray(test, dtype=np.float64), np.atleast_2d(np.asarray(speakers, dtype=np.float64))
    if scoring == "cosine":
        norms = np.linalg.norm(speakers, axis=1) * np.linalg.norm(test)
        return speakers @ test / np.maximum(norms, 1e-12)
    if scoring == "distance":
        return -np.sqrt(np.sum((speakers - test) ** 2, axis=1))
    raise ParameterError(f"scoring must be one of {_SCORINGS}, got {scoring!r}")


class SiameseMLP(NetworkParams):
    """Siamese MLP speaker embedder trained with the contrastive loss.

    Parameters
    ----------
    hidden_sizes : tuple of int
        Widths of the Dense layers; the last is the embedding dimension (ReLU between layers, none after the
        last).
    l2_normalize : bool
        Unit-length embeddings (distances then lie in [0, 2]).
    margin : float
        Contrastive margin ``m``: different-speaker pairs closer than ``m`` are pushed apart.
    learning_rate, weight_decay : float
        Adam step size; decoupled weight decay on the weights (not the biases).
    batch_size : int
        Pairs per Adam step.
    max_epochs, patience : int
        Stop after ``patience`` epochs without a better validation EER; the best epoch's weights are kept.
    pairs_per_epoch : int or None
        Fresh balanced pairs drawn every epoch; ``None``: four per training example (at least 1024).
    hard_negatives : float in [0, 1]
        Share of the different-speaker pairs whose impostor is the nearest of 10 candidates in the current
        embedding space.
    n_val_pairs : int
        Fixed validation pairs (drawn once).
    scoring : {"distance", "cosine"}
        Trial score: negative Euclidean distance, or cosine similarity, of the embeddings.
    random_state : int
        Seeds the initial weights, the pairs and the batches.

    Attributes
    ----------
    standardizer_, network_, history_ : Standardizer, MLP, list of dict
    best_epoch_, val_eer_, val_eer_threshold_ : int, float, float
        Validation EER of the kept weights and the score threshold where it is reached (NaN without
        validation).
    """

    def __init__(self, hidden_sizes=(128, 64), l2_normalize=True, margin=1.0, learning_rate=1e-3,
                 batch_size=64, max_epochs=50, patience=10, weight_decay=1e-2, pairs_per_epoch=None,
                 hard_negatives=0.5, n_val_pairs=2000, scoring="distance", random_state=0):
        self.hidden_sizes = hidden_sizes
        self.l2_normalize = l2_normalize
        self.margin = margin
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.weight_decay = weight_decay
        self.pairs_per_epoch = pairs_per_epoch
        self.hard_negatives = hard_negatives
        self.n_val_pairs = n_val_pairs
        self.scoring = scoring
        self.random_state = random_state

    def _check_params(self) -> None:
        sizes = tuple(self.hidden_sizes)
        if not sizes or any(int(h) != h or h < 1 for h in sizes):
            raise ParameterError(f"hidden_sizes must be positive integers, got {self.hidden_sizes!r}")
        checks = [(self.margin > 0, "margin must be > 0"),
                  (self.learning_rate > 0, "learning_rate must be > 0"),
                  (int(self.batch_size) >= 1, "batch_size must be >= 1"),
                  (int(self.max_epochs) >= 1, "max_epochs must be >= 1"),
                  (int(self.patience) >= 1, "patience must be >= 1"),
                  (self.weight_decay >= 0, "weight_decay must be >= 0"),
                  (0 <= self.hard_negatives <= 1, "hard_negatives must be in [0, 1]"),
                  (self.scoring in _SCORINGS, f"scoring must be one of {_SCORINGS}")]
        for ok, message in checks:
            if not ok:
                raise ParameterError(f"SiameseMLP: {message}")

    # ----------------------------------------------------------------------------------------------- training
    def fit(self, X, labels, X_val=None, labels_val=None, callback=None,
            source: str = "the data") -> SiameseMLP:
        """Train on clip vectors ``X`` with speaker ``labels``; validate on ``(X_val, labels_val)`` if given.

        ``callback(record)`` is called after every epoch with that epoch's history record (keys ``epoch``,
        ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``, ``val_eer``, ``seconds``). Pair
        accuracy counts a pair as "same speaker" when its distance is below ``margin / 2``.
        """
        self._check_params()
        X, labels = self._check_xy(X, labels, source)
        rng = np.random.default_rng(self.random_state)
        self.standardizer_ = Standardizer().fit(X)
        Z = self.standardizer_.transform(X)
        self.network_ = MLP([Z.shape[1], *self.hidden_sizes], self.l2_normalize, rng)
        optimizer = Adam(self.network_.parameters(), self.learning_rate, self.weight_decay)
        validation = None
        if X_val is not None and len(X_val):
            X_val, labels_val = self._check_xy(X_val, labels_val, f"{source} (validation speakers)")
            Z_val = self.standardizer_.transform(X_val)
            val_pairs = sample_pairs(labels_val, self.n_val_pairs, rng,
                                     source=f"{source} (validation speakers)")
            validation = (Z_val, val_pairs)
        n_pairs = int(self.pairs_per_epoch or max(1024, 4 * len(Z)))
        self.history_, best, waited = [], None, 0
        for epoch in range(1, int(self.max_epochs) + 1):
            start = time.perf_counter()
            embeddings = self._forward(Z) if self.hard_negatives else None
            pairs = sample_pairs(labels, n_pairs, rng, hard_negatives=self.hard_negatives,
                                 embeddings=embeddings, source=source)
            train_loss, train_correct = 0.0, 0
            for begin in range(0, n_pairs, int(self.batch_size)):
                batch = slice(begin, begin + int(self.batch_size))
                loss, correct = self._step(Z, pairs.first[batch], pairs.second[batch], pairs.different[batch],
                                           optimizer)
                train_loss += loss * len(pairs.first[batch])
                train_correct += correct
            record = {"epoch": epoch, "train_loss": train_loss / n_pairs,
                      "train_accuracy": train_correct / n_pairs,
                      "val_loss": math.nan, "val_accuracy": math.nan, "val_eer": math.nan}
            if validation is not None:
                record.update(self._evaluate(*validation))
            record["seconds"] = time.perf_counter() - start
            self.history_.append(record)
            if callback is not None:
                callback(dict(record))
            key = (record["val_eer"], record["val_loss"]) if validation is not None else (-epoch, 0.0)
            if best is None or key < best[0]:
                best, waited = (key, epoch, self.network_.to_arrays()), 0
            else:
                waited += 1
                if waited >= int(self.patience):
                    break
        _, self.best_epoch_, weights = best
        self.network_ = MLP.from_arrays(weights, self.l2_normalize)
        self.val_eer_, self.val_eer_threshold_ = math.nan, math.nan
        if validation is not None:
            Z_val, pairs = validation
            scores = self._pair_scores(self._forward(Z_val[pairs.first]), self._forward(Z_val[pairs.second]))
            self.val_eer_, self.val_eer_threshold_ = eer(scores, 1 - pairs.different, return_threshold=True)
        return self

    @staticmethod
    def _check_xy(X, labels, source):
        X = np.asarray(X, dtype=np.float64)
        labels = np.asarray(labels)
        if X.ndim != 2 or len(X) != len(labels):
            raise ParameterError(f"{source}: expected clip vectors (n, dims) and n labels, got {X.shape} and "
                                 f"{labels.shape}")
        if not np.all(np.isfinite(X)):
            raise ParameterError(f"{source}: clip vectors hold NaN or infinity")
        check_speakers(labels, source)
        return X, labels

    def _step(self, Z, first, second, different, optimizer):
        n = len(first)
        out = self.network_.forward(np.concatenate([Z[first], Z[second]]))
        loss, grad_first, grad_second, distances = contrastive_loss(out[:n], out[n:], different, self.margin)
        self.network_.backward(np.concatenate([grad_first, grad_second]))
        optimizer.step()
        correct = int(np.sum((distances < self.margin / 2) == (different == 0)))
        return loss, correct

    def _evaluate(self, Z_val, pairs) -> dict:
        first, second = self._forward(Z_val[pairs.first]), self._forward(Z_val[pairs.second])
        loss, _, _, distances = contrastive_loss(first, second, pairs.different, self.margin)
        accuracy = float(np.mean((distances < self.margin / 2) == (pairs.different == 0)))
        return {"val_loss": loss, "val_accuracy": accuracy,
                "val_eer": float(eer(-distances, 1 - pairs.different))}

    def _forward(self, Z) -> np.ndarray:
        return self.network_.forward(Z) if len(Z) else np.zeros((0, self.network_.sizes[-1]))

    # ---------------------------------------------------------------------------------------------------- use

    def embed(self, X) -> np.ndarray:
        """Embeddings of clip vectors, shape ``(n, hidden_sizes[-1])``."""
        check_is_fitted(self, "network_", _FIT_HINT)
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return self._forward(self.standardizer_.transform(X))

    def embed_frames(self, frames, segment_length: int = 0) -> np.ndarray:
        """Embedding of one utterance: of its clip vector, or the mean over its segments' embeddings."""
        X, _, _ = clip_examples([frames], segment_length=segment_length)
        return self.embed(X).mean(axis=0)

    def score_pairs(self, X1, X2) -> np.ndarray:
        """Scores of matching rows of two sets of clip vectors (higher = more likely the same speaker)."""
        return self._pair_scores(self.embed(X1), self.embed(X2))

    def _pair_scores(self, first, second) -> np.ndarray:
        if self.scoring == "cosine":
            norms = np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)
            return np.sum(first * second, axis=1) / np.maximum(norms, 1e-12)
        return -pair_distances(first, second)

    # -------------------------------------------------------------------------------------------- persistence
    def to_arrays(self) -> dict:
        check_is_fitted(self, "network_", _FIT_HINT)
        return {**self.network_.to_arrays(), **self.standardizer_.to_arrays()}

    @classmethod
    def from_arrays(cls, arrays: dict, params: dict) -> SiameseMLP:
        known = set(cls._get_param_names())
        model = cls(**{k: v for k, v in params.items() if k in known})
        model.hidden_sizes = tuple(model.hidden_sizes)
        try:
            model.standardizer_ = Standardizer.from_arrays(arrays)
        except KeyError as exc:
            raise ModelFormatError(f"Siamese model file lacks array {exc}") from None
        model.network_ = MLP.from_arrays(arrays, model.l2_normalize)
        if model.network_.sizes[0] != len(model.standardizer_.mean_):
            raise ModelFormatError("Siamese model file: the standardiser and the network disagree on the "
                                   "input size")
        return model


