"""speakerid.data.audio: audio loading, resampling, manifests, atomic writes."""

from __future__ import annotations

import re

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














# ------------------------------------------------------------------ codecs, header lies, channels, level (issue 14)

def test_non_seekable_codecs_are_decoded(tmp_path):
    """GSM 6.10 and G.721 cannot seek; soundfile's ``blocks`` refused them, front-to-back reading does not."""
    for subtype in ("GSM610", "G721_32"):
        path = write_tone(tmp_path / f"{subtype}.wav", 300, 0.5, 8000, subtype=subtype)
        signal, rate = load_audio(path)
        reference, _ = sf.read(path, dtype="float32")
        assert rate == 8000
        np.testing.assert_array_equal(signal, reference)


def test_wav_with_zero_data_size_reads_the_samples_that_follow(tmp_path):
    from speakerid.exceptions import AudioWarning

    honest = write_tone(tmp_path / "honest.wav", 300, 0.5, 16000)
    raw = bytearray(honest.read_bytes())
    at = raw.find(b"data")
    raw[at + 4:at + 8] = b"\0\0\0\0"
    liar = tmp_path / "liar.wav"
    liar.write_bytes(bytes(raw))
    with pytest.warns(AudioWarning, match=r"data chunk holds 0 bytes but 16000 bytes follow"):
        signal, _ = load_audio(liar)
    np.testing.assert_array_equal(signal, load_audio(honest)[0])


def test_compressed_wav_with_zero_data_size_says_what_disagrees(tmp_path):
    path = write_tone(tmp_path / "adpcm.wav", 300, 0.5, 16000, subtype="IMA_ADPCM")
    raw = bytearray(path.read_bytes())
    at = raw.find(b"data")
    raw[at + 4:at + 8] = b"\0\0\0\0"
    path.write_bytes(bytes(raw))
    with pytest.raises(AudioError, match=r"data chunk holds 0 bytes but \d+ bytes follow it, in a compressed"):
        load_audio(path)


def test_channels_in_antiphase_are_not_mixed_to_silence(tmp_path, rng):
    from speakerid.exceptions import AudioWarning

    voice = rng.uniform(-0.5, 0.5, 4000)
    sf.write(tmp_path / "anti.wav", np.stack([voice, -voice * 0.9], axis=1), 16000, subtype="FLOAT")
    with pytest.warns(AudioWarning, match=r"cancel when averaged .* using channel 1"):
        signal, _ = load_audio(tmp_path / "anti.wav")
    np.testing.assert_allclose(signal, voice, atol=1e-6)


def test_uncorrelated_and_identical_channels_are_averaged(tmp_path, rng):
    import warnings

    voice = rng.uniform(-0.5, 0.5, 4000)
    for name, channels in {"same": [voice, voice], "silent": [voice, 0 * voice]}.items():
        sf.write(tmp_path / f"{name}.wav", np.stack(channels, axis=1), 16000, subtype="FLOAT")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            signal, _ = load_audio(tmp_path / f"{name}.wav")
        np.testing.assert_allclose(signal, np.mean(channels, axis=0), atol=1e-6)


@pytest.mark.parametrize("level", [0.5, -0.25, 1.0])
def test_a_constant_is_silent_with_its_level(tmp_path, level):
    sf.write(tmp_path / "dc.wav", np.full(4000, level), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=re.escape(f"silent (a constant level of {level:+.4g}, no sound)")):
        load_audio(tmp_path / "dc.wav")


def test_quiet_files_are_refused_below_the_floor_only(tmp_path):
    from speakerid.data.audio import MIN_LEVEL_DBFS

    for peak_db, accepted in ((-40.0, True), (-60.0, True), (-62.0, False), (-90.0, False)):
        path = write_tone(tmp_path / f"{peak_db}.wav", 300, 0.5, 16000, amplitude=10 ** (peak_db / 20),
                          subtype="FLOAT")
        if accepted:
            load_audio(path)
        else:
            with pytest.raises(AudioError, match=rf"too quiet: peak {peak_db:.1f} dBFS"):
                load_audio(path)
    load_audio(path, min_level_dbfs=None)   # the check can be turned off
    assert MIN_LEVEL_DBFS == -61.0
