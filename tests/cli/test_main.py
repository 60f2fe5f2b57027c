"""The command line in-process: exit codes, one-line errors, --json output."""

from __future__ import annotations

import json

import pytest

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.manifests import read_manifest


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_help_and_version(capsys):
    status, _, err = _run(capsys)
    assert status == ExitStatus.USAGE and "train-ubm" in err
    status, out, _ = _run(capsys, "--version")
    assert status == ExitStatus.OK and out.startswith("speakerid ")
    status, _, err = _run(capsys, "verify", "--bogus")
    assert status == ExitStatus.USAGE and len(err.strip().splitlines()) == 1
    # an option the command does not have: the hint is that command's help
    status, _, err = _run(capsys, "score", "--model-dir", "m", "--trials", "t", "--out", "o", "--sample-rate", 8000)
    assert status == ExitStatus.USAGE and err.strip() == ("speakerid score: unrecognized arguments: --sample-rate "
                                                          "8000 (see 'speakerid score --help')")
    status, _, err = _run(capsys, "--bogus")
    assert status == ExitStatus.USAGE and err.strip().endswith("(see 'speakerid --help')")


def test_help_imports_no_scoring_or_signal_code():
    """`speakerid --help` builds every subcommand's parser; none may import the code the commands run (the verifier,
    the front end's scipy.fft, scikit-learn, pandas, joblib): each costs start-up on every command."""
    import subprocess
    import sys

    heavy = ("speakerid.verifier", "speakerid.features.pipeline", "scipy.fft", "scipy.signal", "scipy.stats", "tqdm",
             "sklearn", "pandas", "joblib", "flask", "dask", "matplotlib")
    code = ("import sys\nfrom speakerid.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_train_enroll_verify_identify_speakers_remove(capsys, synth_corpus, tmp_path):
    models = tmp_path / "models"
    status, out, err = _run(capsys, "train-ubm", "--manifest", synth_corpus.background_csv, "--model-dir", models,
                            "--components", 8, "--iterations", 3)
    assert status == ExitStatus.OK, err
    assert "8-component UBM" in out
    status, out, err = _run(capsys, "enroll", "--manifest", synth_corpus.enroll_csv, "--model-dir", models, "--json")
    assert status == ExitStatus.OK, err
    enrolled = json.loads(out)["enrolled"]
    assert sorted(e["speaker"] for e in enrolled) == sorted(synth_corpus.speakers)

    trial = read_manifest(synth_corpus.trials_csv, require_target=True).iloc[0]
    status, out, err = _run(capsys, "verify", "--model-dir", models, "--speaker", trial["speaker"], trial["path"],
                            "--json", "--threshold", "-1000")
    assert status == ExitStatus.OK, err
    result = json.loads(out)
    assert result["accepted"] is True and result["decision"] == "accept" and result["threshold"] == -1000
    status, out, _ = _run(capsys, "verify", "--model-dir", models, "--speaker", trial["speaker"], trial["path"])
    assert out.startswith(("ACCEPT", "REJECT"))

    status, out, err = _run(capsys, "identify", "--model-dir", models, trial["path"], "--top", 2, "--json")
    assert status == ExitStatus.OK, err
    ranked = json.loads(out)
    assert len(ranked["candidates"]) == 2 and "best" in ranked

    status, out, _ = _run(capsys, "speakers", "--model-dir", models, "--json")
    assert len(json.loads(out)["speakers"]) == len(synth_corpus.speakers)

    # score's default is every core (threads): the same file, byte for byte, as --jobs 1
    outputs = {}
    for extra in ((), ("--jobs", 1)):
        outputs[extra] = tmp_path / f"scores{len(extra)}.csv"
        status, out, err = _run(capsys, "score", "--model-dir", models, "--trials", synth_corpus.trials_csv, "--out",
                                outputs[extra], *extra)
        assert status == ExitStatus.OK, err
        assert ("[serial]" in out) == bool(extra), out
    assert outputs[()].read_bytes() == outputs[("--jobs", 1)].read_bytes()
    status, out, _ = _run(capsys, "remove", "--model-dir", models, "--speaker", synth_corpus.speakers[0])
    assert status == ExitStatus.OK
    status, out, _ = _run(capsys, "speakers", "--model-dir", models)
    assert synth_corpus.speakers[0] not in out

    status, _, err = _run(capsys, "verify", "--model-dir", models, "--speaker", synth_corpus.speakers[0],
                          trial["path"])
    assert status == ExitStatus.UNKNOWN_SPEAKER and err.count("\n") == 1 and synth_corpus.speakers[0] in err


@pytest.mark.parametrize("argv, status, needle", [
    (["enroll", "--model-dir", "{tmp}/m", "--manifest", "{tmp}/missing.csv"], ExitStatus.MANIFEST, "missing.csv"),
    (["verify", "--model-dir", "{tmp}/m", "--speaker", "x", "{tmp}/nothing.wav"], ExitStatus.AUDIO, "nothing.wav"),
    (["enroll", "--model-dir", "{tmp}/m", "--speaker", "x", "{wav}"], ExitStatus.NOT_FITTED, "train-ubm"),
    (["enroll", "--model-dir", "{tmp}/m", "--speaker", "../evil", "{wav}"], ExitStatus.USAGE, "../evil"),
    (["enroll", "--model-dir", "{tmp}/m"], ExitStatus.USAGE, "nothing to enroll"),
    # a model directory that does not exist: one message whatever the command (it was four different ones)
    (["enroll", "--model-dir", "{tmp}/typo", "--speaker", "x", "{wav}"], ExitStatus.USAGE, "no such model directory"),
    (["verify", "--model-dir", "{tmp}/typo", "--speaker", "x", "{wav}"], ExitStatus.USAGE, "no such model directory"),
    (["identify", "--model-dir", "{tmp}/typo", "{wav}"], ExitStatus.USAGE, "no such model directory"),
    (["speakers", "--model-dir", "{tmp}/typo"], ExitStatus.USAGE, "no such model directory"),
    (["score", "--model-dir", "{tmp}/typo", "--trials", "{wav}", "--out", "{tmp}/s.csv"], ExitStatus.USAGE,
     "no such model directory"),
])
def test_errors_are_one_line_with_exit_codes(capsys, tmp_path, synth_corpus, argv, status, needle):
    wav = read_manifest(synth_corpus.enroll_csv).iloc[0]["path"]
    (tmp_path / "m").mkdir()                      # a new, empty model directory
    argv = [a.format(tmp=tmp_path, wav=wav) for a in argv]
    got, out, err = _run(capsys, *argv)
    assert got == status, err
    assert err.startswith("speakerid") and err.count("\n") == 1 and needle in err
    got, _, err = _run(capsys, "--traceback", *argv)
    assert got == status and "Traceback" in err


@pytest.mark.parametrize("scale,threshold_text,row", [("llr", "threshold 0.00:", ["1.", "alice", "1.23", "P", "=", "0.77"]),
                                                     ("gmm-ubm", "threshold 0.0000:", ["1.", "alice", "1.2346"])])
def test_identify_prints_each_scale_as_verify_does(capsys, monkeypatch, tmp_path, scale, threshold_text, row):
    """Calibrated LLRs with 2 decimals (their Bayes threshold 0.00), raw scores with 4, in every line."""
    from speakerid.cli import models as cli_models

    result = {"scale": scale, "rejected": False, "best": "alice", "threshold": 0.0, "threshold_source": "stored",
              "posterior": 0.77, "p_target": 0.5, "candidates": [{"speaker": "alice", "score": 1.23456,
                                                                    "posterior": 0.77}]}

    class Stub:
        def identify(self, *args, **kwargs):
            return result

    monkeypatch.setattr(cli_models, "_verifier", lambda args, **kwargs: Stub())
    status, out, _ = _run(capsys, "identify", "--model-dir", tmp_path, tmp_path / "x.wav")
    assert status == ExitStatus.OK
    first, candidate = out.splitlines()
    assert threshold_text in first and candidate.split() == row


def test_only_the_per_speaker_gmm_backend_starts_a_model_directory_at_enroll(capsys, tmp_path, synth_corpus):
    wav = read_manifest(synth_corpus.enroll_csv).iloc[0]["path"]
    status, _, err = _run(capsys, "enroll", "--model-dir", tmp_path / "new", "--speaker", "x", wav)
    assert status == ExitStatus.USAGE and "no such model directory" in err and not (tmp_path / "new").exists()
    status, out, err = _run(capsys, "enroll", "--model-dir", tmp_path / "new", "--backend", "gmm", "--speaker", "x",
                            wav)
    assert status == ExitStatus.OK, err
    assert "enrolled x: 1 file(s)" in out and (tmp_path / "new").is_dir()
