"""The robust front end: feature warping, RASTA, the two-Gaussian VAD, denoising, noise-augmented training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy.special import ndtri

from speakerid.exceptions import ParameterError
from speakerid.features import FeatureConfig, extract
from speakerid.features.config import _LATER_FIELDS
from speakerid.features.denoise import denoise_power, estimate_noise
from speakerid.features.framing import frame_log_energy, frame_signal
from speakerid.features.mfcc import power_spectrum
from speakerid.features.rasta import rasta_filter, rasta_response
from speakerid.features.vad import gmm_vad_mask, vad_mask
from speakerid.features.warping import feature_warp, warp_quantiles
from speakerid.verifier import SpeakerVerifier

# --------------------------------------------------------------------------- feature warping


def test_warp_window_is_exactly_the_normal_quantiles_of_the_ranks(rng):
    x = rng.gamma(2.0, size=(301, 4))  # skewed, no ties
    out = feature_warp(x, 301)         # one window covers the whole utterance
    ranks = np.argsort(np.argsort(x, axis=0), axis=0) + 1
    np.testing.assert_allclose(out, ndtri((ranks - 0.5) / 301))
    for column in out.T:                # every column is the full set of quantiles
        np.testing.assert_allclose(np.sort(column), warp_quantiles(301))
    assert np.allclose(out.mean(axis=0), 0.0, atol=1e-12)
    assert np.allclose(out.std(axis=0), 1.0, atol=0.02)


def test_warp_sliding_window_uses_the_centred_window(rng):
    x = rng.normal(size=(50, 2)) * np.linspace(1, 20, 50)[:, None]  # non-stationary scale
    window = 11
    out = feature_warp(x, window)
    for t in (0, 3, 5, 25, 44, 49):
        start = min(max(t - window // 2, 0), 50 - window)
        block = x[start: start + window]
        rank = np.sum(block < x[t], axis=0) + 1
        np.testing.assert_allclose(out[t], ndtri((rank - 0.5) / window))
    # locally N(0, 1): the growing scale is gone
    assert abs(out[:25].std() - out[25:].std()) < 0.2


def test_warp_is_invariant_to_monotone_transforms(rng):
    x = rng.normal(size=(400, 3))
    np.testing.assert_array_equal(feature_warp(np.exp(3 * x) + 7.0, 101), feature_warp(x, 101))
    np.testing.assert_array_equal(feature_warp(x.astype(np.float32), 101).dtype, np.float32)


def test_warp_ties_and_short_input():
    np.testing.assert_array_equal(feature_warp(np.ones((5, 2)), 301), 0.0)  # mid-rank of a constant column
    np.testing.assert_allclose(feature_warp(np.array([[1.0], [2.0]]), 301)[:, 0], ndtri([0.25, 0.75]))
    with pytest.raises(ParameterError, match="frames x dims"):
        feature_warp(np.ones(5), 3)
    with pytest.raises(ParameterError, match="window_frames"):
        feature_warp(np.ones((5, 1)), 0)


def test_extract_with_warping_is_gaussian_per_column(rng):
    signal = (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32)
    feats = extract(signal, FeatureConfig(cmvn="warp", vad="none"))
    assert feats.dtype == np.float32
    assert np.allclose(feats.mean(axis=0), 0.0, atol=0.05) and np.allclose(feats.std(axis=0), 1.0, atol=0.05)


# --------------------------------------------------------------------------- RASTA

def test_rasta_constant_trajectory_goes_to_zero_and_steps_decay():
    np.testing.assert_allclose(rasta_filter(np.full((40, 3), -7.5)), 0.0, atol=1e-12)
    step = np.concatenate([np.zeros(20), np.ones(400)])[:, None]  # a channel change mid-utterance
    out = rasta_filter(step)[:, 0]
    assert np.abs(out[20:30]).max() > 0.1           # the change passes briefly...
    assert abs(out[-1]) < 1e-3                      # ...and is forgotten (pole 0.98)
    assert np.all(np.abs(np.diff(np.abs(out[40:]))) <= 1e-12 + np.abs(out[40:-1]) * 0.03)


def test_rasta_frequency_response_is_band_pass():
    freqs = np.linspace(0.0, 50.0, 501)
    response = rasta_response(freqs, frame_rate_hz=100.0)
    assert response[0] < 1e-12 and response[-1] < 1e-12            # zeros at DC and the frame Nyquist
    peak = freqs[np.argmax(response)]
    assert 1.0 <= peak <= 6.0                                        # speech modulation rates pass
    assert response[(freqs >= 1.0) & (freqs <= 6.0)].min() > 0.9
    assert response[freqs >= 25.0].max() < 0.2                        # fast jitter is cut
    # the filter does what its response says: a 4 Hz modulation passes, a 0.1 Hz drift does not
    t = np.arange(2000) / 100.0
    slow, mid = np.sin(2 * np.pi * 0.1 * t), np.sin(2 * np.pi * 4.0 * t)
    out = rasta_filter(np.stack([slow, mid], axis=1))[500:]
    assert rasta_response(0.1) < 0.35 and rasta_response(4.0) > 0.95
    assert out[:, 0].std() / slow.std() == pytest.approx(float(rasta_response(0.1)), rel=0.05)
    assert out[:, 1].std() / mid.std() == pytest.approx(float(rasta_response(4.0)), rel=0.02)


def test_rasta_removes_a_channel_offset_in_extract(rng):
    signal = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    config = FeatureConfig(rasta=True, vad="none", cmvn="none")
    louder = extract(signal * 4.0, config)   # a gain is a constant offset of every log-mel trajectory
    np.testing.assert_allclose(louder[30:], extract(signal, config)[30:], atol=0.05)


# --------------------------------------------------------------------------- VAD

def _tone_in_noise(rng, rate=16000):
    t = np.arange(rate * 2) / rate
    signal = 0.01 * rng.standard_normal(t.size)
    speech = (t >= 0.5) & (t < 1.5)
    signal[speech] += 0.3 * np.sin(2 * np.pi * 440 * t[speech])
    return signal.astype(np.float32), speech


def test_gmm_vad_picks_the_tone_over_the_noise(rng):
    signal, _ = _tone_in_noise(rng)
    energy = frame_log_energy(frame_signal(signal, 400, 160))
    centres = (np.arange(len(energy)) * 160 + 200) / 16000
    mask = gmm_vad_mask(energy, threshold_db=30.0, min_frames=20)
    inside, outside = (centres > 0.53) & (centres < 1.47), (centres < 0.47) | (centres > 1.53)
    assert mask[inside].all() and not mask[outside].any()
    # a fixed threshold far below the peak keeps the noise too; the two-Gaussian model does not need tuning
    assert vad_mask(energy, threshold_db=60.0, min_frames=20)[outside].all()
    assert not gmm_vad_mask(energy, threshold_db=60.0, min_frames=20)[outside].any()


def test_gmm_vad_keeps_enough_frames_of_a_short_clip(rng):
    energy = np.concatenate([np.full(30, -5.0), np.full(3, 5.0)]) + 0.01 * rng.standard_normal(33)
    mask = gmm_vad_mask(energy, min_frames=20)
    assert mask.sum() == 20 and mask[30:].all()          # the 3 loud frames plus the next loudest
    assert gmm_vad_mask(energy[:10], min_frames=20).all()  # shorter than min_frames: everything
    assert gmm_vad_mask(np.zeros(50), min_frames=1).all()  # flat energy: nothing to separate
    config = FeatureConfig(vad="gmm", vad_min_frames=20)
    signal, _ = _tone_in_noise(rng)
    assert len(extract(signal[:4000], config)) >= 20 and len(extract(signal, config)) >= 90
    with pytest.raises(ParameterError, match="min_frames"):
        gmm_vad_mask(energy, min_frames=0)


# --------------------------------------------------------------------------- denoising

def _tone_snr_db(power, tone_bin, speech_frames):
    band = slice(tone_bin - 3, tone_bin + 4)
    tone = power[speech_frames][:, band].sum()
    rest = power[speech_frames].sum() - tone
    return 10 * np.log10(tone / rest)


@pytest.mark.parametrize("method, gain_db", [("specsub", 6.0), ("wiener", 3.0)])
def test_denoising_raises_the_snr_of_a_tone_in_white_noise(rng, method, gain_db):
    rate = 16000
    t = np.arange(rate * 2) / rate
    signal = 0.1 * rng.standard_normal(t.size)
    signal[t >= 1.0] += 0.1 * np.sin(2 * np.pi * 1000 * t[t >= 1.0])   # noise alone, then tone in noise
    frames = frame_signal(signal, 400, 160)
    power = power_spectrum(frames, 512, np.hamming(400), dtype=np.float64)
    energy = frame_log_energy(frames)
    speech = (np.arange(len(frames)) * 160 + 200) / rate > 1.05
    tone_bin = int(round(1000 * 512 / rate))
    before = _tone_snr_db(power, tone_bin, speech)
    after = _tone_snr_db(denoise_power(power, energy, method), tone_bin, speech)
    assert after > before + gain_db
    noise = estimate_noise(power, energy)
    assert noise.shape == (257,) and noise[tone_bin] < 2 * np.median(noise)  # estimated on tone-free frames


def test_denoise_in_extract_and_bad_method(rng):
    signal = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    for method in ("specsub", "wiener"):
        feats = extract(signal, FeatureConfig(denoise=method))
        assert feats.shape[1] == 60 and np.all(np.isfinite(feats))
    with pytest.raises(ParameterError, match="method"):
        denoise_power(np.ones((4, 3)), np.zeros(4), "magic")


# --------------------------------------------------------------------------- configuration

@pytest.mark.parametrize("changes, message", [
    ({"cmvn": "gauss"}, "cmvn must be one of"), ({"vad": "neural"}, "vad must be one of"),
    ({"denoise": "yes"}, "denoise must be one of"), ({"rasta": 1}, "rasta must be true or false"),
    ({"psf_compat": True, "rasta": True}, "psf_compat"), ({"psf_compat": True, "denoise": "wiener"}, "psf_compat"),
])
def test_config_refuses_bad_robust_options(changes, message):
    with pytest.raises(ParameterError, match=message):
        FeatureConfig(**changes)


def test_later_fields_keep_older_configs_json_and_hash():
    config = FeatureConfig(rasta=True, denoise="specsub", cmvn="warp", vad="gmm")
    assert FeatureConfig.from_json(config.to_json()) == config
    off = FeatureConfig(**_LATER_FIELDS)
    data = json.loads(off.to_json())
    assert not set(_LATER_FIELDS) & set(data)          # the JSON of an older front end is unchanged...
    assert FeatureConfig.from_dict(data) == off         # ...and reads back as that front end, not the default


# --------------------------------------------------------------------------- augmented training

def _write_corpus(folder, rng, n=3):
    """Speech-like files: a buzz at 150-230 Hz through a moving resonance, in 4 Hz syllables (a steady tone, as
    used before, is refused as "no speech found" by the speech check since issue 14)."""
    paths = []
    for i in range(n):
        t = np.arange(16000) / 16000
        f0 = 150 + 40 * i + 20 * np.sin(2 * np.pi * 0.7 * t)
        buzz = np.sign(np.sin(2 * np.pi * np.cumsum(f0) / 16000))
        formant = np.sin(2 * np.pi * (500 + 400 * np.sin(2 * np.pi * 3 * t)) * t)
        syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
        audio = 0.2 * syllables * buzz * formant + 0.01 * rng.standard_normal(t.size)
        path = folder / f"s{i}.wav"
        sf.write(path, audio.astype(np.float32), 16000)
        paths.append(str(path))
    return paths


def test_train_ubm_augment_header_determinism_and_refusal(tmp_path, rng):
    paths = _write_corpus(tmp_path, rng)
    config = FeatureConfig(n_ceps=13, delta_order=1)
    manifest = pd.DataFrame({"speaker": ["a", "b", "c"], "path": paths})
    kwargs = {"n_components": 4, "max_iter": 3}
    means = []
    for name in ("one", "two"):
        verifier = SpeakerVerifier(tmp_path / name, feature_config=config)
        verifier.train(manifest, n_augment=2, **kwargs)
        header, arrays = verifier.store.load("ubm.npz")
        means.append(arrays["means"])
        assert header["augment"]["copies"] == 2 and header["augment"]["seed"] == 0
        assert header["n_frames"] == 3 * 3 * len(extract_ok(paths[0], config))   # 3 files, each + 2 copies
    np.testing.assert_array_equal(means[0], means[1])
    plain = SpeakerVerifier(tmp_path / "plain", feature_config=config)
    plain.train(manifest, n_augment=0, **kwargs)
    assert plain.store.load("ubm.npz")[0]["augment"]["copies"] == 0
    assert not np.array_equal(plain.store.load("ubm.npz")[1]["means"], means[0])
    for bad in (-1, 1.5, True):
        with pytest.raises(ParameterError, match="n_augment"):
            plain.train(manifest, n_augment=bad, **kwargs)
    one = SpeakerVerifier(tmp_path / "one")
    result = one.enroll("zed", paths[:1], n_augment=1)
    assert result["n_frames"] == len(extract_ok(paths[0], config))   # the clean frames
    assert one.store.load_speaker("zed", backend=one.backend_name)[0]["augment"]["copies"] == 1
    one.enroll("yan", paths[:1])                                       # default: as the UBM (2 copies)
    assert one.store.load_speaker("yan", backend=one.backend_name)[0]["augment"]["copies"] == 2
    plain.enroll("yan", paths[:1])
    assert "augment" not in plain.store.load_speaker("yan", backend=plain.backend_name)[0]
    models_a = [one.store.load_speaker(s, backend=one.backend_name)[1]["means"] for s in ("zed", "yan")]
    assert not np.array_equal(*models_a)   # same file, different noise -> different adaptation
    with pytest.raises(ParameterError, match="n_augment"):
        SpeakerVerifier(tmp_path / "one").enroll("zed", paths[:1], n_augment=-2)


def extract_ok(path, config):
    from speakerid.features import extract_file
    return extract_file(path, config)


def test_cli_augment_options(tmp_path, rng):
    from speakerid.cli.main import main
    paths = _write_corpus(tmp_path, rng)
    manifest = tmp_path / "bg.csv"
    manifest.write_text("speaker,path\n" + "".join(f"bg{i},{p}\n" for i, p in enumerate(paths)))
    common = ["--model-dir", str(tmp_path / "m"), "--n-ceps", "13"]
    assert main(["train-ubm", "--manifest", str(manifest), "--components", "2", "--iterations", "2",
                 "--augment", "1", *common]) == 0
    verifier = SpeakerVerifier(tmp_path / "m")
    assert verifier.store.load("ubm.npz")[0]["augment"]["copies"] == 1
    assert main(["enroll", "--speaker", "zed", paths[0], *common]) == 0          # follows the UBM
    assert verifier.store.load_speaker("zed", backend="gmm-ubm")[0]["augment"]["copies"] == 1
    assert main(["enroll", "--speaker", "yan", paths[1], "--augment", "0", *common]) == 0
    assert "augment" not in verifier.store.load_speaker("yan", backend="gmm-ubm")[0]
    assert main(["enroll", "--speaker", "yan", paths[1], "--augment", "-1", *common]) == 2   # ParameterError
