"""Multi-condition training copies for ``speakerid train``: real noise, music, babble and rooms; telephone channels
for the narrowband systems; seeded; a copy stays its source's speaker and recording."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from _bank import write_bank_csv
from _small import SMALL

from speakerid.data.synth import make_corpus
from speakerid.degrade import parse_condition
from speakerid.exceptions import ManifestError, ParameterError
from speakerid.scoring.augment_background import (
    CONDITIONS,
    NARROWBAND_CONDITIONS,
    augmented_background,
    load_bank,
)
from speakerid.scoring.fused import FusedVerifier, read_fusion
from speakerid.scoring.fused_train import train_default


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("augment")
    made = make_corpus(root / "corpus", n_speakers=2, n_utterances=2, enroll_per_speaker=1, n_background=12,
                       n_background_utterances=4, duration_s=(2.0, 2.5), seed=3, show_progress=False)
    return made, write_bank_csv(root / "bank")


def _frame(corpus):
    made, _ = corpus
    frame = pd.read_csv(made.background_csv, dtype=str)
    frame["path"] = [str(made.background_csv.parent / p) for p in frame["path"]]
    return frame


def test_every_condition_parses():
    for condition in CONDITIONS + NARROWBAND_CONDITIONS:
        parse_condition(condition)
    assert all("telephone" in c for c in NARROWBAND_CONDITIONS)


@pytest.mark.parametrize("narrowband", [False, True])
def test_copies_keep_speaker_and_recording_and_are_seeded(corpus, tmp_path, narrowband):
    frame = _frame(corpus)
    bank = load_bank(corpus[1], frame["path"])
    out = augmented_background(frame, tmp_path / "a", bank, copies=2, narrowband=narrowband, seed=5)
    assert len(out) == 3 * len(frame) and list(out.columns) == ["speaker", "path", "recording"]
    original, copies = out.iloc[: len(frame)], out.iloc[len(frame):]
    assert (original["recording"] == frame["path"]).all()
    source_speaker = dict(zip(frame["path"], frame["speaker"]))
    assert (copies["recording"].map(source_speaker) == copies["speaker"]).all()
    assert copies["recording"].value_counts().eq(2).all()           # two copies of every file
    rates = {sf.info(p).samplerate for p in copies["path"]}
    assert rates == ({8000} if narrowband else {16000})
    made = pd.concat(pd.read_csv(m) for m in (tmp_path / "a").glob("*/manifest.csv"))
    allowed = set(NARROWBAND_CONDITIONS if narrowband else CONDITIONS)
    assert set(made["condition"]) <= allowed and len(set(made["condition"])) >= 4
    again = augmented_background(frame, tmp_path / "b", bank, copies=2, narrowband=narrowband, seed=5)
    for a, b in zip(copies["path"], again.iloc[len(frame):]["path"]):
        assert open(a, "rb").read() == open(b, "rb").read()


def test_no_copies_and_bad_input(corpus, tmp_path):
    frame = _frame(corpus)
    bank = load_bank(corpus[1])
    assert len(augmented_background(frame, tmp_path, bank, copies=0)) == len(frame)
    with pytest.raises(ParameterError, match="copies"):
        augmented_background(frame, tmp_path, bank, copies=-1)
    noise_only = tmp_path / "noise-only.csv"
    pd.read_csv(corpus[1]).query("kind == 'noise'").assign(
        path=lambda f: [str((corpus[1].parent / p).resolve()) for p in f["path"]]).to_csv(noise_only, index=False)
    with pytest.raises(ParameterError, match="needs noise, music and rir .* no music, rir"):
        load_bank(noise_only)
    with pytest.raises(ManifestError, match="no such noise list"):
        load_bank(tmp_path / "missing.csv")


def test_train_with_a_noise_list_records_the_augmentation_in_both_bands(corpus, tmp_path):
    made, bank_csv = corpus
    result = train_default(made.background_csv, tmp_path / "m", dev_share=0.5, system_params=SMALL,
                           noise_csv=bank_csv, augment_copies=1)
    assert result["n_train_speakers"] == 6 and "augment_s" in result["timings_s"]
    for folder in (tmp_path / "m", tmp_path / "m" / "narrowband"):
        spec = json.loads((folder / "fusion.json").read_text())
        # 6 training speakers x 4 files, each with one copy
        assert spec["augmentation"]["copies"] == 1 and spec["augmentation"]["n_training_files"] == 2 * 4 * 6
        # the calibration also learned real conditions, at 8 kHz through the telephone channel too
        assert {"real-noise", "reverb"} <= set(read_fusion(folder)["dev"])
    assert "telephone" in read_fusion(tmp_path / "m" / "narrowband")["dev"]
    FusedVerifier(tmp_path / "m").enroll_manifest(made.enroll_csv)
    with pytest.raises(ParameterError, match="needs noise, music and rir"):
        empty = tmp_path / "empty.csv"
        empty.write_text("kind,path\nspeech," + str(made.background_csv.parent / pd.read_csv(
            made.background_csv)["path"].iloc[0]) + "\n")
        train_default(made.background_csv, tmp_path / "m2", noise_csv=empty, system_params=SMALL)
    assert not (tmp_path / "m2").exists()                # refused before the directory was made


def test_a_degraded_copy_without_usable_speech_is_left_out_and_said(corpus, tmp_path):
    from speakerid.scoring._train_data import usable_copies

    frame = _frame(corpus)
    silent = tmp_path / "silent-copy.wav"
    sf.write(str(silent), np.zeros(16000, dtype=np.float32), 16000)
    tone = tmp_path / "tone-copy.wav"
    sf.write(str(tone), 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000), 16000)
    rows = frame.head(2).assign(recording=lambda f: f["path"])
    copies = pd.DataFrame({"speaker": rows["speaker"], "path": [str(silent), str(tone)], "recording": rows["path"]})
    said = []
    kept = usable_copies(pd.concat([rows, copies], ignore_index=True), ["gmm-ubm", "ivector"], 16000, 1,
                          said.append)
    assert list(kept["path"]) == list(rows["path"])
    assert said == ["  2 of 2 degraded copies left out (no usable speech left)"]


@pytest.mark.parametrize("copies", [-1, 1.5, True])
def test_train_refuses_a_bad_number_of_copies_before_touching_anything(corpus, tmp_path, copies):
    made, bank_csv = corpus
    with pytest.raises(ParameterError, match="augment_copies must be a non-negative integer"):
        train_default(made.background_csv, tmp_path / "m", noise_csv=bank_csv, augment_copies=copies,
                      system_params=SMALL)
    assert not (tmp_path / "m").exists()


def test_the_command_needs_a_noise_list_for_copies(corpus, tmp_path, capsys):
    from speakerid.cli._common import ExitStatus
    from speakerid.cli.main import main

    made, _ = corpus
    assert main(["train", "--manifest", str(made.background_csv), "--model-dir", str(tmp_path / "m"),
                 "--augment-copies", "2"]) == ExitStatus.USAGE
    assert "--augment-copies needs --noise-csv" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
