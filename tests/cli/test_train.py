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
    assert "speakerid: [1/5] training gmm-ubm on 4 background speakers" in captured.err
    assert "speakerid: [4/5] training the narrowband systems (8000 Hz)" in captured.err
    assert "fusion (dev CV)" in captured.out and "actDCF" in captured.out
    assert "narrowband systems (8 kHz, for telephone-band audio)" in captured.out
    assert read_fusion(models / "narrowband")["sample_rate"] == 8000
    spec = read_fusion(models)
    assert spec["systems"] == ["gmm-ubm"] and spec["p_target"] == 0.2 and len(spec["split"]["dev_speakers"]) == 6
    assert main(["train", "--manifest", str(corpus.background_csv), "--model-dir", str(models), "--systems",
                 "gmm-ubm,nope"]) == ExitStatus.USAGE
    assert read_fusion(models)["systems"] == ["gmm-ubm"]           # a refused run leaves the model as it was
    assert main(["speakers", "--model-dir", str(models), "--json"]) == ExitStatus.OK
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"speakers": []}


def test_train_with_a_cache_keeps_the_features_and_a_rerun_gives_the_same_models(tmp_path, capsys):
    """--cache: the GMM-UBM and i-vector trainers share one feature store that outlives the run; a second run
    reads it (nothing re-extracted) and gives the same fusion."""
    import numpy as np

    corpus = make_corpus(tmp_path / "corpus", n_speakers=2, n_utterances=2, enroll_per_speaker=1, n_background=10,
                         n_background_utterances=2, duration_s=(2.0, 2.5), seed=2, show_progress=False)
    cache = tmp_path / "features"
    args = ["train", "--manifest", str(corpus.background_csv), "--systems", "gmm-ubm", "--dev-share", "0.5",
            "--cache", str(cache), "--jobs", "1"]
    assert main(args + ["--model-dir", str(tmp_path / "A")]) == ExitStatus.OK
    stored = sorted(p.relative_to(cache) for p in cache.rglob("*.npy"))
    assert stored, "the feature store was not kept"
    mtimes = {p: (cache / p).stat().st_mtime_ns for p in stored}
    assert main(args + ["--model-dir", str(tmp_path / "B")]) == ExitStatus.OK
    assert {p: (cache / p).stat().st_mtime_ns for p in stored} == mtimes      # read, not written again
    a, b = read_fusion(tmp_path / "A"), read_fusion(tmp_path / "B")
    for variant in a["fusions"]:
        np.testing.assert_allclose(a["fusions"][variant].weights_, b["fusions"][variant].weights_, rtol=1e-6)
    capsys.readouterr()


def test_retraining_is_refused_before_anything_changes(tmp_path, capsys):
    """A directory with enrolled speakers is refused without --force, a rate the front end cannot use is refused
    before the directory is touched, and an expert directory is never trained into."""
    corpus = make_corpus(tmp_path / "corpus", n_speakers=2, n_utterances=2, enroll_per_speaker=1, n_background=10,
                         n_background_utterances=2, duration_s=(2.0, 2.5), seed=3, show_progress=False)
    models = tmp_path / "M"
    train = ["train", "--manifest", str(corpus.background_csv), "--model-dir", str(models), "--systems", "gmm-ubm",
             "--dev-share", "0.5", "--jobs", "1"]
    assert main(train) == ExitStatus.OK
    assert main(["enroll", "--manifest", str(corpus.enroll_csv), "--model-dir", str(models)]) == ExitStatus.OK
    before = sorted(p.relative_to(models) for p in models.rglob("*"))
    capsys.readouterr()
    for extra, message in ((["--sample-rate", "22050"], "--sample-rate 22050"),
                           ([], "2 speaker(s) are enrolled"),
                           (["--force", "--sample-rate", "22050"], "--sample-rate 22050")):
        assert main(train + extra) == ExitStatus.USAGE
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert sorted(p.relative_to(models) for p in models.rglob("*")) == before
    assert main(train + ["--force"]) == ExitStatus.OK
    assert main(["speakers", "--model-dir", str(models), "--json"]) == ExitStatus.OK
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"speakers": []}

    expert = tmp_path / "E"
    assert main(["train-ubm", "--manifest", str(corpus.background_csv), "--model-dir", str(expert), "--components",
                 "4", "--iterations", "2", "--jobs", "1"]) == ExitStatus.OK
    capsys.readouterr()
    assert main(["train", "--manifest", str(corpus.background_csv), "--model-dir", str(expert)]) == ExitStatus.USAGE
    assert "holds models of the expert commands (ubm.npz)" in capsys.readouterr().err
    assert not (expert / "systems").exists()


def test_train_in_a_log_shows_each_trainers_em_iterations_and_no_per_file_lines(tmp_path, capsys, monkeypatch):
    """Not on a terminal (a log, CI), a long ``train`` reports its stages, the GMM-UBM and i-vector trainers' EM
    iterations, and the development enrollment per speaker list, never one line per speaker's file."""
    from speakerid._utils import progress as progress_module

    monkeypatch.setattr(progress_module, "ALIVE_AFTER_S", 0.0)    # "long" from the start
    corpus = make_corpus(tmp_path / "corpus", n_speakers=2, n_utterances=2, enroll_per_speaker=1, n_background=10,
                         n_background_utterances=2, duration_s=(2.0, 2.5), seed=1, show_progress=False)
    assert main(["train", "--manifest", str(corpus.background_csv), "--model-dir", str(tmp_path / "M"),
                 "--dev-share", "0.5", "--jobs", "1"]) == ExitStatus.OK
    err = capsys.readouterr().err
    # the GMM-UBM's UBM and the i-vector system's, in the wideband and in the narrowband systems
    assert err.count("DiagGMM EM iteration 1/") == 4
    assert "TotalVariability EM iteration 1/" in err
    assert "speakerid: enroll: done, 6 speaker(s)" in err
    assert not [line for line in err.splitlines() if line.startswith("speakerid: enroll ")]   # "enroll <speaker>:"
