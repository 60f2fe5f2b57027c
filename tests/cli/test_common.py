"""Printing shared by the commands: JSON that every reader accepts, warnings as one line each."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from speakerid.cli._common import one_line_warnings, print_json
from speakerid.exceptions import BandwidthWarning, DataLeakWarning


def test_print_json_is_standard_json(capsys):
    print_json({"t": math.inf, "u": -math.inf, "x": math.nan, "n": np.int64(3), "a": np.array([0.5, np.inf]),
                "name": "Zoë"})
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "Zoë" in out
    assert json.loads(out, parse_constant=lambda c: pytest.fail(c)) == {
        "t": "inf", "u": "-inf", "x": None, "n": 3, "a": [0.5, "inf"], "name": "Zoë"}


@pytest.mark.parametrize("category", [UserWarning, DataLeakWarning, BandwidthWarning, RuntimeWarning])
def test_warnings_are_one_line_each_once_and_restored(capsys, category):
    before = warnings.showwarning
    with one_line_warnings():
        for _ in range(3):
            warnings.warn("first line\n  second   line", category, stacklevel=1)
        warnings.warn("another", category, stacklevel=1)
    assert warnings.showwarning is before
    err = capsys.readouterr().err
    assert err.splitlines() == ["speakerid: warning: first line second line", "speakerid: warning: another"]


def test_a_warning_repeated_for_many_files_is_printed_once_and_counted(capsys, tmp_path):
    files = [tmp_path / f"clip {i}.wav" for i in range(5)]
    for f in files:
        f.write_bytes(b"")
    text = "8000 Hz audio upsampled to the model's 16000 Hz"
    with one_line_warnings():
        for f in files:
            warnings.warn(f"{f}: {text}", BandwidthWarning, stacklevel=1)
        warnings.warn(f"{files[0]}: the channels cancel", UserWarning, stacklevel=1)   # another text: its own line
        warnings.warn(f"{tmp_path / 'missing.wav'}: {text}", UserWarning, stacklevel=1)  # not a file: as it is
    assert capsys.readouterr().err.splitlines() == [
        f"speakerid: warning: {files[0]}: {text}",
        f"speakerid: warning: {files[0]}: the channels cancel",
        f"speakerid: warning: {tmp_path / 'missing.wav'}: {text}",
        f"speakerid: warning: 4 more file(s) with the same warning: {text}"]
    with one_line_warnings():   # counted per command
        warnings.warn(f"{files[1]}: {text}", BandwidthWarning, stacklevel=1)
    assert capsys.readouterr().err.splitlines() == [f"speakerid: warning: {files[1]}: {text}"]
