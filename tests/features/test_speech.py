"""speakerid.features.speech: the speech-presence check, its figures and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from speakerid.exceptions import AudioError
from speakerid.features.config import FeatureConfig
from speakerid.features.framing import floored_log, frame_log_energy
from speakerid.features.normalize import cmvn
from speakerid.features.speech import check_speech, measure_speech

SR = 16000


def _speechlike(seconds=2.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.7 * t)
    buzz = np.sign(np.sin(2 * np.pi * np.cumsum(f0) / SR))                     # a glottal-ish pulse train
    formant = np.sin(2 * np.pi * (500 + 400 * np.sin(2 * np.pi * 3 * t)) * t)  # a moving resonance
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None)                    # 4 Hz syllable rhythm
    return (0.3 * syllables * (buzz * formant + 0.05 * rng.standard_normal(len(t)))).astype(np.float32)


def test_speech_seconds_count_the_kept_frames():
    signal = np.zeros(SR, dtype=np.float32)
    signal[4000:8000] = np.random.default_rng(1).uniform(-0.3, 0.3, 4000)   # 0.25 s of sound at a steady level
    m = measure_speech(signal, FeatureConfig(min_speech_s=0))
    assert 0.22 <= m.speech_s <= 0.28   # the 25 frames inside it, give or take the ones straddling its edges


def test_minimum_speech_is_configurable_and_named_in_the_error():
    signal = _speechlike(0.3)
    with pytest.raises(AudioError, match=r"x\.wav: too little speech: 0\.\d\d s detected, fewer than the 1 s"):
        check_speech(signal, FeatureConfig(min_speech_s=1.0), path="x.wav")


@pytest.mark.parametrize("freq", [80.0, 440.0, 2500.0])
def test_pure_tones_are_no_speech(freq):
    t = np.arange(2 * SR) / SR
    with pytest.raises(AudioError, match="no speech found: a tone"):
        check_speech((0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32))


def test_white_noise_is_no_speech():
    noise = np.random.default_rng(3).standard_normal(2 * SR).astype(np.float32) * 0.1
    with pytest.raises(AudioError, match=r"no speech found: steady noise \(0% voiced"):
        check_speech(noise)


def test_measures_do_not_depend_on_level():
    signal = _speechlike()
    loud, quiet = measure_speech(signal), measure_speech(signal * np.float32(1e-3))
    assert loud.speech_s == quiet.speech_s and loud.voiced_fraction == quiet.voiced_fraction
    assert loud.spectral_change_db == pytest.approx(quiet.spectral_change_db, abs=1e-3)


def test_log_floors_follow_the_level():
    frames = np.array([[1.0, 1.0], [1e-9, 0.0], [0.0, 0.0]])
    for gain in (1.0, 1e-3, 1e3):
        energy = frame_log_energy(frames * gain)
        np.testing.assert_allclose(energy - energy[0], frame_log_energy(frames) - frame_log_energy(frames)[0],
                                   atol=1e-9)
    assert np.all(np.isfinite(floored_log(np.zeros(3))))


def test_cmvn_does_not_blow_up_rounding_noise():
    rng = np.random.default_rng(0)
    speechy = rng.normal(0, 3, (200, 2))
    steady = 7.0 + 1e-7 * rng.standard_normal((200, 1))        # a tone's cepstrum: float rounding only
    out = cmvn(np.hstack([speechy, steady]))
    assert np.abs(out[:, 2]).max() < 1e-2 and out[:, :2].std(axis=0) == pytest.approx([1, 1], abs=1e-6)
