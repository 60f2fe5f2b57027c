"""RTTM: the ten-field SPEAKER lines written and read back."""

from __future__ import annotations

import pytest

from speakerid.data.rttm import read_rttm, rttm_lines, write_rttm
from speakerid.exceptions import ManifestError, ParameterError


def test_rttm_round_trip(tmp_path):
    stretches = [(0.0, 2.5, "ann"), (2.5, 4.25, "Bob Lee"), (4.25, 6.0, "unknown")]
    path = write_rttm(tmp_path / "out.rttm", "rec 1", stretches)
    assert all(len(line.split()) == 10 for line in path.read_text().splitlines())
    back = read_rttm(path)
    assert back["speaker"].tolist() == ["ann", "Bob_Lee", "unknown"]
    assert back["file_id"].unique().tolist() == ["rec_1"] and back["channel"].unique().tolist() == [1]
    assert back["start_s"].tolist() == [0.0, 2.5, 4.25] and back["end_s"].tolist() == [2.5, 4.25, 6.0]


def test_rttm_reader_skips_other_line_types_and_names_bad_lines(tmp_path):
    (tmp_path / "a.rttm").write_text("SPKR-INFO f 1 <NA> <NA> <NA> unknown ann <NA> <NA>\n"
                                     "SPEAKER f 1 0.5 1.0 <NA> <NA> ann <NA> <NA>\n")
    assert read_rttm(tmp_path / "a.rttm")["end_s"].tolist() == [1.5]
    (tmp_path / "b.rttm").write_text("SPEAKER f 1 zero 1.0 <NA> <NA> ann <NA> <NA>\n")
    with pytest.raises(ManifestError, match="line 1: channel, onset and duration must be numbers"):
        read_rttm(tmp_path / "b.rttm")


def test_rttm_refuses_empty_or_backwards_stretches():
    with pytest.raises(ParameterError, match="0 <= start < end"):
        rttm_lines("f", [(2.0, 1.0, "ann")])
    with pytest.raises(ParameterError, match="cannot be empty"):
        rttm_lines("f", [(0.0, 1.0, " ")])
