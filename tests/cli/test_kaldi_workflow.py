"""The Kaldi path end to end: data dirs from manifests, train-ubm/enroll/score with --data-dir, Kaldi score files,
the same scores as the CSV path."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.score_formats import read_score_table
from speakerid.data.synth import make_corpus


def test_kaldi_data_dirs_score_like_the_csv_manifests(tmp_path, capsys):
    corpus = make_corpus(tmp_path / "corpus", n_speakers=3, n_utterances=3, enroll_per_speaker=2, n_background=3,
                         n_background_utterances=2, duration_s=(1.0, 1.5), seed=0, show_progress=False)
    kaldi, background = tmp_path / "kaldi", tmp_path / "kaldi-bg"
    assert main(["manifest", "--to-kaldi", str(kaldi), "--from-csv", str(corpus.enroll_csv), "--from-csv",
                 str(corpus.trials_csv)]) in (None, ExitStatus.OK)
    assert main(["manifest", "--to-kaldi", str(background), "--from-csv", str(corpus.background_csv)]) in (
        None, ExitStatus.OK)
    runs = {"csv": (["--manifest", str(corpus.background_csv)], ["--manifest", str(corpus.enroll_csv)],
                    ["--trials", str(corpus.trials_csv)]),
            "kaldi": (["--data-dir", str(background / "enroll")], ["--data-dir", str(kaldi / "enroll")],
                      ["--trials", str(kaldi / "trials"), "--data-dir", str(kaldi / "test")])}
    scores = {}
    for name, (ubm, enroll, trials) in runs.items():
        models = tmp_path / f"models-{name}"
        assert main(["train-ubm", *ubm, "--model-dir", str(models), "--components", "4", "--iterations", "2"]) == 0
        assert main(["enroll", *enroll, "--model-dir", str(models)]) == ExitStatus.OK
        out = tmp_path / f"scores-{name}.txt"
        capsys.readouterr()
        assert main(["score", "--model-dir", str(models), *trials, "--out", str(out), "--out-format", "kaldi",
                     "--norm", "none", "--json"]) == ExitStatus.OK
        summary = json.loads(capsys.readouterr().out)
        assert summary["n_errors"] == 0 and summary["metrics"] is not None
        frame = read_score_table(out, key=kaldi / "trials" if name == "kaldi" else corpus.trials_csv)
        assert frame["target"].sum() == 3                        # labels found through the key
        if name == "kaldi":                                      # Kaldi scores name the test side by utterance id
            assert frame["test"].str.startswith("spk").all() and not frame["test"].str.contains("/").any()
        scores[name] = frame.assign(test=[t.rsplit("/", 1)[-1].removesuffix(".wav").split("-", 1)[-1]
                                          for t in frame["test"]])
    merged = pd.merge(scores["csv"], scores["kaldi"], on=["enroll", "test"], suffixes=("_csv", "_kaldi"))
    assert len(merged) == len(scores["csv"]) == 3 * 3
    np.testing.assert_allclose(merged["score_csv"], merged["score_kaldi"], rtol=1e-6)
