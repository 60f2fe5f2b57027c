"""Write a whole synthetic corpus: WAV files plus the enroll / trials / background manifests.

Every file is generated from its own random stream, keyed by (seed, speaker, utterance number), so a file does not
depend on how many others are generated or in which order, and the same seed always writes the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from speakerid._utils.files import atomic_write, atomic_write_bytes
from speakerid._utils.progress import progress
from speakerid._version import __version__
from speakerid.data.synth.profile import SpeakerProfile, _check_nonnegative_int, _stream_key, make_speaker
from speakerid.data.synth.session import (
    MAX_DURATION_S,
    MIN_DURATION_S,
    _check_range,
    _check_sample_rate,
    synthesize_session,
)
from speakerid.exceptions import ParameterError

__all__ = ["SynthCorpus", "make_corpus", "corpus_is_current", "SPEAKER_PREFIX", "BACKGROUND_PREFIX", "CORPUS_INFO"]

SPEAKER_PREFIX = "spk"
BACKGROUND_PREFIX = "bg"
_AUDIO_DIR = "wav"
_UTTERANCE_STREAM = 0x5E55  # keeps utterance streams apart from the speaker-profile streams
_TRIAL_STREAM = 0x7121
CORPUS_INFO = "corpus.json"  # what make_corpus wrote, with which parameters: lets an up-to-date corpus be reused
_INFO_FORMAT = "speakerid-synth-corpus"
_INFO_VERSION = 1
_MANIFESTS = ("enroll", "trials", "background", "utterances", "speakers")


@dataclass(frozen=True)
class SynthCorpus:
    """What :func:`make_corpus` wrote.

    Attributes
    ----------
    folder : pathlib.Path
        The corpus folder; manifest paths are relative to it.
    enroll_csv, trials_csv, background_csv : pathlib.Path
        ``speaker,path`` / ``speaker,path,target`` / ``speaker,path`` manifests.
    utterances_csv : pathlib.Path
        Every file with its set (enroll, test, background) and session settings (SNR, level, channel).
    speakers_csv : pathlib.Path
        Every speaker's voice parameters (F0 range, vocal-tract scale, ...).
    speakers, background_speakers : tuple of str
        Evaluated and background speaker ids (disjoint).
    profiles : dict of str to SpeakerProfile
        The voice of every speaker, evaluated and background.
    n_files, n_trials, n_target_trials : int
    total_duration_s : float
        Audio written, in seconds.
    sample_rate, seed : int
    reused : bool
        True when ``make_corpus(..., reuse=True)`` found the corpus up to date and wrote nothing.
    """

    folder: Path
    enroll_csv: Path
    trials_csv: Path
    background_csv: Path
    utterances_csv: Path
    speakers_csv: Path
    speakers: tuple
    background_speakers: tuple
    profiles: dict
    n_files: int
    n_trials: int
    n_target_trials: int
    total_duration_s: float
    sample_rate: int
    seed: int
    reused: bool = False


def _positive_int(value, name, minimum=1):
    value = _check_nonnegative_int(value, name)
    if value < minimum:
        raise ParameterError(f"{name} must be >= {minimum}, got {value}")
    return value


def make_corpus(out_dir, n_speakers: int = 30, n_utterances: int = 10, *, n_background: int | None = None,
                n_background_utterances: int = 5, enroll_per_speaker: int = 3, sample_rate: int = 16000,
                seed: int = 0, duration_s=(2.0, 4.0), snr_db=(5.0, 30.0), channel: bool = True,
                nontarget_per_test: int | None = None, show_progress: bool | None = None,
                reuse: bool = False) -> SynthCorpus:
    """Generate a speaker-verification corpus of synthetic voices into ``out_dir``.

    Evaluated speakers ``spk001 ..`` get ``n_utterances`` recordings each: the first ``enroll_per_speaker`` go to
    ``enroll.csv``, the rest are test utterances. ``trials.csv`` claims every evaluated speaker for every test
    utterance (``target`` 1 for the true speaker, else 0), or, with ``nontarget_per_test=k``, the true speaker plus
    ``k`` impostor claims drawn at random (seeded). Background speakers ``bg001 ..`` (for UBM training) are drawn
    from an independent random stream and never appear in enroll or trials. Each recording is its own session:
    its own content, channel, noise colour and SNR, and loudness.

    Files are ``wav/<speaker>/<speaker>_<nn>.wav`` (16-bit PCM), written atomically; the manifests hold paths
    relative to ``out_dir``, like ``../shared/protocols``. Existing files of the same names are replaced; other
    files in ``out_dir`` are left alone (the manifests define the corpus). ``corpus.json``, written last, records
    the parameters, the speakerid version and the manifests' checksums, so that ``reuse=True`` can skip the work
    when the folder already holds this very corpus (see :func:`corpus_is_current`).

    Parameters
    ----------
    out_dir : str or os.PathLike
        Created if missing.
    n_speakers : int
        Evaluated speakers (>= 2, so that there are impostor trials).
    n_utterances : int
        Recordings per evaluated speaker (> ``enroll_per_speaker``).
    n_background : int or None
        Background speakers; ``None`` means as many as ``n_speakers``, 0 writes a header-only ``background.csv``.
    n_background_utterances : int
        Recordings per background speaker.
    enroll_per_speaker : int
        Recordings per evaluated speaker used for enrollment.
    sample_rate : int
        8000 .. 48000 Hz.
    seed : int
        Same seed, same bytes.
    duration_s : float or (float, float)
        Recording length, or the range it is drawn from per recording (0.75 .. 60 s).
    snr_db : float or (float, float) or None
        SNR (range) of the additive noise; ``None`` for clean recordings.
    channel : bool
        Random channel per recording.
    nontarget_per_test : int or None
        Impostor claims per test utterance; ``None`` claims all other evaluated speakers.
    show_progress : bool or None
        Progress bar; ``None`` shows it when stderr is a terminal.
    reuse : bool
        When ``out_dir`` already holds a complete corpus made with the same parameters by the same speakerid
        version, write nothing and return it (with ``reused=True``).

    Returns
    -------
    SynthCorpus

    Examples
    --------
    >>> import tempfile
    >>> from speakerid.data.manifests import read_manifest
    >>> folder = tempfile.mkdtemp()
    >>> corpus = make_corpus(folder, n_speakers=2, n_utterances=2, n_background=1,
    ...                      n_background_utterances=1, enroll_per_speaker=1, duration_s=1.0)
    >>> corpus.speakers, corpus.background_speakers, corpus.n_files, corpus.n_trials, corpus.n_target_trials
    (('spk001', 'spk002'), ('bg001',), 5, 4, 2)
    >>> trials = read_manifest(corpus.trials_csv, require_target=True)
    >>> list(trials.columns), sorted(set(trials["target"]))
    (['speaker', 'path', 'target'], [0, 1])
    >>> again = make_corpus(folder, n_speakers=2, n_utterances=2, n_background=1,
    ...                     n_background_utterances=1, enroll_per_speaker=1, duration_s=1.0, reuse=True)
    >>> again.reused, again.n_files, again.profiles == corpus.profiles  # found up to date: nothing written
    (True, 5, True)
    """
    params = _corpus_parameters(n_speakers=n_speakers, n_utterances=n_utterances, n_background=n_background,
                                n_background_utterances=n_background_utterances,
                                enroll_per_speaker=enroll_per_speaker, sample_rate=sample_rate, seed=seed,
                                duration_s=duration_s, snr_db=snr_db, channel=channel,
                                nontarget_per_test=nontarget_per_test)
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise ParameterError(f"out_dir {str(folder)!r} exists and is not a folder")
    if reuse:
        existing = _current_corpus(folder, params)
        if existing is not None:
            return existing
    n_speakers, n_utterances, seed = params["n_speakers"], params["n_utterances"], params["seed"]
    enroll_per_speaker, sample_rate = params["enroll_per_speaker"], params["sample_rate"]
    duration_range = params["duration_s"]
    snr_range = params["snr_db"]
    channel = params["channel"]

    speakers, background = _profiles(params)

    # (profile, speaker index, utterance index, set name, relative path)
    jobs = []
    for group, prefix, count in ((speakers, SPEAKER_PREFIX, n_utterances),
                                 (background, BACKGROUND_PREFIX, params["n_background_utterances"])):
        for index, profile in enumerate(group):
            for utt in range(count):
                role = "background" if prefix == BACKGROUND_PREFIX else \
                    "enroll" if utt < enroll_per_speaker else "test"
                name = f"{_AUDIO_DIR}/{profile.speaker_id}/{profile.speaker_id}_{utt + 1:02d}.wav"
                jobs.append((profile, prefix, index, utt, role, name))

    folder.mkdir(parents=True, exist_ok=True)
    # The record goes first and comes back last: an interrupted run never looks like a finished corpus.
    (folder / CORPUS_INFO).unlink(missing_ok=True)
    rows = []
    for profile, prefix, index, utt, role, name in progress(jobs, total=len(jobs), desc="synthesizing",
                                                             unit="file", enabled=show_progress):
        rng = np.random.default_rng([seed, _stream_key(prefix), index, utt, _UTTERANCE_STREAM])
        length_s = float(rng.uniform(*duration_range))
        recording = synthesize_session(profile, rng, length_s, sample_rate, snr_db=snr_range, channel=channel)
        buffer = io.BytesIO()
        sf.write(buffer, recording.signal, sample_rate, subtype="PCM_16", format="WAV")
        atomic_write_bytes(folder / name, buffer.getvalue())
        ch = recording.channel
        rows.append({"speaker": profile.speaker_id, "path": name, "set": role,
                     "duration_s": round(recording.signal.size / sample_rate, 4),
                     "snr_db": "" if recording.snr_db is None else round(recording.snr_db, 2),
                     "level_dbfs": round(recording.level_dbfs, 2),
                     "highpass_hz": "" if ch is None else round(ch.highpass_hz, 1),
                     "lowpass_hz": "" if ch is None else round(ch.lowpass_hz, 1),
                     "tilt": "" if ch is None else round(ch.tilt, 3),
                     "eq": "" if ch is None else " ".join(f"{f:.0f}Hz:{g:+.1f}dB" for f, g, _ in ch.eq)})

    trials = _trials(rows, [p.speaker_id for p in speakers], params["nontarget_per_test"], seed)
    paths = _manifest_paths(folder)
    _write_csv(paths["enroll"], ["speaker", "path"], [r for r in rows if r["set"] == "enroll"])
    _write_csv(paths["trials"], ["speaker", "path", "target"], trials)
    _write_csv(paths["background"], ["speaker", "path"], [r for r in rows if r["set"] == "background"])
    _write_csv(paths["utterances"], list(rows[0]), rows)
    summaries = [dict(p.summary(), set="evaluated") for p in speakers] + \
                [dict(p.summary(), set="background") for p in background]
    columns = ["speaker", "set"] + [k for k in summaries[0] if k not in ("speaker_id", "set")]
    _write_csv(paths["speakers"], columns,
               [dict(s, speaker=s["speaker_id"]) for s in summaries], float_digits=4)
    counts = {"n_files": len(rows), "n_trials": len(trials), "n_target_trials": sum(t["target"] for t in trials),
              "total_duration_s": round(float(sum(r["duration_s"] for r in rows)), 4)}
    _write_info(folder, params, counts, paths)
    return _corpus(folder, params, speakers, background, counts)


def corpus_is_current(out_dir, n_speakers: int = 30, n_utterances: int = 10, **parameters) -> bool:
    """Whether ``out_dir`` holds a complete corpus that :func:`make_corpus` would write with these parameters.

    True when its ``corpus.json`` names the same parameters (after defaults and normalisation: ``duration_s=2``
    equals ``(2, 2)``) and the same speakerid version, the five manifests are there with the recorded
    checksums, and every audio file listed in ``utterances.csv`` exists. ``show_progress`` and ``reuse`` are
    accepted and ignored.

    Raises
    ------
    ParameterError
        The parameters themselves are invalid (as :func:`make_corpus` would say).

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> small = dict(n_speakers=2, n_utterances=2, n_background=0, enroll_per_speaker=1, duration_s=1.0)
    >>> corpus_is_current(folder, **small)
    False
    >>> _ = make_corpus(folder, **small)
    >>> corpus_is_current(folder, **small), corpus_is_current(folder, **dict(small, seed=1))
    (True, False)
    """
    parameters.pop("show_progress", None)
    parameters.pop("reuse", None)
    params = _corpus_parameters(n_speakers=n_speakers, n_utterances=n_utterances, **parameters)
    return _current_corpus(Path(out_dir), params) is not None


def _corpus_parameters(*, n_speakers=30, n_utterances=10, n_background=None, n_background_utterances=5,
                       enroll_per_speaker=3, sample_rate=16000, seed=0, duration_s=(2.0, 4.0),
                       snr_db=(5.0, 30.0), channel=True, nontarget_per_test=None) -> dict:
    """Check make_corpus's parameters and return them normalised, JSON-ready (lists for ranges)."""
    n_speakers = _positive_int(n_speakers, "n_speakers", 2)
    enroll_per_speaker = _positive_int(enroll_per_speaker, "enroll_per_speaker")
    n_utterances = _positive_int(n_utterances, "n_utterances")
    if n_utterances <= enroll_per_speaker:
        raise ParameterError(f"n_utterances ({n_utterances}) must exceed enroll_per_speaker "
                             f"({enroll_per_speaker}) so that every speaker has test utterances")
    n_background = n_speakers if n_background is None else _check_nonnegative_int(n_background, "n_background")
    n_background_utterances = _positive_int(n_background_utterances, "n_background_utterances")
    if nontarget_per_test is not None:
        nontarget_per_test = _positive_int(nontarget_per_test, "nontarget_per_test")
        if nontarget_per_test > n_speakers - 1:
            raise ParameterError(f"nontarget_per_test ({nontarget_per_test}) exceeds the {n_speakers - 1} "
                                 "other evaluated speakers")
    if not isinstance(channel, (bool, np.bool_)):
        raise ParameterError(f"channel must be True or False, got {channel!r}")
    snr_range = _check_range(snr_db, "snr_db", -20.0, 100.0, allow_none=True)
    return {"n_speakers": n_speakers, "n_utterances": n_utterances, "n_background": n_background,
            "n_background_utterances": n_background_utterances, "enroll_per_speaker": enroll_per_speaker,
            "sample_rate": _check_sample_rate(sample_rate), "seed": _check_nonnegative_int(seed, "seed"),
            "duration_s": list(_check_range(duration_s, "duration_s", MIN_DURATION_S, MAX_DURATION_S)),
            "snr_db": None if snr_range is None else list(snr_range), "channel": bool(channel),
            "nontarget_per_test": nontarget_per_test}


