"""A small, exact numpy neural-network kit: Dense, ReLU, L2-norm layers, an MLP, the contrastive loss, Adam.

Each layer caches what its backward pass needs in ``forward`` and returns the gradient with respect to its
input from ``backward``, storing the gradients of its own parameters in ``grads``. Everything works in the
dtype of the input (float64 for training and for the finite-difference checks in ``tests/test_siamese.py``).
"""

from __future__ import annotations

import inspect
import re

import numpy as np

from speakerid.exceptions import ModelFormatError, ParameterError

__all__ = ["Dense", "ReLU", "L2Norm", "MLP", "contrastive_loss", "pair_distances", "Adam"]

#: Added under square roots (pair distances, L2 norms) so that gradients stay finite at zero.
SQRT_EPS = 1e-12


class Dense:
    """Affine layer ``x @ weight + bias``, He-initialised (the layers before it are ReLUs)."""

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator | None = None):
        rng = np.random.default_rng(0) if rng is None else rng
        self.params = {"weight": rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out)),
                       "bias": np.zeros(n_out)}
        self.grads = {name: np.zeros_like(value) for name, value in self.params.items()}
        self._input = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input = x
        return x @ self.params["weight"] + self.params["bias"]

    def backward(self, grad: np.ndarray) -> np.ndarray:
        self.grads["weight"] = self._input.T @ grad
        self.grads["bias"] = grad.sum(axis=0)
        return grad @ self.params["weight"].T


class ReLU:
    """``max(0, x)``; the gradient at exactly 0 is taken as 0."""

    params: dict = {}
    grads: dict = {}

    def __init__(self):
        self._positive = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._positive = x > 0
        return np.where(self._positive, x, 0.0).astype(x.dtype, copy=False)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return np.where(self._positive, grad, 0.0).astype(grad.dtype, copy=False)


class L2Norm:
    """Row-wise ``x / sqrt(|x|^2 + eps)``: unit-length embeddings (exactly differentiable, also at 0)."""

    params: dict = {}
    grads: dict = {}

    def __init__(self):
        self._output = None
        self._norm = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._norm = np.sqrt(np.sum(x * x, axis=1, keepdims=True) + SQRT_EPS)
        self._output = x / self._norm
        return self._output

    def backward(self, grad: np.ndarray) -> np.ndarray:
        y = self._output
        return (grad - y * np.sum(grad * y, axis=1, keepdims=True)) / self._norm


class MLP:
    """``Dense -> ReLU -> ... -> Dense [-> L2Norm]``: ReLU between the layers, none after the last one.

    Parameters
    ----------
    sizes : sequence of int
        Input dimension, then the width of every Dense layer; the last is the embedding dimension.
    l2_normalize : bool
        End with :class:`L2Norm` (unit-length embeddings).
    rng : numpy.random.Generator, optional
        For the initial weights.
    """

    def __init__(self, sizes, l2_normalize: bool = True, rng: np.random.Generator | None = None):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ParameterError(f"an MLP needs an input size and at least one positive layer size, "
                                 f"got {sizes}")
        self.sizes = sizes
        self.l2_normalize = bool(l2_normalize)
        self.layers: list = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i:
                self.layers.append(ReLU())
            self.layers.append(Dense(n_in, n_out, rng))
        if self.l2_normalize:
            self.layers.append(L2Norm())

    @property
    def dense_layers(self) -> list:
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def parameters(self) -> list:
        """``[(layer, name), ...]`` of every Dense layer's weight and bias, in a fixed order."""
        return [(layer, name) for layer in self.dense_layers for name in ("weight", "bias")]

    def to_arrays(self, prefix: str = "") -> dict:
        """The weights as ``{prefix}weight_{i}`` / ``{prefix}bias_{i}`` arrays (for the model store)."""
        out = {}
        for i, layer in enumerate(self.dense_layers):
            out[f"{prefix}weight_{i}"] = layer.params["weight"].copy()
            out[f"{prefix}bias_{i}"] = layer.params["bias"].copy()
        return out

    @classmethod
    def from_arrays(cls, arrays: dict, l2_normalize: bool, prefix: str = "") -> MLP:
        count = _layer_count(arrays, (f"{prefix}weight", f"{prefix}bias"))
        try:
            weights = [np.asarray(arrays[f"{prefix}weight_{i}"], dtype=np.float64) for i in range(count)]
            biases = [np.asarray(arrays[f"{prefix}bias_{i}"], dtype=np.float64) for i in range(count)]
        except KeyError as exc:
            raise ModelFormatError(f"network weights incomplete: no array {exc}") from None
        if not weights:
            raise ModelFormatError("the model file holds no network weights")
        sizes = [weights[0].shape[0]] + [w.shape[1] for w in weights]
        for i, (w, b) in enumerate(zip(weights, biases)):
            if w.ndim != 2 or w.shape[0] != sizes[i] or b.shape != (w.shape[1],):
                raise ModelFormatError(f"network layer {i} has inconsistent shapes {w.shape} and {b.shape}")
        net = cls(sizes, l2_normalize)
        for layer, w, b in zip(net.dense_layers, weights, biases):
            layer.params["weight"], layer.params["bias"] = w, b
        return net


