"""The systems ``speakerid train`` can fuse, and its defaults: names only, so the command line can list them
without importing the scoring code (:mod:`speakerid.scoring.fused` re-exports them)."""

from __future__ import annotations

__all__ = ["SYSTEMS", "DEFAULT_SYSTEMS", "DEFAULT_P_TARGET"]

#: system name -> (backend, fusion inputs: (input name, backend scoring params)), in fusion order.
SYSTEMS = {
    "gmm-ubm": ("gmm-ubm", (("gmm-ubm", {}),)),
    "ivector": ("ivector", (("ivector-cosine", {"scoring": "cosine"}), ("ivector-plda", {"scoring": "plda"}))),
    "siamese": ("siamese", (("siamese", {}),)),
}
#: Systems ``speakerid train`` builds by default (see the README for the development figures behind the choice).
DEFAULT_SYSTEMS = ("gmm-ubm", "ivector")
#: Target prior of the default decision (the Bayes threshold of a calibrated LLR at it is 0).
DEFAULT_P_TARGET = 0.5
