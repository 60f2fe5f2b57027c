"""The synthetic corpus: determinism, distinct voices, session variability, manifests, reuse, and ``speakerid synth``.

The difficulty checks use a deliberately poor model, the cosine between per-utterance MFCC means: on the clean
rendering of the corpus speakers it separates them well (the voices are learnable), while the default session
variability (noise, channel, level) pushes it to near chance (the corpus is hard enough that such a model fails).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.audio import load_audio
from speakerid.data.manifests import read_manifest
from speakerid.data.synth import (
    BACKGROUND_PREFIX,
    CORPUS_INFO,
    SPEAKER_PREFIX,
    corpus_is_current,
    make_corpus,
    make_speaker,
    synthesize_session,
)
from speakerid.data.synth import corpus as corpus_module
from speakerid.evaluation.metrics import eer
from speakerid.exceptions import ParameterError
from speakerid.features import FeatureConfig, extract

# A corpus small enough to write in a fraction of a second.
TINY = dict(n_speakers=3, n_utterances=3, enroll_per_speaker=1, n_background=2, n_background_utterances=2,
            duration_s=1.0, show_progress=False)
MANIFESTS = ("enroll.csv", "trials.csv", "background.csv", "utterances.csv", "speakers.csv")


def _files(folder: Path) -> dict:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _utterances(corpus) -> pd.DataFrame:
    return pd.read_csv(corpus.utterances_csv, keep_default_na=False)


# ------------------------------------------------------------------------------------------------ determinism

def test_same_seed_writes_identical_bytes(tmp_path):
    first = make_corpus(tmp_path / "a", seed=5, **TINY)
    second = make_corpus(tmp_path / "b", seed=5, **TINY)
    a, b = _files(first.folder), _files(second.folder)
    assert sorted(a) == sorted(b)
    assert {name for name in a if name.endswith(".wav")} and set(MANIFESTS) | {CORPUS_INFO} <= set(a)
    assert a == b
    assert first.profiles == second.profiles
    assert (first.n_files, first.n_trials, first.total_duration_s) == \
           (second.n_files, second.n_trials, second.total_duration_s)


def test_other_seed_gives_other_audio(tmp_path):
    zero = make_corpus(tmp_path / "a", seed=0, **TINY)
    one = make_corpus(tmp_path / "b", seed=1, **TINY)
    a, b = _files(zero.folder), _files(one.folder)
    wavs = [name for name in a if name.endswith(".wav")]
    assert wavs == [name for name in b if name.endswith(".wav")]  # same names ...
    assert all(a[name] != b[name] for name in wavs)                # ... other sounds
    assert all(zero.profiles[s] != one.profiles[s] for s in zero.profiles)


def test_a_file_does_not_depend_on_corpus_size(tmp_path):
    small = make_corpus(tmp_path / "a", **TINY)
    large = make_corpus(tmp_path / "b", **dict(TINY, n_speakers=4, n_utterances=4, n_background=3))
    for name in ("wav/spk001/spk001_01.wav", "wav/spk003/spk003_03.wav", "wav/bg002/bg002_02.wav"):
        assert (small.folder / name).read_bytes() == (large.folder / name).read_bytes()


# ------------------------------------------------------------------------------------------------ voices

def test_speaker_profiles_differ(synth_corpus):
    profiles = list(synth_corpus.profiles.values())
    assert len(profiles) == 12 and len(set(profiles)) == 12
    for field in ("f0_median_hz", "f0_range_st", "vtl_scale", "bandwidth_scale", "open_quotient", "f4_hz"):
        values = [getattr(p, field) for p in profiles]
        assert len(set(values)) == len(values), field
    # Pitch ranges and formant scaling spread out over the population, not just by rounding noise.
    medians = np.array([p.f0_median_hz for p in profiles])
    assert medians.max() / medians.min() > 1.4
    assert {(round(p.f0_min_hz), round(p.f0_max_hz)) for p in profiles}.__len__() == len(profiles)
    formants = np.array([p.formants("a")[:3] for p in profiles])
    spread = formants.max(axis=0) / formants.min(axis=0)
    assert np.all(spread > 1.1), spread
    # Every pair of speakers differs by at least 2 % in some formant of some vowel.
    vowels = ("a", "i", "u", "E")
    table = np.array([[p.formants(v) for v in vowels] for p in profiles])
    for i in range(len(profiles)):
        for j in range(i + 1, len(profiles)):
            assert np.max(np.abs(table[i] / table[j] - 1.0)) > 0.02
    # speakers.csv records them.
    written = pd.read_csv(synth_corpus.speakers_csv, keep_default_na=False).set_index("speaker")
    assert sorted(written.index) == sorted(synth_corpus.profiles)
    for speaker, profile in synth_corpus.profiles.items():
        assert written.at[speaker, "f0_median_hz"] == pytest.approx(profile.f0_median_hz, abs=1e-3)
        assert written.at[speaker, "set"] == ("background" if speaker.startswith(BACKGROUND_PREFIX)
                                              else "evaluated")


def _pitch_track(x, voiced, sample_rate, fmin=60.0, fmax=500.0):
    """Autocorrelation F0 of 40 ms frames lying in voiced speech (periodic enough ones only)."""
    n, hop = int(0.04 * sample_rate), int(0.01 * sample_rate)
    lo, hi = int(sample_rate / fmax), int(sample_rate / fmin)
    track = []
    for start in range(0, x.size - n, hop):
        if voiced[start:start + n].mean() < 0.9:
            continue
        frame = x[start:start + n] - x[start:start + n].mean()
        ac = np.correlate(frame, frame, "full")[n - 1:]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:
            track.append(sample_rate / lag)
    return np.array(track)


def test_rendered_pitch_follows_the_profile(synth_corpus):
    by_pitch = sorted(synth_corpus.profiles.values(), key=lambda p: p.f0_median_hz)
    low, high = by_pitch[0], by_pitch[-1]
    medians = []
    for seed, profile in enumerate((low, high)):
        utt = synthesize_session(profile, np.random.default_rng(seed), 2.5, 16000, snr_db=None, channel=False)
        contour = utt.f0_hz[utt.voiced]
        assert contour.min() >= profile.f0_min_hz * 0.999 and contour.max() <= profile.f0_max_hz * 1.001
        track = _pitch_track(utt.signal.astype(np.float64), utt.voiced, 16000)
        assert track.size > 30
        inside = (track > 0.9 * profile.f0_min_hz) & (track < 1.1 * profile.f0_max_hz)
        assert inside.mean() > 0.7, (profile.speaker_id, inside.mean())
        medians.append(np.median(track))
    assert medians[0] < medians[1]


def test_recordings_of_one_speaker_differ_in_content_and_session(synth_corpus):
    utts = _utterances(synth_corpus)
    for speaker, rows in utts.groupby("speaker"):
        # Each recording its own session: noise level, loudness, channel and length (SNRs are rounded to
        # 0.01 dB in the table, so two may coincide; the whole session may not).
        sessions = rows[["snr_db", "level_dbfs", "highpass_hz", "lowpass_hz", "tilt", "eq", "duration_s"]]
        assert not sessions.duplicated().any(), speaker
        assert rows["snr_db"].astype(float).agg(np.ptp) > 3.0, speaker
        assert rows["level_dbfs"].agg(np.ptp) > 1.0 and rows["eq"].nunique() == len(rows), speaker
        assert rows["duration_s"].between(2.0, 3.0).all()
    snr = utts["snr_db"].astype(float)
    assert snr.between(5.0, 30.0).all() and snr.max() - snr.min() > 10.0
    # Different words: the waveforms of two recordings of one speaker are not time-shifted copies.
    speaker = synth_corpus.speakers[0]
    paths = [synth_corpus.folder / p for p in utts.loc[utts["speaker"] == speaker, "path"]]
    signals = [sf.read(p)[0] for p in paths]
    for i in range(len(signals)):
        for j in range(i + 1, len(signals)):
            a, b = signals[i], signals[j]
            n = a.size + b.size
            xcorr = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)
            peak = np.max(np.abs(xcorr)) / (np.linalg.norm(a) * np.linalg.norm(b))
            assert peak < 0.3, (paths[i].name, paths[j].name, peak)


_MEAN_MFCC = FeatureConfig(cmvn="none", delta_order=0, vad_threshold_db=15.0)


def _mean_mfcc_eer(corpus) -> float:
    """EER of the cosine between per-utterance MFCC means (c0 dropped), over every pair of recordings."""
    utts = _utterances(corpus)
    means = np.array([extract(load_audio(corpus.folder / p, corpus.sample_rate)[0], _MEAN_MFCC).mean(axis=0)[1:]
                      for p in utts["path"]])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    speakers = utts["speaker"].to_numpy()
    upper = np.triu_indices(len(speakers), 1)
    same = (speakers[:, None] == speakers[None, :])[upper].astype(int)
    return eer((means @ means.T)[upper], same)


def test_voices_are_learnable_but_sessions_make_it_hard(synth_corpus, tmp_path):
    # Measured over seeds 0-5 (6+6 speakers, 6/4 recordings of 2-3 s): clean 0.13-0.20, default 0.39-0.49.
    clean = make_corpus(tmp_path / "clean", n_speakers=6, n_utterances=6, enroll_per_speaker=3, n_background=6,
                        n_background_utterances=4, duration_s=(2.0, 3.0), seed=synth_corpus.seed,
                        snr_db=None, channel=False, show_progress=False)
    assert clean.profiles == synth_corpus.profiles  # the same voices, without noise and channel
    clean_eer, default_eer = _mean_mfcc_eer(clean), _mean_mfcc_eer(synth_corpus)
    assert 0.02 < clean_eer < 0.30, clean_eer           # the voices themselves: separable, but not trivially
    assert default_eer > 0.30, default_eer              # sessions defeat the naive model ...
    assert default_eer > clean_eer + 0.15, (clean_eer, default_eer)


# ------------------------------------------------------------------------------------------------ manifests

def test_manifests(synth_corpus):
    folder = synth_corpus.folder
    with open(synth_corpus.enroll_csv, newline="") as fh:
        assert next(csv.reader(fh)) == ["speaker", "path"]
    with open(synth_corpus.background_csv, newline="") as fh:
        assert next(csv.reader(fh)) == ["speaker", "path"]
    with open(synth_corpus.trials_csv, newline="") as fh:
        assert next(csv.reader(fh)) == ["speaker", "path", "target"]
    raw = {name: pd.read_csv(folder / f"{name}.csv", dtype=str) for name in ("enroll", "trials", "background")}
    for frame in raw.values():
        assert not any(os.path.isabs(p) for p in frame["path"])
        assert all((folder / p).is_file() for p in frame["path"])

    enroll = read_manifest(synth_corpus.enroll_csv, check_files=True)
    trials = read_manifest(synth_corpus.trials_csv, require_target=True, check_files=True)
    background = read_manifest(synth_corpus.background_csv, check_files=True)

    evaluated, bg = set(synth_corpus.speakers), set(synth_corpus.background_speakers)
    assert len(evaluated) == 6 and len(bg) == 6 and not evaluated & bg
    assert all(s.startswith(SPEAKER_PREFIX) for s in evaluated) and all(s.startswith(BACKGROUND_PREFIX) for s in bg)
    assert set(enroll["speaker"]) == evaluated and set(trials["speaker"]) == evaluated
    assert set(background["speaker"]) == bg
    assert enroll["speaker"].value_counts().eq(3).all() and background["speaker"].value_counts().eq(4).all()
    # No recording is used twice, and background recordings are never evaluated.
    assert not set(enroll["path"]) & set(trials["path"])
    assert not set(background["path"]) & (set(enroll["path"]) | set(trials["path"]))

    # Every test recording is claimed by every evaluated speaker once; the label says who really speaks.
    utts = _utterances(synth_corpus)
    truth = {os.path.normpath(folder.resolve() / p): s for p, s in zip(utts["path"], utts["speaker"])}
    assert len(trials) == synth_corpus.n_trials == 6 * 3 * 6 and not trials.duplicated(["speaker", "path"]).any()
    assert (trials["target"] == [int(truth[p] == s) for p, s in zip(trials["path"], trials["speaker"])]).all()
    assert trials["target"].sum() == synth_corpus.n_target_trials == 6 * 3
    tests_per_speaker = trials[trials["target"] == 1].groupby("speaker").size()
    assert tests_per_speaker.eq(3).all() and set(tests_per_speaker.index) == evaluated

    assert synth_corpus.n_files == len(utts) == 6 * 6 + 6 * 4
    info = sf.info(folder / utts["path"][0])
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert synth_corpus.total_duration_s == pytest.approx(utts["duration_s"].sum(), abs=1e-3)


def test_sampled_impostors_and_no_background(tmp_path):
    corpus = make_corpus(tmp_path, **dict(TINY, n_speakers=4, n_background=0, nontarget_per_test=2))
    trials = read_manifest(corpus.trials_csv, require_target=True)
    assert len(trials) == corpus.n_trials == 4 * 2 * 3
    per_test = trials.groupby("path")["target"].agg(["size", "sum"])
    assert per_test["size"].eq(3).all() and per_test["sum"].eq(1).all()
    assert corpus.background_speakers == ()
    assert corpus.background_csv.read_text() == "speaker,path\n"


@pytest.mark.parametrize("changes, needle", [
    (dict(n_speakers=1), "n_speakers"),
    (dict(n_speakers=True), "n_speakers"),
    (dict(n_utterances=3, enroll_per_speaker=3), "must exceed enroll_per_speaker"),
    (dict(enroll_per_speaker=0), "enroll_per_speaker"),
    (dict(n_background=-1), "n_background"),
    (dict(n_background_utterances=0), "n_background_utterances"),
    (dict(nontarget_per_test=3), "nontarget_per_test"),
    (dict(sample_rate=4000), "sample_rate"),
    (dict(seed=-1), "seed"),
    (dict(duration_s=0.1), "duration_s"),
    (dict(duration_s=(3.0, 2.0)), "duration_s"),
    (dict(snr_db=(1.0, 2.0, 3.0)), "snr_db"),
    (dict(channel="no"), "channel"),
])
def test_bad_parameters(tmp_path, changes, needle):
    with pytest.raises(ParameterError, match=needle):
        make_corpus(tmp_path / "c", **dict(TINY, **changes))
    with pytest.raises(ParameterError, match=needle):
        corpus_is_current(tmp_path / "c", **dict(TINY, **changes))
    assert not (tmp_path / "c").exists()


def test_out_dir_must_be_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParameterError, match="not a folder"):
        make_corpus(tmp_path / "file", **TINY)


# ------------------------------------------------------------------------------------------------ reuse

def test_reuse_only_an_identical_complete_corpus(tmp_path, monkeypatch):
    folder = tmp_path / "c"
    assert not corpus_is_current(folder, **TINY)
    made = make_corpus(folder, **TINY)
    assert not made.reused
    info = json.loads((folder / CORPUS_INFO).read_text())
    assert info["parameters"]["n_speakers"] == 3 and info["parameters"]["duration_s"] == [1.0, 1.0]
    assert info["speakerid_version"] and set(info["manifests"]) == set(MANIFESTS)

    assert corpus_is_current(folder, **TINY)
    assert corpus_is_current(folder, **dict(TINY, duration_s=(1.0, 1.0), show_progress=True))  # same corpus
    for changes in (dict(seed=1), dict(n_speakers=4), dict(snr_db=None), dict(channel=False),
                    dict(nontarget_per_test=1), dict(sample_rate=8000), dict(n_background=None)):
        assert not corpus_is_current(folder, **dict(TINY, **changes)), changes

    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    again = make_corpus(folder, reuse=True, **TINY)
    assert again.reused and again.profiles == made.profiles
    assert (again.n_files, again.n_trials, again.n_target_trials, again.total_duration_s, again.enroll_csv) == \
           (made.n_files, made.n_trials, made.n_target_trials, made.total_duration_s, made.enroll_csv)
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()} == before  # nothing rewritten

    # Another speakerid version: regenerate.
    monkeypatch.setattr(corpus_module, "__version__", "0.0.0-other")
    assert not corpus_is_current(folder, **TINY)
    monkeypatch.undo()
    assert corpus_is_current(folder, **TINY)


@pytest.mark.parametrize("damage", ["missing wav", "edited manifest", "missing manifest", "no record",
                                    "corrupt record"])
def test_damaged_corpus_is_not_current(tmp_path, damage):
    folder = tmp_path / "c"
    original = _files(make_corpus(folder, **TINY).folder)
    if damage == "missing wav":
        (folder / "wav/spk002/spk002_03.wav").unlink()
    elif damage == "edited manifest":
        with open(folder / "enroll.csv", "a") as fh:
            fh.write("spk001,wav/spk001/spk001_02.wav\n")
    elif damage == "missing manifest":
        (folder / "trials.csv").unlink()
    elif damage == "no record":  # e.g. an interrupted run: the record is removed first and written last
        (folder / CORPUS_INFO).unlink()
    else:
        (folder / CORPUS_INFO).write_text("{not json")
    assert not corpus_is_current(folder, **TINY)
    repaired = make_corpus(folder, reuse=True, **TINY)
    assert not repaired.reused and corpus_is_current(folder, **TINY)
    assert _files(folder) == original


# ------------------------------------------------------------------------------------------------ command line

def _synth(capsys, tmp, *extra):
    status = main(["synth", "--out", str(tmp), "--speakers", "3", "--utterances", "4", "--background", "2",
                   "--background-utterances", "2", "--duration", "1", *map(str, extra)])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_writes_a_corpus(capsys, tmp_path):
    status, out, err = _synth(capsys, tmp_path / "c", "--seed", 3)
    assert status == ExitStatus.OK and err == ""
    folder = tmp_path / "c"
    assert {"enroll.csv", "trials.csv", "background.csv", CORPUS_INFO} <= {p.name for p in folder.iterdir()}
    trials = read_manifest(folder / "trials.csv", require_target=True)
    enroll = read_manifest(folder / "enroll.csv")
    assert len(trials) == 3 * 1 * 3 and trials["target"].sum() == 3 and len(enroll) == 3 * 3
    assert "wrote synthetic corpus" in out and "3 evaluated, 2 background" in out
    assert "files:       16 " in out and "trials:      9 (3 target, 6 nontarget)" in out and "min of audio" in out
    for name in ("enroll.csv", "trials.csv", "background.csv"):
        assert str(folder / name) in out
    # The same as the Python API with the same parameters, byte for byte.
    api = make_corpus(tmp_path / "api", n_speakers=3, n_utterances=4, n_background=2, n_background_utterances=2,
                      duration_s=1.0, seed=3, show_progress=False)
    assert _files(folder) == _files(api.folder)


def test_cli_skips_an_up_to_date_corpus_and_force_regenerates(capsys, tmp_path):
    folder = tmp_path / "c"
    assert _synth(capsys, folder)[0] == ExitStatus.OK
    stamp = (folder / "trials.csv").stat().st_mtime_ns
    status, out, _ = _synth(capsys, folder)
    assert status == ExitStatus.OK
    assert out.startswith("corpus up to date (use --force to regenerate)") and "trials:      9 " in out
    assert (folder / "trials.csv").stat().st_mtime_ns == stamp
    status, out, _ = _synth(capsys, folder, "--force")
    assert status == ExitStatus.OK and out.startswith("wrote synthetic corpus")
    assert (folder / "trials.csv").stat().st_mtime_ns != stamp
    status, out, _ = _synth(capsys, folder, "--seed", 1)  # other parameters: regenerated without --force
    assert status == ExitStatus.OK and out.startswith("wrote synthetic corpus")


def test_cli_options_reach_the_corpus(capsys, tmp_path):
    status, out, err = _synth(capsys, tmp_path / "c", "--clean", "--no-channel", "--enroll-per-speaker", 2,
                              "--nontarget-per-test", 1, "--sample-rate", 8000, "--quiet")
    assert status == ExitStatus.OK and out == "" and err == ""
    params = json.loads((tmp_path / "c" / CORPUS_INFO).read_text())["parameters"]
    assert params["snr_db"] is None and params["channel"] is False and params["sample_rate"] == 8000
    assert (params["enroll_per_speaker"], params["nontarget_per_test"]) == (2, 1)
    utts = pd.read_csv(tmp_path / "c" / "utterances.csv", keep_default_na=False)
    assert (utts["snr_db"] == "").all() and (utts["eq"] == "").all()
    assert len(read_manifest(tmp_path / "c" / "trials.csv", require_target=True)) == 3 * 2 * 2
    status, _, _ = _synth(capsys, tmp_path / "d", "--duration", "1", "1.5", "--snr", "10", "--quiet")
    params = json.loads((tmp_path / "d" / CORPUS_INFO).read_text())["parameters"]
    assert status == ExitStatus.OK and params["duration_s"] == [1.0, 1.5] and params["snr_db"] == [10.0, 10.0]


@pytest.mark.parametrize("extra, needle", [
    (["--speakers", "1"], "--speakers must be >= 2"),
    (["--utterances", "3"], "--utterances (3) must exceed --enroll-per-speaker (3)"),
    (["--background", "-1"], "--background must be"),
    (["--nontarget-per-test", "30"], "--nontarget-per-test (30) exceeds"),
    (["--sample-rate", "1000"], "--sample-rate"),
    (["--duration", "1", "2", "3"], "--duration takes one value or MIN MAX"),
    (["--duration", "0.1"], "--duration"),
    (["--snr", "20", "10"], "--snr"),
    (["--snr", "10", "--clean"], "not allowed with"),
    (["--speakers", "three"], "invalid int value"),
])
def test_cli_bad_arguments(capsys, tmp_path, extra, needle):
    status = main(["synth", "--out", str(tmp_path / "c"), "--utterances", "4", "--duration", "1", *extra])
    out, err = capsys.readouterr()
    assert status == ExitStatus.USAGE == 2
    assert needle in err and err.count("\n") == 1 and out == ""
    assert not (tmp_path / "c").exists()


def test_cli_out_is_a_file(capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    status = main(["synth", "--out", str(tmp_path / "f")])
    _, err = capsys.readouterr()
    assert status == ExitStatus.USAGE and "--out" in err and "not a folder" in err and err.count("\n") == 1


def test_evaluated_and_background_voices_come_from_separate_streams():
    p = make_speaker(0, seed=0)
    assert p == make_speaker(0, seed=0) and p != make_speaker(0, seed=0, prefix=BACKGROUND_PREFIX)
