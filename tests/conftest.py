"""Shared fixtures: seeded randomness, the ../shared data folder (tests needing it skip when it is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("SPEAKERID_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture
def rng():
    """A seeded numpy Generator: every test's randomness is reproducible."""
    return np.random.default_rng(20261123)


@pytest.fixture(scope="session")
def shared_dir():
    """The ``../shared`` folder with real speech; skips the test cleanly when it is absent."""
    if not (SHARED_DIR / "protocols").is_dir() or not (SHARED_DIR / "data").is_dir():
        pytest.skip(f"real-data test: {SHARED_DIR} not found (set SPEAKERID_SHARED to point at it)")
    return SHARED_DIR


def write_tone(path, freq_hz=440.0, seconds=1.0, sample_rate=16000, amplitude=0.5, subtype="PCM_16"):
    """Write a sine tone WAV and return its path (a tiny helper many tests share)."""
    import soundfile as sf

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    sf.write(str(path), amplitude * np.sin(2 * np.pi * freq_hz * t), sample_rate, subtype=subtype)
    return Path(path)


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory):
    """A small synthetic corpus, generated once per test session (about 2 s): 6 evaluated speakers x 6 utterances
    (3 to enroll, 3 to test), 6 background speakers x 4 utterances, 2-3 s each, seed 0.

    Tests must not modify its files (copy them first).
    """
    from speakerid.data.synth import make_corpus

    return make_corpus(tmp_path_factory.mktemp("synth"), n_speakers=6, n_utterances=6, enroll_per_speaker=3,
                       n_background=6, n_background_utterances=4, duration_s=(2.0, 3.0), seed=0,
                       show_progress=False)


def tiny_model_dir(root):
    """A tiny corpus (3 speakers) and a model directory with a 4-component UBM trained through the CLI, under
    ``root``; returns ``(models, corpus)``. Nobody is enrolled yet."""
    from speakerid.cli._common import ExitStatus
    from speakerid.cli.main import main
    from speakerid.data.synth import make_corpus

    corpus = make_corpus(root / "corpus", n_speakers=3, n_utterances=3, enroll_per_speaker=2, n_background=3,
                         n_background_utterances=2, duration_s=(1.0, 1.5), seed=0, show_progress=False)
    models = root / "models"
    assert main(["train-ubm", "--manifest", str(corpus.background_csv), "--model-dir", str(models),
                 "--components", "4", "--iterations", "2"]) == ExitStatus.OK
    return models, corpus
