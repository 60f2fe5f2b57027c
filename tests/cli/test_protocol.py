"""``speakerid protocol``: the happy path in-process (text and --json) and one-line errors with their exit codes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.manifests import read_manifest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """4 speakers x 4 recordings of 1 s noise bursts at 8 kHz, ``manifest.csv`` and a 1-speaker ``impostors.csv``."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(5)
    rows = []
    for s in range(5):
        for r in range(4):
            rel = f"s{s}/r{r}.wav"
            (root / f"s{s}").mkdir(exist_ok=True)
            envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * np.arange(8000) / 8000)
            sf.write(str(root / rel), 0.2 * rng.standard_normal(8000) * envelope, 8000, subtype="PCM_16")
            rows.append((f"s{s}", rel))
    pd.DataFrame(rows[:16], columns=["speaker", "path"]).to_csv(root / "manifest.csv", index=False)
    pd.DataFrame(rows[16:], columns=["speaker", "path"]).to_csv(root / "impostors.csv", index=False)
    pd.DataFrame({"speaker": ["s3"], "path": ["x.wav"]}).to_csv(root / "train.csv", index=False)
    return root


def test_protocol_command_writes_and_reports(corpus, tmp_path, capsys):
    args = ["protocol", "--manifest", str(corpus / "manifest.csv"), "--out-dir", str(tmp_path), "--enroll-utts", "2",
            "--test-duration", "0.5", "--impostors", str(corpus / "impostors.csv"), "--exclude",
            str(corpus / "train.csv"), "--seed", "3"]
    assert main([*args, "--json"]) == ExitStatus.OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_speakers"] == summary["n_models"] == 3 and summary["excluded"] == ["s3"]
    # 3 speakers x 2 tests: 6 target, 6 x 2 other models, 4 impostor files x 3 models
    assert (summary["n_target"], summary["n_nontarget"], summary["n_impostor_trials"]) == (6, 12 + 12, 12)
    trials = read_manifest(summary["trials_csv"], require_target=True)     # every path resolves
    enroll = read_manifest(summary["enroll_csv"])
    assert len(trials) == 30 and set(enroll["speaker"]) == {"s0", "s1", "s2"}

    assert main([*args, "--name", "text"]) == ExitStatus.OK
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"wrote {tmp_path / 'text-enroll.csv'} (3 models of 3 speakers)"
    assert out[1] == f"wrote {tmp_path / 'text-trials.csv'} (6 target and 24 non-target trials, 12 of them " \
                     "impostor trials)"
    assert out[2] == "excluded 1 training speaker(s): s3"
    assert (tmp_path / "text-trials.csv").read_bytes() == (tmp_path / "protocol-trials.csv").read_bytes().replace(
        b"protocol-audio", b"text-audio")


def test_protocol_command_reports_skipped_speakers(corpus, tmp_path, capsys):
    assert main(["protocol", "--manifest", str(corpus / "manifest.csv"), "--out-dir", str(tmp_path),
                 "--enroll-utts", "3", "--enroll-sets", "2", "--nontarget-per-test", "1"]) == ExitStatus.OK
    assert "(8 models of 4 speakers)" in capsys.readouterr().out
    assert main(["protocol", "--manifest", str(corpus / "manifest.csv"), "--out-dir", str(tmp_path),
                 "--enroll-seconds", "3.5", "--impostors", str(corpus / "impostors.csv")]) == ExitStatus.USAGE
    assert "4 skipped" in capsys.readouterr().err


