"""Speaker models: the diagonal GMM toolkit (EM, MAP adaptation, LLR scoring) and the models built on it."""

from speakerid.models.gmm import DiagGMM, llr_scores, map_adapt

__all__ = ["DiagGMM", "map_adapt", "llr_scores"]
