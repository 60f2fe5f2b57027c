"""Quality measures (speakerid.features.quality): the energy spread falls with the signal-to-noise ratio."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from speakerid.data.augment import add_noise
from speakerid.exceptions import AudioError, ParameterError
from speakerid.features.quality import energy_spread_db, file_energy_spread_db


def _bursts(rate=16000, seconds=3.0):
    t = np.arange(int(rate * seconds)) / rate
    return 0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 1.5 * t) > 0.2)


@pytest.mark.parametrize("colour", ["white", "pink"])
def test_spread_falls_as_noise_rises(rng, colour):
    speech = _bursts()
    spreads = [energy_spread_db(add_noise(speech, snr, rng, colour), 16000) for snr in (30.0, 20.0, 10.0, 5.0, 0.0)]
    assert all(a > b for a, b in zip(spreads, spreads[1:])), spreads
    assert spreads[-1] < 10.0 < 30.0 < spreads[0]


def test_spread_ignores_level_and_reads_files(rng, tmp_path):
    speech = add_noise(_bursts(), 15.0, rng, "white")
    assert energy_spread_db(0.1 * speech, 16000) == pytest.approx(energy_spread_db(speech, 16000), abs=1e-6)
    path = tmp_path / "clip.wav"
    sf.write(path, speech, 16000, subtype="FLOAT")
    assert file_energy_spread_db(path) == pytest.approx(energy_spread_db(speech, 16000), abs=1e-4)
    with pytest.raises(AudioError, match="nope.wav"):
        file_energy_spread_db(tmp_path / "nope.wav")


def test_bad_input():
    with pytest.raises(ParameterError, match="25-ms frame"):
        energy_spread_db(np.zeros(10), 16000)
    with pytest.raises(ParameterError, match="percentiles"):
        energy_spread_db(np.ones(1000), 16000, low=90, high=10)