def _layer_count(arrays: dict, stems) -> int:
    """1 + the highest index among arrays named ``{stem}_{index}`` (so a missing middle layer is noticed)."""
    pattern = re.compile("(" + "|".join(re.escape(stem) for stem in stems) + r")_(\d+)")
    found = [int(match.group(2)) for match in map(pattern.fullmatch, arrays) if match]
    return max(found, default=-1) + 1


def pair_distances(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Euclidean distance between matching rows, ``sqrt(|a - b|^2 + eps)``."""
    diff = first - second
    return np.sqrt(np.sum(diff * diff, axis=1) + SQRT_EPS)


def contrastive_loss(first: np.ndarray, second: np.ndarray, different: np.ndarray, margin: float = 1.0):
    """Contrastive loss of Hadsell, Chopra & LeCun (2006), averaged over pairs, and its gradients.

    ``L = (1 - Y) * D**2 / 2 + Y * max(0, margin - D)**2 / 2`` with ``D`` the Euclidean distance of the two
    embeddings and ``Y = 1`` when the pair comes from *different* speakers (the seed's convention).

    Returns
    -------
    loss : float
    grad_first, grad_second : numpy.ndarray
        dL/d(first), dL/d(second).
    distances : numpy.ndarray
        ``D`` of every pair.

    Examples
    --------
    >>> a, b = np.array([[0.0, 0.0], [0.0, 0.0]]), np.array([[3.0, 4.0], [0.3, 0.4]])
    >>> loss, _, _, d = contrastive_loss(a, b, np.array([0, 1]), margin=1.0)
    >>> round(loss, 4), np.round(d, 4).tolist()     # (25 / 2 + 0.5 ** 2 / 2) / 2
    (6.3125, [5.0, 0.5])
    """
    different = np.asarray(different, dtype=first.dtype)
    n_pairs = len(first)
    diff = first - second
    distances = np.sqrt(np.sum(diff * diff, axis=1) + SQRT_EPS)
    shortfall = np.maximum(0.0, margin - distances)
    loss = np.sum((1.0 - different) * 0.5 * np.sum(diff * diff, axis=1) + different * 0.5 * shortfall ** 2)
    # d/d(diff) of D^2/2 is diff; of max(0, m - D)^2 / 2 it is -(m - D)+ * diff / D
    coefficient = (1.0 - different) - different * shortfall / distances
    grad = coefficient[:, None] * diff / n_pairs
    return float(loss / n_pairs), grad, -grad, distances


class Adam:
    """Adam (Kingma & Ba, 2015) with decoupled weight decay on the weights (AdamW, Loshchilov & Hutter, 2019).

    ``step()`` reads each parameter's gradient from its layer's ``grads`` and updates ``params`` in place.
    """

    def __init__(self, owners, learning_rate: float = 1e-3, weight_decay: float = 0.0, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8):
        self.owners = list(owners)
        self.learning_rate, self.weight_decay = float(learning_rate), float(weight_decay)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self._m = [np.zeros_like(layer.params[name]) for layer, name in self.owners]
        self._v = [np.zeros_like(layer.params[name]) for layer, name in self.owners]
        self.t = 0

    def step(self) -> None:
        self.t += 1
        correction1, correction2 = 1.0 - self.beta1 ** self.t, 1.0 - self.beta2 ** self.t
        for (layer, name), m, v in zip(self.owners, self._m, self._v):
            grad, value = layer.grads[name], layer.params[name]
            m *= self.beta1
            m += (1.0 - self.beta1) * grad
            v *= self.beta2
            v += (1.0 - self.beta2) * grad * grad
            if self.weight_decay and name == "weight":
                value -= self.learning_rate * self.weight_decay * value
            value -= self.learning_rate * (m / correction1) / (np.sqrt(v / correction2) + self.eps)


class NetworkParams:
    """sklearn-style ``get_params`` for the network estimators: hyper-parameters are ``__init__``'s arguments."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return sorted(p for p in inspect.signature(cls.__init__).parameters if p != "self")

    def get_params(self) -> dict:
        params = {name: getattr(self, name) for name in self._get_param_names()}
        params["hidden_sizes"] = [int(h) for h in self.hidden_sizes]
        return params
