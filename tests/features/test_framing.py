"""The DC / sub-audio high-pass of :mod:`speakerid.features.framing` against scipy's Butterworth filtfilt."""

import subprocess
import sys

import numpy as np
import pytest
from scipy import signal as scipy_signal

from speakerid.exceptions import ParameterError
from speakerid.features import framing


def _scipy_reference(x, rate, cutoff=framing.DC_CUTOFF_HZ):
    sos = scipy_signal.butter(4, cutoff, btype="highpass", fs=rate, output="sos")
    return scipy_signal.sosfiltfilt(sos, x, padtype="even", padlen=2 * int(round(rate / cutoff)))


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100])
@pytest.mark.parametrize("kind", ["offset", "ramp", "rumble", "noise"])
def test_matches_butterworth_filtfilt_away_from_the_ends(rate, kind):
    rng = np.random.default_rng(rate)
    t = np.arange(3 * rate) / rate
    speechlike = 0.1 * rng.standard_normal(len(t)) + 0.3 * np.sin(2 * np.pi * 150 * t)
    disturbance = {"offset": 0.4, "ramp": 0.5 * t, "rumble": 0.3 * np.sin(2 * np.pi * 5 * t),
                   "noise": 0.0}[kind]
    x = speechlike + disturbance
    out = framing.remove_dc_offset(x, rate)
    inner = slice(rate // 2, -rate // 2)
    np.testing.assert_allclose(out[inner], _scipy_reference(x, rate)[inner], atol=1e-9)
    # the filter is linear: the disturbance's share of the output is gone, the speech band's is what is left
    assert np.abs(out - framing.remove_dc_offset(speechlike, rate))[inner].max() < 1e-3


def test_blocks_of_a_long_recording_join_seamlessly():
    rate = 16000
    n = framing._DC_BLOCK * 2 + 12345          # three blocks
    rng = np.random.default_rng(3)
    x = rng.standard_normal(n) + 0.25
    out = framing.remove_dc_offset(x, rate)
    inner = slice(rate, -rate)
    np.testing.assert_allclose(out[inner], _scipy_reference(x, rate)[inner], atol=1e-9)


def test_dtype_kept_and_integers_become_float64():
    x = (np.arange(4000) % 7).astype(np.float32)
    assert framing.remove_dc_offset(x, 8000).dtype == np.float32
    assert framing.remove_dc_offset(np.arange(4000) % 7, 8000).dtype == np.float64


@pytest.mark.parametrize("n", [1, 2, 3, 50])
def test_tiny_signals_are_finite_and_lose_their_offset(n):
    out = framing.remove_dc_offset(np.full(n, 0.7), 16000)
    assert out.shape == (n,)
    assert np.all(np.isfinite(out)) and np.abs(out).max() < 1e-9


@pytest.mark.parametrize("cutoff", [0.0, -5.0, 4000.0, 9000.0])
def test_cutoff_outside_the_band_is_refused(cutoff):
    with pytest.raises(ParameterError, match="cutoff_hz"):
        framing.remove_dc_offset(np.zeros(100), 8000, cutoff)


def test_fast_length_is_the_smallest_5_smooth_length():
    def smooth(k):
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        return k == 1

    for n in list(range(1, 3000)) + [16001, 1 << 20, (1 << 20) + 1]:
        assert framing._fast_length(n) == next(k for k in range(n, 2 * n + 2) if smooth(k)), n


def test_scoring_one_clip_does_not_import_scipy_signal_or_ndimage(synth_corpus):
    """The features of one file (what `verify` computes) load neither scipy.signal (0.6 s) nor scipy.ndimage."""
    import pandas as pd

    wav = synth_corpus.folder / pd.read_csv(synth_corpus.trials_csv)["path"].iloc[0]
    code = ("import sys\nfrom speakerid.features import FeatureConfig\n"
            "from speakerid.features.pipeline import file_features\n"
            f"frames, seconds = file_features({str(wav)!r}, FeatureConfig())\nassert len(frames) > 100, len(frames)\n"
            "print(sorted(m for m in ('scipy.signal', 'scipy.ndimage') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_float32_input_is_filtered_in_float32_close_to_float64():
    rng = np.random.default_rng(7)
    x = (0.2 * rng.standard_normal(16000 * 4) + 0.3).astype(np.float32)
    out32 = framing.remove_dc_offset(x, 16000)
    out64 = framing.remove_dc_offset(x.astype(np.float64), 16000)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, atol=1e-5 * np.abs(out64).max())
