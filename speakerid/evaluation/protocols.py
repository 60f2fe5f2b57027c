"""Evaluation protocols from labelled recordings: enrollment models, target, non-target and cross-corpus impostor
trials, optionally on crops and degraded audio, written as manifests (and PCM-16 WAVs) that ``speakerid score``
reads.

The rule of every protocol here is that of the NIST SRE evaluation plans and of the VoxCeleb test lists:
enrollment and test come from **different sessions**. A *recording* (a session, a video, a conversation side: the
optional ``recording`` column; by default each file is its own) never gives both a model's enrollment and a test
scored against that model, so a shared channel or shared content cannot pass for the voice.
"""

from __future__ import annotations

import csv
import math
import os
import unicodedata
import zlib
from collections import namedtuple
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write
from speakerid._utils.lazy import lazy_import
from speakerid._utils.validation import resolve_jobs, shorten
from speakerid.data import manifests
from speakerid.data.audio import _open_info
from speakerid.data.dev_trials import _safe as _safe_name
from speakerid.data.layouts import _written_path, read_speaker_list
from speakerid.evaluation._protocol_audio import _enroll_task, _json, _run, _tests_task
from speakerid.exceptions import ManifestError, ParameterError

pd = lazy_import("pandas")

__all__ = ["build_protocol", "Protocol", "MIN_TEST_SPEECH_S", "ENROLL_COLUMNS", "TRIAL_COLUMNS"]

#: Fewest seconds of detected speech (energy VAD, :func:`speakerid.features.speech.measure_speech`) a test crop
#: needs, capped at half the crop; crops that fall in a pause are drawn again a few times.
MIN_TEST_SPEECH_S = 0.5
#: A cropped last enrollment piece shorter than this is left out (shorter than one analysis frame).
MIN_CROP_S = 0.025
ENROLL_COLUMNS = ("speaker", "path", "enroll_speaker", "source")
TRIAL_COLUMNS = ("speaker", "path", "target", "enroll_speaker", "test_speaker", "source", "condition")
_NONTARGET = 2   # the random stream of a test's non-target claims: [seed, crc32(key), _NONTARGET]

#: A recording as an enrollment candidate: the one piece (file) of it that is used, and its length (s).
_Unit = namedtuple("_Unit", "recording path key seconds")
#: What every audio task needs (pickled to worker processes).
_Job = namedtuple("_Job", "out audio seed sample_rate test_duration_s min_speech_s enroll_condition test_condition "
                          "bank")


@dataclass(frozen=True)
class Protocol:
    """What :func:`build_protocol` wrote.

    Attributes
    ----------
    enroll_csv, trials_csv : pathlib.Path
        ``{name}-enroll.csv`` (:data:`ENROLL_COLUMNS`, plus ``record`` with an enrollment condition) and
        ``{name}-trials.csv`` (:data:`TRIAL_COLUMNS`, plus ``record`` with a test condition).
    n_speakers, n_models : int
        Enrolled speakers and enrollment models (``n_enroll_sets`` per speaker).
    n_target, n_nontarget, n_impostor_trials : int
        Trials with ``target`` 1 and 0; ``n_nontarget`` includes the ``n_impostor_trials`` of the impostors.
    skipped : dict of str to tuple of str
        Reason -> speakers left out (too few recordings or seconds, no usable test file).
    excluded : list of str
        Speakers removed by ``exclude`` (training speakers).
    skipped_files : dict of str to tuple of str
        Reason -> test files (paths relative to their manifest) left out: shorter than the crop, no speech in it.
    """

    enroll_csv: Path
    trials_csv: Path
    n_speakers: int
    n_models: int
    n_target: int
    n_nontarget: int
    n_impostor_trials: int
    skipped: dict
    excluded: list
    skipped_files: dict = field(default_factory=dict)


