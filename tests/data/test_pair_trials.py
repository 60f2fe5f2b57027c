"""Pair trial lists: VoxCeleb, Kaldi and CSV formats, detection, forced formats, errors naming the line."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import write_tone

from speakerid.data.kaldi_manifests import write_data_dir
from speakerid.data.pair_trials import detect_pair_format, open_pairs
from speakerid.exceptions import ManifestError, ParameterError

PAIRS = [("1", "a/1.wav", "a/2.wav"), ("0", "a/1.wav", "b/1.wav"), ("1", "b/1.wav", "b/2.wav")]


@pytest.fixture
def audio(tmp_path):
    for _, enroll, test in PAIRS:
        for rel in (enroll, test):
            (tmp_path / rel).parent.mkdir(exist_ok=True)
            write_tone(tmp_path / rel)
    return tmp_path


def _three_formats(root):
    """The same pairs as a VoxCeleb list, a CSV list and a Kaldi list with its data directory."""
    (root / "lists").mkdir()
    vox = root / "lists" / "veri.txt"
    vox.write_text("".join(f"{lab} {e} {t}\n" for lab, e, t in PAIRS))
    csv = root / "lists" / "pairs.csv"
    csv.write_text("enroll,test,target\n" + "".join(f"../{e},../{t},{lab}\n" for lab, e, t in PAIRS))
    files = sorted({p for _, e, t in PAIRS for p in (e, t)})
    manifest = pd.DataFrame({"speaker": [f[0] for f in files], "path": [str(root / f) for f in files]})
    written = write_data_dir(manifest, root / "kaldi")
    utt = dict(zip(written["path"], written.index))
    kaldi = root / "lists" / "trials"
    kaldi.write_text("".join(f"{utt[str(root / e)]} {utt[str(root / t)]} {'target' if lab == '1' else 'nontarget'}\n"
                             for lab, e, t in PAIRS))
    return vox, csv, kaldi


def test_three_formats_name_the_same_audio_and_labels(audio):
    vox, csv, kaldi = _three_formats(audio)
    opened = [open_pairs(vox, audio_root=audio), open_pairs(csv), open_pairs(kaldi, data_dir=audio / "kaldi")]
    assert [p.format for p in opened] == ["voxceleb", "csv", "kaldi"]
    resolved = []
    for pairs in opened:
        assert pairs.n_pairs == 3 and pairs.has_target
        [chunk] = list(pairs.chunks())
        resolved.append([(pairs.source(e)[0], pairs.source(t)[0], lab)
                         for e, t, lab in zip(chunk["enroll"], chunk["test"], chunk["target"])])
    assert resolved[0] == resolved[1] == resolved[2]
    assert resolved[0][1] == (str(audio / "a/1.wav"), str(audio / "b/1.wav"), 0)


def test_chunks_keep_line_numbers_and_values_as_written(audio):
    (audio / "v.txt").write_text("# VoxCeleb-style\n\n" + "".join(f"{lab} {e} {t}\n" for lab, e, t in PAIRS))
    pairs = open_pairs(audio / "v.txt")
    chunks = list(pairs.chunks(chunksize=2))
    assert [len(c) for c in chunks] == [2, 1] and list(chunks[1].index) == [5]
    assert chunks[0]["enroll"].tolist() == ["a/1.wav", "a/1.wav"] and chunks[0]["target"].dtype == "int8"
    assert pairs.keys() == ["a/1.wav", "a/2.wav", "b/1.wav", "b/2.wav"]


def test_unlabelled_lists_and_forced_format(audio):
    (audio / "test.txt").write_text("a/1.wav a/2.wav\nb/1.wav b/2.wav\n")
    pairs = open_pairs(audio / "test.txt")
    assert pairs.format == "voxceleb" and not pairs.has_target and "target" not in next(pairs.chunks())
    (audio / "odd.txt").write_text("1 a/1.wav a/2.wav\n")
    with pytest.raises(ManifestError, match="line 1 fits no kaldi pair format"):
        open_pairs(audio / "odd.txt", format="kaldi", data_dir=audio)


@pytest.mark.parametrize("text, message", [
    ("1 a/1.wav a/2.wav\n2 a/1.wav b/1.wav\n", "line 2 fits no voxceleb pair format"),
    ("a/1.wav a/2.wav extra junk\n", "line 1 fits no pair-list format"),
    ("1 a/1.wav a/2.wav\na/1.wav b/1.wav\n", "line 2 is unlabelled"),
    ("enroll,test,target\na/1.wav,a/2.wav,maybe\n", "line 2 fits no csv pair format"),
    ("enroll,test,score\na/1.wav,a/2.wav,1\n", r"expected the header 'enroll,test\[,target\]'"),
    ("1 a/1.wav gone.wav\n", r"1 audio file\(s\) not found"),
    ("\n# nothing\n", "holds no pairs|is empty"),
])
def test_bad_pair_lists_name_the_line(audio, text, message):
    (audio / "bad.txt").write_text(text)
    with pytest.raises(ManifestError, match=message) as info:
        open_pairs(audio / "bad.txt")
    assert str(audio / "bad.txt") in str(info.value) and "\n" not in str(info.value)


def test_kaldi_lists_need_their_data_dir_and_known_utterances(audio):
    _, _, kaldi = _three_formats(audio)
    with pytest.raises(ParameterError, match="data_dir"):
        open_pairs(kaldi)
    kaldi.write_text("a-1 zz-9 target\n")
    with pytest.raises(ManifestError, match="not in the data directory: zz-9"):
        open_pairs(kaldi, data_dir=audio / "kaldi")
    with pytest.raises(ParameterError, match="format must be one of"):
        open_pairs(kaldi, format="nist")


def test_detection_of_each_format():
    assert detect_pair_format("1 id10270/x/00001.wav id10270/y/00002.wav") == "voxceleb"
    assert detect_pair_format("spk1-utt1 spk2-utt9 target") == "kaldi"
    assert detect_pair_format(" enroll , test") == "csv"
    assert detect_pair_format("1 a b c") is None


def test_shared_protocol_as_voxceleb_pairs(shared_dir, tmp_path):
    """A VoxCeleb-style list over the shared LibriSpeech files, paths relative to --audio-root."""
    enroll = pd.read_csv(shared_dir / "protocols" / "librispeech-test-other-enroll.csv").groupby("speaker").first()
    trials = pd.read_csv(shared_dir / "protocols" / "librispeech-test-other-trials.csv").head(20)
    lines = [f"{t.target} {enroll.loc[t.speaker, 'path']} {t.path}" for t in trials.itertuples()]
    (tmp_path / "veri.txt").write_text("\n".join(lines) + "\n")
    pairs = open_pairs(tmp_path / "veri.txt", audio_root=shared_dir / "protocols")
    assert pairs.n_pairs == 20 and pairs.has_target and pairs.format == "voxceleb"
