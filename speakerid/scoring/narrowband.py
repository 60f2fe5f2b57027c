"""Narrowband routing of a fused system: telephone-band audio is scored by systems trained for that band.

``speakerid train`` at a wideband rate (16 kHz) also trains the same systems at 8 kHz into the model directory's
``narrowband/`` folder (a complete fused system of its own, calibrated on its own development trials). Every
speaker is enrolled in both. A trial goes to the narrowband systems when its test recording is narrowband, or
when the claimed speaker's enrollment was (the effective bandwidth measured from the signal,
:mod:`speakerid.features.bandwidth`, whatever the file's header says); otherwise to the wideband ones. Both give
calibrated LLRs, so the decision rule is the same. Without a ``narrowband/`` folder (a directory trained before,
or with ``--no-narrowband``) narrowband audio is scored by the wideband systems, with a
:class:`~speakerid.exceptions.BandwidthWarning`.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write
from speakerid._utils.lazy import lazy_import
from speakerid._utils.validation import resolve_jobs
from speakerid.exceptions import UnknownSpeakerError
from speakerid.features.bandwidth import effective_bandwidth_hz, is_narrowband

pd = lazy_import("pandas")

__all__ = ["NARROWBAND_DIR", "NARROWBAND_RATE", "file_bandwidth_hz", "bandwidths", "enrollment_band", "route_trials", "score_both",
           "read_scores", "write_merged"]

#: The narrowband systems' folder in a fused model directory.
NARROWBAND_DIR = "narrowband"
#: Their sample rate, Hz.
NARROWBAND_RATE = 8000
#: Speaker-header fields of the enrollment's bandwidth (in the first wideband system's speaker file).
BAND_FIELDS = ("bandwidth_hz", "narrowband")


def file_bandwidth_hz(path, sample_rate: int) -> float:
    """The effective bandwidth (Hz) of an audio file read at ``sample_rate``, at most half the file's own rate
    (AudioError for a bad file)."""
    import soundfile as sf

    from speakerid.data.audio import load_audio
    from speakerid.features.framing import remove_dc_offset

    signal, rate = load_audio(path, sample_rate=sample_rate)
    signal = remove_dc_offset(np.asarray(signal, dtype=np.float32), rate)
    if len(signal) < int(0.025 * rate):
        return 0.0
    try:
        native = sf.info(str(path)).samplerate
    except Exception:        # read through another path: the measure alone decides
        native = rate
    return min(effective_bandwidth_hz(signal, rate), native / 2.0)


def bandwidths(paths, sample_rate: int, n_jobs=1) -> dict:
    """``{path: Hz}`` of distinct files, on ``n_jobs`` threads; an unreadable file maps to None (its scoring
    reports it)."""
    from speakerid.exceptions import AudioError

    def measure(path):
        try:
            return file_bandwidth_hz(path, sample_rate)
        except AudioError:
            return None

    paths = list(dict.fromkeys(str(p) for p in paths))
    with ThreadPoolExecutor(resolve_jobs(n_jobs)) as pool:
        return dict(zip(paths, pool.map(measure, paths)))


def enrollment_band(paths, sample_rate: int) -> dict:
    """The header fields of an enrollment: the narrowest file's bandwidth, and whether any file is narrowband
    (then every trial of the speaker is scored by the narrowband systems)."""
    measured = [b for b in bandwidths(paths, sample_rate).values() if b is not None]
    low = min(measured) if measured else 0.0
    return {"bandwidth_hz": float(low), "narrowband": bool(measured) and is_narrowband(low)}


def route_trials(trials, narrowband_speakers, sample_rate: int, n_jobs=1, enrolled=None):
    """``(frame, routed)``: the trial list (CSV path or frame) with absolute ``path`` (``source`` keeps the text as
    written), ``line`` (as :class:`~speakerid.scoring.batch.TrialError` counts) and ``test_bandwidth_hz``, and the
    bool mask of the rows the narrowband systems score (a narrowband test, or a speaker enrolled on narrowband
    audio). ``enrolled`` (a collection of ids): a claimed speaker outside it is an UnknownSpeakerError naming the
    trial list, before any audio is read."""
    if isinstance(trials, pd.DataFrame):
        frame, root = trials.rename(columns=lambda c: str(c).strip()).copy(), Path.cwd()
        frame["line"] = frame.index if frame.index.name == "line" else range(len(frame))
    else:
        frame = pd.read_csv(trials, dtype=str, keep_default_na=False, skipinitialspace=True)
        frame, root = frame.rename(columns=lambda c: str(c).strip()), Path(trials).resolve().parent
        frame["line"] = np.arange(len(frame)) + 2         # the CSV's line numbers (header = 1)
    frame["speaker"] = frame["speaker"].astype(str).str.strip()
    frame["source"] = frame["path"].astype(str).str.strip()
    frame = frame[(frame["speaker"] != "") | (frame["source"] != "")].reset_index(drop=True)
    unknown = [] if enrolled is None else sorted(set(frame["speaker"]) - set(enrolled))
    if unknown:
        name = "the trial list" if isinstance(trials, pd.DataFrame) else str(trials)
        raise UnknownSpeakerError(f"{name}: {len(unknown)} claimed speaker(s) not enrolled: "
                                  f"{', '.join(unknown[:20])}{' ...' if len(unknown) > 20 else ''}; enrolled: "
                                  f"{', '.join(sorted(enrolled)[:5]) or 'nobody'}{' ...' if len(enrolled) > 5 else ''}")
    frame["path"] = [str(p if Path(p).is_absolute() else root / p) for p in frame["source"]]
    measured = bandwidths(frame["path"], sample_rate, n_jobs)
    frame["test_bandwidth_hz"] = frame["path"].map(measured)
    narrow_test = frame["test_bandwidth_hz"].map(lambda b: b is not None and is_narrowband(b)).to_numpy(bool)
    routed = narrow_test | frame["speaker"].isin(set(narrowband_speakers)).to_numpy()
    return frame, routed


def read_scores(path):
    """A score file as text (every cell a string, empty cells empty)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def write_merged(out: Path, frame, parts) -> None:
    """Write the scored groups of a routed trial list into one score file, in the trial list's order: the rows as
    written (``path`` as given), each group's score columns, and ``band``. ``parts`` holds
    ``(band, rows mask, result, score frame)`` per group, the score frame's rows in the order of its mask."""
    merged = None
    for band, rows, _, scores in parts:
        scores = scores.assign(path=frame.loc[rows, "source"].to_numpy(), band=band)
        scores.index = np.flatnonzero(rows)
        merged = scores if merged is None else pd.concat([merged, scores])
    merged = merged.sort_index()
    with atomic_write(out, "w") as fh:
        merged.to_csv(fh, index=False)


