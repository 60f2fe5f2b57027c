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
