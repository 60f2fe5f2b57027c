"""``speakerid train``: one command from a background manifest to a fused directory, stages on stderr."""

from __future__ import annotations

import json

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.synth import make_corpus
from speakerid.scoring.fused import read_fusion


def test_train_command_builds_a_fused_directory_and_prints_dev_figures(tmp_path, capsys):
    corpus = make_corpus(tmp_path / "corpus", n_speakers=2, n_utterances=2, enroll_per_speaker=1, n_background=10,
                         n_background_utterances=2, duration_s=(2.0, 2.5), seed=1, show_progress=False)
    models = tmp_path / "M"
    assert main(["train", "--manifest", str(corpus.background_csv), "--model-dir", str(models), "--systems",
                 "gmm-ubm", "--dev-share", "0.5", "--p-target", "0.2"]) == ExitStatus.OK
    captured = capsys.readouterr()
    assert "speakerid: [1/4] training gmm-ubm on 4 background speakers" in captured.err
    assert "fusion (dev CV)" in captured.out and "actDCF" in captured.out
    spec = read_fusion(models)
    assert spec["systems"] == ["gmm-ubm"] and spec["p_target"] == 0.2 and len(spec["split"]["dev_speakers"]) == 6
    assert main(["train", "--manifest", str(corpus.background_csv), "--model-dir", str(models), "--systems",
                 "gmm-ubm,nope"]) == ExitStatus.USAGE
    assert read_fusion(models)["systems"] == ["gmm-ubm"]           # a refused run leaves the model as it was
    assert main(["speakers", "--model-dir", str(models), "--json"]) == ExitStatus.OK
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"speakers": []}
