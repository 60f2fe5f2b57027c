"""What ``speakerid train`` trains on: each system's front end, and the background files and degraded copies the
front end accepts (the others are left out with a note, never a failed run)."""

from __future__ import annotations

import json
from pathlib import Path

from speakerid.backends._training import REFUSED_FILE
from speakerid.exceptions import ParameterError
from speakerid.features.config import FeatureConfig

__all__ = ["REFUSED_FILE", "TELEPHONE_COHORT", "NARROWBAND_COHORT_TOP", "system_config", "front_ends",
           "usable_background", "usable_copies", "record_system_cohort", "cohort_top_for"]

#: The narrowband systems' cohort holds each cohort file twice: as it is, and through a telephone channel (these
#: codecs in turn) as a cohort speaker of its own (``<speaker>~telephone``), so that a telephone test meets
#: telephone impostors. On the development suite's telephone-8k trials, the narrowband GMM-UBM alone: EER 18.8 %
#: with the clean cohort, 11.7 % with the telephone copies, 11.5 % with both and AS-norm over the best 100.
TELEPHONE_COHORT = ("telephone:ulaw", "telephone:alaw", "telephone:gsm")
#: AS-norm of the narrowband systems: the best 100 cohort scores of each row (Matějka et al., Interspeech 2017).
NARROWBAND_COHORT_TOP = 100


def system_config(system: str, rate: int) -> FeatureConfig:
    """The front end a system is trained with at the model's rate (ParameterError for a rate it cannot use)."""
    try:
        if system == "siamese":
            from speakerid.models.clipvec import NEURAL_FEATURE_CONFIG
            return FeatureConfig.from_dict({**NEURAL_FEATURE_CONFIG.to_dict(), "sample_rate": rate})
        return FeatureConfig(sample_rate=rate)
    except ParameterError as exc:
        raise ParameterError(f"--sample-rate {rate}: {exc} (use 16000, or 8000 for telephone audio)") from None


def front_ends(systems, sample_rate: int) -> list:
    """The distinct front ends of ``systems`` at ``sample_rate``."""
    configs = (system_config(s, sample_rate) for s in systems)
    return list({json.dumps(c.to_dict(), sort_keys=True): c for c in configs}.values())


def usable_background(frame, systems, sample_rate: int, model_dir: Path, n_jobs: int, say):
    """The background rows every system's front end accepts; the others are listed in
    :data:`REFUSED_FILE` with the reason and left out (one silent file among thousands must not end a run)."""
    from speakerid.features.pipeline import refused_files

    refused = {}
    for config in front_ends(systems, sample_rate):
        refused.update(refused_files(frame["path"], config, n_jobs=n_jobs, desc="checking background audio"))
    (model_dir / REFUSED_FILE).unlink(missing_ok=True)
    if not refused:
        return frame
    listed = frame[frame["path"].isin(refused)][["speaker", "path"]].assign(reason=lambda f: f["path"].map(refused))
    listed.to_csv(model_dir / REFUSED_FILE, index=False)
    say(f"  {len(listed)} of {len(frame)} background files left out (no usable speech; see "
        f"{model_dir / REFUSED_FILE})")
    return frame[~frame["path"].isin(refused)].reset_index(drop=True)


def usable_copies(frame, systems, sample_rate: int, n_jobs: int, say):
    """Drop the degraded copies the front end refuses (a copy in 0-dB noise can hold no detectable speech)."""
    from speakerid.features.pipeline import refused_files

    copies = frame["path"] != frame["recording"]
    refused = set()
    for config in front_ends(systems, sample_rate):
        refused.update(refused_files(frame.loc[copies, "path"], config, n_jobs=n_jobs, desc="checking the copies"))
    if refused:
        say(f"  {len(refused)} of {int(copies.sum())} degraded copies left out (no usable speech left)")
    return frame[~frame["path"].isin(refused)].reset_index(drop=True)


def cohort_top_for(sample_rate: int, cohort_csv=None):
    """The fused system's AS-norm setting at ``sample_rate``: :data:`NARROWBAND_COHORT_TOP` at 8 kHz or below (its
    cohort has two conditions; at most the cohort's number of speakers and of files, ``cohort_csv``), else None (plain S-norm: a two-condition wideband cohort with AS-norm did not
    help on the development suite: noise-5 EER 11.3 -> 11.4 %, reverb 14.0 -> 14.6 %, clean 4.4 -> 4.0 %, GMM-UBM
    alone)."""
    if sample_rate > 8000:
        return None
    if cohort_csv is None:
        return NARROWBAND_COHORT_TOP
    import pandas as pd

    cohort = pd.read_csv(cohort_csv, dtype=str, keep_default_na=False)
    return int(min(NARROWBAND_COHORT_TOP, cohort["speaker"].nunique(), len(cohort)))


def record_system_cohort(store, frame, sample_rate: int, random_state: int = 0):
    """Write a system's S-norm cohort: a seeded draw of the training speakers' original files
    (:func:`~speakerid.backends._training.record_cohort`), at 8 kHz or below with their telephone copies too
    (:data:`TELEPHONE_COHORT`; the copies are made when the cohort is prepared, not stored)."""
    import pandas as pd

    from speakerid.backends._training import DEFAULT_COHORT_SPEAKERS, record_cohort

    csv = record_cohort(store, frame, DEFAULT_COHORT_SPEAKERS, random_state)
    if sample_rate > 8000:
        return csv
    clean = pd.read_csv(csv, dtype=str, keep_default_na=False)
    telephone = clean.assign(speaker=clean["speaker"] + "~telephone")
    conditions = [""] * len(clean) + [TELEPHONE_COHORT[i % len(TELEPHONE_COHORT)] for i in range(len(clean))]
    both = pd.concat([clean, telephone], ignore_index=True)
    return store.save_cohort(both["speaker"], both["path"], conditions)