@pytest.mark.parametrize("text, status, message", [
    ("speaker,file\ns0,s0/r0.wav\n", ExitStatus.MANIFEST, "missing column(s) path"),
    ("speaker,path\ns0,s0/r0.wav\ns0,s0/missing.wav\n", ExitStatus.MANIFEST, "1 audio file(s) not found: line 3"),
    ("speaker,path\ns0,s0/r0.wav\ns0,s0/r1.wav\ns1,s1/r0.wav\ns1,s1/r1.wav\n", ExitStatus.USAGE,
     "0 speaker(s) left to evaluate (2 in the manifest, 0 excluded, 2 skipped: 2 "),
])
def test_bad_manifest(corpus, tmp_path, capsys, text, status, message):
    (tmp_path / "bad.csv").write_text(text)
    for name in ("s0", "s1"):
        (tmp_path / name).symlink_to(corpus / name)
    assert main(["protocol", "--manifest", str(tmp_path / "bad.csv"), "--out-dir", str(tmp_path / "o")]) == status
    err = capsys.readouterr().err.strip()
    assert err.startswith("speakerid: error: ") and message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("extra, message", [
    (["--enroll-utts", "0"], "argument --enroll-utts: must be >= 1"),
    (["--enroll-utts", "2", "--enroll-seconds", "3"], "not allowed with argument"),
    (["--test-duration", "nan"], "argument --test-duration: must be a finite number"),
    (["--test-duration", "0"], "--test-duration must be a finite number of seconds >= 0.025"),
    (["--enroll-seconds", "-2"], "--enroll-seconds must be a finite number of seconds"),
    (["--sample-rate", "100"], "--sample-rate must be a whole number >= 4000"),
    (["--seed", "-1"], "argument --seed: must be between 0"),
    (["--jobs", "0"], "argument --jobs/-j: must not be 0"),
    (["--name", "a/b"], "--name must be a file-name prefix"),
])
def test_bad_numbers(corpus, tmp_path, capsys, extra, message):
    status = main(["protocol", "--manifest", str(corpus / "manifest.csv"), "--out-dir", str(tmp_path), *extra])
    assert status == ExitStatus.USAGE
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_impostor_overlap_is_a_manifest_error(corpus, tmp_path, capsys):
    status = main(["protocol", "--manifest", str(corpus / "manifest.csv"), "--out-dir", str(tmp_path),
                   "--impostors", str(corpus / "manifest.csv")])
    assert status == ExitStatus.MANIFEST
    assert "impostor speaker(s) are also evaluated speakers" in capsys.readouterr().err


def test_protocol_command_with_conditions(corpus, tmp_path, capsys):
    (tmp_path / "noise.csv").write_text("kind,path,licence\nnoise,s4/r0.wav,CC0\n")
    (tmp_path / "s4").symlink_to(corpus / "s4")
    args = ["protocol", "--manifest", str(corpus / "manifest.csv"), "--out-dir", str(tmp_path / "o"),
            "--enroll-seconds", "1.5", "--enroll-condition", "reverb-sim", "--test-condition", "noise@10",
            "--noise-csv", str(tmp_path / "noise.csv"), "--sample-rate", "16000", "--jobs", "2", "--json"]
    assert main(args) == ExitStatus.OK
    summary = json.loads(capsys.readouterr().out)
    trials = pd.read_csv(summary["trials_csv"])
    enroll = pd.read_csv(summary["enroll_csv"])
    assert set(trials["condition"]) == {"noise@10"} and trials["record"].str.contains('"noise@10"').all()
    assert enroll["record"].str.contains('"reverb-sim"').all() and summary["n_models"] == 4
    assert all(sf.info(str(tmp_path / "o" / p)).samplerate == 16000 for p in enroll["path"])
    assert main([*args[:-3], "--test-condition", "noise@", "--out-dir", str(tmp_path / "x")]) == ExitStatus.USAGE
    assert "'noise' needs a value: noise@SNR" in capsys.readouterr().err
    assert main([*args[:7], "--test-condition", "music@5", "--noise-csv", str(tmp_path / "noise.csv")]) \
        == ExitStatus.USAGE
    assert "needs music recordings" in capsys.readouterr().err


def test_the_commands_default_crop_speech_is_the_builders():
    from speakerid.cli import protocol as cli_protocol
    from speakerid.evaluation import protocols

    assert cli_protocol.MIN_TEST_SPEECH_S == protocols.MIN_TEST_SPEECH_S