def _profiles(params):
    speakers = [make_speaker(i, seed=params["seed"], prefix=SPEAKER_PREFIX) for i in range(params["n_speakers"])]
    background = [make_speaker(i, seed=params["seed"], prefix=BACKGROUND_PREFIX)
                  for i in range(params["n_background"])]
    _check_disjoint(speakers, background)
    return speakers, background


def _manifest_paths(folder: Path) -> dict:
    return {name: folder / f"{name}.csv" for name in _MANIFESTS}


def _corpus(folder, params, speakers, background, counts, reused=False) -> SynthCorpus:
    paths = _manifest_paths(folder)
    return SynthCorpus(
        folder=folder, enroll_csv=paths["enroll"], trials_csv=paths["trials"],
        background_csv=paths["background"], utterances_csv=paths["utterances"], speakers_csv=paths["speakers"],
        speakers=tuple(p.speaker_id for p in speakers), background_speakers=tuple(p.speaker_id for p in background),
        profiles={p.speaker_id: p for p in speakers + background}, n_files=int(counts["n_files"]),
        n_trials=int(counts["n_trials"]), n_target_trials=int(counts["n_target_trials"]),
        total_duration_s=float(counts["total_duration_s"]), sample_rate=params["sample_rate"],
        seed=params["seed"], reused=reused)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_info(folder: Path, params: dict, counts: dict, paths: dict) -> None:
    info = {"format": _INFO_FORMAT, "format_version": _INFO_VERSION, "speakerid_version": __version__,
            "parameters": params, **counts,
            "manifests": {path.name: _sha256(path) for path in paths.values()}}
    with atomic_write(folder / CORPUS_INFO, "w") as handle:
        json.dump(info, handle, indent=2)
        handle.write("\n")


