"""Kaldi data directories written from manifests (C-sorted, speaker-prefixed ids) and read back as manifests."""

from __future__ import annotations

import pytest
from conftest import write_tone

from speakerid.data.kaldi import c_sorted, read_data_dir
from speakerid.data.kaldi_manifests import (
    data_dir_manifest,
    kaldi_trials_manifest,
    write_data_dir,
    write_kaldi_trials,
)
from speakerid.data.manifests import read_manifest
from speakerid.exceptions import ManifestError, ParameterError


def _manifest(tmp_path, rows):
    for _, rel in rows:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        write_tone(tmp_path / rel, freq_hz=200 + 10 * len(rel))
    (tmp_path / "m.csv").write_text("speaker,path\n" + "".join(f"{s},{p}\n" for s, p in rows))
    return read_manifest(tmp_path / "m.csv")


def test_written_data_dir_reads_back_to_the_same_manifest(tmp_path):
    manifest = _manifest(tmp_path, [("bob", "b/1.wav"), ("ann", "a/1.wav"), ("ann", "a/x/1.wav"),
                                    ("1688", "l/1688-142285-0007.wav"), ("B", "c/2.wav")])
    write_data_dir(manifest, tmp_path / "kaldi")
    back = read_data_dir(tmp_path / "kaldi")
    key = ["speaker", "path"]
    assert sorted(map(tuple, back[key].to_numpy())) == sorted(map(tuple, manifest[key].to_numpy()))
    # utterance ids prefixed by the speaker (unless they already are), unique, C-sorted everywhere
    assert set(back.index) == {"bob-1", "ann-1", "ann-1-2", "1688-142285-0007", "B-2"}
    for name in ("wav.scp", "utt2spk", "spk2utt"):
        keys = [line.split()[0] for line in (tmp_path / "kaldi" / name).read_text().splitlines()]
        assert keys == c_sorted(keys) and len(set(keys)) == len(keys)
    utt2spk = [line.split() for line in (tmp_path / "kaldi" / "utt2spk").read_text().splitlines()]
    assert utt2spk == sorted(utt2spk, key=lambda us: (us[1].encode(), us[0].encode()))  # sort -k2 agrees
    assert (tmp_path / "kaldi" / "spk2utt").read_text().splitlines()[-1] == "bob bob-1"


def test_write_refuses_whitespace_speakers_and_interleaving_ids(tmp_path):
    manifest = _manifest(tmp_path, [("a", "z.wav"), ("a-b", "1.wav")])
    with pytest.raises(ParameterError, match="rename the speakers"):
        write_data_dir(manifest, tmp_path / "k")
    manifest = _manifest(tmp_path, [("ann lee", "1.wav")])
    with pytest.raises(ParameterError, match="whitespace"):
        write_data_dir(manifest, tmp_path / "k")


def test_data_dir_and_kaldi_trials_as_manifests(tmp_path):
    manifest = _manifest(tmp_path, [("ann", "a/1.wav"), ("bob", "b/1.wav")])
    written = write_data_dir(manifest, tmp_path / "test")
    as_manifest = data_dir_manifest(tmp_path / "test")
    assert as_manifest["speaker"].tolist() == ["ann", "bob"] and as_manifest["utterance"].tolist() == ["ann-1", "bob-1"]
    trials = manifest.assign(target=[1, 0]).reset_index(drop=True)
    write_kaldi_trials(trials, dict(zip(written["path"], written.index)), tmp_path / "trials")
    assert (tmp_path / "trials").read_text() == "ann ann-1 target\nbob bob-1 nontarget\n"
    back = kaldi_trials_manifest(tmp_path / "trials", tmp_path / "test")
    assert back[["speaker", "path", "target"]].values.tolist() == trials[["speaker", "path", "target"]].values.tolist()
    assert back["utterance"].tolist() == ["ann-1", "bob-1"]
    (tmp_path / "test" / "segments").write_text("ann-1 ann-1 0 0.5\nbob-1 bob-1 0 -1\n")
    with pytest.raises(ManifestError, match="utterances are segments"):
        data_dir_manifest(tmp_path / "test")
    (tmp_path / "test" / "segments").unlink()
    (tmp_path / "bad").write_text("ann ann-1 yes\n")
    with pytest.raises(ManifestError, match="line 1: expected"):
        kaldi_trials_manifest(tmp_path / "bad", tmp_path / "test")


def test_shared_librispeech_manifest_to_kaldi_and_back(shared_dir, tmp_path):
    manifest = read_manifest(shared_dir / "protocols" / "librispeech-test-other-enroll.csv")
    written = write_data_dir(manifest, tmp_path / "enroll")
    assert written.index[0].startswith(written["speaker"].iloc[0] + "-")  # LibriSpeech ids kept as they are
    back = read_data_dir(tmp_path / "enroll")
    assert sorted(zip(back["speaker"], back["path"])) == sorted(zip(manifest["speaker"], manifest["path"]))
