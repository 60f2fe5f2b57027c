"""An unfinished ``speakerid train`` (speakerid.scoring.training_state): the directory says so, a rerun resumes the
finished stages and ends with the model an uninterrupted run makes; Ctrl-C at ten points of the command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _small import SMALL

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.synth import make_corpus
from speakerid.exceptions import NotFittedError
from speakerid.scoring import dev_sets
from speakerid.scoring.fused import read_fusion
from speakerid.scoring.fused_train import DEV_SCORES_FILE, train_default
from speakerid.scoring.training_state import STATE_FILE, WORK_DIR, TrainingState, check_complete


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("state") / "corpus", n_speakers=2, n_utterances=2,
                       enroll_per_speaker=1, n_background=12, n_background_utterances=3, duration_s=(2.0, 3.0),
                       seed=5, show_progress=False)


def _arrays(model_dir: Path) -> dict:
    """Every array of every .npz file under ``model_dir``, by relative path and name."""
    out = {}
    for path in sorted(model_dir.rglob("*.npz")):
        with np.load(path, allow_pickle=False) as data:
            out.update({f"{path.relative_to(model_dir)}:{k}": data[k] for k in data.files
                        if k != "__header__"})      # (the JSON header: times and paths of the run)
    return out


def _assert_same_model(a: Path, b: Path) -> None:
    """The same systems, cohorts and fusion: arrays within float32 rounding, the fusion's weights to 1e-9."""
    arrays_a, arrays_b = _arrays(a), _arrays(b)
    assert sorted(arrays_a) == sorted(arrays_b)
    for key in arrays_a:
        if arrays_a[key].dtype.kind in "fc":
            np.testing.assert_allclose(arrays_a[key], arrays_b[key], rtol=1e-5, atol=1e-6, err_msg=key)
        else:
            np.testing.assert_array_equal(arrays_a[key], arrays_b[key], err_msg=key)
    for sub in ("", "narrowband"):
        if (a / sub / "fusion.json").exists():
            fa, fb = read_fusion(a / sub), read_fusion(b / sub)
            np.testing.assert_allclose(fa["fusions"]["plain"].weights_, fb["fusions"]["plain"].weights_,
                                       rtol=1e-9, atol=1e-12)
            assert fa["split"] == fb["split"]
    scores_a, scores_b = (pd.read_csv(m / "dev" / DEV_SCORES_FILE) for m in (a, b))
    assert [Path(p).relative_to(a) for p in scores_a.pop("path")] == [Path(p).relative_to(b) for p in scores_b.pop("path")]
    pd.testing.assert_frame_equal(scores_a, scores_b, check_exact=False, rtol=1e-9)


def test_the_record_resumes_with_the_same_settings_and_starts_over_otherwise(tmp_path):
    said = []
    state = TrainingState(tmp_path, {"seed": 0}, command="'speakerid train ...'", say=said.append)
    assert not state.resumed and (tmp_path / STATE_FILE).exists()
    state.work.mkdir()
    (state.work / "features.npy").write_bytes(b"x")
    state.record["dev_trials"] = "recordings"
    state.mark("usable")
    state.mark("system:gmm-ubm")
    with pytest.raises(NotFittedError, match=r"did not finish \(done: checking the background audio, gmm-ubm\); "
                                             r"run 'speakerid train \.\.\.' again to resume"):
        check_complete(tmp_path)
    again = TrainingState(tmp_path, {"seed": 0}, say=said.append)
    assert again.resumed and again.done == ["usable", "system:gmm-ubm"]
    assert again.record["dev_trials"] == "recordings" and (again.work / "features.npy").exists()
    assert said[-1] == "resuming the unfinished training: checking the background audio, gmm-ubm done, kept"
    other = TrainingState(tmp_path, {"seed": 1}, say=said.append)
    assert not other.resumed and other.done == [] and not other.work.exists()
    assert said[-1] == "starting over: the unfinished training here had other settings (seed)"
    other.mark("usable")
    fresh = TrainingState(tmp_path, {"seed": 1}, resume=False, say=said.append)
    assert fresh.done == [] and "--no-resume" in said[-1]
    fresh.finish()
    assert not (tmp_path / STATE_FILE).exists() and not (tmp_path / WORK_DIR).exists()
    check_complete(tmp_path)                    # nothing unfinished: no error


