"""Speaker models: the diagonal GMM toolkit (EM, MAP adaptation, LLR scoring) and the models built on it."""

from speakerid.models.gmm import DiagGMM, map_adapt
from speakerid.models.llr import llr_scores

__all__ = ["DiagGMM", "map_adapt", "llr_scores"]