def _current_corpus(folder: Path, params: dict) -> SynthCorpus | None:
    """The corpus in ``folder`` if it is complete and was made with ``params`` by this version, else None."""
    try:
        info = json.loads((folder / CORPUS_INFO).read_text(encoding="utf-8"))
        if not isinstance(info, dict) or info.get("format") != _INFO_FORMAT \
                or info.get("format_version") != _INFO_VERSION or info.get("speakerid_version") != __version__ \
                or info.get("parameters") != params:
            return None
        paths = _manifest_paths(folder)
        recorded = info["manifests"]
        if set(recorded) != {path.name for path in paths.values()} \
                or any(_sha256(path) != recorded[path.name] for path in paths.values()):
            return None
        with open(paths["utterances"], newline="", encoding="utf-8") as handle:
            files = [row["path"] for row in csv.DictReader(handle)]
        if len(files) != info["n_files"] or not all(os.path.isfile(folder / name) for name in files):
            return None
        counts = {key: info[key] for key in ("n_files", "n_trials", "n_target_trials", "total_duration_s")}
    except (OSError, ValueError, KeyError, TypeError, csv.Error):
        return None  # missing, unreadable or foreign: not current
    speakers, background = _profiles(params)
    return _corpus(folder, params, speakers, background, counts, reused=True)


