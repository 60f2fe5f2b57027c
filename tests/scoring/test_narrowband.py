"""Narrowband routing of the fused default: telephone-band audio in 16-kHz files is scored by the 8-kHz systems."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from _small import SMALL

from speakerid.data.synth import make_corpus
from speakerid.degrade import degrade
from speakerid.exceptions import BandwidthWarning
from speakerid.scoring.fused import FusedVerifier, read_fusion
from speakerid.scoring.fused_train import train_default
from speakerid.verifier import SpeakerVerifier


def _telephone_copy(path, out, codec="ulaw"):
    """``path`` through a 300-3400 Hz channel and ``codec`` at 8 kHz, written back as a 16-kHz 16-bit WAV."""
    signal, rate = sf.read(str(path), dtype="float32")
    condition = "telephone-16k" if codec == "ulaw" else f"telephone-16k:{codec}"
    result = degrade(signal, rate, condition, random_state=0)
    sf.write(str(out), result.signal, result.sample_rate, subtype="PCM_16")
    return out


@pytest.fixture(scope="module")
def routed(tmp_path_factory):
    """A fused system with narrowband systems, 4 speakers enrolled on wideband audio, telephone copies of every
    test file."""
    root = tmp_path_factory.mktemp("narrowband")
    corpus = make_corpus(root / "corpus", n_speakers=4, n_utterances=4, enroll_per_speaker=2, n_background=14,
                         n_background_utterances=2, duration_s=(2.0, 3.0), seed=0, show_progress=False)
    train_default(corpus.background_csv, root / "m", dev_share=0.45, system_params=SMALL)
    FusedVerifier(root / "m").enroll_manifest(corpus.enroll_csv)
    trials = pd.read_csv(corpus.trials_csv)
    phone = root / "phone"
    phone.mkdir()
    for i, path in enumerate(trials["path"].unique()):
        codec = ("ulaw", "alaw", "gsm")[i % 3]
        _telephone_copy(corpus.trials_csv.parent / path, phone / f"{i:02d}-{codec}.wav", codec)
    mapping = {p: str(phone / f"{i:02d}-{('ulaw', 'alaw', 'gsm')[i % 3]}.wav")
               for i, p in enumerate(trials["path"].unique())}
    return root / "m", corpus, trials, mapping


def test_a_band_limited_16k_file_is_scored_by_the_narrowband_systems(routed):
    model_dir, corpus, trials, mapping = routed
    verifier, narrow = FusedVerifier(model_dir), FusedVerifier(model_dir / "narrowband")
    assert verifier.narrowband is not None and read_fusion(model_dir)["narrowband"]["sample_rate"] == 8000
    for _, row in trials.head(8).iterrows():
        wide_file, phone_file = corpus.trials_csv.parent / row["path"], mapping[row["path"]]
        with warnings.catch_warnings():
            warnings.simplefilter("error", BandwidthWarning)       # routed, so no "loses accuracy" warning
            on_phone = verifier.verify(row["speaker"], phone_file)
            on_wide = verifier.verify(row["speaker"], wide_file)
        assert on_phone["band"] == "narrowband" and on_phone["test_bandwidth_hz"] < 4500
        assert on_phone["llr"] == pytest.approx(narrow.verify(row["speaker"], phone_file)["llr"], rel=1e-6, abs=1e-6)
        assert on_wide["band"] == "wideband" and on_wide["test_bandwidth_hz"] > 4500
    identified = verifier.identify(mapping[trials["path"].iloc[0]], top=4)
    assert {c["band"] for c in identified["candidates"]} == {"narrowband"}


def test_a_speaker_enrolled_on_telephone_audio_is_scored_narrowband_in_every_trial(routed, tmp_path):
    model_dir, corpus, trials, mapping = routed
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    enroll = pd.read_csv(corpus.enroll_csv)
    files = [_telephone_copy(corpus.enroll_csv.parent / p, tmp_path / f"e{i}.wav")
             for i, p in enumerate(enroll.loc[enroll["speaker"] == "spk002", "path"])]
    result = FusedVerifier(copy).enroll("phone-spk002", files)
    assert result["narrowband"] and result["bandwidth_hz"] < 4500
    verifier = FusedVerifier(copy)
    assert verifier.narrowband_speakers() == {"phone-spk002"}
    assert "phone-spk002" in verifier.narrowband.speakers()
    row = trials[trials["speaker"] == "spk002"].iloc[0]
    wide_file = corpus.trials_csv.parent / row["path"]
    assert verifier.verify("phone-spk002", wide_file)["band"] == "narrowband"
    assert verifier.verify("spk002", wide_file)["band"] == "wideband"
    verifier.remove("phone-spk002")
    assert "phone-spk002" not in FusedVerifier(copy).narrowband.speakers()


def test_batch_scoring_routes_row_by_row_and_matches_verify(routed, tmp_path):
    model_dir, corpus, trials, mapping = routed
    mixed = trials.copy()
    phone_rows = mixed.index % 2 == 1
    mixed.loc[phone_rows, "path"] = mixed.loc[phone_rows, "path"].map(mapping)
    mixed.loc[~phone_rows, "path"] = [str(corpus.trials_csv.parent / p) for p in mixed.loc[~phone_rows, "path"]]
    trials_csv = tmp_path / "mixed.csv"
    mixed.to_csv(trials_csv, index=False)
    result = FusedVerifier(model_dir).score_trials(trials_csv, tmp_path / "scores.csv")
    scored = pd.read_csv(tmp_path / "scores.csv")
    assert result.n_errors == 0 and scored["score"].notna().all()
    assert (scored["band"] == np.where(phone_rows, "narrowband", "wideband")).all()
    assert f"narrowband ({phone_rows.sum()} trials)" in result.normalization
    assert f"wideband ({(~phone_rows).sum()} trials)" in result.normalization
    assert list(scored.columns[:2]) == ["speaker", "path"] and (scored["path"] == mixed["path"]).all()
    verifier = FusedVerifier(model_dir)
    for i in (0, 1, 2, 3):
        single = verifier.verify(mixed["speaker"].iloc[i], mixed["path"].iloc[i])
        assert single["band"] == scored["band"].iloc[i]
        assert scored["score"].iloc[i] == pytest.approx(single["llr"], rel=1e-5, abs=1e-5)


def test_without_narrowband_systems_a_band_limited_file_warns_in_every_path(routed, tmp_path):
    """A directory trained with --no-narrowband (or before) and the expert path: a warning naming the measured
    bandwidth and what to do; a wideband file gives none."""
    model_dir, corpus, trials, mapping = routed
    row = trials.iloc[0]
    gmm = SpeakerVerifier(model_dir / "systems" / "gmm-ubm")
    with pytest.warns(BandwidthWarning, match=r"fills 3\.\d kHz of its 8 kHz band .*--sample-rate 8000"):
        gmm.verify(row["speaker"], mapping[row["path"]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", BandwidthWarning)
        gmm.verify(row["speaker"], corpus.trials_csv.parent / row["path"])
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    shutil.rmtree(copy / "narrowband")
    assert FusedVerifier(copy).narrowband is None
    with pytest.warns(BandwidthWarning, match="narrowband, e.g. telephone audio"):
        FusedVerifier(copy).verify(row["speaker"], mapping[row["path"]])


def test_routed_batch_keeps_relative_paths_and_names_the_line_of_an_unscorable_file(routed, tmp_path):
    model_dir, corpus, trials, mapping = routed
    folder = corpus.trials_csv.parent
    silent = folder / "silent-for-routing.wav"
    sf.write(str(silent), np.zeros(8000, dtype=np.float32), 16000)
    rows = trials.head(3)[["speaker", "path", "target"]].copy()
    rows.loc[len(rows)] = ["spk001", silent.name, 0]
    listed = folder / "routed-trials.csv"              # relative paths, resolved against the list's folder
    rows.to_csv(listed, index=False)
    result = FusedVerifier(model_dir).score_trials(listed, tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert list(out["path"]) == list(rows["path"])
    assert result.n_trials == 4 and result.n_errors == 1 and out["error"].iloc[3] != ""
    assert [e.line for e in result.errors] == [5]        # the CSV's line of the silent file (header = line 1)
