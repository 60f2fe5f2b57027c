"""speakerid segments: who spoke when in a synthetic two-speaker recording, written as RTTM and CSV."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import soundfile as sf

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.audio import load_audio
from speakerid.data.manifests import read_manifest
from speakerid.data.rttm import read_rttm
from speakerid.data.synth import make_corpus


def test_rttm_names_both_speakers_in_order_with_boundaries_within_one_hop(tmp_path, capsys):
    corpus = make_corpus(tmp_path / "corpus", n_speakers=3, n_utterances=6, enroll_per_speaker=3, n_background=8,
                         n_background_utterances=3, duration_s=(2.5, 3.0), snr_db=(25.0, 35.0), channel=False,
                         seed=1, show_progress=False)
    models = tmp_path / "models"
    assert main(["train-ubm", "--manifest", str(corpus.background_csv), "--model-dir", str(models),
                 "--components", "32", "--iterations", "5"]) == ExitStatus.OK
    assert main(["enroll", "--manifest", str(corpus.enroll_csv), "--model-dir", str(models)]) == ExitStatus.OK
    tests = read_manifest(corpus.trials_csv, require_target=True)
    tests = tests[tests["target"] == 1]
    first, second = sorted(tests["speaker"].unique())[:2]
    parts = [load_audio(p, sample_rate=16000)[0] for s in (first, second)
             for p in tests.loc[tests["speaker"] == s, "path"]]
    n_first = sum(len(p) for p, s in zip(parts, [first] * 3 + [second] * 3) if s == first)
    change_s = n_first / 16000
    sf.write(str(tmp_path / "meeting.wav"), np.concatenate(parts), 16000)
    capsys.readouterr()
    hop = 1.0
    status = main(["segments", "--model-dir", str(models), str(tmp_path / "meeting.wav"), "--window", "2",
                   "--hop", str(hop), "--threshold", "-1000", "--out", str(tmp_path / "out" / "meeting"), "--json"])
    assert status == ExitStatus.OK
    summary = json.loads(capsys.readouterr().out)
    rttm = read_rttm(tmp_path / "out" / "meeting.rttm")
    assert rttm["speaker"].tolist() == [first, second], rttm
    assert abs(rttm["end_s"].iloc[0] - change_s) <= hop
    assert rttm["start_s"].iloc[0] == 0.0 and rttm["file_id"].iloc[0] == "meeting"
    table = pd.read_csv(tmp_path / "out" / "meeting.csv", dtype={"speaker": str})
    assert table["speaker"].tolist() == [first, second] and summary["threshold"] == -1000
