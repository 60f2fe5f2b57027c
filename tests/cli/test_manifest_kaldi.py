"""speakerid manifest --to-kaldi: Kaldi data directories and trials beside the CSV manifests, read back equal."""

from __future__ import annotations

import json

from conftest import write_tone

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.kaldi import read_data_dir
from speakerid.data.kaldi_manifests import kaldi_trials_manifest
from speakerid.data.manifests import read_manifest


def _folder(root):
    for speaker in ("ann", "bob", "cy"):
        (root / speaker).mkdir(parents=True)
        for k in range(4):
            write_tone(root / speaker / f"{speaker}_{k}.wav", freq_hz=150 + 40 * k)
    return root


def test_manifest_to_kaldi_reads_back_to_the_same_manifests(tmp_path, capsys):
    audio = _folder(tmp_path / "audio")
    status = main(["manifest", str(audio), "--enroll", "2", "--out", str(tmp_path / "proto"), "--to-kaldi",
                   str(tmp_path / "kaldi"), "--json"])
    assert status in (None, ExitStatus.OK)
    kaldi = json.loads(capsys.readouterr().out)["kaldi"]
    enroll = read_manifest(tmp_path / "proto-enroll.csv")
    back = read_data_dir(kaldi["enroll"])
    assert sorted(zip(back["speaker"], back["path"])) == sorted(zip(enroll["speaker"], enroll["path"]))
    trials = read_manifest(tmp_path / "proto-trials.csv", require_target=True)
    from_kaldi = kaldi_trials_manifest(kaldi["trials"], kaldi["test"])
    assert from_kaldi[["speaker", "path", "target"]].values.tolist() == trials[["speaker", "path", "target"]].values.tolist()
    test = read_data_dir(kaldi["test"])
    assert set(test["speaker"]) == {"ann", "bob", "cy"}   # each test file under its true speaker


def test_from_csv_converts_the_shared_protocol(shared_dir, tmp_path, capsys):
    protocols = shared_dir / "protocols"
    assert main(["manifest", "--to-kaldi", str(tmp_path / "k"), "--from-csv",
                 str(protocols / "librispeech-test-other-enroll.csv"), "--from-csv",
                 str(protocols / "librispeech-test-other-trials.csv")]) in (None, ExitStatus.OK)
    assert "700 trials" in capsys.readouterr().out
    assert len((tmp_path / "k" / "trials").read_text().splitlines()) == 700


def test_from_csv_needs_to_kaldi(tmp_path, capsys):
    assert main(["manifest", "--from-csv", str(tmp_path / "e.csv")]) == ExitStatus.USAGE
