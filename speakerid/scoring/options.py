"""The options of batch scoring, checked in one place: score-normalization methods, cohorts, claimed speakers.

:func:`speakerid.scoring.batch.score_trials` calls these before reading any audio, so a bad option or an unknown
claimed speaker fails fast with a one-line error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speakerid.exceptions import ParameterError, UnknownSpeakerError
from speakerid.store import COHORT_FILE

__all__ = ["NORM_METHODS", "ENROLLED", "ENROLLED_COHORT_MAX", "AUTO_ENROLLED_MIN", "parse_norm", "check_options",
           "enrolled_cohort", "check_enrolled"]

#: Cohort normalisations accepted by ``norm=`` (each may be followed by ``+enrolled``).
NORM_METHODS = ("znorm", "tnorm", "ztnorm", "snorm")
#: ``norm`` suffix (or whole value) for T-norm over the other enrolled speakers, see :func:`score_trials`.
ENROLLED = "enrolled"
#: At most this many enrolled speakers (a seeded draw) form the enrolled cohort.
ENROLLED_COHORT_MAX = 200
#: ``norm="auto"`` adds the enrolled-speaker T-norm when at least this many speakers are enrolled.
AUTO_ENROLLED_MIN = 6


def parse_norm(norm) -> tuple:
    """``(method, enrolled)`` of a ``norm`` value: method None/"auto"/a cohort method; enrolled True/False/"auto".

    >>> parse_norm("snorm+enrolled"), parse_norm("enrolled"), parse_norm("auto"), parse_norm(None)
    (('snorm', True), (None, True), ('auto', 'auto'), (None, False))
    """
    if norm is None or norm == "none":
        return None, False
    if norm == "auto":
        return "auto", "auto"
    if norm == ENROLLED:
        return None, True
    method, plus, suffix = norm.partition("+") if isinstance(norm, str) else (norm, "", "")
    if method in NORM_METHODS and (not plus or suffix == ENROLLED):
        return method, bool(plus)
    raise ParameterError(f"unknown score normalisation {norm!r}; choose auto, none, {ENROLLED}, one of "
                         f"{', '.join(NORM_METHODS)}, or one of those followed by +{ENROLLED}")


def check_options(chunksize, norm, cohort, cohort_top, model_dir) -> tuple:
    """``(norm, cohort, enrolled)`` of :func:`~speakerid.scoring.batch.score_trials`'s options, checked together.

    ``norm="auto"`` is resolved here: S-norm when a cohort is given or the directory has ``cohort.csv``.
    Raises :class:`ParameterError` for a bad chunk size, an unknown method, a missing model directory, a cohort
    without a method or a method without a cohort.
    """
    if isinstance(chunksize, bool) or not isinstance(chunksize, (int, np.integer)) or chunksize < 1:
        raise ParameterError(f"chunksize must be a positive integer, got {chunksize!r}")
    norm, enrolled = parse_norm(norm)
    if not Path(model_dir).is_dir():
        raise ParameterError(f"{model_dir}: no such model directory")
    own = Path(model_dir) / COHORT_FILE
    if norm == "auto":
        norm = "snorm" if cohort is not None or own.is_file() else None
    if norm is None and cohort is not None:
        raise ParameterError("a cohort was given but no cohort normalisation: drop the cohort or choose "
                             f"one of {', '.join(NORM_METHODS)}")
    if norm is not None and cohort is None:
        if not own.is_file():
            raise ParameterError(f"score normalisation {norm!r} needs a cohort manifest: give one, or train the "
                                 f"UBM from a manifest so that {own} is written")
        cohort = own
    if cohort_top is not None and norm is None:
        raise ParameterError("cohort_top is an option of cohort score normalisation: give a cohort too")
    return norm, cohort, enrolled


def enrolled_cohort(verifier, enrolled) -> tuple | None:
    """The enrolled speakers T-norm uses (``enrolled`` True or "auto"), or None."""
    if not enrolled:
        return None
    speakers = sorted(verifier.speakers())
    if enrolled == "auto" and len(speakers) < AUTO_ENROLLED_MIN:
        return None
    if len(speakers) < 3:
        raise ParameterError(f"T-norm over the enrolled speakers needs at least 3 enrolled speakers (the claimed "
                             f"one is left out of its cohort); {verifier.model_dir} has {len(speakers)}")
    if len(speakers) > ENROLLED_COHORT_MAX:   # a seeded draw: the same cohort for every run on these models
        keep = np.random.default_rng(0).choice(len(speakers), ENROLLED_COHORT_MAX, replace=False)
        speakers = [speakers[i] for i in sorted(keep)]
    return tuple(speakers)


def check_enrolled(verifier, claimed) -> None:
    """:class:`UnknownSpeakerError` listing every claimed speaker that is not enrolled (before any scoring)."""
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
            f"{len(unknown)} claimed speaker(s) not enrolled in {verifier.model_dir} (backend "
            f"{verifier.backend_name}): {', '.join(unknown[:20])}{' ...' if len(unknown) > 20 else ''}; "
            f"{len(known)} enrolled{shown}")
