"""speakerid.data.audio: audio loading, resampling, manifests, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import write_tone

from speakerid.data.audio import load_audio, resample
from speakerid.exceptions import AudioError


def _peak_hz(signal, rate):
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return np.argmax(spectrum) * rate / len(signal)


def test_load_audio_mono_float32(tmp_path):
    path = write_tone(tmp_path / "a.wav", 440, 0.5, 16000)
    signal, rate = load_audio(path)
    assert rate == 16000 and signal.dtype == np.float32 and signal.ndim == 1
    assert signal.shape == (8000,)
    assert 0.45 < np.abs(signal).max() <= 0.5 + 1e-3


def test_load_audio_mixes_channels_down(tmp_path, rng):
    left = rng.uniform(-0.5, 0.5, 4000)
    right = rng.uniform(-0.5, 0.5, 4000)
    sf.write(tmp_path / "st.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    signal, _ = load_audio(tmp_path / "st.wav")
    np.testing.assert_allclose(signal, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_load_audio_integer_and_float_formats(tmp_path, subtype):
    path = write_tone(tmp_path / "t.wav", 300, 0.2, 8000, subtype=subtype)
    signal, rate = load_audio(path)
    assert rate == 8000 and np.abs(signal).max() == pytest.approx(0.5, abs=1e-3)


def test_load_audio_flac_and_ogg(tmp_path):
    t = np.arange(16000) / 16000
    x = 0.3 * np.sin(2 * np.pi * 500 * t)
    sf.write(tmp_path / "a.flac", x, 16000)
    sf.write(tmp_path / "a.ogg", x, 16000, format="OGG", subtype="VORBIS")
    for name in ("a.flac", "a.ogg"):
        signal, rate = load_audio(tmp_path / name)
        assert rate == 16000
        assert abs(_peak_hz(signal, rate) - 500) < 3


@pytest.mark.parametrize("orig,target", [(8000, 16000), (16000, 8000), (44100, 16000), (22050, 16000)])
def test_resampling_keeps_tone_frequency(tmp_path, orig, target):
    path = write_tone(tmp_path / "t.wav", 1000, 1.0, orig)
    signal, rate = load_audio(path, sample_rate=target)
    assert rate == target
    assert len(signal) == pytest.approx(target, abs=2)
    assert abs(_peak_hz(signal, rate) - 1000) < 2


def test_resample_identity():
    x = np.linspace(-1, 1, 100, dtype=np.float32)
    assert resample(x, 16000, 16000) is not None
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)


def test_too_long_refused_before_reading(tmp_path):
    path = write_tone(tmp_path / "long.wav", 200, 3.0, 8000)
    with pytest.raises(AudioError, match="limit"):
        load_audio(path, max_duration_s=2.0)












