"""The feature front end: python_speech_features parity (psf mode), output shapes and dtypes for every feature
combination, VAD, CMVN, FeatureConfig serialisation/hash, resampling, utterance statistics.

Spectral shape features (ZCR, roll-off, flux, chroma) are in test_features_spectral.py; bad input in
test_features_failures.py.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
import python_speech_features as psf
from conftest import write_tone

from speakerid.data.audio import load_audio, resample
from speakerid.data.manifests import read_manifest
from speakerid.data.synth import make_speaker, synthesize_utterance
from speakerid.features import (
    FEATURE_NAMES,
    FeatureConfig,
    apply_cmvn,
    clip_vector,
    clip_vectors,
    delta,
    extract,
    extract_file,
    feature_dims,
    frame_energy,
    utterance_stats,
    vad_mask,
)

SR = 16000
RTOL = 1e-4


@pytest.fixture(scope="module")
def speech():
    """Two seconds of synthetic speech at 16 kHz (float32)."""
    return synthesize_utterance(make_speaker(0), np.random.default_rng(7), 2.0)


def _tone(freq, seconds, sr=SR, amplitude=0.5, phase=0.0):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def _raw(**changes):
    """A config with no VAD, no CMVN and no deltas, plus ``changes``."""
    return FeatureConfig(**{"vad": "none", "cmvn": "none", "delta_order": 0, **changes})


def _assert_close_rel(ours, ref, rtol=RTOL):
    """Equal within ``rtol`` relative to each value, or (for values near 0) to its column's scale."""
    assert ours.shape == ref.shape
    scale = np.maximum(np.abs(ref), np.abs(ref).max(axis=0, keepdims=True) * 1e-3)
    worst = float(np.max(np.abs(ours.astype(np.float64) - ref) / scale))
    assert worst < rtol, f"max relative difference {worst:.3g}"


# --------------------------------------------------------------------------- python_speech_features parity

# (FeatureConfig settings, matching python_speech_features.mfcc keyword arguments)
PSF_CASES = {
    "13 ceps": ({"n_ceps": 13}, {"numcep": 13}),
    "20 ceps 26 mels": ({"n_ceps": 20, "n_mels": 26}, {"numcep": 20, "nfilt": 26}),
    "20 ceps 40 mels": ({"n_ceps": 20, "n_mels": 40}, {"numcep": 20, "nfilt": 40}),
    "no energy, no lifter, preemph .95": (
        {"n_ceps": 13, "use_energy": False, "lifter": 0.0, "preemphasis": 0.95},
        {"numcep": 13, "appendEnergy": False, "ceplifter": 0, "preemph": 0.95}),
    "32/16 ms hann nfft 1024": (
        {"n_ceps": 13, "frame_length_ms": 32.0, "frame_shift_ms": 16.0, "n_fft": 1024, "window": "hann"},
        {"numcep": 13, "winlen": 0.032, "winstep": 0.016, "nfft": 1024, "winfunc": np.hanning}),
    "band 100-4000 Hz": ({"n_ceps": 13, "low_freq_hz": 100.0, "high_freq_hz": 4000.0},
                         {"numcep": 13, "lowfreq": 100, "highfreq": 4000}),
}


def _check_psf(signal, sr, ours_kw, psf_kw):
    ours = extract(signal, _raw(psf_compat=True, sample_rate=sr, **ours_kw))
    ref = psf.mfcc(signal, sr, **psf_kw)
    assert ours.dtype == np.float32
    _assert_close_rel(ours, ref)
    return ours, ref


@pytest.mark.parametrize("case", sorted(PSF_CASES))
def test_psf_mfcc_synthetic(speech, case):
    _check_psf(speech, SR, *PSF_CASES[case])


def test_psf_mfcc_8khz_synthetic():
    x = synthesize_utterance(make_speaker(3), np.random.default_rng(1), 1.5, sample_rate=8000)
    _check_psf(x, 8000, {"n_ceps": 13, "n_fft": 256}, {"numcep": 13, "nfft": 256})


def test_psf_deltas_match(speech):
    ours = extract(speech, _raw(psf_compat=True, n_ceps=13, delta_order=2))
    static = psf.mfcc(speech, SR, numcep=13)
    d1 = psf.delta(static, 2)
    d2 = psf.delta(d1, 2)
    assert ours.shape == (static.shape[0], 39)
    _assert_close_rel(ours[:, :13], static)
    np.testing.assert_allclose(ours[:, 13:26], d1, rtol=RTOL, atol=RTOL * np.abs(d1).max())
    np.testing.assert_allclose(ours[:, 26:], d2, rtol=RTOL, atol=RTOL * np.abs(d2).max())
    # and the public delta() is python_speech_features' delta for other window sizes too
    for window in (1, 3):
        np.testing.assert_allclose(delta(static, window), psf.delta(static, window), rtol=1e-10, atol=1e-10)


