"""Spectral shape features against analytic cases: zero-crossing rate of sines, roll-off of band-limited noise,
chroma of pure tones, flux of a step.
"""

from __future__ import annotations

import numpy as np
import pytest

from speakerid.features import FeatureConfig, extract
from speakerid.features.mfcc import power_spectrum
from speakerid.features.spectral import (
    PITCH_CLASSES,
    chroma,
    chroma_filterbank,
    spectral_flux,
    spectral_rolloff,
    zero_crossing_rate,
)

SR = 16000
FRAME, HOP = 400, 160  # 25 ms / 10 ms at 16 kHz


def _only(name, **changes):
    return FeatureConfig(**{"features": (name,), "vad": "none", "cmvn": "none", "delta_order": 0, **changes})


def _tone(freq, seconds=1.0, sr=SR, amplitude=0.5, phase=0.3):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def _lowpassed_noise(cutoff_hz, seconds=4.0, seed=0):
    """White noise with every FFT component above ``cutoff_hz`` removed (an ideal low-pass)."""
    noise = np.random.default_rng(seed).standard_normal(int(seconds * SR))
    spectrum = np.fft.rfft(noise)
    spectrum[np.fft.rfftfreq(len(noise), 1.0 / SR) > cutoff_hz] = 0
    return (0.1 * np.fft.irfft(spectrum, len(noise))).astype(np.float32)


# --------------------------------------------------------------------------- zero-crossing rate

@pytest.mark.parametrize("freq", [100.0, 440.0, 1000.0, 3000.0, 6000.0])
def test_zcr_of_sine_is_twice_frequency_over_rate(freq):
    """The module's unit is crossings per adjacent sample pair: a sine gives ~ 2 f / sr."""
    zcr = extract(_tone(freq), _only("zcr"))[:, 0]
    assert zcr.shape == (98,)
    # a 400-sample frame has 399 pairs; the count is 2 f / sr * 399 give or take one crossing
    np.testing.assert_allclose(zcr, 2 * freq / SR, atol=1.01 / (FRAME - 1))


def test_zcr_edge_cases():
    frames = np.array([[1.0, -1.0, 1.0, -1.0], [1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0], [-1.0, 0.0, -1.0, 0.0]])
    np.testing.assert_allclose(zero_crossing_rate(frames), [1.0, 0.0, 0.0, 1.0])  # zero counts as positive
    noise = np.random.default_rng(0).standard_normal((200, FRAME))
    assert zero_crossing_rate(noise).mean() == pytest.approx(0.5, abs=0.01)  # white noise: every other pair


# --------------------------------------------------------------------------- roll-off

@pytest.mark.parametrize("cutoff", [1000.0, 2000.0, 4000.0])
def test_rolloff_of_lowpassed_noise(cutoff):
    """Noise flat up to F: 85 % of its power lies below 0.85 F, and (almost) all of it below F."""
    signal = _lowpassed_noise(cutoff)
    bin_hz = SR / 512
    rolloff = extract(signal, _only("rolloff"))[:, 0]
    assert np.all(rolloff <= cutoff + 2 * bin_hz)  # no frame rolls off above the cut-off (window leakage aside)
    assert float(np.median(rolloff)) == pytest.approx(0.85 * cutoff, abs=2 * bin_hz)
    # the average spectrum's 99 % point is just below the cut-off
    frames = np.lib.stride_tricks.sliding_window_view(signal, FRAME)[::HOP]
    mean_power = power_spectrum(frames, 512, np.hamming(FRAME), dtype=np.float64).mean(axis=0, keepdims=True)
    r99 = float(spectral_rolloff(mean_power, SR, 512, fraction=0.99)[0])
    assert cutoff - 4 * bin_hz <= r99 <= cutoff + bin_hz
    r85 = float(spectral_rolloff(mean_power, SR, 512)[0])
    assert r85 == pytest.approx(0.85 * cutoff, abs=bin_hz)


def test_rolloff_silence_and_single_bin():
    power = np.zeros((2, 257))
    power[1, 100] = 3.0
    np.testing.assert_allclose(spectral_rolloff(power, SR, 512), [0.0, 100 * SR / 512])


# --------------------------------------------------------------------------- chroma

def test_pitch_class_order():
    assert PITCH_CLASSES[0] == "C" and PITCH_CLASSES[9] == "A" and len(PITCH_CLASSES) == 12


