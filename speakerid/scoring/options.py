"""The options of batch scoring, checked in one place: chunk size, score-normalisation method and cohort, claimed
speakers.

:func:`speakerid.scoring.batch.score_trials` calls these before reading any audio, so a bad option or an unknown
claimed speaker fails fast with a one-line error. The normalisation itself (methods, ``"auto"``, cohorts) is the
verifier's, :mod:`speakerid.backends._cohort`: batch scoring and ``verify`` share it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speakerid.backends._cohort import parse_norm, resolve_norm
from speakerid.evaluation.norm import AUTO_ENROLLED_MIN, ENROLLED, ENROLLED_COHORT_MAX, NORM_METHODS
from speakerid.exceptions import ParameterError, UnknownSpeakerError

__all__ = ["NORM_METHODS", "ENROLLED", "ENROLLED_COHORT_MAX", "AUTO_ENROLLED_MIN", "parse_norm", "check_options",
           "check_enrolled"]


def check_options(chunksize, norm, cohort, cohort_top, model_dir) -> tuple:
    """``(method, cohort, enrolled)`` of :func:`~speakerid.scoring.batch.score_trials`'s options, checked together
    (``norm="auto"`` resolved: S-norm when a cohort is given or the directory has ``cohort.csv``).

    Raises :class:`ParameterError` for a bad chunk size, an unknown method, a missing model directory, a cohort
    without a method or a method without a cohort.
    """
    if isinstance(chunksize, bool) or not isinstance(chunksize, (int, np.integer)) or chunksize < 1:
        raise ParameterError(f"chunksize must be a positive integer, got {chunksize!r}")
    parse_norm(norm)
    if not Path(model_dir).is_dir():
        raise ParameterError(f"{model_dir}: no such model directory")
    method, cohort, enrolled = resolve_norm(norm, cohort, model_dir)
    if cohort_top is not None and method is None:
        raise ParameterError("cohort_top is an option of cohort score normalisation: give a cohort too")
    return method, cohort, enrolled


def check_enrolled(verifier, claimed, source=None) -> None:
    """:class:`UnknownSpeakerError` listing every claimed speaker that is not enrolled (before any scoring);
    the message starts with ``source`` (the trial list) when given."""
    def enrolled(speaker):
        try:
            return verifier.store.has_speaker(speaker, verifier.backend_name)
        except ParameterError:  # not even a valid id
            return False

    unknown = [s for s in claimed if not enrolled(s)]
    if unknown:
        known = verifier.speakers()
        shown = f" ({', '.join(known[:5])}{' ...' if len(known) > 5 else ''})" if known else ""
        raise UnknownSpeakerError(
            f"{f'{source}: ' if source is not None else ''}"
            f"{len(unknown)} claimed speaker(s) not enrolled in {verifier.model_dir} (backend "
            f"{verifier.backend_name}): {', '.join(unknown[:20])}{' ...' if len(unknown) > 20 else ''}; "
            f"{len(known)} enrolled{shown}")
