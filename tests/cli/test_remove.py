"""speakerid remove takes several speakers, all or none."""

from __future__ import annotations

from conftest import tiny_model_dir

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.verifier import SpeakerVerifier


def test_remove_several_speakers_all_or_none(tmp_path, capsys):
    models, corpus = tiny_model_dir(tmp_path)
    assert main(["enroll", "--manifest", str(corpus.enroll_csv), "--model-dir", str(models)]) == ExitStatus.OK
    first, second, third = SpeakerVerifier(models).speakers()
    assert main(["remove", "--model-dir", str(models), "--speaker", first, "nobody"]) == ExitStatus.UNKNOWN_SPEAKER
    assert "'nobody'" in capsys.readouterr().err
    assert SpeakerVerifier(models).speakers() == [first, second, third]   # nobody removed
    assert main(["remove", "--model-dir", str(models), "--speaker", first, "--speaker", second]) == ExitStatus.OK
    assert f"removed {first}, {second}" in capsys.readouterr().out
    assert SpeakerVerifier(models).speakers() == [third]
