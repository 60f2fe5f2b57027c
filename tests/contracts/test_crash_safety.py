"""kill -9 in the middle of a model write: the directory still loads, older models are intact, no temp file
is taken for a model.

"Mid-write" is hit exactly with a test hook of :func:`speakerid._utils.files.atomic_write`: with
``SPEAKERID_TEST_HOLD_BEFORE_RENAME=<marker>`` a process writes its temp ``.npz`` file in full, creates the marker
and waits before the rename; the test kills it then. A second test kills at seeded random moments.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.manifests import read_manifest
from speakerid.store import ModelStore, load_model_file
from speakerid.verifier import SpeakerVerifier

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from speakerid.data.synth import make_corpus

    root = tmp_path_factory.mktemp("crash")
    corpus = make_corpus(root / "corpus", n_speakers=3, n_utterances=3, enroll_per_speaker=2, n_background=3,
                         n_background_utterances=2, duration_s=(1.0, 1.5), seed=0, show_progress=False)
    return root, corpus


def _fresh_models(root: Path, corpus, name: str) -> Path:
    models = root / name
    assert main(["train-ubm", "--manifest", str(corpus.background_csv), "--model-dir", str(models),
                 "--components", "4", "--iterations", "2"]) == ExitStatus.OK
    assert main(["enroll", "--manifest", str(corpus.enroll_csv), "--model-dir", str(models)]) == ExitStatus.OK
    return models


def _snapshot(models: Path) -> dict:
    return {p.relative_to(models): p.read_bytes() for p in models.rglob("*.npz")}


def _spawn(argv, env_extra=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "speakerid", *map(str, argv)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_when(proc, marker: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the write never reached the rename"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def _check_directory(models: Path, before: dict, speakers) -> None:
    """Every model that was there reads back byte for byte; the store lists exactly the speakers; scoring works."""
    assert _snapshot(models) == before
    store = ModelStore(models)
    assert store.speakers() == sorted(speakers)
    for relative in before:
        load_model_file(models / relative)
    leftovers = [p for p in models.rglob(".*.tmp")]
    assert leftovers, "the kill should have left the temp file of the interrupted write"
    assert all(p.name.startswith(".") for p in leftovers)
    assert store.clean_temp_files() == len(leftovers) and not list(models.rglob("*.tmp"))


@pytest.mark.parametrize("command", ["enroll", "train-ubm"])
def test_kill_9_between_temp_file_and_rename(setup, tmp_path, command):
    root, corpus = setup
    models = _fresh_models(root, corpus, f"models-{command}")
    before = _snapshot(models)
    marker = tmp_path / "reached-rename"
    wav = read_manifest(corpus.trials_csv).iloc[0]["path"]
    if command == "enroll":
        argv = ["enroll", "--model-dir", models, "--speaker", "newcomer", "--allow-duplicate", wav]
    else:
        # --force: the speakers are removed only once the new UBM is saved, so a kill before that keeps them
        argv = ["train-ubm", "--manifest", corpus.background_csv, "--model-dir", models, "--components", "4",
                "--iterations", "2", "--seed", "7", "--force"]
    _kill_when(_spawn(argv, {"SPEAKERID_TEST_HOLD_BEFORE_RENAME": str(marker)}), marker)
    held = Path(marker.read_text())  # the model file whose write was interrupted
    assert held.parent.is_dir() and held.suffix == ".npz"
    _check_directory(models, before, corpus.speakers)
    assert "newcomer" not in ModelStore(models).speakers()
    assert np.isfinite(SpeakerVerifier(models).verify(corpus.speakers[0], wav)["score"])


def test_kill_9_at_random_moments_never_breaks_the_directory(setup, tmp_path):
    """Kill re-enrollments at seeded random delays: each time the directory loads and every speaker reads."""
    root, corpus = setup
    models = _fresh_models(root, corpus, "models-random")
    enroll = read_manifest(corpus.enroll_csv)
    speaker = corpus.speakers[0]
    files = list(enroll.loc[enroll["speaker"] == speaker, "path"])
    rng = np.random.default_rng(20261123)
    for delay_s in rng.uniform(0.8, 2.5, size=4):
        proc = _spawn(["enroll", "--model-dir", models, "--speaker", speaker, "--replace", *files])
        time.sleep(delay_s)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        store = ModelStore(models)
        assert store.speakers() == sorted(corpus.speakers)
        for spk in corpus.speakers:
            header, _ = store.load_speaker(spk)
            assert header["speaker"] == spk
        load_model_file(store.path("ubm.npz"))