def test_a_record_that_cannot_be_read_still_marks_the_directory_unfinished(tmp_path):
    (tmp_path / STATE_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(NotFittedError, match="did not finish"):
        check_complete(tmp_path)
    state = TrainingState(tmp_path, {"seed": 0})
    assert not state.resumed and json.loads((tmp_path / STATE_FILE).read_text())["done"] == []


def test_a_training_that_fails_half_way_resumes_to_the_model_of_an_uninterrupted_run(corpus, tmp_path,
                                                                                      monkeypatch, capsys):
    """A failure in the development stage (after both systems are trained): every command says the directory is
    unfinished and how to resume, not 'run train-ubm first'; the rerun keeps the two systems (their files are not
    written again) and ends with the same model as a run that never failed."""
    options = {"systems": "gmm-ubm,ivector", "dev_share": 0.5, "system_params": SMALL, "narrowband": False,
               "command": "'speakerid train --manifest B.csv --model-dir M'"}
    train_default(corpus.background_csv, tmp_path / "reference", **options)
    build = dev_sets.build_trials

    def failing(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(dev_sets, "build_trials", failing)
    with pytest.raises(OSError, match="disk gone"):
        train_default(corpus.background_csv, tmp_path / "M", **options)
    monkeypatch.setattr(dev_sets, "build_trials", build)
    assert (tmp_path / "M" / STATE_FILE).exists() and (tmp_path / "M" / WORK_DIR / "features").is_dir()
    for command in (["verify", "--speaker", "s", str(corpus.background_csv)], ["speakers"],
                    ["enroll", "--speaker", "s", str(corpus.background_csv)]):
        assert main([*command, "--model-dir", str(tmp_path / "M")]) == ExitStatus.NOT_FITTED
        err = capsys.readouterr().err.strip()
        assert err == (f"speakerid: error: {tmp_path / 'M'}: a 'speakerid train' into it did not finish (done: "
                       "checking the background audio, gmm-ubm, ivector); run 'speakerid train --manifest B.csv "
                       "--model-dir M' again to resume it (finished stages are kept), or give it --force "
                       "--no-resume to start over")
    kept = {p: p.stat().st_mtime_ns for p in (tmp_path / "M" / "systems").rglob("*.npz")}
    said = []
    train_default(corpus.background_csv, tmp_path / "M", say=said.append, **options)
    assert said[0] == "resuming the unfinished training: checking the background audio, gmm-ubm, ivector done, kept"
    assert said[1] == "[1/5] gmm-ubm: trained before the interruption, kept"
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert not (tmp_path / "M" / STATE_FILE).exists() and not (tmp_path / "M" / WORK_DIR).exists()
    _assert_same_model(tmp_path / "reference", tmp_path / "M")


def test_other_settings_start_over_and_say_why(corpus, tmp_path):
    options = {"systems": "gmm-ubm", "dev_share": 0.5, "system_params": SMALL, "narrowband": False}
    state = TrainingState(tmp_path / "M", {"background": "another"})
    state.mark("usable")
    said = []
    train_default(corpus.background_csv, tmp_path / "M", say=said.append, **options)
    assert said[0].startswith("starting over: the unfinished training here had other settings (")
    assert "background" in said[0] and read_fusion(tmp_path / "M")["systems"] == ["gmm-ubm"]


# ---------------------------------------------------------------------------------------------- Ctrl-C, scripted
#: Where the scripted Ctrl-C lands: the first stderr line of each run that contains the text (each rerun resumes
#: the last one and goes on to the next point). Stage lines only: the trainers' own lines depend on timing.
POINTS = ("[1/6] training gmm-ubm", "[2/6] training ivector", "[3/6] building development trials",
          "scoring development condition 'clean'", "scoring development condition 'noisy'",
          "[5/6] training the narrowband systems", "narrowband: [1/5] training gmm-ubm",
          "narrowband: [2/5] training ivector", "narrowband:   scoring development condition 'short'",
          "narrowband:   scoring development condition 'tiny'")


def _session_processes(sid: int) -> list[str]:
    """The processes (pid and command) still in session ``sid``."""
    left = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                if int(fields[3]) == sid and fields[0] != "Z":
                    left.append(f"{entry.name} {stat[:stat.rindex(')') + 1]} state {fields[0]} parent {fields[1]}: "
                                f"{(entry / 'cmdline').read_bytes()[:200]!r}")
            except (OSError, ValueError, IndexError):
                continue
    return left


def _run_until(args: list[str], point: str | None, timeout_s: float = 600):
    """Run the command in its own session; at the first stderr line containing ``point``, Ctrl-C as a terminal
    sends it (SIGINT to the whole process group). ``(exit status, stderr lines up to the point, after it, the
    processes of the session still there once the command has exited)``."""
    def restore_ctrl_c():       # pytest in a background job inherits SIGINT ignored: the command must not
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen([sys.executable, "-m", "speakerid", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=restore_ctrl_c,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    before = []
    try:
        for line in proc.stderr:
            before.append(line.rstrip("\n"))
            if point is not None and point in line:
                os.killpg(proc.pid, signal.SIGINT)
                break
        after = [line.rstrip("\n") for line in proc.stderr]
        status = proc.wait(timeout=timeout_s)
        left = _session_processes(proc.pid)
        # loky's resource tracker ends once the command has ended (it cleans up after it): allow it a moment
        for _ in range(30):
            if not left or any("popen_loky" in p for p in left):       # a worker: reported at once
                break
            time.sleep(0.1)
            left = _session_processes(proc.pid)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return status, before, after, left


@pytest.mark.slow
def test_ctrl_c_at_ten_points_of_train_then_a_rerun_finishes_the_model_of_an_uninterrupted_run(corpus, tmp_path):
    """The default systems (GMM-UBM, i-vector, the narrowband branch) on 2 workers. At each point: exit 130, one
    line, no traceback (nor a worker's), no process of the command left when it has exited, and the directory
    says it is unfinished; each rerun resumes (and says so), the last one finishes with the arrays of an
    uninterrupted run (float32 rounding) and its fusion weights (1e-9)."""
    args = ["train", "--manifest", str(corpus.background_csv), "--dev-share", "0.5", "--jobs", "2"]
    status, _, _, _ = _run_until(args + ["--model-dir", str(tmp_path / "reference")], None)
    assert status == ExitStatus.OK
    model = str(tmp_path / "M")
    for i, point in enumerate(POINTS):
        status, before, after, left = _run_until(args + ["--model-dir", model], point)
        assert status == ExitStatus.INTERRUPTED, (point, before[-5:], after)
        assert after[-1:] == ["speakerid: interrupted"] and sum("interrupted" in x for x in after) == 1, after
        assert not any("Traceback" in x or "Exception" in x or "Error" in x for x in after), after
        assert left == [], (point, left)
        if i:
            assert before[0].startswith("speakerid: resuming the unfinished training: "), (point, before[:2])
        checked = subprocess.run([sys.executable, "-m", "speakerid", "speakers", "--model-dir", model],
                                 capture_output=True, text=True, timeout=120)
        assert checked.returncode == ExitStatus.NOT_FITTED and "did not finish" in checked.stderr, checked.stderr
        assert "--model-dir" in checked.stderr and "again to resume it" in checked.stderr
    status, before, _, _ = _run_until(args + ["--model-dir", model], None)
    assert status == ExitStatus.OK and before[0].startswith("speakerid: resuming the unfinished training: ")
    _assert_same_model(tmp_path / "reference", tmp_path / "M")
    assert not (tmp_path / "M" / STATE_FILE).exists()

