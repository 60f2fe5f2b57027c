"""Multi-condition training data for ``speakerid train``: degraded copies of the background from real recordings.

Kaldi's x-vector recipe (Snyder et al., "X-vectors: robust DNN embeddings for speaker recognition", ICASSP 2018)
adds to every training utterance copies in real noise, music, babble and rooms (MUSAN and RIR recordings); a
classical GMM-UBM / i-vector / PLDA system gains from the same data: the UBM covers noisy frames, the total
variability and PLDA within-speaker matrices learn what a channel or a noise does to one speaker. Here each training
file gets ``copies`` degraded copies, each with a condition drawn (seeded, per file) from :data:`CONDITIONS`,
made by :func:`speakerid.degrade.degrade_manifest` with a :class:`~speakerid.degrade.NoiseBank` (``noise.csv``);
babble talkers are the bank's speech recordings plus the background's own files (other speakers). A copy is
another file of the same speaker and the same recording (``recording`` column), never a separate session.

The narrowband systems (8 kHz) get the same conditions followed by a telephone channel (a codec in turn), and
plain telephone copies: the audio they are for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speakerid._utils.lazy import lazy_import
from speakerid.exceptions import ParameterError

pd = lazy_import("pandas")

__all__ = ["CONDITIONS", "NARROWBAND_CONDITIONS", "augmented_background", "load_bank"]

#: Wideband copies: real noise at 0-15 dB, music at 5-15 dB, babble at 13-20 dB (Kaldi's ranges), real and
#: simulated rooms, and a room with noise.
CONDITIONS = ("noise@0", "noise@5", "noise@10", "noise@15", "music@5", "music@10", "music@15", "babble@13",
              "babble@17", "babble@20", "reverb", "reverb-sim", "reverb+noise@10")
_CODECS = ("ulaw", "alaw", "gsm")
#: Narrowband copies: each wideband condition then a telephone channel (codecs in turn), and telephone alone.
NARROWBAND_CONDITIONS = tuple(f"{c}+telephone:{_CODECS[i % 3]}" for i, c in enumerate(CONDITIONS)) + tuple(
    f"telephone:{codec}" for codec in _CODECS)


def load_bank(noise_csv, background_paths=()):
    """The :class:`~speakerid.degrade.NoiseBank` of ``noise_csv`` with the background files as extra babble talkers;
    :class:`ParameterError` when it lacks a kind :data:`CONDITIONS` needs."""
    from speakerid.degrade import NoiseBank

    bank = NoiseBank.from_csv(noise_csv).with_babble_sources(background_paths)
    empty = [kind for kind in ("noise", "music", "rir") if not bank.kinds[kind]]
    if empty:
        raise ParameterError(f"{noise_csv}: the augmentation needs noise, music and rir recordings (speech too, or "
                             f"the background's files are the babble talkers); it lists no {', '.join(empty)}")
    return bank


def augmented_background(frame, out_dir, bank, *, copies: int = 1, narrowband: bool = False, seed: int = 0,
                         n_jobs: int = 1, say=None):
    """``frame`` (``speaker,path[,recording]``) with ``copies`` degraded copies of every file appended.

    Parameters
    ----------
    frame : pandas.DataFrame
        Absolute paths.
    out_dir : path
        Receives the copies (one folder per condition) and their manifests.
    bank : NoiseBank
        From :func:`load_bank`.
    copies : int
        Copies per file (0: the frame as it is).
    narrowband : bool
        Draw from :data:`NARROWBAND_CONDITIONS` instead of :data:`CONDITIONS`.
    seed : int
        Seeds the draw of conditions and every degradation.

    Returns
    -------
    pandas.DataFrame
        ``speaker,path,recording``: the original rows (``recording`` kept, else the file itself) then the copies
        (``recording`` = their source's). Files the degradation cannot use (too short, silent) are left out of the
        copies, as :func:`~speakerid.degrade.degrade_manifest` with ``skip_errors`` lists them.
    """
    from speakerid.degrade import degrade_manifest

    say = say or (lambda text: None)
    if isinstance(copies, bool) or int(copies) < 0:
        raise ParameterError(f"copies must be a non-negative integer, got {copies!r}")
    base = frame[["speaker", "path"]].copy()
    base["recording"] = frame["recording"] if "recording" in frame.columns else frame["path"]
    if int(copies) == 0:
        return base
    conditions = NARROWBAND_CONDITIONS if narrowband else CONDITIONS
    rng = np.random.default_rng([int(seed), 24])
    parts = [base]
    for copy in range(int(copies)):
        drawn = rng.integers(len(conditions), size=len(base))
        for index, condition in enumerate(conditions):
            rows = base[drawn == index]
            if rows.empty:
                continue
            folder = Path(out_dir) / f"copy{copy}-{index:02d}"
            made = pd.read_csv(degrade_manifest(rows[["speaker", "path"]], folder, condition, bank=bank,
                                                seed=int(seed) * 1000 + copy, n_jobs=n_jobs, skip_errors=True),
                               dtype=str, keep_default_na=False)
            recording = dict(zip(rows["path"], rows["recording"]))
            parts.append(pd.DataFrame({"speaker": made["speaker"], "path": [str(folder / p) for p in made["path"]],
                                       "recording": made["source"].map(recording)}))
        say(f"  {len(base)} degraded cop{'y' if copies == 1 else 'ies'} of the training files ({copy + 1}/{copies})")
    return pd.concat(parts, ignore_index=True)
