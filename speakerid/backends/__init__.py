"""Backends: one module per kind of speaker model, each with its adapter to the model directory and its training.

``base`` holds the :class:`~speakerid.backends.base.Backend` interface and the registry; ``gmm_ubm`` (GMM-UBM
and per-speaker GMMs), ``ivector``, ``siamese`` and ``mlp`` are the built-in backends.
"""

from speakerid.backends.base import Backend, available_backends, get_backend, register_backend

__all__ = ["Backend", "available_backends", "get_backend", "register_backend"]