def score_both(fused, trials, out: Path, options: dict):
    """Batch scoring of a fused system with narrowband systems: route each trial (:func:`route_trials`), score
    the two groups with their systems, and write them back in the trial list's order with a ``band`` column."""
    frame, routed = route_trials(trials, fused.narrowband_speakers(), fused.feature_config.sample_rate,
                                 options.get("n_jobs", fused.n_jobs), enrolled=fused.speakers())
    parts = []
    with tempfile.TemporaryDirectory(prefix="fused-", dir=out.resolve().parent) as tmp:
        for band, rows, scorer in (("wideband", ~routed, fused), ("narrowband", routed, fused.narrowband)):
            if not rows.any():
                continue
            subset = Path(tmp) / f"{band}-trials.csv"
            frame.loc[rows].drop(columns=["source", "line", "test_bandwidth_hz"]).to_csv(subset, index=False)
            part = scorer._score_inputs(subset, Path(tmp) / f"{band}.csv", options)
            parts.append((band, rows, part, read_scores(Path(tmp) / f"{band}.csv")))
        write_merged(out, frame, parts)
    result = parts[0][2]
    lines = frame["line"].to_numpy()
    result.errors = sorted((type(e)(int(lines[np.flatnonzero(rows)[e.line - 2]]), e.file, e.reason)
                            for _, rows, part, _ in parts for e in part.errors), key=lambda e: e.line)
    result.n_trials = len(frame)
    result.normalization = "; ".join(f"{band} ({int(rows.sum())} trials): {part.normalization}"
                                     for band, rows, part, _ in parts)
    return result