def test_psf_frame_energy_is_appended_energy(speech):
    config = _raw(psf_compat=True, n_ceps=13)
    np.testing.assert_allclose(frame_energy(speech, config), psf.mfcc(speech, SR, numcep=13)[:, 0], rtol=1e-6)


@pytest.mark.shared
@pytest.mark.slow
def test_psf_mfcc_librispeech(shared_dir):
    manifest = read_manifest(shared_dir / "protocols" / "librispeech-test-other-enroll.csv")
    for path in manifest["path"].iloc[[0, 15]]:
        signal, rate = load_audio(path)
        assert rate == SR
        for case in ("13 ceps", "20 ceps 40 mels", "no energy, no lifter, preemph .95"):
            _check_psf(signal, SR, *PSF_CASES[case])


@pytest.mark.shared
def test_psf_mfcc_fsdd_8khz(shared_dir):
    manifest = read_manifest(shared_dir / "protocols" / "fsdd-enroll.csv")
    signal, rate = load_audio(manifest["path"].iloc[0])
    assert rate == 8000
    _check_psf(signal, 8000, {"n_ceps": 13, "n_fft": 256}, {"numcep": 13, "nfft": 256})
    _check_psf(signal, 8000, {"n_ceps": 13, "n_fft": 512, "n_mels": 20}, {"numcep": 13, "nfft": 512, "nfilt": 20})


def test_default_mode_close_to_psf_with_same_window(speech):
    """The default mode differs from psf only in details (exact-frequency filters, whole frames, float32)."""
    ours = extract(speech, _raw(n_ceps=13, window="rect"))
    ref = psf.mfcc(speech, SR, numcep=13)[: len(ours)]
    # c0 (log energy) is defined differently; the cepstra agree on average to a few percent
    corr = [np.corrcoef(ours[:, k], ref[:, k])[0, 1] for k in range(1, 13)]
    assert min(corr) > 0.9


# --------------------------------------------------------------------------- shapes, dims and dtypes

ALL_COMBOS = [combo for r in range(1, len(FEATURE_NAMES) + 1)
              for combo in itertools.combinations(FEATURE_NAMES, r)]