def _check_disjoint(speakers: list[SpeakerProfile], background: list[SpeakerProfile]) -> None:
    # Guaranteed by the separate prefixes and random streams; checked because the whole evaluation relies on it.
    shared_ids = {p.speaker_id for p in speakers} & {p.speaker_id for p in background}
    shared_voices = set(speakers) & set(background)
    if shared_ids or shared_voices:
        raise RuntimeError(f"background and evaluated speakers overlap: {sorted(shared_ids)}")


def _trials(rows, speaker_ids, nontarget_per_test, seed):
    """Claims for every test utterance, ordered by claimed speaker then file."""
    tests = [r for r in rows if r["set"] == "test"]
    rng = np.random.default_rng([seed, _TRIAL_STREAM])
    trials = []
    for row in tests:
        others = [s for s in speaker_ids if s != row["speaker"]]
        if nontarget_per_test is not None:
            others = [others[i] for i in sorted(rng.choice(len(others), nontarget_per_test, replace=False))]
        trials += [{"speaker": claim, "path": row["path"], "target": int(claim == row["speaker"])}
                   for claim in [row["speaker"], *others]]
    order = {s: i for i, s in enumerate(speaker_ids)}
    return sorted(trials, key=lambda t: (order[t["speaker"]], t["path"]))


def _write_csv(path: Path, columns, rows, float_digits: int | None = None) -> None:
    with atomic_write(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            values = [row[c] for c in columns]
            if float_digits is not None:
                values = [round(v, float_digits) if isinstance(v, float) else v for v in values]
            writer.writerow(values)