def build_protocol(manifest, out_dir, *, name="protocol", enroll_utts=3, enroll_seconds=None, n_enroll_sets=1,
                   test_duration_s=None, tests_per_speaker=None, nontarget_per_test=None, impostors=None,
                   impostors_per_test=None, exclude=None, speakers=None, enroll_condition=None, test_condition=None,
                   bank=None, sample_rate=None, min_test_speech_s=MIN_TEST_SPEECH_S, seed=0, n_jobs=1) -> Protocol:
    """Write a speaker-verification protocol: per speaker ``n_enroll_sets`` enrollment models and trials against
    tests from *other* recordings (NIST SRE / VoxCeleb: enrollment and test sessions are separate).

    Each speaker's recordings are shuffled by a generator seeded with ``seed`` and the speaker id; a recording
    enters an enrollment through one (seeded) piece of it. Enrollment sets take recordings in that order, disjoint
    while at least one recording is left for the tests, else from all but the last recording, cycling (so they
    overlap as little as they can). The tests are the pieces of the recordings no set of their speaker uses; a
    target trial pairs a model with a test of its speaker whose recording is not in the model's enrollment, a
    non-target trial a test with another speaker's model. Same inputs and seed write byte-identical CSVs and WAVs,
    whatever ``n_jobs``; rows are sorted by model, target trials first, then condition and path.

    Parameters
    ----------
    manifest : str, os.PathLike or pandas.DataFrame
        ``speaker,path[,recording]`` CSV (paths relative to its folder) or frame (absolute paths). Files with the
        same ``recording`` (per speaker) are pieces of one session; without the column each file is its own.
    out_dir : str or os.PathLike
        Receives ``{name}-enroll.csv``, ``{name}-trials.csv`` (paths relative to ``out_dir``) and ``{name}-audio/``.
    name : str
        File-name prefix.
    enroll_utts : int
        Recordings per enrollment model (>= 1); a speaker needs ``enroll_utts + 1`` recordings.
    enroll_seconds : float, optional
        Instead: recordings are added until this much audio (s), the last one cropped (from its start; left out
        when under :data:`MIN_CROP_S`) and written as a WAV.
    n_enroll_sets : int
        Models per speaker; ids are the speaker id for 1, else ``f"{speaker}_e{k}"``, k = 1 .. n_enroll_sets.
    test_duration_s : float, optional
        Each test is a crop of this many seconds at a seeded offset, with sound and at least
        ``min(min_test_speech_s, test_duration_s / 2)`` s of speech, written as a PCM-16 WAV; shorter files are
        skipped (``Protocol.skipped_files``). Default: the file itself is the test.
    tests_per_speaker : int, optional
        At most this many tests per speaker (a seeded choice).
    nontarget_per_test : int, optional
        Models of other speakers each test is tried against (a seeded choice; default all).
    impostors : str, os.PathLike or pandas.DataFrame, optional
        A manifest of other speakers (another corpus or condition): each file is a non-target test against every
        model (or ``impostors_per_test`` of them), cropped and degraded as the tests; its trials' ``condition`` is
        ``"impostors:<test condition>"``.
    impostors_per_test : int, optional
    exclude : str, os.PathLike, pandas.DataFrame or iterable of str, optional
        Training speakers (a manifest, a text list of ids, or the ids): removed, so the protocol is
        speaker-disjoint from training (``Protocol.excluded``).
    speakers : iterable of str, optional
        Only these speakers (each must be in the manifest).
    enroll_condition, test_condition : str, optional
        :mod:`speakerid.degrade` conditions (``"noise@5+reverb"``) applied to the (cropped) enrollment / test
        audio with the generator ``[seed, crc32(path relative to its manifest)]``; the audio is written as a WAV
        and the record kept as JSON in a ``record`` column. The trials' ``condition`` is the test condition's
        canonical text, ``"clean"`` without one.
    bank : speakerid.degrade.NoiseBank, optional
        Recordings for the conditions that need them.
    sample_rate : int, optional
        Rate (Hz) of the audio written; default each file's own.
    min_test_speech_s : float
    seed : int
        In [0, 2**32).
    n_jobs : int
        Workers reading and writing audio (-1: every core).

    Returns
    -------
    Protocol

    Raises
    ------
    ParameterError
        A bad argument or condition, or fewer than 2 speakers left to evaluate (1 with impostors).
    ManifestError
        A bad manifest (missing columns, unknown files, a file listed twice, an empty ``recording``), or impostor
        speakers that are also evaluated speakers.
    AudioError
        An audio file that must be read cannot be.
    """
    _check_arguments(name, enroll_utts, enroll_seconds, n_enroll_sets, test_duration_s, tests_per_speaker,
                     nontarget_per_test, impostors_per_test, sample_rate, min_test_speech_s, seed)
    n_jobs, seed = resolve_jobs(n_jobs), int(seed)
    label = _check_conditions(bank, enroll_condition=enroll_condition, test_condition=test_condition)
    files = _read_files(manifest, "manifest", for_enrollment=True)
    found = sorted(files["speaker"].unique())
    excluded = sorted(set(found) & _speaker_set(exclude)) if exclude is not None else []
    if speakers is not None:
        wanted = {unicodedata.normalize("NFC", str(s)) for s in ([speakers] if isinstance(speakers, str) else speakers)}
        if wanted - set(found):
            raise ParameterError(f"speakers not in the manifest: {shorten(sorted(wanted - set(found)))}")
        found = sorted(wanted)
    candidates = [s for s in found if s not in excluded]
    others = _read_files(impostors, "impostors") if impostors is not None else None
    overlap = sorted(set(others["speaker"]) & set(candidates)) if others is not None else []
    if overlap:
        raise ManifestError(f"{len(overlap)} impostor speaker(s) are also evaluated speakers ({shorten(overlap)}); "
                            "impostors must be other speakers (or exclude them)", _where(impostors, "impostors"))

    job = _Job(Path(out_dir).resolve(), f"{name}-audio", seed, sample_rate, test_duration_s,
               min(float(min_test_speech_s), test_duration_s / 2 if test_duration_s else math.inf),
               enroll_condition, test_condition, bank)
    plans = {speaker: _plan_speaker(part, speaker, seed, enroll_utts, enroll_seconds, n_enroll_sets,
                                    tests_per_speaker)
             for speaker, part in files[files["speaker"].isin(candidates)].groupby("speaker", sort=True)}
    too_few = f"fewer than {enroll_utts + 1} recordings" if enroll_seconds is None else \
        f"under {enroll_seconds:g} s to enroll besides a test recording"
    skipped = {too_few: [s for s, plan in plans.items() if plan is None], "no usable test file": []}
    plans = {s: plan for s, plan in plans.items() if plan is not None}

    tasks = [("test", s, plan[1], tests_per_speaker) for s, plan in plans.items()]
    if others is not None:
        tasks += [("impostors", s, list(zip(part["path"], part["key"], part["recording"])), None)
                  for s, part in others.groupby("speaker", sort=True)]
    audio = (test_duration_s, test_condition, enroll_condition, enroll_seconds) != (None,) * 4
    tests, skipped_files = {}, {}
    for (role, speaker, _, _), (kept, dropped) in zip(tasks, _run(_tests_task, job, tasks, n_jobs, audio)):
        tests[role, speaker] = kept
        for reason, keys in dropped.items():
            skipped_files.setdefault(reason, []).extend(keys)
    for speaker in [s for s in plans if not tests["test", s]]:
        skipped["no usable test file"].append(speaker)
        del plans[speaker], tests["test", speaker]
    if len(plans) < (1 if others is not None else 2):
        why = "; ".join(f"{len(v)} {reason}" for reason, v in skipped.items() if v)
        files_why = "; ".join(f"{len(v)} test file(s): {reason}" for reason, v in skipped_files.items())
        raise ParameterError(f"{len(plans)} speaker(s) left to evaluate ({len(set(files['speaker']))} in the "
                             f"manifest, {len(excluded)} excluded, {sum(map(len, skipped.values()))} skipped"
                             f"{': ' + why if why else ''}{'; ' + files_why if files_why else ''}); need "
                             f"at least {1 if others is not None else 2} for non-target trials")

    models, enroll_tasks = {}, []    # model id -> (speaker, its enrollment recordings)
    for speaker, (sets, _) in plans.items():
        for k, chosen in enumerate(sets, 1):
            model = manifests.validate_speaker_id(speaker if n_enroll_sets == 1 else f"{speaker}_e{k}")
            models[model] = (speaker, {unit.recording for unit, _ in chosen})
            enroll_tasks.append((model, speaker, chosen))
    enroll_rows = [row for rows in _run(_enroll_task, job, enroll_tasks, n_jobs, audio) for row in rows]
    trial_rows, n_impostor = _trials(models, tests, nontarget_per_test, impostors_per_test, job, label)
    record = ("record",) if enroll_condition is not None else ()
    enroll_csv = _write_csv(job.out / f"{name}-enroll.csv", ENROLL_COLUMNS + record, enroll_rows, (1, 3))
    record = ("record",) if test_condition is not None else ()
    trials_csv = _write_csv(job.out / f"{name}-trials.csv", TRIAL_COLUMNS + record, trial_rows, (1, 5))
    n_target = sum(row[2] for row in trial_rows)
    return Protocol(enroll_csv, trials_csv, len(plans), len(models), n_target, len(trial_rows) - n_target,
                    n_impostor, {r: tuple(sorted(s)) for r, s in skipped.items() if s}, excluded,
                    {r: tuple(sorted(k)) for r, k in skipped_files.items()})


