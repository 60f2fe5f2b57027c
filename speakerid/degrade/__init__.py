"""Degradations from real recordings: noise, music and babble at an SNR measured on the speech frames, real and
simulated room responses, telephone channels and codecs, gain and clipping; seeded, every choice recorded.

One module serves test conditions (``speakerid degrade``, the protocol builder of
:mod:`speakerid.evaluation.protocols`, the development suite ``bench/dev_suite.py``) and training augmentation.
The condition language and the sources are in :mod:`speakerid.degrade.conditions`.
"""

from speakerid.degrade.conditions import (
    KINDS,
    OUTPUT_COLUMNS,
    STEP_FORMS,
    Degraded,
    NoiseBank,
    Step,
    condition_text,
    degrade,
    degrade_manifest,
    needed_kinds,
    parse_condition,
)

__all__ = ["NoiseBank", "Step", "Degraded", "parse_condition", "condition_text", "needed_kinds", "degrade",
           "degrade_manifest", "KINDS", "STEP_FORMS", "OUTPUT_COLUMNS"]