def test_chroma_of_a4_peaks_at_a():
    feats = extract(_tone(440.0), _only("chroma"))
    assert feats.shape == (98, 12)
    assert np.all(np.argmax(feats, axis=1) == PITCH_CLASSES.index("A"))
    np.testing.assert_allclose(feats.max(axis=1), 1.0)  # each frame scaled so its top class is 1
    others = np.delete(feats, PITCH_CLASSES.index("A"), axis=1)
    assert others.max() < 0.6


@pytest.mark.parametrize("octave", [1, 2])
def test_chroma_of_every_pitch_class_default_fft(octave):
    """With 31.25 Hz bins (n_fft 512 at 16 kHz) pitch classes are resolved from A5 (880 Hz) up."""
    for index, name in enumerate(PITCH_CLASSES):
        freq = 440.0 * 2 ** ((index - 9) / 12 + octave)
        if freq < 880.0:
            freq *= 2
        profile = extract(_tone(freq), _only("chroma")).mean(axis=0)
        assert PITCH_CLASSES[int(np.argmax(profile))] == name, (name, freq)


def test_chroma_of_every_pitch_class_fine_fft():
    """A longer FFT (n_fft 2048) resolves the octave above A4 (440..831 Hz) as well."""
    for index, name in enumerate(PITCH_CLASSES):
        freq = 440.0 * 2 ** (((index - 9) % 12) / 12)
        profile = extract(_tone(freq), _only("chroma", n_fft=2048)).mean(axis=0)
        assert PITCH_CLASSES[int(np.argmax(profile))] == name, (name, freq)


def test_chroma_silence_is_zero_and_filterbank_shape():
    assert chroma(np.zeros((3, 257)), SR, 512).sum() == 0
    bank = chroma_filterbank(SR, 512)
    assert bank.shape == (257, 12)
    assert not bank.flags.writeable
    used = bank.sum(axis=1)
    np.testing.assert_allclose(used[used > 0], 1.0)  # each used bin's power is shared out in full
    assert used[0] == 0 and used[1] == 0  # DC and the lowest bin hold no pitch


# --------------------------------------------------------------------------- flux

def test_flux_peaks_at_a_step():
    """Silence then a tone: flux is large on the frames that straddle the onset, ~0 elsewhere."""
    step = 8000
    signal = np.concatenate([np.zeros(step, dtype=np.float32), _tone(1000.0, phase=0.0)])
    flux = extract(signal, _only("flux"))[:, 0]
    starts = np.arange(len(flux)) * HOP
    straddle = np.flatnonzero((starts < step) & (starts + FRAME > step))  # frames 48, 49, 50
    onset_frames = np.r_[straddle, straddle[-1] + 1]  # + the first whole-tone frame (differs from a partial one)
    assert int(np.argmax(flux)) in onset_frames
    assert flux[0] == 0
    # steady silence: ~0 (the zero-phase DC high-pass of the front end spreads the onset's sub-20 Hz content a
    # little backwards in time, so not exactly 0)
    assert flux[starts + FRAME <= step].max() < 1e-2 * flux.max()
    after = np.setdiff1d(np.flatnonzero(starts >= step), onset_frames)
    # steady tone (10 periods per hop): ~0; under 1 % rather than 0.1 % since the DC high-pass rings for a few
    # frames after the abrupt onset and at the end of the signal
    assert flux[after].max() < 1e-2 * flux.max()
    assert np.median(flux[after]) < 1e-3 * flux.max()


def test_flux_of_steady_off_grid_tone_is_small():
    flux = extract(_tone(440.0), _only("flux"))[:, 0]  # 4.4 periods per hop: magnitudes wobble only a little
    step = np.concatenate([np.zeros(SR // 2, dtype=np.float32), _tone(440.0)])
    onset = extract(step, _only("flux"))[:, 0].max()
    assert flux.max() < 0.05 * onset


def test_spectral_flux_direct():
    power = np.array([[0.0, 0.0], [9.0, 16.0], [9.0, 16.0], [0.0, 0.0]])
    np.testing.assert_allclose(spectral_flux(power), [0.0, 5.0, 0.0, 5.0])
    assert spectral_flux(np.ones((1, 4))).tolist() == [0.0]
