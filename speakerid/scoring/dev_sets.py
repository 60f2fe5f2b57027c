"""The development trials ``speakerid train`` learns its fusion on, and reports: cross-recording when it can.

When the background holds speakers with several recordings (:data:`MIN_DEV_RECORDINGS` or more), the held-out
development speakers are drawn among them and every target trial pairs an enrollment and a test from *different
recordings* (:func:`speakerid.evaluation.protocols.build_protocol`): enrollment on :data:`ENROLL_UTTS` recordings,
up to :data:`TESTS_PER_SPEAKER` other recordings as tests, in the conditions

``clean``  the whole test recording;
``short``  a 2-s crop of it;
``noisy``  the 2-s crop in pink noise at 5 dB SNR on its speech frames (``pink@5``, :mod:`speakerid.degrade`);
``tiny``   at 8 kHz or below only: a 0.5-s crop;
``telephone`` at 8 kHz or below, cross-recording only: the whole test through a telephone channel;
``real-noise``, ``reverb`` with a noise bank (``speakerid train --noise-csv``), cross-recording only: the whole
test in a real noise at 5 dB SNR, or through a real room.

Otherwise (each background speaker has one recording, as the shared LibriSpeech background) it falls back to the
halves of one recording (:func:`speakerid.data.dev_trials.build_dev_trials`), whose figures are optimistic: same
session, same channel; :func:`protocol_kind` says which was used, and ``speakerid train`` prints it.
"""

from __future__ import annotations

from pathlib import Path

from speakerid._utils.lazy import lazy_import
from speakerid.data.dev_trials import SHORT_S, TINY_S, build_dev_trials, conditions_for

pd = lazy_import("pandas")

__all__ = ["MIN_DEV_RECORDINGS", "multi_recording_speakers", "build_trials", "protocol_kind", "cross_conditions"]

#: Fewest recordings a speaker needs to be a cross-recording development speaker (enrollment + tests).
MIN_DEV_RECORDINGS = 4
ENROLL_UTTS = 3
TESTS_PER_SPEAKER = 6
#: What the report calls the two kinds of development trials.
KINDS = {"cross": "cross-recording: enrollment and test from different recordings",
         "halves": "halves of one recording per speaker: same session, optimistic"}


def multi_recording_speakers(frame) -> list:
    """The speakers of a ``speaker,path[,recording]`` frame with at least :data:`MIN_DEV_RECORDINGS` recordings
    (distinct ``recording`` values when the column is there, else distinct files)."""
    column = "recording" if "recording" in frame.columns else "path"
    counts = frame.groupby(frame["speaker"].astype(str))[column].nunique()
    return sorted(counts.index[counts >= MIN_DEV_RECORDINGS])


def protocol_kind(dev_frame) -> str:
    """``"cross"`` when every development speaker has :data:`MIN_DEV_RECORDINGS` recordings, else ``"halves"``."""
    speakers = set(dev_frame["speaker"].astype(str))
    return "cross" if speakers and speakers <= set(multi_recording_speakers(dev_frame)) else "halves"


def cross_conditions(sample_rate: int, bank: bool = False) -> tuple[str, ...]:
    """The cross-recording conditions at ``sample_rate``: :func:`~speakerid.data.dev_trials.conditions_for`, at
    8 kHz or below (the narrowband systems) ``telephone`` too: whole tests through a 300-3400 Hz, mu-law channel
    (:mod:`speakerid.degrade`), the audio those systems are for; with a noise bank (``bank``) ``real-noise``
    and ``reverb``: whole tests in a real noise at 5 dB, or through a real room (through the telephone channel
    too at 8 kHz), so that the calibration also learns real conditions."""
    return conditions_for(sample_rate) + (("telephone",) if sample_rate <= 8000 else ()) + (
        ("real-noise", "reverb") if bank else ())


def build_trials(dev_frame, out_dir, sample_rate: int, random_state: int = 0, usable=None, n_jobs: int = 1,
                 bank=None):
    """``({condition: (enroll_csv, trials_csv)}, kind)`` for the development speakers of ``dev_frame`` (absolute
    paths), cross-recording when :func:`protocol_kind` allows, else the halves of one recording. Both CSVs hold
    absolute paths; the enrollment is the same in every condition."""
    kind = protocol_kind(dev_frame)
    if kind == "halves":
        return build_dev_trials(dev_frame, out_dir, sample_rate, random_state, usable=usable), kind
    from speakerid.evaluation.protocols import build_protocol

    crops = {"clean": {}, "short": {"test_duration_s": SHORT_S},
             "noisy": {"test_duration_s": SHORT_S, "test_condition": "pink@5"}, "tiny": {"test_duration_s": TINY_S},
             "telephone": {"test_condition": "telephone"}, "real-noise": {"test_condition": "noise@5"},
             "reverb": {"test_condition": "reverb"}}
    if sample_rate <= 8000:
        for condition in ("real-noise", "reverb"):
            crops[condition] = {"test_condition": crops[condition]["test_condition"] + "+telephone"}
    out = {}
    for condition in cross_conditions(sample_rate, bank is not None):
        made = build_protocol(dev_frame[["speaker", "path"]], Path(out_dir) / condition, name=f"dev-{condition}",
                              enroll_utts=ENROLL_UTTS, tests_per_speaker=TESTS_PER_SPEAKER, sample_rate=sample_rate,
                              seed=random_state, n_jobs=n_jobs, bank=bank, **crops[condition])
        out[condition] = (_absolute(made.enroll_csv), _absolute(made.trials_csv))
    return out, kind


def _absolute(csv: Path) -> Path:
    """Rewrite a protocol CSV's ``path`` column as absolute paths (the fusion trainer reads the frames as they are)."""
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    frame["path"] = [str((csv.parent / p).resolve()) for p in frame["path"]]
    frame.to_csv(csv, index=False)
    return csv
