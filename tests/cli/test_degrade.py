"""``speakerid degrade`` in-process: the happy path, its summary and --json, and one-line errors with exit codes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main

RATE = 16000


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def _syllables(seed: int, seconds: float) -> np.ndarray:
    """Gliding harmonic bursts of 0.1-0.3 s between 0.1-0.3 s pauses, peak 0.3."""
    rng = np.random.default_rng(seed)
    n, start, out = int(seconds * RATE), 0, np.zeros(int(seconds * RATE))
    while start < n:
        length = min(int(rng.uniform(0.1, 0.3) * RATE), n - start)
        phase = 2 * np.pi * np.cumsum(rng.uniform(100, 220) * np.linspace(1.0, 1.2, length)) / RATE
        out[start:start + length] = np.hanning(length) * sum(np.sin(k * phase) / k for k in range(1, 10))
        start += length + int(rng.uniform(0.1, 0.3) * RATE)
    return 0.3 * out / np.max(np.abs(out))


@pytest.fixture
def inputs(tmp_path):
    """``(manifest.csv of 3 files, noise.csv with noise, speech and rir rows, babble.csv)`` under tmp_path."""
    rng = np.random.default_rng(0)
    audio, recordings = tmp_path / "audio", tmp_path / "recordings"
    audio.mkdir()
    recordings.mkdir()
    for i in range(3):
        sf.write(audio / f"u{i}.wav", _syllables(i, 1.0 + 0.25 * i), RATE, subtype="PCM_16")
    (tmp_path / "manifest.csv").write_text("speaker,path\n" + "".join(f"s{i % 2},audio/u{i}.wav\n" for i in range(3)))
    sf.write(recordings / "hum.wav", 0.2 * rng.standard_normal(2 * RATE), RATE)
    sf.write(recordings / "talker.wav", _syllables(9, 3.0), RATE)
    rir = np.zeros(int(0.3 * 44100))
    rir[441] = 1.0
    rir[442:] = 0.05 * rng.standard_normal(rir.size - 442) * np.exp(-np.arange(rir.size - 442) / 3000)
    sf.write(recordings / "room.wav", rir, 44100, subtype="FLOAT")
    (tmp_path / "noise.csv").write_text("kind,path,licence\nnoise,recordings/hum.wav,CC0\n"
                                        "speech,recordings/talker.wav,CC0\nrir,recordings/room.wav,CC0\n")
    (tmp_path / "babble.csv").write_text("speaker,path\nother,recordings/talker.wav\n")
    return tmp_path / "manifest.csv", tmp_path / "noise.csv", tmp_path / "babble.csv"


def test_degrade_writes_the_copies_and_their_manifest(capsys, inputs, tmp_path):
    manifest, noise_csv, _ = inputs
    out_dir = tmp_path / "out"
    status, out, err = _run(capsys, "degrade", "--manifest", manifest, "--condition", "noise@10+reverb+telephone",
                            "--out-dir", out_dir, "--noise-csv", noise_csv, "--seed", 3, "--jobs", 1)
    assert status == ExitStatus.OK, err
    assert err == "" and len(out.strip().splitlines()) == 1
    assert out.startswith("wrote 3 degraded file(s), 3.8 s of audio (noise@10+reverb+telephone:ulaw, seed 3)")
    assert str(out_dir / "manifest.csv") in out
    with open(out_dir / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["speaker"] for row in rows] == ["s0", "s1", "s0"]
    for row in rows:
        info = sf.info(str(out_dir / row["path"]))
        assert info.samplerate == 8000 and info.subtype == "PCM_16"
        steps = json.loads(row["record"])["steps"]
        assert [s["step"] for s in steps] == ["noise@10", "reverb", "telephone:ulaw"]
        assert steps[0]["file"].endswith("hum.wav") and steps[1]["file"].endswith("room.wav")
    # --json, two workers: the same files, byte for byte
    status, out, err = _run(capsys, "degrade", "--manifest", manifest, "--condition", "noise@10+reverb+telephone",
                            "--out-dir", tmp_path / "again", "--noise-csv", noise_csv, "--seed", 3, "--jobs", 2,
                            "--json")
    assert status == ExitStatus.OK, err
    summary = json.loads(out)
    assert summary["files"] == 3 and summary["seconds"] == pytest.approx(3.75)
    assert summary["condition"] == "noise@10+reverb+telephone:ulaw" and summary["seed"] == 3
    for row in rows:
        assert (out_dir / row["path"]).read_bytes() == (tmp_path / "again" / row["path"]).read_bytes()
    assert (out_dir / "manifest.csv").read_bytes() == (tmp_path / "again" / "manifest.csv").read_bytes()


def test_babble_talkers_may_come_from_a_manifest_alone(capsys, inputs, tmp_path):
    manifest, _, babble = inputs
    status, out, err = _run(capsys, "degrade", "--manifest", manifest, "--condition", "babble@0", "--out-dir",
                            tmp_path / "out", "--babble-manifest", babble)
    assert status == ExitStatus.OK, err
    with open(tmp_path / "out" / "manifest.csv", newline="") as handle:
        talkers = json.loads(next(csv.DictReader(handle))["record"])["steps"][0]["talkers"]
    assert {t["file"] for t in talkers} == {str(tmp_path / "recordings" / "talker.wav")}


@pytest.mark.parametrize("argv, status, message", [
    (["--condition", "noise@5"], ExitStatus.USAGE, "needs noise recordings: give --noise-csv"),
    (["--condition", "babble@5+reverb"], ExitStatus.USAGE, "needs speech and rir recordings: give --noise-csv"),
    (["--condition", "echo@3"], ExitStatus.USAGE, "unknown step 'echo@3'; valid steps"),
    (["--condition", "clip@2"], ExitStatus.USAGE, "must be in (0, 1]"),
    (["--condition", "music@5", "--noise-csv", "{noise}"], ExitStatus.USAGE, "needs music recordings and"),
    (["--condition", "clean", "--manifest", "{tmp}/absent.csv"], ExitStatus.MANIFEST, "no such manifest file"),
    (["--condition", "noise@5", "--noise-csv", "{tmp}/broken.csv"], ExitStatus.MANIFEST, "line 2: recordings/x.wav"),
    (["--condition", "clean", "--seed", "-1"], ExitStatus.USAGE, "--seed"),
    (["--condition", "clean", "--jobs", "0"], ExitStatus.USAGE, "--jobs"),
])
def test_bad_input_is_one_line_and_an_exit_code(capsys, inputs, tmp_path, argv, status, message):
    manifest, noise_csv, _ = inputs
    (tmp_path / "broken.csv").write_text("kind,path,licence\nnoise,recordings/x.wav,CC0\n")
    argv = [a.format(noise=noise_csv, tmp=tmp_path) for a in argv]
    if "--manifest" not in argv:
        argv += ["--manifest", str(manifest)]
    got, out, err = _run(capsys, "degrade", "--out-dir", tmp_path / "out", *argv)
    assert got == status, err
    assert out == "" and len(err.strip().splitlines()) == 1 and err.startswith("speakerid")
    assert message in err
    assert not (tmp_path / "out" / "manifest.csv").exists()


def test_a_required_option_missing_is_a_usage_error(capsys, inputs, tmp_path):
    manifest, _, _ = inputs
    status, _, err = _run(capsys, "degrade", "--manifest", manifest, "--out-dir", tmp_path / "out")
    assert status == ExitStatus.USAGE and "--condition" in err and len(err.strip().splitlines()) == 1


def test_skip_errors_lists_the_files_left_out(capsys, inputs, tmp_path):
    manifest, _, _ = inputs
    sf.write(tmp_path / "audio" / "silent.wav", np.zeros(RATE), RATE)
    with open(manifest, "a") as handle:
        handle.write("s9,audio/silent.wav\n")
    status, _, err = _run(capsys, "degrade", "--manifest", manifest, "--condition", "gain@-6",
                          "--out-dir", tmp_path / "strict")
    assert status == ExitStatus.AUDIO and "silent.wav" in err and len(err.strip().splitlines()) == 1
    status, out, err = _run(capsys, "degrade", "--manifest", manifest, "--condition", "gain@-6",
                            "--out-dir", tmp_path / "lenient", "--skip-errors", "--json")
    assert status == ExitStatus.OK, err
    summary = json.loads(out)
    assert summary["files"] == 3 and summary["skipped"] == 1
    assert "1 file(s) left out" in err and "silent.wav" in err
