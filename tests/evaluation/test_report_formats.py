"""evaluate on the field's score formats, at several priors, without a report folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speakerid.cli.main import main
from speakerid.data.score_formats import ScoreWriter
from speakerid.evaluation.metrics import min_dcf
from speakerid.evaluation.report import evaluate


@pytest.fixture
def scored(tmp_path, rng):
    labels = np.r_[np.ones(40, int), np.zeros(160, int)]
    scores = rng.normal(size=200) + 1.5 * labels
    frame = pd.DataFrame({"enroll": [f"m{i % 7}" for i in range(200)], "test": [f"t{i}.wav" for i in range(200)],
                          "target": labels, "score": scores})
    frame.to_csv(tmp_path / "scores.csv", index=False)
    frame[["enroll", "test", "target"]].to_csv(tmp_path / "key.csv", index=False)
    for fmt in ("kaldi", "voxceleb", "nist"):
        with ScoreWriter(tmp_path / f"scores.{fmt}", fmt) as writer:
            writer.write(frame)
    return tmp_path, scores, labels


def test_every_format_gives_the_csv_metrics_at_every_prior(scored):
    folder, scores, labels = scored
    files = [folder / "scores.csv", folder / "scores.kaldi", folder / "scores.voxceleb", folder / "scores.nist"]
    result = evaluate(files, None, p_target=[0.01, 0.001, 0.05], key=folder / "key.csv",
                      names=["csv", "kaldi", "voxceleb", "nist"])
    assert result["out_dir"] is None and result["files"] is None and result["p_targets"] == [0.01, 0.001, 0.05]
    first = result["systems"][0]
    for system in result["systems"][1:]:
        assert system["eer"] == pytest.approx(first["eer"], abs=1e-9)
        assert [o["min_dcf"] for o in system["operating_points"]] == pytest.approx(
            [o["min_dcf"] for o in first["operating_points"]], abs=1e-9)
    assert first["operating_points"][1]["min_dcf"] == pytest.approx(min_dcf(scores, labels, 0.001))


def test_evaluate_cli_without_out_dir_and_with_repeated_priors(scored, capsys):
    folder, _, _ = scored
    assert main(["evaluate", "--scores", str(folder / "scores.kaldi"), "--key", str(folder / "key.csv"),
                 "--p-target", "0.01", "--p-target", "0.05"]) in (None, 0)
    out = capsys.readouterr().out
    assert "C_miss = C_fa = 1" in out and "0.05" in out and "report:" not in out
    assert main(["evaluate", "--scores", str(folder / "scores.kaldi")]) == 4   # no labels, no key
    assert "--key" in capsys.readouterr().err
