"""Bad input to the feature front end: ParameterError for bad settings and arguments, AudioError for unusable
audio, each with a message that says what is wrong.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from speakerid.exceptions import AudioError, ConfigMismatchError, ParameterError, SpeakerIDError
from speakerid.features import (
    FeatureConfig,
    apply_cmvn,
    clip_vector,
    clip_vectors,
    cmvn,
    delta,
    extract,
    extract_file,
    feature_dims,
    feature_table,
    frame_energy,
    sliding_cmvn,
    utterance_stats,
    vad_mask,
)
from speakerid.features.framing import analysis_window, frame_signal
from speakerid.features.mfcc import dct_matrix, mel_filterbank
from speakerid.features.spectral import spectral_rolloff

NAN, INF = float("nan"), float("inf")

# ----------------------------------------------------------------------------- bad FeatureConfig values

BAD_CONFIGS = {
    "sample_rate 0": ({"sample_rate": 0}, "sample_rate"),
    "sample_rate fractional": ({"sample_rate": 16000.5}, "sample_rate"),
    "sample_rate text": ({"sample_rate": "16000"}, "sample_rate"),
    "sample_rate 100 Hz": ({"sample_rate": 100}, "between 4000 and 192000"),
    "sample_rate 1 MHz": ({"sample_rate": 1_000_000}, "between 4000 and 192000"),
    "frame_length 0": ({"frame_length_ms": 0}, "frame_length_ms"),
    "frame_length nan": ({"frame_length_ms": NAN}, "frame_length_ms"),
    "frame_shift negative": ({"frame_shift_ms": -10}, "frame_shift_ms"),
    "n_fft below frame": ({"n_fft": 256}, "n_fft"),
    "n_mels 0": ({"n_mels": 0}, "n_mels"),
    "n_mels None": ({"n_mels": None}, "n_mels"),
    "n_ceps above n_mels": ({"n_ceps": 30, "n_mels": 26}, "n_ceps"),
    "n_ceps fractional": ({"n_ceps": 13.5}, "n_ceps"),
    "n_ceps bool": ({"n_ceps": True}, "n_ceps"),
    "high above nyquist": ({"high_freq_hz": 9000.0}, "Nyquist"),
    "low above high": ({"low_freq_hz": 5000.0, "high_freq_hz": 4000.0}, "low_freq_hz"),
    "low negative": ({"low_freq_hz": -1.0}, "low_freq_hz"),
    "preemphasis 1": ({"preemphasis": 1.0}, "preemphasis"),
    "window unknown": ({"window": "blackman"}, "window"),
    "features empty": ({"features": ()}, "features"),
    "features unknown": ({"features": ("mfcc", "pitch")}, "pitch"),
    "features repeated": ({"features": ("mfcc", "mfcc")}, "repeat"),
    "features not names": ({"features": (1, 2)}, "features"),
    "delta_order 3": ({"delta_order": 3}, "delta_order"),
    "delta_window 0": ({"delta_window": 0}, "delta_window"),
    "vad unknown": ({"vad": "webrtc"}, "vad"),
    "vad_threshold 0": ({"vad_threshold_db": 0}, "vad_threshold_db"),
    "vad_threshold nan": ({"vad_threshold_db": NAN}, "vad_threshold_db"),
    "vad_threshold inf": ({"vad_threshold_db": INF}, "vad_threshold_db"),
    "vad_min_frames 0": ({"vad_min_frames": 0}, "vad_min_frames"),
    "cmvn unknown": ({"cmvn": "global"}, "cmvn"),
    "cmvn window 1": ({"cmvn_window_frames": 1}, "cmvn_window_frames"),
    "dither negative": ({"dither": -0.1}, "dither"),
    "dither nan": ({"dither": NAN}, "dither"),
    "lifter nan": ({"lifter": NAN}, "lifter"),
    "use_energy text": ({"use_energy": "no"}, "use_energy"),
    "psf_compat int": ({"psf_compat": 1}, "psf_compat"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_raises_parameter_error(case):
    changes, needle = BAD_CONFIGS[case]
    with pytest.raises(ParameterError, match=needle) as info:
        FeatureConfig(**changes)
    assert str(info.value).startswith("FeatureConfig:")
    assert isinstance(info.value, ValueError) and isinstance(info.value, SpeakerIDError)


@pytest.mark.parametrize("text,needle", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"n_ceps": 13, "colour": "blue"}', "unknown field"),
    ('{"n_ceps": "many"}', "n_ceps"),
    ('{"n_mels": null}', "n_mels"),
    ('{"vad_threshold_db": NaN}', "vad_threshold_db"),
])
def test_bad_config_json(text, needle):
    with pytest.raises(ParameterError, match=needle):
        FeatureConfig.from_json(text)


def test_replace_with_unknown_field():
    with pytest.raises(TypeError):
        FeatureConfig().replace(colour="blue")


def test_check_same_names_every_difference():
    with pytest.raises(ConfigMismatchError, match="n_ceps.*sample_rate|sample_rate.*n_ceps"):
        FeatureConfig().check_same(FeatureConfig(n_ceps=13, sample_rate=8000), "UBM")


def test_too_many_mel_filters_for_the_fft():
    config = FeatureConfig(sample_rate=8000, n_fft=256, n_mels=120, n_ceps=13, vad="none")
    with pytest.raises(ParameterError, match="cover no FFT bin"):
        extract(np.ones(8000, dtype=np.float32) * 0.1, config)
    with pytest.raises(ParameterError, match="cover no FFT bin"):
        mel_filterbank(8000, 256, 120)


def test_non_config_argument():
    for bad in ({"n_ceps": 13}, "default", 13):
        with pytest.raises(ParameterError, match="FeatureConfig"):
            extract(np.zeros(16000, dtype=np.float32), bad)
        with pytest.raises(ParameterError, match="FeatureConfig"):
            feature_dims(bad)
        with pytest.raises(ParameterError, match="FeatureConfig"):
            frame_energy(np.zeros(16000, dtype=np.float32), bad)


# ----------------------------------------------------------------------------- bad signals

@pytest.mark.parametrize("psf_compat", [False, True])
@pytest.mark.parametrize("signal,error,needle", [
    (np.zeros(0, dtype=np.float32), AudioError, "empty"),
    (np.zeros(399, dtype=np.float32), AudioError, "fewer than one 25 ms frame"),
    (np.r_[np.full(8000, np.nan), np.zeros(8000)].astype(np.float32), AudioError, "NaN"),
    (np.r_[np.zeros(8000), [np.inf], np.zeros(8000)], AudioError, "infinite"),
    (np.zeros(16000, dtype=np.int16), ParameterError, "scale integer PCM"),
    (np.zeros(16000, dtype=bool), ParameterError, "float waveform"),
    (np.zeros(16000, dtype=np.complex64), ParameterError, "float waveform"),
    (np.zeros((16000, 2), dtype=np.float32), ParameterError, "mono"),
    (np.float32(0.5), ParameterError, "mono"),
    (["a", "b"], ParameterError, "float waveform"),
])
def test_bad_signal(signal, error, needle, psf_compat):
    config = FeatureConfig(psf_compat=psf_compat)
    with pytest.raises(error, match=needle):
        extract(signal, config)
    with pytest.raises(error, match=needle):
        frame_energy(signal, config)


def test_one_frame_is_enough():
    feats = extract(np.full(400, 0.1, dtype=np.float32), FeatureConfig(vad="none", cmvn="none"))
    assert feats.shape == (1, 60) and np.all(np.isfinite(feats))
    assert np.all(np.isfinite(extract(np.full(400, 0.1, dtype=np.float32))))  # one-frame CMVN: zeros, not NaN


def test_extract_file_errors_name_the_file(tmp_path):
    short = tmp_path / "short.wav"
    sf.write(short, np.full(300, 0.3), 16000)  # 18.75 ms: shorter than one frame
    with pytest.raises(AudioError) as info:
        extract_file(short)
    assert str(short) in str(info.value)
    # exactly 25 ms at 8 kHz: one whole frame once resampled to the config's 16 kHz
    edge = tmp_path / "edge.wav"
    sf.write(edge, 0.3 * np.sin(np.arange(200) * 0.7), 8000)   # a constant would be refused as silent
    assert extract_file(edge, FeatureConfig(vad="none")).shape[0] == 1
    missing = tmp_path / "missing.wav"
    with pytest.raises(AudioError, match="no such file"):
        extract_file(missing)
    with pytest.raises(ParameterError):
        feature_table([])


# ----------------------------------------------------------------------------- bad arguments to helpers

@pytest.mark.parametrize("call,needle", [
    (lambda: vad_mask([]), "non-empty"),
    (lambda: vad_mask(np.zeros((2, 2))), "1-D"),
    (lambda: vad_mask([0.0, np.nan]), "NaN"),
    (lambda: vad_mask([0.0, -np.inf]), "infinity"),
    (lambda: vad_mask([0.0, 1.0], threshold_db=0), "threshold_db"),
    (lambda: vad_mask([0.0, 1.0], min_frames=0), "min_frames"),
    (lambda: cmvn(np.zeros(5)), "frames x dims"),
    (lambda: cmvn(np.zeros((0, 3))), "non-empty"),
    (lambda: sliding_cmvn(np.zeros((5, 2)), 0), "window_frames"),
    (lambda: apply_cmvn(np.zeros(4), FeatureConfig()), "frames x dims"),
    (lambda: delta(np.zeros(5)), "frames x dims"),
    (lambda: delta(np.zeros((5, 2)), 0), "window"),
    (lambda: utterance_stats(np.zeros((0, 3))), "non-empty"),
    (lambda: utterance_stats(np.full((3, 2), np.nan)), "NaN"),
    (lambda: utterance_stats(np.zeros((3, 2), dtype=complex)), "real-valued"),
    (lambda: clip_vector(np.zeros(4)), "frames x dims"),
    (lambda: clip_vectors([]), "at least one"),
    (lambda: clip_vectors([np.zeros((3, 2)), np.zeros((3, 4))]), "different feature dimensions"),
    (lambda: frame_signal(np.zeros(10), 20, 5), "shorter than one frame"),
    (lambda: frame_signal(np.zeros(10), 0, 5), "frame_length"),
    (lambda: analysis_window("kaiser", 400), "window"),
    (lambda: dct_matrix(13, 20), "n_out <= n_in"),
    (lambda: spectral_rolloff(np.ones((1, 5)), 16000, 8, fraction=0.0), "fraction"),
])
def test_bad_helper_arguments(call, needle):
    with pytest.raises(ParameterError, match=needle):
        call()
