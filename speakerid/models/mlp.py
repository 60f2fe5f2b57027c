"""MLP speaker classifier on clip vectors (closed-set identification); its last hidden layer is an embedding.

:class:`MLPSpeakerClassifier` trains scikit-learn's ``MLPClassifier`` epoch by epoch (``partial_fit``, Adam,
L2 penalty ``alpha``) with early stopping on validation accuracy, then keeps only arrays: the standardiser,
the ``coefs_``/``intercepts_`` and the class names. Prediction and embeddings are a numpy forward pass, so a
saved model never needs pickle (nor scikit-learn) to load. :class:`MLPBackend` (``--backend mlp``) verifies
with the cosine of the last-hidden-layer embeddings: a speaker is the mean embedding of the enrollment files.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from speakerid._utils.validation import check_is_fitted
from speakerid.exceptions import ModelFormatError, ParameterError
from speakerid.models._nn import NetworkParams, _layer_count
from speakerid.models.clipvec import Standardizer, clip_examples
from speakerid.models.pairs import check_speakers

__all__ = ["MLPSpeakerClassifier", "top_n_accuracy"]
#: What the NotFittedError of an untrained MLPSpeakerClassifier suggests.
_FIT_HINT = "call fit() (or 'speakerid train-mlp')"



def top_n_accuracy(proba: np.ndarray, true_index: np.ndarray, n: int = 1) -> float:
    """Share of rows whose true class is among the ``n`` most probable.

    Examples
    --------
    >>> top_n_accuracy(np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]]), np.array([1, 2]), n=1)
    0.5
    >>> top_n_accuracy(np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]]), np.array([1, 2]), n=2)
    1.0
    """
    n = min(int(n), proba.shape[1])
    if n < 1:
        raise ParameterError(f"n must be >= 1, got {n}")
    best = np.argsort(-proba, axis=1, kind="stable")[:, :n]
    return float(np.mean(np.any(best == np.asarray(true_index)[:, None], axis=1)))


class MLPSpeakerClassifier(NetworkParams):
    """Closed-set speaker classifier: standardised clip vectors -> ReLU MLP -> softmax over speakers.

    Parameters
    ----------
    hidden_sizes : tuple of int
        Hidden layer widths; the last hidden layer is the embedding.
    alpha : float
        L2 penalty (scikit-learn's weight decay).
    learning_rate, batch_size : float, int
        Adam step size and mini-batch size.
    max_epochs, patience : int
        Stop after ``patience`` epochs without better validation accuracy (validation loss breaks ties); the
        best epoch's weights are kept.
    random_state : int

    Attributes
    ----------
    classes_ : numpy.ndarray of str
    coefs_, intercepts_ : list of numpy.ndarray
    out_activation_ : {"softmax", "logistic"}
    standardizer_, history_, best_epoch_
    """

    def __init__(self, hidden_sizes=(256, 128), alpha=1e-3, learning_rate=1e-3, batch_size=64, max_epochs=100,
                 patience=10, random_state=0):
        self.hidden_sizes = hidden_sizes
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.random_state = random_state

    # ----------------------------------------------------------------------------------------------- training
    def fit(self, X, labels, X_val=None, labels_val=None, callback=None, source: str = "the data"):
        """Train on clip vectors ``X`` (speaker ``labels``); early-stop on ``(X_val, labels_val)`` when given.

        Every validation label must be a training speaker (closed set). ``callback(record)`` gets each epoch's
        ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``.
        """
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        sizes = tuple(int(h) for h in self.hidden_sizes)
        if not sizes or min(sizes) < 1 or int(self.max_epochs) < 1 or int(self.patience) < 1:
            raise ParameterError("MLPSpeakerClassifier: hidden_sizes, max_epochs and patience must be "
                                 "positive")
        X = np.asarray(X, dtype=np.float64)
        labels = np.asarray(labels).astype(str)
        if X.ndim != 2 or len(X) != len(labels):
            raise ParameterError(f"{source}: expected clip vectors (n, dims) and n labels")
        self.classes_ = check_speakers(labels, source)
        self.standardizer_ = Standardizer().fit(X)
        Z, y = self.standardizer_.transform(X), np.searchsorted(self.classes_, labels)
        validation = None
        if X_val is not None and len(X_val):
            labels_val = np.asarray(labels_val).astype(str)
            unknown = sorted(set(labels_val) - set(self.classes_))
            if unknown:
                raise ParameterError(f"{source}: validation speakers {unknown[:5]} are not training speakers")
            validation = (self.standardizer_.transform(X_val), np.searchsorted(self.classes_, labels_val))
        net = MLPClassifier(hidden_layer_sizes=sizes, alpha=self.alpha,
                            batch_size=min(int(self.batch_size), len(Z)),
                            learning_rate_init=self.learning_rate, random_state=self.random_state,
                            shuffle=True)
        self.history_, best, waited = [], None, 0
        for epoch in range(1, int(self.max_epochs) + 1):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                net.partial_fit(Z, y, classes=np.arange(len(self.classes_)))
            self._take_weights(net)
            record = {"epoch": epoch, **self._loss_accuracy(Z, y, "train")}
            record.update(self._loss_accuracy(*validation, "val") if validation else
                          {"val_loss": math.nan, "val_accuracy": math.nan})
            record["seconds"] = time.perf_counter() - start
            self.history_.append(record)
            if callback is not None:
                callback(dict(record))
            key = (-record["val_accuracy"], record["val_loss"]) if validation else (-epoch, 0.0)
            if best is None or key < best[0]:
                weights = ([c.copy() for c in self.coefs_], [b.copy() for b in self.intercepts_])
                best, waited = (key, epoch, *weights), 0
            else:
                waited += 1
                if waited >= int(self.patience):
                    break
        _, self.best_epoch_, self.coefs_, self.intercepts_ = best
        return self

    def _take_weights(self, net) -> None:
        self.coefs_ = [np.asarray(c, dtype=np.float64).copy() for c in net.coefs_]
        self.intercepts_ = [np.asarray(b, dtype=np.float64).copy() for b in net.intercepts_]
        self.out_activation_ = net.out_activation_

    def _loss_accuracy(self, Z, y, prefix) -> dict:
        proba = self._proba(Z)
        loss = -np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)))
        accuracy = float(np.mean(proba.argmax(axis=1) == y))
        return {f"{prefix}_loss": float(loss), f"{prefix}_accuracy": accuracy}

    # ------------------------------------------------------------------------------------- numpy forward pass
    def _hidden(self, Z) -> np.ndarray:
        for coef, intercept in zip(self.coefs_[:-1], self.intercepts_[:-1]):
            Z = np.maximum(Z @ coef + intercept, 0.0)
        return Z

    def _proba(self, Z) -> np.ndarray:
        logits = self._hidden(Z) @ self.coefs_[-1] + self.intercepts_[-1]
        if self.out_activation_ == "logistic":  # scikit-learn's two-class output: one unit
            positive = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            return np.stack([1.0 - positive, positive], axis=1)
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


    def predict_proba(self, X) -> np.ndarray:
        """Probability of every speaker in :attr:`classes_` order, shape ``(n, n_speakers)``."""
        check_is_fitted(self, "coefs_", _FIT_HINT)
        return self._proba(self.standardizer_.transform(np.atleast_2d(X)))

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def top_n_accuracy(self, X, labels, n: int = 5) -> float:
        """Share of clips whose true speaker is among the ``n`` best (unknown speakers count as wrong)."""
        labels = np.asarray(labels).astype(str)
        index = np.minimum(np.searchsorted(self.classes_, labels), len(self.classes_) - 1)
        index = np.where(self.classes_[index] == labels, index, -1)
        return top_n_accuracy(self.predict_proba(X), index, n)

    def embed(self, X) -> np.ndarray:
        """Last-hidden-layer activations (after ReLU), shape ``(n, hidden_sizes[-1])``."""
        check_is_fitted(self, "coefs_", _FIT_HINT)
        return self._hidden(self.standardizer_.transform(np.atleast_2d(X)))

    def embed_frames(self, frames, segment_length: int = 0) -> np.ndarray:
        X, _, _ = clip_examples([frames], segment_length=segment_length)
        return self.embed(X).mean(axis=0)

    # -------------------------------------------------------------------------------------------- persistence
    def to_arrays(self) -> dict:
        check_is_fitted(self, "coefs_", _FIT_HINT)
        arrays = {**self.standardizer_.to_arrays(), "classes": np.asarray(self.classes_, dtype=str)}
        for i, (coef, intercept) in enumerate(zip(self.coefs_, self.intercepts_)):
            arrays[f"coef_{i}"], arrays[f"intercept_{i}"] = coef, intercept
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict, params: dict) -> MLPSpeakerClassifier:
        known = set(cls._get_param_names())
        model = cls(**{k: v for k, v in params.items() if k in known})
        count = _layer_count(arrays, ("coef", "intercept"))
        try:
            model.standardizer_ = Standardizer.from_arrays(arrays)
            model.classes_ = np.asarray(arrays["classes"]).astype(str)
            model.coefs_ = [np.asarray(arrays[f"coef_{i}"], dtype=np.float64) for i in range(count)]
            model.intercepts_ = [np.asarray(arrays[f"intercept_{i}"], dtype=np.float64) for i in range(count)]
        except KeyError as exc:
            raise ModelFormatError(f"MLP model file lacks array {exc}") from None
        if count < 2:
            raise ModelFormatError("MLP model file: needs at least one hidden layer and an output layer")
        model.out_activation_ = "logistic" if model.coefs_[-1].shape[1] == 1 else "softmax"
        return model


