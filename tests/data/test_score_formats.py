"""Score files out in csv, kaldi, voxceleb and nist formats, and read back (labels from a key)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speakerid.data.score_formats import (
    SCORE_FORMATS,
    ScoreWriter,
    detect_score_format,
    read_key,
    read_score_table,
)
from speakerid.exceptions import ManifestError, ParameterError

FRAME = pd.DataFrame({"speaker": ["ann", "ann", "bob", "bob"], "path": ["t/1.wav", "t/2.wav", "t/1.wav", "t/3.wav"],
                      "target": ["1", "0", "0", "1"], "score": [2.5, -1.0, np.nan, 0.123456789],
                      "error": ["", "", "no speech", ""]})


def _write(path, fmt, chunks=(FRAME.iloc[:2], FRAME.iloc[2:])):
    with ScoreWriter(path, fmt, enroll="speaker", test="path") as writer:
        for chunk in chunks:
            writer.write(chunk)
    return writer


def test_each_format_writes_its_documented_columns(tmp_path):
    lines = {}
    for fmt in SCORE_FORMATS:
        writer = _write(tmp_path / fmt, fmt)
        lines[fmt] = (tmp_path / fmt).read_text().splitlines()
        assert writer.n_unscored == (0 if fmt == "csv" else 1)
    assert lines["kaldi"] == ["ann t/1.wav 2.5", "ann t/2.wav -1", "bob t/3.wav 0.123456789"]
    assert lines["voxceleb"][0] == "2.5 ann t/1.wav"
    assert lines["nist"][:2] == ["modelid\tsegmentid\tside\tLLR", "ann\tt/1.wav\ta\t2.5"]
    assert lines["csv"][0] == "speaker,path,target,score,error" and len(lines["csv"]) == 5


@pytest.mark.parametrize("fmt", SCORE_FORMATS)
def test_every_format_reads_back_with_labels_from_the_key(tmp_path, fmt):
    _write(tmp_path / "scores", fmt)
    FRAME[["speaker", "path", "target"]].to_csv(tmp_path / "trials.csv", index=False)
    back = read_score_table(tmp_path / "scores", key=tmp_path / "trials.csv")  # format detected
    scored = back[back["score"].notna()]
    assert scored["enroll"].tolist() == ["ann", "ann", "bob"]
    np.testing.assert_allclose(scored["score"], [2.5, -1.0, 0.123456789], rtol=1e-9)
    assert scored["target"].tolist() == [1, 0, 1]


def test_speechbrain_lines_carry_their_label(tmp_path):
    (tmp_path / "sb.txt").write_text("id1/a id2/b 1 0.731\nid1/a id3/c 0 -0.2\n")
    back = read_score_table(tmp_path / "sb.txt")
    assert back["target"].tolist() == [1, 0] and back["score"].tolist() == [0.731, -0.2]


def test_keys_in_pair_and_nist_formats(tmp_path):
    (tmp_path / "vox.txt").write_text("1 a.wav b.wav\n0 a.wav c.wav\n")
    (tmp_path / "kaldi").write_text("u1 u2 target\nu1 u3 nontarget\n")
    (tmp_path / "nist").write_text("modelid segmentid side targettype\nm1 s1 a target\n")
    assert read_key(tmp_path / "vox.txt") == {("a.wav", "b.wav"): 1, ("a.wav", "c.wav"): 0}
    assert read_key(tmp_path / "kaldi") == {("u1", "u2"): 1, ("u1", "u3"): 0}
    assert read_key(tmp_path / "nist") == {("m1", "s1"): 1}


def test_errors(tmp_path):
    with pytest.raises(ParameterError, match="score format must be one of"):
        ScoreWriter(tmp_path / "x", "sre")
    spaced = FRAME.assign(path=["my file.wav"] * 4)
    with pytest.raises(ParameterError, match="write csv instead"):
        _write(tmp_path / "k", "kaldi", chunks=[spaced])
    assert not (tmp_path / "k").exists()  # nothing half-written
    (tmp_path / "bad").write_text("ann a.wav 1.0\nann b.wav high\n")
    with pytest.raises(ManifestError, match="line 2 does not fit the kaldi score format"):
        read_score_table(tmp_path / "bad")
    (tmp_path / "amb").write_text("1 2 3\n")
    with pytest.raises(ManifestError, match="cannot tell the score format"):
        read_score_table(tmp_path / "amb")
    assert read_score_table(tmp_path / "amb", "kaldi")["score"].tolist() == [3.0]
    with pytest.raises(ManifestError, match="not in the key: 1 2"):
        read_score_table(tmp_path / "amb", "kaldi", key={("x", "y"): 1})


def test_detection():
    assert detect_score_format("a b 0.5") == "kaldi" and detect_score_format("0.5 a b") == "voxceleb"
    assert detect_score_format("enroll,test,target,score") == "csv"
    assert detect_score_format("a b c") is None
