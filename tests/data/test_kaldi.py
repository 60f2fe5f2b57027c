"""Kaldi data directories: read, write (sorted as validate_data_dir.sh expects), segments, command entries."""

from __future__ import annotations

import shlex
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import write_tone

from speakerid.data.audio import load_audio
from speakerid.data.kaldi import (
    iter_utterances,
    read_data_dir,
    read_segments,
    read_table,
    read_wav_scp,
)
from speakerid.data.kaldi_manifests import write_data_dir
from speakerid.exceptions import AudioError, ManifestError


def test_wav_scp_commands_are_refused_without_the_flag(tmp_path):
    (tmp_path / "wav.scp").write_text("r1 /x/a.wav\nr2 flac -c -d -s /x/b.flac |\n")
    with pytest.raises(ManifestError) as info:
        read_wav_scp(tmp_path / "wav.scp")
    message = str(info.value)
    assert "\n" not in message and "wav.scp" in message and "line 2" in message and "--allow-commands" in message
    assert read_wav_scp(tmp_path / "wav.scp", allow_commands=True)["r2"] == "flac -c -d -s /x/b.flac |"


def test_allowed_command_entry_is_loaded_from_its_output(tmp_path):
    wav = write_tone(tmp_path / "a.wav", seconds=0.5)
    data = tmp_path / "d"
    data.mkdir()
    command = f"{shlex.quote(sys.executable)} -c 'import sys; sys.stdout.buffer.write(open(sys.argv[1], \"rb\").read())'"
    (data / "wav.scp").write_text(f"a-1 {command} {shlex.quote(str(wav))} |\n")
    (data / "utt2spk").write_text("a-1 a\n")
    with pytest.raises(ManifestError, match="line 1"):
        read_data_dir(data)
    frame = read_data_dir(data, allow_commands=True)
    [(utt, signal, rate)] = list(iter_utterances(frame, allow_commands=True))
    assert utt == "a-1" and rate == 16000
    np.testing.assert_array_equal(signal, load_audio(wav)[0])
    (data / "wav.scp").write_text("a-1 false |\n")
    with pytest.raises(AudioError, match="exited with status 1"):
        list(iter_utterances(read_data_dir(data, allow_commands=True), allow_commands=True))


def test_segments_are_cut_from_one_load_of_the_recording(tmp_path):
    rate = 8000
    signal = np.random.default_rng(0).uniform(-0.5, 0.5, 3 * rate).astype(np.float32)
    sf.write(str(tmp_path / "rec.wav"), signal, rate, subtype="FLOAT")
    data = tmp_path / "d"
    data.mkdir()
    (data / "wav.scp").write_text("rec rec.wav\n")
    (data / "segments").write_text("s-a rec 0.00 1.00\ns-b rec 1.50 -1\n")
    (data / "spk2utt").write_text("s s-a s-b\n")  # spk2utt alone is enough
    frame = read_data_dir(data, audio_root=tmp_path)
    assert list(frame.index) == ["s-a", "s-b"] and frame["start_s"].tolist() == [0.0, 1.5]
    cuts = {utt: x for utt, x, _ in iter_utterances(frame)}
    np.testing.assert_array_equal(cuts["s-a"], signal[:rate])
    np.testing.assert_array_equal(cuts["s-b"], signal[int(1.5 * rate):])
    write_data_dir(frame, tmp_path / "copy")  # segments survive a round trip
    assert read_segments(tmp_path / "copy" / "segments")["end_s"].isna().tolist() == [False, True]
    (data / "segments").write_text("s-a rec 0.00 1.00\ns-b rec 5.0 6.0\n")
    with pytest.raises(AudioError, match="s-b"):
        list(iter_utterances(read_data_dir(data, audio_root=tmp_path)))


@pytest.mark.parametrize("files, message", [
    ({"wav.scp": "a x.wav\n", "utt2spk": "a s\na t\n"}, "utt2spk: line 2: 'a' repeats line 1"),
    ({"wav.scp": "a x.wav\n", "utt2spk": "a s extra\n"}, "line 1: expected '<key> <value>'"),
    ({"wav.scp": "a x.wav\n", "utt2spk": "a s\nb s\n"}, "utterance(s) b of utt2spk have no entry in wav.scp"),
    ({"wav.scp": "a x.wav\n", "utt2spk": "a s\n", "spk2utt": "t a\n"}, "disagree on utterance(s) a"),
    ({"wav.scp": "a x.wav\n"}, "neither utt2spk nor spk2utt"),
    ({"wav.scp": "a x.wav\n", "utt2spk": "a s\n", "segments": "u b 0 1\n"}, "recording(s) b are not in wav.scp"),
    ({"wav.scp": "a x.wav\n", "utt2spk": "a s\n", "segments": "a a 2 1\n"}, "need 0 <= start_s < end_s"),
    ({"wav.scp": "a x.ark:12\n", "utt2spk": "a s\n"}, "archive offset"),
    ({"wav.scp": "a gone.wav\n", "utt2spk": "a s\n"}, "1 audio file(s) not found"),
    ({"wav.scp": "a x.wav\n", "utt2spk": "a .hidden\n"}, "must not start with '.'"),
])
def test_bad_data_dirs_name_the_file_and_line(tmp_path, files, message):
    write_tone(tmp_path / "x.wav")
    data = tmp_path / "d"
    data.mkdir()
    for name, text in files.items():
        (data / name).write_text(text)
    with pytest.raises(ManifestError) as info:
        read_data_dir(data, audio_root=tmp_path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_read_table_keeps_file_order(tmp_path):
    (tmp_path / "utt2spk").write_text("b-1 b\n\na-1 a\n")
    assert list(read_table(tmp_path / "utt2spk")) == ["b-1", "a-1"]
