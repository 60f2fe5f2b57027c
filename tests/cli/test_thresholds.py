"""speakerid set-threshold: a threshold chosen by FAR on dev scores gives that FAR on them; verify says whence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_model_dir

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.verifier import SpeakerVerifier


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("threshold")
    models, corpus = tiny_model_dir(root)
    assert main(["enroll", "--manifest", str(corpus.enroll_csv), "--model-dir", str(models)]) == ExitStatus.OK
    assert main(["score", "--model-dir", str(models), "--trials", str(corpus.trials_csv), "--out",
                 str(root / "dev.csv")]) == ExitStatus.OK     # verify's scale: the same default normalisation
    return models, corpus, root / "dev.csv"


@pytest.mark.parametrize("far", [0.0, 0.25, 0.5])
def test_threshold_by_far_gives_that_far_on_the_same_scores(scored, far, capsys):
    models, _, dev = scored
    capsys.readouterr()
    assert main(["set-threshold", "--model-dir", str(models), "--scores", str(dev), "--criterion", f"far={far}",
                 "--json"]) == ExitStatus.OK
    chosen = json.loads(capsys.readouterr().out)
    frame = pd.read_csv(dev)
    nontarget = frame.loc[frame["target"] == 0, "score"].to_numpy()
    stored = SpeakerVerifier(models).threshold
    assert stored == chosen["threshold"] and chosen["criterion"] == f"far={far}"
    measured = float(np.mean(nontarget >= stored))
    assert measured == pytest.approx(chosen["far"]) and measured <= far


def test_verify_uses_the_stored_threshold_and_says_so(scored, capsys):
    models, corpus, dev = scored
    assert main(["set-threshold", "--model-dir", str(models), "--scores", str(dev), "--criterion", "eer"]) == 0
    capsys.readouterr()
    trial = pd.read_csv(corpus.trials_csv).iloc[0]
    audio = str(corpus.trials_csv.parent / trial["path"])
    assert main(["verify", "--model-dir", str(models), "--speaker", str(trial["speaker"]), audio]) in (0, None)
    out = capsys.readouterr().out
    assert "set-threshold eer" in out and "dev.csv" in out


def test_bad_criterion_and_unlabelled_scores(scored, tmp_path, capsys):
    models, _, dev = scored
    assert main(["set-threshold", "--model-dir", str(models), "--scores", str(dev), "--criterion", "far=2"]) == 2
    (tmp_path / "s.txt").write_text("a b 1.0\n")
    assert main(["set-threshold", "--model-dir", str(models), "--scores", str(tmp_path / "s.txt")]) == 4
    assert "--key" in capsys.readouterr().err


def test_a_threshold_of_raw_dev_scores_is_refused_for_normalised_verify(scored, tmp_path, capsys):
    import shutil

    models, corpus, _ = scored
    shutil.copytree(models, tmp_path / "m")
    raw = tmp_path / "raw.csv"
    assert main(["score", "--model-dir", str(tmp_path / "m"), "--trials", str(corpus.trials_csv), "--out", str(raw),
                 "--norm", "none"]) == ExitStatus.OK
    assert main(["set-threshold", "--model-dir", str(tmp_path / "m"), "--scores", str(raw), "--norm", "none"]) == 0
    trial = pd.read_csv(corpus.trials_csv).iloc[0]
    audio = str(corpus.trials_csv.parent / trial["path"])
    capsys.readouterr()
    assert main(["verify", "--model-dir", str(tmp_path / "m"), "--speaker", str(trial["speaker"]), audio,
                 "--norm", "none"]) in (0, None)
    assert "none scores" in capsys.readouterr().out
    assert main(["verify", "--model-dir", str(tmp_path / "m"), "--speaker", str(trial["speaker"]), audio]) == 6
    assert "set for 'none' scores" in capsys.readouterr().err
