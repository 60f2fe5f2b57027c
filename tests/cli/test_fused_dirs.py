"""Commands that use one system's model directory, given a directory of ``speakerid train``: refused with advice
(exit 2, one line) before anything is read or written; the advice names what works instead."""

from __future__ import annotations

import shutil

import pytest

from speakerid import pretrained
from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main

pytestmark = pytest.mark.skipif(not (pretrained.SHIPPED_DIR / "fusion.json").is_file(),
                                reason="this checkout has no shipped model")


@pytest.fixture(scope="module")
def fused_dir(tmp_path_factory):
    """A writable copy of the shipped model: a directory as 'speakerid train' makes it."""
    target = tmp_path_factory.mktemp("fused") / "M"
    shutil.copytree(pretrained.SHIPPED_DIR, target, ignore=shutil.ignore_patterns("SHIPPED.txt"))
    return target


@pytest.mark.parametrize(("argv", "advice"), [
    (["score-pairs", "--pairs", "p.csv", "--out", "o.csv"], "/systems/NAME for one system's own scores"),
    (["embed", "--manifest", "m.csv", "--out", "e.npz"], "/systems/ivector (i-vectors)"),
    (["train-ubm", "--manifest", "m.csv"], "'speakerid train --model-dir"),
    (["train-ivector", "--manifest", "m.csv"], "'speakerid train --model-dir"),
    (["enroll", "--backend", "gmm-ubm", "--speaker", "x", "a.wav"], "enroll without --backend"),
])
def test_one_system_commands_refuse_a_fused_directory_with_advice(fused_dir, capsys, argv, advice):
    before = sorted(p.relative_to(fused_dir) for p in fused_dir.rglob("*"))
    status = main([*argv, "--model-dir", str(fused_dir)])
    err = capsys.readouterr().err
    assert status == ExitStatus.USAGE and err.count("\n") == 1
    assert "holds the fused systems of 'speakerid train' (gmm-ubm, ivector)" in err and advice in err
    assert "train-ubm' first" not in err                      # the old, wrong advice
    assert sorted(p.relative_to(fused_dir) for p in fused_dir.rglob("*")) == before


def test_enroll_without_backend_still_enrolls_in_every_system(fused_dir, capsys, tmp_path):
    from speakerid.data.synth import make_corpus

    corpus = make_corpus(tmp_path / "c", n_speakers=2, n_utterances=3, enroll_per_speaker=2, n_background=0,
                         duration_s=(2.5, 3.0), seed=5, show_progress=False)
    assert main(["enroll", "--manifest", str(corpus.enroll_csv), "--model-dir", str(fused_dir)]) == ExitStatus.OK
    assert main(["speakers", "--model-dir", str(fused_dir)]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert "spk001" in out and "spk002" in out


def test_a_speaker_missing_from_one_system_is_named_not_dropped_silently(fused_dir, capsys, tmp_path):
    from speakerid.data.synth import make_corpus
    from speakerid.store import speaker_file_name

    corpus = make_corpus(tmp_path / "c", n_speakers=2, n_utterances=3, enroll_per_speaker=2, n_background=0,
                         duration_s=(2.5, 3.0), seed=6, show_progress=False)
    files = sorted(str(p) for p in (corpus.folder / "wav" / "spk001").glob("*.wav"))[:2]
    assert main(["enroll", "--speaker", "kim", "--allow-duplicate", *files, "--model-dir", str(fused_dir)]) \
        == ExitStatus.OK
    (fused_dir / "systems" / "ivector" / "speakers" / "ivector" / speaker_file_name("kim")).unlink()
    capsys.readouterr()
    assert main(["speakers", "--model-dir", str(fused_dir)]) == ExitStatus.OK
    captured = capsys.readouterr()
    assert "kim" not in captured.out                                     # no fused score can be made for it
    assert "speaker(s) are enrolled in some systems only and cannot be scored: kim (missing from ivector)" \
           in captured.err and "enroll them again" in captured.err
    assert main(["enroll", "--speaker", "kim", *files, "--model-dir", str(fused_dir)]) == ExitStatus.USAGE
    assert "speaker 'kim' is already enrolled" in capsys.readouterr().err   # in one system: replaced, not added
    assert main(["enroll", "--speaker", "kim", "--replace", "--allow-duplicate", *files, "--model-dir",
                 str(fused_dir)]) == ExitStatus.OK
    capsys.readouterr()
    assert main(["speakers", "--model-dir", str(fused_dir)]) == ExitStatus.OK
    captured = capsys.readouterr()
    assert "kim" in captured.out and "some systems only" not in captured.err
