"""Which verifier a command uses for a model directory: the fused system of ``speakerid train``, one of its
systems, or an expert directory's :class:`~speakerid.verifier.SpeakerVerifier`."""

from __future__ import annotations

from speakerid.exceptions import ParameterError
from speakerid.scoring.fused import FusedVerifier, has_fusion
from speakerid.scoring.training_state import check_complete
from speakerid.store import FUSION_FILE
from speakerid.verifier import SpeakerVerifier

__all__ = ["open_verifier"]


def open_verifier(model_dir, *, system=None, backend=None, p_target=None, **kwargs):
    """The verifier a command should use.

    A fused directory (``fusion.json``) without ``backend``: its :class:`FusedVerifier`, or with ``system`` that
    system's :class:`SpeakerVerifier` (its own scale; ``kwargs`` such as ``norm`` apply to it). Any other
    directory: a plain :class:`SpeakerVerifier` (``backend``, ``kwargs``), whose scores are on the scale its
    ``score_scale`` names (not calibrated LLRs). Options that need the other kind raise :class:`ParameterError`.
    """
    check_complete(model_dir)       # a 'speakerid train' stopped half-way: say so, and how to resume
    if has_fusion(model_dir) and backend is None:
        fused = FusedVerifier(model_dir, p_target=p_target, n_jobs=kwargs.get("n_jobs", 1),
                              cache_dir=kwargs.get("cache_dir"))
        if system is None:
            options = {"norm": "--norm", "backend_params": "--exact", "cohort": "--cohort", "cohort_top": "--cohort-top"}
            extra = sorted(options.get(k, k) for k, v in kwargs.items()
                           if k not in ("n_jobs", "cache_dir") and v not in (None, "auto"))
            if extra:
                raise ParameterError(f"{', '.join(extra)} apply to one system of the fused directory {model_dir}: "
                                     f"add --system NAME (one of {', '.join(fused.inputs)})")
            return fused
        if p_target is not None:
            raise ParameterError("--p-target applies to the fused LLR; one --system's scores are not calibrated")
        one = fused.system(system)
        params = {**one.backend.params, **(kwargs.pop("backend_params", None) or {})}
        return SpeakerVerifier(one.model_dir, backend=one.backend_name, backend_params=params or None, **kwargs)
    if system is not None or p_target is not None:
        raise ParameterError(f"{'--system' if system is not None else '--p-target'} needs a fused model directory "
                             f"(built by 'speakerid train'); {model_dir} has no {FUSION_FILE}")
    return SpeakerVerifier(model_dir, backend=backend, **kwargs)
