"""speakerid.evaluation.protocols: separate-session enrollment and test (never two pieces of one recording in a target
trial), byte-identical seeded builds, speaker-disjoint exclusion, impostors, counts, crops, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speakerid.evaluation.protocols import build_protocol
from speakerid.exceptions import ManifestError, ParameterError

RATE = 8000


def _write_noise(path: Path, seconds: float, rng) -> None:
    """A noise burst with a syllable-like 3 Hz envelope: sound, and energy that comes and goes."""
    n = int(seconds * RATE)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 3 * np.arange(n) / RATE + rng.uniform(0, 6))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), 0.2 * rng.standard_normal(n) * envelope, RATE, subtype="PCM_16")


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """``(root, rows)``: 6 speakers x 6 recordings x 3 pieces of 0.6-1.4 s, rows ``(speaker, relpath, recording)``."""
    root = tmp_path_factory.mktemp("pool")
    rng = np.random.default_rng(11)
    rows = []
    for s in range(6):
        for r in range(6):
            for p in range(3):
                rel = f"spk{s}/rec{r}/p{p}.wav"
                _write_noise(root / rel, rng.uniform(0.6, 1.4), rng)
                rows.append((f"spk{s}", rel, f"spk{s}-rec{r}"))
    return root, rows


def _manifest(root: Path, rows, name: str, grouped: bool = True) -> Path:
    frame = pd.DataFrame(rows, columns=["speaker", "path", "recording"])
    path = root / f"{name}.csv"
    (frame if grouped else frame[["speaker", "path"]]).to_csv(path, index=False)
    return path


def _read(protocol):
    return (pd.read_csv(protocol.enroll_csv, dtype=str, keep_default_na=False),
            pd.read_csv(protocol.trials_csv, dtype={"speaker": str, "target": int}, keep_default_na=False))


def _absolute(out: Path, column) -> list:
    return [os.path.normpath(out / p) for p in column]


def _check_separate_sessions(protocol, recording_of) -> int:
    """Assert the rule on a written protocol; the number of target trials checked."""
    enroll, trials = _read(protocol)
    out = protocol.enroll_csv.parent
    enrolled = {}
    for model, source in zip(enroll["speaker"], _absolute(out, enroll["source"])):
        enrolled.setdefault(model, set()).add(recording_of[source])
    targets = trials[trials["target"] == 1]
    for model, source in zip(targets["speaker"], _absolute(out, targets["source"])):
        assert recording_of[source] not in enrolled[model], (model, source)
    assert (targets["enroll_speaker"] == targets["test_speaker"]).all()
    nontargets = trials[trials["target"] == 0]
    assert (nontargets["enroll_speaker"] != nontargets["test_speaker"]).all()
    return len(targets)


def test_no_target_trial_pairs_two_pieces_of_one_recording(pool, tmp_path):
    root, rows = pool
    rng = np.random.default_rng(3)
    checked = built = 0
    for case in range(36):
        speakers = [f"spk{s}" for s in rng.choice(6, size=rng.integers(2, 7), replace=False)]
        keep = [r for r in rows if r[0] in speakers and rng.random() < rng.uniform(0.3, 1.0)]
        grouped = bool(case % 2)
        manifest = _manifest(root, keep, f"case{case}", grouped)
        recording_of = {os.path.normpath(root / rel): (rec if grouped else os.path.normpath(root / rel))
                        for _, rel, rec in keep}
        options = dict(n_enroll_sets=int(rng.integers(1, 4)), seed=int(rng.integers(1000)),
                       tests_per_speaker=[None, 2][case % 3 == 0])
        if case % 4 == 1:
            options["enroll_seconds"] = float(rng.uniform(0.5, 2.5))
        else:
            options["enroll_utts"] = int(rng.integers(1, 4))
        if case % 3 == 2:
            options["test_duration_s"] = 0.5
        try:
            protocol = build_protocol(manifest, tmp_path / f"out{case}", **options)
        except ParameterError as exc:
            assert "speaker(s) left to evaluate" in str(exc)
            continue
        built += 1
        checked += _check_separate_sessions(protocol, recording_of)
    assert built >= 20 and checked >= 200


def test_the_other_pieces_of_an_enrollment_recording_are_never_its_tests(pool, tmp_path):
    root, rows = pool
    keep = [r for r in rows if r[0] in ("spk0", "spk1") and r[2].endswith(("rec0", "rec1"))]
    protocol = build_protocol(_manifest(root, keep, "two"), tmp_path, enroll_utts=1)
    enroll, trials = _read(protocol)
    assert len(enroll) == 2 and protocol.n_target == 2 * 3       # 1 piece enrolled, the other recording's 3 tested
    for model, source in zip(enroll["speaker"], enroll["source"]):
        recording = Path(source).parent.name
        tests = trials[(trials["speaker"] == model) & (trials["target"] == 1)]["source"]
        assert all(Path(t).parent.name != recording for t in tests)


def _tree_bytes(out: Path) -> dict:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_protocol(pool, tmp_path):
    root, rows = pool
    manifest = _manifest(root, rows, "all")
    options = dict(enroll_seconds=1.7, n_enroll_sets=2, test_duration_s=0.5, tests_per_speaker=4,
                   nontarget_per_test=3)
    first = build_protocol(manifest, tmp_path / "a", seed=5, **options)
    again = build_protocol(manifest, tmp_path / "b", seed=5, n_jobs=2, **options)
    other = build_protocol(manifest, tmp_path / "c", seed=6, **options)
    a, b, c = (_tree_bytes(tmp_path / d) for d in "abc")
    assert any(name.endswith(".wav") for name in a) and a == b
    assert a["protocol-trials.csv"] != c["protocol-trials.csv"] and a["protocol-enroll.csv"] != c["protocol-enroll.csv"]
    assert first == first.__class__(**{**again.__dict__, "enroll_csv": first.enroll_csv,
                                       "trials_csv": first.trials_csv})
    assert other.n_models == first.n_models
    _, trials = _read(first)
    tests = trials[trials["target"] == 1].groupby("test_speaker")["path"].nunique()
    assert tests.max() == 4 and tests.le(4).all()             # tests_per_speaker (spk3 has 3 test pieces left)


def test_exclude_makes_the_protocol_speaker_disjoint_from_training(pool, tmp_path):
    root, rows = pool
    manifest = _manifest(root, rows, "all")
    train = tmp_path / "train.csv"
    pd.DataFrame({"speaker": ["spk1", "spk4", "nobody"], "path": ["x.wav"] * 3}).to_csv(train, index=False)
    for exclude in (train, ["spk1", "spk4"], pd.read_csv(train)):
        protocol = build_protocol(manifest, tmp_path / "out", exclude=exclude)
        enroll, trials = _read(protocol)
        assert protocol.excluded == ["spk1", "spk4"] and protocol.n_speakers == 4
        used = set(enroll["enroll_speaker"]) | set(trials["enroll_speaker"]) | set(trials["test_speaker"])
        assert used == {"spk0", "spk2", "spk3", "spk5"}
    kept = build_protocol(manifest, tmp_path / "out", speakers=["spk2", "spk3", "spk5"], exclude=["spk3"])
    assert kept.n_speakers == 2 and kept.excluded == ["spk3"]


def test_impostors_are_cross_corpus_nontargets_and_overlap_is_refused(pool, tmp_path):
    root, rows = pool
    manifest = _manifest(root, [r for r in rows if r[0] < "spk4"], "main")
    impostors = _manifest(root, [r for r in rows if r[0] >= "spk4" and r[1].endswith("p0.wav")], "imp")
    protocol = build_protocol(manifest, tmp_path / "out", impostors=impostors, impostors_per_test=2)
    _, trials = _read(protocol)
    impostor = trials[trials["condition"] == "impostors:clean"]
    assert protocol.n_impostor_trials == len(impostor) == 12 * 2 and (impostor["target"] == 0).all()
    assert set(impostor["test_speaker"]) == {"spk4", "spk5"} and impostor.groupby("path").size().eq(2).all()
    overlap = _manifest(root, [r for r in rows if r[0] in ("spk3", "spk5")][:4], "overlap")
    with pytest.raises(ManifestError, match=r"overlap\.csv: 1 impostor speaker\(s\) are also evaluated speakers \(spk3\)"):
        build_protocol(manifest, tmp_path / "out", impostors=overlap)
    one = _manifest(root, [r for r in rows if r[0] == "spk0"], "one")
    assert build_protocol(one, tmp_path / "solo", impostors=impostors).n_speakers == 1   # impostors suffice


def test_counts_equal_the_csv_and_nontargets_per_test(pool, tmp_path):
    root, rows = pool
    protocol = build_protocol(_manifest(root, rows, "all"), tmp_path, enroll_utts=2, n_enroll_sets=2,
                              nontarget_per_test=3)
    enroll, trials = _read(protocol)
    assert protocol.n_models == enroll["speaker"].nunique() == 12
    assert protocol.n_speakers == enroll["enroll_speaker"].nunique() == 6
    assert protocol.n_target == int(trials["target"].sum())
    assert protocol.n_nontarget == int((trials["target"] == 0).sum()) and protocol.n_impostor_trials == 0
    assert trials[trials["target"] == 0].groupby("path").size().eq(3).all()
    assert set(trials["speaker"]) == {f"spk{s}_e{k}" for s in range(6) for k in (1, 2)}


def test_each_model_has_the_requested_recordings_or_seconds(pool, tmp_path):
    root, rows = pool
    manifest = _manifest(root, rows, "all")
    enroll, _ = _read(build_protocol(manifest, tmp_path / "utts", enroll_utts=3, n_enroll_sets=2))
    recordings = enroll.assign(recording=[Path(s).parent.as_posix() for s in enroll["source"]])
    assert recordings.groupby("speaker")["recording"].nunique().eq(3).all() and enroll.groupby("speaker").size().eq(3).all()
    protocol = build_protocol(manifest, tmp_path / "sec", enroll_seconds=2.3, sample_rate=16000)
    enroll, _ = _read(protocol)
    out = protocol.enroll_csv.parent
    seconds = enroll.assign(s=[sf.info(str(out / p)).duration for p in enroll["path"]]).groupby("speaker")["s"].sum()
    assert np.allclose(seconds, 2.3, atol=2 / RATE)
    written = [p for p in enroll["path"] if p.startswith("protocol-audio/")]
    assert len(written) == 6 and all(sf.info(str(out / p)).samplerate == 16000 for p in written)


def test_crops_have_the_requested_duration_and_short_files_are_skipped(pool, tmp_path):
    root, rows = pool
    protocol = build_protocol(_manifest(root, rows, "all"), tmp_path, test_duration_s=1.0, sample_rate=16000)
    _, trials = _read(protocol)
    tests = set(trials["path"])
    assert tests and all(sf.info(str(tmp_path / p)).frames == 16000 for p in tests)
    assert all(sf.info(str(tmp_path / p)).subtype == "PCM_16" for p in tests)
    (reason, short), = protocol.skipped_files.items()
    assert reason == "shorter than 1 s" and all(sf.info(str(root / k)).duration < 1.0 for k in short)
    kept = {Path(s).relative_to(Path(os.path.relpath(root, tmp_path))).as_posix() for s in trials["source"]}
    assert kept.isdisjoint(short)


def test_speakers_with_too_few_recordings_are_skipped(pool, tmp_path):
    root, rows = pool
    keep = [r for r in rows if r[0] != "spk2" or r[2].endswith(("rec0", "rec1", "rec2"))]
    protocol = build_protocol(_manifest(root, keep, "few"), tmp_path, enroll_utts=3)
    assert protocol.skipped == {"fewer than 4 recordings": ("spk2",)} and protocol.n_speakers == 5
    ungrouped = build_protocol(_manifest(root, keep, "few", grouped=False), tmp_path, enroll_utts=3)
    assert ungrouped.skipped == {} and ungrouped.n_speakers == 6       # each of spk2's 9 files is a recording


def test_a_frame_with_absolute_paths(pool, tmp_path):
    root, rows = pool
    frame = pd.DataFrame([(s, str(root / p)) for s, p, _ in rows], columns=["speaker", "path"])
    from_frame = build_protocol(frame, tmp_path / "f", seed=2, test_duration_s=0.5)
    from_csv = build_protocol(_manifest(root, rows, "flat", grouped=False), tmp_path / "c", seed=2,
                              test_duration_s=0.5)
    assert (from_frame.n_target, from_frame.n_nontarget) == (from_csv.n_target, from_csv.n_nontarget)
    crops = lambda out: sorted(p.name for p in out.rglob("*.wav"))  # noqa: E731 - the same keys, the same crops
    assert crops(tmp_path / "f") == crops(tmp_path / "c")


@pytest.mark.parametrize("kwargs, message", [
    ({"enroll_utts": 0}, "enroll_utts must be a whole number >= 1"),
    ({"enroll_utts": 2.5}, "enroll_utts must be a whole number >= 1"),
    ({"n_enroll_sets": True}, "n_enroll_sets must be a whole number"),
    ({"enroll_seconds": -1.0}, "enroll_seconds must be a finite number of seconds"),
    ({"test_duration_s": float("nan")}, "test_duration_s must be a finite number"),
    ({"tests_per_speaker": 0}, "tests_per_speaker must be a whole number >= 1"),
    ({"nontarget_per_test": -1}, "nontarget_per_test must be a whole number >= 0"),
    ({"impostors_per_test": 0}, "impostors_per_test must be a whole number >= 1"),
    ({"sample_rate": 100}, "sample_rate must be a whole number >= 4000"),
    ({"min_test_speech_s": float("inf")}, "min_test_speech_s must be a finite number"),
    ({"seed": -1}, r"seed must be a whole number in \[0, 2\*\*32\)"),
    ({"name": "../x"}, "name must be a file-name prefix"),
    ({"n_jobs": 0}, "n_jobs must be"),
    ({"speakers": ["spk0", "ghost"]}, "speakers not in the manifest: ghost"),
])
def test_bad_arguments(pool, tmp_path, kwargs, message):
    root, rows = pool
    with pytest.raises(ParameterError, match=message):
        build_protocol(_manifest(root, rows[:40], "small"), tmp_path, **kwargs)
    assert not list(tmp_path.iterdir())           # nothing written


@pytest.mark.parametrize("text, message", [
    ("speaker,file\na,x.wav\n", r"bad\.csv: missing column\(s\) path"),
    ("speaker,path\nspk0,spk0/rec0/p0.wav\nspk0,nowhere.wav\n", r"bad\.csv: 1 audio file\(s\) not found: line 3"),
    ("speaker,path\nspk0,spk0/rec0/p0.wav\nspk1,spk0/rec0/p0.wav\n", r"bad\.csv: line\(s\) 3 repeat a file"),
    ("speaker,path,recording\nspk0,spk0/rec0/p0.wav,\n", r"bad\.csv: empty recording on line\(s\) 2"),
    ("speaker,path\nunknown,spk0/rec0/p0.wav\n", "reserved"),
    ("speaker,path\n", "header but no rows"),
])
def test_bad_manifests(pool, tmp_path, text, message):
    root, _ = pool
    (root / "bad.csv").write_text(text)
    with pytest.raises(ManifestError, match=message):
        build_protocol(root / "bad.csv", tmp_path)


def test_bad_sources(pool, tmp_path):
    root, rows = pool
    with pytest.raises(ManifestError, match="needs absolute paths"):
        build_protocol(pd.DataFrame({"speaker": ["a"], "path": ["rel.wav"]}), tmp_path)
    with pytest.raises(ParameterError, match="manifest must be a CSV manifest path or a pandas DataFrame"):
        build_protocol(42, tmp_path)
    with pytest.raises(ManifestError, match="no such training manifest"):
        build_protocol(_manifest(root, rows, "all"), tmp_path, exclude=str(tmp_path / "train.csv"))
    with pytest.raises(ParameterError, match=r"0 speaker\(s\) left to evaluate.*need at least 2"):
        build_protocol(_manifest(root, rows[:9], "one"), tmp_path, enroll_utts=3)


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    from speakerid.degrade import NoiseBank

    root = tmp_path_factory.mktemp("noise")
    _write_noise(root / "hum.wav", 3.0, np.random.default_rng(0))
    return NoiseBank({"noise": [root / "hum.wav"]})


def test_conditions_degrade_with_a_per_file_seed_and_keep_the_record(pool, bank, tmp_path):
    import json
    import zlib

    root, rows = pool
    manifest = _manifest(root, rows, "all")
    options = dict(enroll_utts=2, test_duration_s=0.8, enroll_condition="telephone", test_condition="noise@5 + gain@-3",
                   bank=bank, seed=4)
    protocol = build_protocol(manifest, tmp_path / "a", **options)
    enroll, trials = _read(protocol)
    assert list(trials.columns)[-2:] == ["condition", "record"] and list(enroll.columns)[-1] == "record"
    assert set(trials["condition"]) == {"noise@5+gain@-3"}
    for _, row in trials.drop_duplicates("path").iterrows():
        record = json.loads(row["record"])
        key = Path(os.path.normpath(tmp_path / "a" / row["source"])).relative_to(root).as_posix()
        assert record["condition"] == "noise@5+gain@-3" and record["seed"] == [4, zlib.crc32(key.encode())]
        assert sf.info(str(tmp_path / "a" / row["path"])).frames == int(0.8 * RATE)
    assert all(json.loads(r)["sample_rate"] == 8000 for r in enroll["record"])
    assert all(p.startswith("protocol-audio/enroll/") for p in enroll["path"])
    again = build_protocol(manifest, tmp_path / "b", **options)
    assert _tree_bytes(tmp_path / "a") == _tree_bytes(tmp_path / "b") and again.n_target == protocol.n_target
    # the noise depends on the seed and the file only: a protocol of fewer speakers degrades the same test alike
    fewer = build_protocol(manifest, tmp_path / "c", speakers=["spk0", "spk3"], **options)
    _, few = _read(fewer)
    common = sorted(set(few["path"]))
    assert common and all((tmp_path / "a" / p).read_bytes() == (tmp_path / "c" / p).read_bytes() for p in common)
    clean = build_protocol(manifest, tmp_path / "d", **{**options, "test_condition": None, "enroll_condition": None})
    assert all((tmp_path / "a" / p).read_bytes() != (tmp_path / "d" / p).read_bytes() for p in common)
    assert "record" not in _read(clean)[1].columns and set(_read(clean)[1]["condition"]) == {"clean"}


def test_bad_conditions_are_refused_before_any_audio_is_written(pool, bank, tmp_path):
    root, rows = pool
    manifest = _manifest(root, rows, "all")
    with pytest.raises(ParameterError, match="test_condition: condition 'hiss@3': unknown step"):
        build_protocol(manifest, tmp_path, test_condition="hiss@3")
    with pytest.raises(ParameterError, match="enroll_condition 'music@0' needs music recordings"):
        build_protocol(manifest, tmp_path, enroll_condition="music@0", bank=bank)
    with pytest.raises(ParameterError, match="test_condition 'noise@5' needs noise recordings"):
        build_protocol(manifest, tmp_path, test_condition="noise@5")
    assert not list(tmp_path.iterdir())
