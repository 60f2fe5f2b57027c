"""speakerid.io: audio loading, resampling, manifests, atomic writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import write_tone

from speakerid.exceptions import AudioError, ManifestError
from speakerid.io import atomic_write, iter_manifest, load_audio, read_manifest, resample


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


def test_manifest_relative_paths_and_extra_columns(tmp_path):
    (tmp_path / "audio").mkdir()
    write_tone(tmp_path / "audio" / "a.wav")
    (tmp_path / "m.csv").write_text("speaker,path,session\n007,audio/a.wav,s1\n")
    frame = read_manifest(tmp_path / "m.csv")
    assert list(frame["speaker"]) == ["007"]  # ids stay text
    assert frame["path"].iloc[0] == str((tmp_path / "audio" / "a.wav").resolve())
    assert frame["session"].iloc[0] == "s1"
    assert frame.index[0] == 2  # CSV line number


def test_manifest_target_bom_blank_rows(tmp_path):
    write_tone(tmp_path / "a.wav")
    (tmp_path / "t.csv").write_bytes("\ufeffspeaker,path,target\nx,a.wav,1\n,,\ny,a.wav,0\n".encode())
    frame = read_manifest(tmp_path / "t.csv", require_target=True)
    assert list(frame["target"]) == [1, 0] and frame["target"].dtype == np.int8
    assert list(frame.index) == [2, 4]


def test_manifest_lists_all_missing_files(tmp_path):
    write_tone(tmp_path / "ok.wav")
    (tmp_path / "m.csv").write_text("speaker,path\na,ok.wav\nb,gone1.wav\nc,gone2.wav\n")
    with pytest.raises(ManifestError) as info:
        read_manifest(tmp_path / "m.csv")
    message = str(info.value)
    assert "2 audio file(s) not found" in message
    assert "gone1.wav" in message and "gone2.wav" in message and "line 3" in message
    assert str(tmp_path / "m.csv") in message


def test_iter_manifest_chunks_keep_line_numbers(tmp_path):
    write_tone(tmp_path / "a.wav")
    rows = "".join(f"s{i},a.wav,{i % 2}\n" for i in range(25))
    (tmp_path / "t.csv").write_text("speaker,path,target\n" + rows)
    chunks = list(iter_manifest(tmp_path / "t.csv", chunksize=10, require_target=True))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert chunks[1].index[0] == 12
    whole = pd.concat(chunks)
    assert list(whole["speaker"]) == [f"s{i}" for i in range(25)]


def test_atomic_write_leaves_old_file_on_error(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as fh:
            fh.write("new")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    import os
    import stat

    from speakerid.io import atomic_write

    with atomic_write(tmp_path / "out.txt", "w") as fh:
        fh.write("x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o666 & ~mask
