"""Effective bandwidth: a family of band-limited and wideband signals, at every level, with DC, noise and codecs."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, resample_poly, sosfiltfilt

from speakerid.degrade import degrade
from speakerid.exceptions import ParameterError
from speakerid.features.bandwidth import NARROWBAND_EDGE_HZ, effective_bandwidth_hz, is_narrowband


def _voiced(rate: int, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """A speech-like signal: a 120-Hz pulse train with bursts and pauses through a few formant resonances, plus
    fricative noise; it fills the band up to the Nyquist frequency, falling about 12 dB an octave."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    pulses = (np.mod(t * 120.0, 1.0) < 120.0 / rate).astype(float)
    voiced = pulses + 0.02 * rng.standard_normal(n)
    for centre in [c for c in (500, 1500, 2500, 3500) if c * 1.2 < rate / 2]:
        sos = butter(2, [centre * 0.8, centre * 1.2], btype="bandpass", fs=rate, output="sos")
        voiced = voiced + 0.5 * sosfiltfilt(sos, pulses)
    frication = sosfiltfilt(butter(2, 3000, btype="highpass", fs=rate, output="sos"), rng.standard_normal(n))
    envelope = (np.sin(2 * np.pi * 3.0 * t) > -0.3).astype(float)
    signal = envelope * (voiced + 0.05 * frication)
    return signal / np.max(np.abs(signal))


def _lowpass(signal, rate, cutoff_hz):
    return sosfiltfilt(butter(12, cutoff_hz, btype="lowpass", fs=rate, output="sos"), signal)


@pytest.mark.parametrize("gain_db", [-50.0, -20.0, 0.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_band_limited_speech_is_narrowband_and_full_band_is_not(gain_db, seed):
    rate = 16000
    speech = _voiced(rate, seed=seed) * 10 ** (gain_db / 20)
    assert effective_bandwidth_hz(speech, rate) > 7000
    for cutoff in (3400, 3600, 3800):                      # telephone-like channels at a 16-kHz rate
        assert is_narrowband(effective_bandwidth_hz(_lowpass(speech, rate, cutoff), rate)), cutoff
    for cutoff in (5800, 6500, 7200):                      # wideband, if duller
        assert not is_narrowband(effective_bandwidth_hz(_lowpass(speech, rate, cutoff), rate)), cutoff


@pytest.mark.parametrize("condition", ["telephone-16k", "telephone-16k:alaw", "telephone-16k:gsm"])
def test_the_telephone_channels_written_back_at_16k_are_narrowband(condition):
    speech = _voiced(16000, seed=3).astype(np.float32) * 0.3
    out = degrade(speech, 16000, condition, random_state=0)
    assert out.sample_rate == 16000
    assert is_narrowband(effective_bandwidth_hz(out.signal, 16000))


@pytest.mark.parametrize("rate", [8000, 11025])
def test_audio_recorded_at_a_low_rate_is_narrowband_by_its_rate_and_measured_near_it(rate, tmp_path):
    from speakerid.scoring.narrowband import file_bandwidth_hz

    low = _voiced(rate, seed=4)
    up = resample_poly(low, 16000, rate)
    bandwidth = effective_bandwidth_hz(up, 16000)
    assert bandwidth <= rate / 2 + 1000         # the resampler's transition band and the 250-Hz smoothing
    sf.write(str(tmp_path / "low.wav"), 0.5 * low, rate)          # a file: its own rate caps the measure
    from_file = file_bandwidth_hz(tmp_path / "low.wav", 16000)
    assert from_file <= rate / 2 and is_narrowband(from_file) == (rate / 2 < NARROWBAND_EDGE_HZ)


def test_a_dc_offset_a_dc_step_and_wideband_noise_do_not_fake_or_hide_the_band():
    rate = 16000
    narrow = _lowpass(_voiced(rate, seed=5), rate, 3400)
    assert is_narrowband(effective_bandwidth_hz(narrow + 0.5, rate))          # a constant offset
    stepped = narrow.copy()
    stepped[len(stepped) // 2:] += 0.3                                           # a DC step: a 0-Hz edge
    assert is_narrowband(effective_bandwidth_hz(stepped, rate))
    wide = _voiced(rate, seed=5)
    assert not is_narrowband(effective_bandwidth_hz(wide + 0.5, rate))
    # wideband noise added after the channel (at the receiving end) does fill the band again
    noisy = narrow + 0.01 * np.random.default_rng(0).standard_normal(len(narrow))
    assert not is_narrowband(effective_bandwidth_hz(noisy, rate))


def test_silence_and_bad_input():
    assert effective_bandwidth_hz(np.zeros(16000), 16000) == 0.0
    with pytest.raises(ParameterError, match="25-ms frame"):
        effective_bandwidth_hz(np.zeros(100), 16000)
    with pytest.raises(ParameterError, match="1-D"):
        effective_bandwidth_hz(np.zeros((2, 16000)), 16000)
    with pytest.raises(ParameterError, match="8000"):
        effective_bandwidth_hz(np.zeros(16000), 4000)


def _pcm16(signal):
    return np.round(np.asarray(signal, dtype=np.float64) * 32767.0) / 32767.0


@pytest.mark.parametrize("gain_db", [-10.0, -30.0, -45.0])
def test_a_quiet_telephone_recording_in_16_bit_pcm_is_narrowband_and_wideband_speech_is_not(gain_db):
    """16-bit rounding noise fills the whole band about 50 dB below quiet speech: it is not content."""
    speech = _voiced(16000, seed=6)
    telephone = degrade((0.3 * speech).astype(np.float32), 16000, "telephone-16k", random_state=0).signal
    scale = 10 ** (gain_db / 20) / np.max(np.abs(telephone))
    assert is_narrowband(effective_bandwidth_hz(_pcm16(telephone * scale), 16000))
    assert not is_narrowband(effective_bandwidth_hz(_pcm16(speech * 10 ** (gain_db / 20)), 16000))