def test_feature_dims_match_extract_for_every_combination(rng):
    signal = (0.1 * rng.standard_normal(SR // 2)).astype(np.float32)
    expected_frames = 1 + (len(signal) - 400) // 160
    for combo, order in itertools.product(ALL_COMBOS, (0, 1, 2)):
        config = _raw(features=combo, delta_order=order, n_ceps=13, n_mels=24)
        dims = feature_dims(config)
        assert list(dims) == list(combo)  # FEATURE_NAMES order, and combos are generated in that order
        feats = extract(signal, config)
        assert feats.shape == (expected_frames, sum(dims.values())), (combo, order)
        assert feats.dtype == np.float32 and feats.flags.c_contiguous
        assert np.all(np.isfinite(feats)), (combo, order)


@pytest.mark.parametrize("psf_compat", [False, True])
def test_stacked_columns_are_the_single_features(speech, psf_compat):
    """Extracting several features at once stacks exactly what each gives alone, in FEATURE_NAMES order."""
    config = _raw(features=FEATURE_NAMES[::-1], delta_order=2, n_ceps=13, psf_compat=psf_compat)
    together = extract(speech, config)
    alone = [extract(speech, config.replace(features=(name,))) for name in FEATURE_NAMES]
    np.testing.assert_array_equal(together, np.hstack(alone))
    assert together.shape[1] == sum(feature_dims(config).values()) == 13 * 3 + 26 * 3 + 1 + 1 + 1 + 1 + 12


def test_default_config_shape_and_normalisation(speech):
    feats = extract(speech)
    assert feats.dtype == np.float32
    assert feats.shape[1] == 60 == sum(feature_dims(FeatureConfig()).values())
    assert np.all(np.isfinite(feats))


def test_delta_blocks(speech):
    config = _raw(n_ceps=13, delta_order=2)
    feats = extract(speech, config)
    static = extract(speech, config.replace(delta_order=0))
    np.testing.assert_allclose(feats[:, :13], static)
    np.testing.assert_allclose(feats[:, 13:26], delta(static, 2), atol=1e-5)
    np.testing.assert_allclose(feats[:, 26:], delta(delta(static, 2), 2), atol=1e-5)
    wide = extract(speech, config.replace(delta_order=1, delta_window=4))
    assert wide.shape == (len(static), 26)
    np.testing.assert_allclose(wide[:, 13:], delta(static, 4), atol=1e-5)


def test_delta_of_a_ramp_and_constant():
    ramp = np.arange(20.0)[:, None] * np.array([[1.0, -2.0]])
    d = delta(ramp, 2)
    assert d.shape == ramp.shape
    np.testing.assert_allclose(d[2:-2], [[1.0, -2.0]] * 16)
    np.testing.assert_array_equal(delta(np.ones((5, 3)), 3), np.zeros((5, 3)))


def test_n_fft_none_picks_next_power_of_two(rng):
    signal = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    config = _raw(n_fft=None, frame_length_ms=40.0)  # 640 samples -> 1024
    assert config.fft_size == 1024
    assert extract(signal, config).shape == (1 + (SR - 640) // 160, 20)


def test_frame_energy_values():
    # a constant is a DC offset, not sound: the energy is that of the tone alone, whatever the offset
    tone = (np.sqrt(2) * np.sin(2 * np.pi * 250 * np.arange(SR) / SR)).astype(np.float32)   # unit power
    for offset in (0.0, 0.1, -0.5):
        energy = frame_energy(tone + np.float32(offset))
        assert energy.shape == (98,)
        np.testing.assert_allclose(energy[5:-5], np.log(400.0), atol=5e-3)   # 6.25 periods per frame
    silent = frame_energy(np.zeros(SR, dtype=np.float32))
    assert np.all(np.isfinite(silent))  # floored, never -inf


def test_digital_silence_gives_finite_features():
    for psf_compat in (False, True):
        feats = extract(np.zeros(SR, dtype=np.float32), FeatureConfig(features=FEATURE_NAMES, psf_compat=psf_compat))
        assert np.all(np.isfinite(feats))


def test_dither_is_deterministic_and_small(speech):
    config = _raw(dither=1e-5)
    a, b = extract(speech, config), extract(speech, config)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, extract(speech, config.replace(dither=0.0)))


def test_float64_input_same_as_float32_in_default_mode(speech):
    np.testing.assert_array_equal(extract(speech.astype(np.float64)), extract(speech))


def test_extract_file_resamples(tmp_path, rng):
    x = (0.2 * rng.standard_normal(8000)).astype(np.float32)
    import soundfile as sf

    sf.write(tmp_path / "a.wav", x, 8000, subtype="FLOAT")
    config = _raw()
    np.testing.assert_allclose(extract_file(tmp_path / "a.wav", config), extract(resample(x, 8000, SR), config),
                               rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- resampling keeps frequencies

def _peak_hz(signal, sr):
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return np.fft.rfftfreq(len(signal), 1.0 / sr)[np.argmax(spectrum)]


@pytest.mark.parametrize("orig,freq", [(44100, 1000.0), (8000, 1000.0), (8000, 3000.0), (22050, 440.0)])
def test_resample_keeps_tone_frequency(orig, freq):
    x = _tone(freq, 1.0, orig)
    y = resample(x, orig, SR)
    assert y.dtype == np.float32
    assert abs(len(y) - SR) <= 1
    assert abs(_peak_hz(y, SR) - freq) <= 1.0
    steady = y[SR // 10: -SR // 10]
    assert np.sqrt(np.mean(steady ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)  # level kept
    if orig < SR:  # no mirror image above the old Nyquist frequency
        spectrum = np.abs(np.fft.rfft(steady * np.hanning(len(steady)))) ** 2
        freqs = np.fft.rfftfreq(len(steady), 1.0 / SR)
        assert spectrum[freqs > orig / 2 + 100].sum() < 1e-4 * spectrum.sum()


def test_load_audio_44k_to_16k_keeps_tone(tmp_path):
    path = write_tone(tmp_path / "t.wav", 1000.0, 1.0, 44100)
    signal, rate = load_audio(path, sample_rate=SR)
    assert rate == SR and abs(_peak_hz(signal, rate) - 1000.0) <= 1.0


# --------------------------------------------------------------------------- VAD

def _tone_gap_tone(gap_noise):
    rng = np.random.default_rng(3)
    gap = gap_noise * rng.standard_normal(SR).astype(np.float32)
    return np.concatenate([_tone(300, 1.0), gap, _tone(300, 1.0, phase=1.0)])


@pytest.mark.parametrize("gap_noise", [0.0, 1e-4])
def test_vad_drops_silence_between_tones(gap_noise):
    signal = _tone_gap_tone(gap_noise)
    starts = np.arange(1 + (len(signal) - 400) // 160) * 160
    in_gap = (starts >= SR) & (starts + 400 <= 2 * SR)  # frames wholly inside the silence
    config = _raw(vad="energy", n_ceps=13, delta_order=2)
    mask = vad_mask(frame_energy(signal, config), config.vad_threshold_db, config.vad_min_frames)
    np.testing.assert_array_equal(mask, ~in_gap)
    kept = extract(signal, config)
    assert len(kept) == np.count_nonzero(~in_gap) == 200
    # deltas were computed on all frames before dropping: VAD output = no-VAD output at the kept frames
    np.testing.assert_array_equal(kept, extract(signal, config.replace(vad="none"))[mask])


def test_vad_psf_mode_drops_silence_too():
    signal = _tone_gap_tone(0.0)
    kept = extract(signal, _raw(vad="energy", psf_compat=True))
    assert 198 <= len(kept) <= 203


def test_vad_is_relative_quiet_signal_keeps_all_frames(rng):
    """All-quiet (but non-zero) audio is not dropped: the threshold is relative to the loudest frame."""
    quiet = (1e-5 * rng.standard_normal(SR)).astype(np.float32)
    assert len(extract(quiet, _raw(vad="energy"))) == 98


def test_vad_never_returns_fewer_than_min_frames(rng):
    signal = np.zeros(SR, dtype=np.float32)
    signal += (1e-6 * rng.standard_normal(SR)).astype(np.float32)
    signal[8000:8100] += 0.5  # one short click: only ~3 frames are within 30 dB of it
    config = _raw(vad="energy", vad_min_frames=20)
    feats = extract(signal, config)
    assert len(feats) == 20
    mask = vad_mask(frame_energy(signal, config), 30.0, 20)
    loudest = np.argsort(-frame_energy(signal, config))[:20]
    assert set(np.flatnonzero(mask)) == set(loudest)
    # a clip with fewer frames than vad_min_frames keeps every frame
    short = signal[7800:7800 + 400 + 9 * 160]
    assert len(extract(short, config)) == 10


def test_vad_mask_examples():
    energy = np.log(np.array([1.0, 1e-6, 0.5, 1e-6, 1e-2]))
    np.testing.assert_array_equal(vad_mask(energy, 30.0, 1), [True, False, True, False, True])
    np.testing.assert_array_equal(vad_mask(energy, 10.0, 1), [True, False, True, False, False])
    np.testing.assert_array_equal(vad_mask(energy, 10.0, 3), [True, False, True, False, True])


# --------------------------------------------------------------------------- CMVN

def test_utterance_cmvn_zero_mean_unit_variance(speech):
    feats = extract(speech, FeatureConfig(vad="none", features=("mfcc", "logmel", "energy", "zcr")))
    np.testing.assert_allclose(feats.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(feats.std(axis=0), 1.0, atol=1e-3)
    means_only = extract(speech, FeatureConfig(vad="none", cmvn_variance=False))
    raw = extract(speech, _raw(delta_order=2))
    np.testing.assert_allclose(means_only.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(means_only.std(axis=0), raw.std(axis=0), rtol=1e-4)


def test_sliding_cmvn_normalises_each_window(speech):
    raw = extract(speech, _raw(n_ceps=13)).astype(np.float64)
    window = 51
    slid = extract(speech, _raw(n_ceps=13, cmvn="sliding", cmvn_window_frames=window))
    n = len(raw)
    for t in range(n):
        start = min(max(t - window // 2, 0), n - window)  # centred, shifted inwards at the edges
        chunk = raw[start:start + window]
        if window // 2 <= t < n - window // 2:
            assert start + window // 2 == t  # interior: the frame is the window's centre
        expected = (raw[t] - chunk.mean(axis=0)) / chunk.std(axis=0)
        np.testing.assert_allclose(slid[t], expected, rtol=1e-3, atol=1e-3)
    # over any interior window the normalised centre frames average ~0
    assert np.abs(slid[window:-window].mean(axis=0)).max() < 0.5


def test_sliding_cmvn_longer_than_utterance_is_utterance_cmvn(speech):
    a = extract(speech, FeatureConfig(vad="none", cmvn="sliding", cmvn_window_frames=1001))
    b = extract(speech, FeatureConfig(vad="none", cmvn="utterance"))
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_apply_cmvn_modes():
    x = np.arange(12.0).reshape(6, 2) ** 2
    np.testing.assert_array_equal(apply_cmvn(x, FeatureConfig(cmvn="none")), x)
    np.testing.assert_allclose(apply_cmvn(x, FeatureConfig(cmvn="utterance")).std(axis=0), 1.0)
    out = apply_cmvn(x, FeatureConfig(cmvn="sliding", cmvn_window_frames=3, cmvn_variance=False))
    np.testing.assert_allclose(out[1:-1], x[1:-1] - (x[:-2] + x[1:-1] + x[2:]) / 3)


# --------------------------------------------------------------------------- utterance statistics

def test_utterance_stats_and_clip_vectors(speech):
    feats = extract(speech)
    mean, std = utterance_stats(feats)
    assert mean.shape == std.shape == (60,) and mean.dtype == std.dtype == np.float32
    np.testing.assert_allclose(std, feats.std(axis=0), rtol=1e-4)
    vec = clip_vector(feats)
    assert vec.shape == (120,) and vec.dtype == np.float32
    np.testing.assert_array_equal(vec, np.concatenate([mean, std]))
    stacked = clip_vectors([feats, feats[:10], feats[5:6]])
    assert stacked.shape == (3, 120)
    np.testing.assert_array_equal(stacked[2, 60:], 0.0)  # a one-frame clip has zero spread


# --------------------------------------------------------------------------- FeatureConfig

#: sha256 of the default config's JSON, first 16 hex digits. FeatureConfig.hash() is documented as stable across
#: machines and versions: models record it. If a field is added or a default changes ON PURPOSE, update this.
DEFAULT_HASH = "17383ec06a6cda32"


def test_config_json_round_trip():
    configs = [FeatureConfig(), FeatureConfig(features=FEATURE_NAMES, n_fft=None, high_freq_hz=3800.0,
                                              window="povey", cmvn="sliding", psf_compat=True, dither=1e-4)]
    for config in configs:
        again = FeatureConfig.from_json(config.to_json())
        assert again == config and again.hash() == config.hash()
        assert isinstance(again.features, tuple)
        assert FeatureConfig.from_dict(config.to_dict()) == config


def test_config_hash_stable_and_discriminating():
    assert FeatureConfig().hash() == DEFAULT_HASH
    assert FeatureConfig(n_ceps=13).hash() == FeatureConfig(n_ceps=13).hash()
    hashes = {FeatureConfig(**kw).hash() for kw in
              [{}, {"n_ceps": 13}, {"n_mels": 40}, {"psf_compat": True}, {"features": ("mfcc", "zcr")},
               {"vad": "none"}, {"preemphasis": 0.95}, {"high_freq_hz": 7000.0}]}
    assert len(hashes) == 8
    assert len(DEFAULT_HASH) == 16 and int(DEFAULT_HASH, 16) >= 0


def test_equal_configs_have_equal_hashes():
    """Numbers given as int or float (or numpy scalars) make the same config, JSON and hash."""
    same = [FeatureConfig(frame_length_ms=25, frame_shift_ms=10, lifter=22),
            FeatureConfig(n_ceps=np.int64(20), sample_rate=16000.0, preemphasis=np.float64(0.97)),
            FeatureConfig(features="mfcc"), FeatureConfig(features=["mfcc"]),
            FeatureConfig.from_json(FeatureConfig().to_json().replace("25.0", "25"))]
    for config in same:
        assert config == FeatureConfig()
        assert config.hash() == DEFAULT_HASH
        assert config.to_json() == FeatureConfig().to_json()
    assert FeatureConfig(n_ceps=np.int64(13)).to_json() == FeatureConfig(n_ceps=13).to_json()


def test_config_hash_same_in_other_processes(tmp_path):
    code = ("from speakerid.features import FeatureConfig; "
            "print(FeatureConfig().hash(), FeatureConfig(n_ceps=13, features=('mfcc', 'chroma')).hash())")
    expected = f"{DEFAULT_HASH} {FeatureConfig(n_ceps=13, features=('mfcc', 'chroma')).hash()}"
    for seed in ("12345",):  # another process, another str-hash seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                             cwd=str(tmp_path), check=True, timeout=60)
        assert out.stdout.strip() == expected


def test_config_replace_validates_and_check_same():
    from speakerid.exceptions import ConfigMismatchError, ParameterError

    base = FeatureConfig()
    assert base.replace(n_ceps=13).n_ceps == 13
    with pytest.raises(ParameterError):
        base.replace(n_ceps=99)
    base.check_same(FeatureConfig())
    with pytest.raises(ConfigMismatchError, match="n_ceps: 20 != 13"):
        base.check_same(FeatureConfig(n_ceps=13))
