"""Bad input at every public edge: the right exception type, and a message that names the file/row."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
from conftest import write_tone

from speakerid.data.audio import load_audio
from speakerid.data.manifests import read_manifest
from speakerid.exceptions import AudioError, ManifestError, ParameterError, SpeakerIDError


# ----------------------------------------------------------------------------------------------- audio
def _write(path, data, rate=16000, subtype="FLOAT"):
    sf.write(str(path), data, rate, subtype=subtype)
    return path


BAD_AUDIO = {
    "empty file": lambda p: p.write_bytes(b""),
    "zero samples": lambda p: _write(p, np.zeros(0)),
    "one sample": lambda p: _write(p, np.array([0.5])),
    "too short": lambda p: _write(p, np.full(100, 0.5)),
    "all zeros": lambda p: _write(p, np.zeros(16000)),
    "nan": lambda p: _write(p, np.r_[np.full(8000, np.nan), np.full(8000, 0.1)]),
    "inf": lambda p: _write(p, np.r_[np.full(8000, np.inf), np.full(8000, 0.1)]),
    "random bytes": lambda p: p.write_bytes(np.random.default_rng(0).bytes(4000)),
    "text file": lambda p: p.write_text("speaker,path\nthis is not audio\n"),
    "truncated header": lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt "),
}


@pytest.mark.parametrize("kind", sorted(BAD_AUDIO))
def test_bad_audio_raises_audio_error_naming_file(tmp_path, kind):
    path = tmp_path / f"bad {kind}.wav"
    BAD_AUDIO[kind](path)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, SpeakerIDError)


def test_truncated_flac(tmp_path):
    good = tmp_path / "good.flac"
    t = np.arange(16000) / 16000
    sf.write(good, 0.3 * np.sin(2 * np.pi * 300 * t), 16000)
    bad = tmp_path / "cut.flac"
    bad.write_bytes(good.read_bytes()[:60])
    with pytest.raises(AudioError, match="cut.flac"):
        load_audio(bad)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="directory"):
        load_audio(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = write_tone(tmp_path / "locked.wav")
    path.chmod(0)
    with pytest.raises(AudioError, match="locked.wav"):
        load_audio(path)


def test_bad_sample_rate_request(tmp_path):
    path = write_tone(tmp_path / "a.wav")
    with pytest.raises(ParameterError):
        load_audio(path, sample_rate=0)


# ----------------------------------------------------------------------------------------------- manifests
@pytest.mark.parametrize("content,needle", [
    ("", "empty"),
    ("who,where\nx,a.wav\n", "missing column(s) speaker, path"),
    ("speaker;path\nx;a.wav\n", "missing column"),
    ("speaker,path\n,a.wav\n", "empty speaker id on line(s) 2"),
    ("speaker,path\nx,\n", "empty path on line(s) 2"),
    ("speaker,path,target\nx,a.wav,2\n", "target must be 0 or 1; line(s) 2"),
    ("speaker,path,target\nx,a.wav,yes\n", "'yes'"),
    ("speaker,path\n\"x,a.wav\n", "CSV"),
])
def test_bad_manifest(tmp_path, content, needle):
    write_tone(tmp_path / "a.wav")
    path = tmp_path / "m.csv"
    path.write_text(content)
    with pytest.raises(ManifestError) as info:
        read_manifest(path, require_target="target" in content)
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_manifest_requires_target_for_trials(tmp_path):
    write_tone(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text("speaker,path\nx,a.wav\n")
    with pytest.raises(ManifestError, match="target"):
        read_manifest(tmp_path / "m.csv", require_target=True)


def test_manifest_missing_and_directory(tmp_path):
    with pytest.raises(ManifestError, match="no such manifest"):
        read_manifest(tmp_path / "nope.csv")
    with pytest.raises(ManifestError, match="directory"):
        read_manifest(tmp_path)