def _check_arguments(name, enroll_utts, enroll_seconds, n_enroll_sets, test_duration_s, tests_per_speaker,
                     nontarget_per_test, impostors_per_test, sample_rate, min_test_speech_s, seed) -> None:
    if not isinstance(name, str) or not name or name != _safe_name(name) or name.startswith("."):
        raise ParameterError(f"name must be a file-name prefix of letters, digits, '-', '_' or '.', got {name!r}")
    if enroll_utts is None or n_enroll_sets is None or min_test_speech_s is None:
        raise ParameterError("enroll_utts, n_enroll_sets and min_test_speech_s must not be None")
    for label, value, low in (("enroll_utts", enroll_utts, 1), ("n_enroll_sets", n_enroll_sets, 1),
                              ("tests_per_speaker", tests_per_speaker, 1), ("nontarget_per_test", nontarget_per_test, 0),
                              ("impostors_per_test", impostors_per_test, 1), ("sample_rate", sample_rate, 4000)):
        if value is not None and (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))
                                  or value < low):
            raise ParameterError(f"{label} must be a whole number >= {low}, got {value!r}")
    for label, value, low in (("enroll_seconds", enroll_seconds, MIN_CROP_S), ("test_duration_s", test_duration_s,
                              MIN_CROP_S), ("min_test_speech_s", min_test_speech_s, 0.0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, np.number))
                                  or not math.isfinite(value) or value < low):
            raise ParameterError(f"{label} must be a finite number of seconds >= {low:g}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ParameterError(f"seed must be a whole number in [0, 2**32), got {seed!r}")


def _check_conditions(bank, **conditions) -> str:
    """Check the conditions before any audio is written; the test condition's canonical text (or "clean")."""
    if all(condition is None for condition in conditions.values()):
        return "clean"
    from speakerid.degrade import NoiseBank, condition_text, needed_kinds

    for label, condition in conditions.items():
        try:
            needed = needed_kinds(condition) if condition is not None else ()
        except ParameterError as exc:
            raise ParameterError(f"{label}: {exc}") from None
        missing = [kind for kind in needed if not isinstance(bank, NoiseBank) or not bank.kinds[kind]]
        if missing:
            raise ParameterError(f"{label} {condition_text(condition)!r} needs {' and '.join(missing)} recordings: "
                                 "give bank=NoiseBank.from_csv('noise.csv') with them")
    test = conditions["test_condition"]
    return "clean" if test is None else condition_text(test)


def _where(source, what) -> str:
    return str(source) if isinstance(source, (str, os.PathLike)) else f"<{what} frame>"


def _read_files(source, what: str, for_enrollment: bool = False):
    """``speaker, path`` (absolute), ``key`` (path relative to the manifest's folder, or to the frame's common
    folder) and ``recording`` of every file of a manifest, sorted by key; the errors name the manifest."""
    where = _where(source, what)
    if isinstance(source, (str, os.PathLike)):
        frame = manifests.read_manifest(source, for_enrollment=for_enrollment)
        base = str(Path(source).resolve().parent)
    elif isinstance(source, pd.DataFrame):
        manifests.check_manifest_columns(source.columns, where)
        relative = [p for p in source["path"].astype(str).str.strip() if p and not os.path.isabs(p)]
        if relative:
            raise ManifestError(f"a manifest frame needs absolute paths, got {shorten(relative, 3)}", where)
        frame = manifests._clean_manifest(source.astype(str), Path(where), require_target=False, check_files=True,
                                          first_line=0, for_enrollment=for_enrollment)
        if frame.empty:
            raise ManifestError("no rows", where)
        base = os.path.commonpath([os.path.dirname(p) for p in frame["path"]])
    else:
        raise ParameterError(f"{what} must be a CSV manifest path or a pandas DataFrame, got {type(source).__name__}")
    repeated = frame.index[frame["path"].duplicated()]
    if len(repeated):
        raise ManifestError(f"line(s) {shorten(repeated)} repeat a file listed earlier (a file belongs to one "
                            "speaker, once)", where)
    frame = frame.assign(key=[Path(os.path.relpath(p, base)).as_posix() for p in frame["path"]])
    frame["recording"] = frame["recording"].astype(str).str.strip() if "recording" in frame else frame["key"]
    if (frame["recording"] == "").any():
        raise ManifestError(f"empty recording on line(s) {shorten(frame.index[frame['recording'] == ''])}", where)
    return frame.sort_values("key", kind="stable")[["speaker", "path", "key", "recording"]]


def _speaker_set(exclude) -> set:
    if isinstance(exclude, pd.DataFrame):
        manifests.check_manifest_columns(exclude.columns, "<exclude frame>")
        exclude = exclude["speaker"].astype(str)
    elif isinstance(exclude, (str, os.PathLike)) and not os.path.exists(exclude):
        raise ManifestError("no such training manifest or speaker list (in Python, give ids as a list)", exclude)
    try:
        return {unicodedata.normalize("NFC", s) for s in read_speaker_list(exclude)}
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read the exclude list ({exc})", exclude) from None


def _plan_speaker(frame, speaker, seed, utts, seconds, n_sets, cap):
    """``(enrollment sets, test candidates (path, key, recording))`` of one speaker, or None when it has too few
    recordings or seconds."""
    rng = np.random.default_rng([seed, zlib.crc32(speaker.encode("utf-8"))])
    pieces_of = dict(tuple(frame.groupby("recording", sort=True)))
    units = []
    for recording in (sorted(pieces_of)[i] for i in rng.permutation(len(pieces_of))):
        path, key = pieces_of[recording].iloc[int(rng.integers(len(pieces_of[recording])))][["path", "key"]]
        info = _open_info(Path(path)) if seconds is not None else None
        units.append(_Unit(recording, path, key, info.frames / info.samplerate if info else 0.0))
    if seconds is None:
        sets = _windows(units, utts, n_sets)
    else:
        sets, i = _sets(units, utts, seconds, n_sets, wrap=False)   # disjoint, while a recording is left for tests
        if sets is None or i >= len(units):   # the last recording is for the tests; sets overlap as little as they can
            sets, _ = _sets(units[:-1], utts, seconds, n_sets, wrap=True)
    if sets is None:
        return None
    # a recording is a test of the models whose enrollment does not hold it (_trials pairs them so)
    in_every_set = set.intersection(*({unit.recording for unit, _ in chosen} for chosen in sets))
    tests = frame[~frame["recording"].isin(in_every_set)]
    tests = list(zip(tests["path"], tests["key"], tests["recording"]))
    if cap is not None:   # a seeded order: the first `cap` usable ones are the tests
        order = np.random.default_rng([seed, zlib.crc32(speaker.encode("utf-8")), 1]).permutation(len(tests))
        tests = [tests[j] for j in order]
    return sets, tests


def _windows(units, utts, n_sets):
    """``n_sets`` enrollment sets of ``utts`` recordings each: disjoint while one recording is left over for the
    tests, else windows spread evenly round the (seeded) order, so that sets overlap as little as they can and no
    two are the same; None when the speaker has fewer than ``utts + 1`` recordings."""
    n = len(units)
    if n < utts + 1:
        return None
    if n_sets * utts <= n - 1:
        starts = [k * utts for k in range(n_sets)]
    else:
        starts = [(k * n) // n_sets for k in range(n_sets)]
    return [[(units[(start + j) % n], None) for j in range(utts)] for start in starts]


def _sets(pool, utts, seconds, n_sets, wrap):
    """``(n_sets sets or None, next index)``: each set is ``[(unit, crop seconds or None), ...]`` taken from
    ``pool`` where the last one stopped (modulo its length when ``wrap``), never a recording twice in one set."""
    sets, i = [], 0
    for _ in range(n_sets):
        chosen, total, start = [], 0.0, i
        while len(chosen) < utts if seconds is None else total < seconds:
            if i - start >= len(pool) or (not wrap and i >= len(pool)):
                return None, i
            unit, i = pool[i % len(pool)], i + 1
            if seconds is not None and unit.seconds > seconds - total:
                chosen += [(unit, seconds - total)] if seconds - total >= MIN_CROP_S else []
                total = seconds
            else:
                chosen.append((unit, None))
                total += unit.seconds
        sets.append(chosen)
    return sets, i


def _trials(models, tests, nontarget_per_test, impostors_per_test, job, label):
    """Trial rows ``(model, audio, target, enroll speaker, test speaker, source, condition[, record])`` and the
    number of impostor trials."""
    order, block = [], {}      # every model, each speaker's a contiguous block [start, stop) of them
    for model, (speaker, _) in sorted(models.items(), key=lambda item: (item[1][0], item[0])):
        block[speaker] = (block.get(speaker, (len(order),))[0], len(order) + 1)
        order.append(model)
    rows, n_impostor = [], 0
    for (role, _), entries in sorted(tests.items()):
        k = nontarget_per_test if role == "test" else impostors_per_test
        condition = label if role == "test" else f"{role}:{label}"
        for speaker, audio, source, key, recording, record in entries:
            extra = (_json(record),) if job.test_condition is not None else ()
            start, stop = block[speaker] if role == "test" else (0, 0)
            n_others = len(order) - (stop - start)     # drawn by index: O(k) per test, not O(models)
            picked = range(n_others) if k is None or k >= n_others else sorted(np.random.default_rng(
                [job.seed, zlib.crc32(key.encode("utf-8")), _NONTARGET]).choice(n_others, size=k, replace=False))
            # the rule: no target trial with the test's recording in the model's enrollment (separate sessions)
            rows += [(m, audio, 1, speaker, speaker, source, condition) + extra for m in order[start:stop]
                     if recording not in models[m][1]]
            rows += [(m, audio, 0, models[m][0], speaker, source, condition) + extra
                     for m in (order[j if j < start else j + stop - start] for j in picked)]
            n_impostor += len(picked) if role != "test" else 0
    return rows, n_impostor


def _write_csv(path: Path, header, rows, path_columns) -> Path:
    """Rows with their ``path_columns`` relative to the CSV's folder, sorted (model, target first, condition, path)."""
    path.parent.mkdir(parents=True, exist_ok=True)   # before the paths are made relative to it (_written_path)
    base = str(path.parent)
    text = [tuple(_written_path(v, base) if i in path_columns else str(v) for i, v in enumerate(row)) for row in rows]
    order = (lambda r: (r[0], -int(r[2]), r[6], r[1])) if "target" in header else (lambda r: (r[0], r[1]))
    with atomic_write(path, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(sorted(text, key=order))
    return path
