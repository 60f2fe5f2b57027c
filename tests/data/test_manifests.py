"""Reading manifests: paths, targets, BOMs, blank rows, missing files, chunks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import write_tone

from speakerid.data.manifests import iter_manifest, read_manifest
from speakerid.exceptions import ManifestError


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


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_iter_manifest_closes_its_file_when_the_reader_stops_early(tmp_path):
    """A scoring run that stops at a bad chunk (or a caller that drops the generator) leaves no file open."""
    import gc
    import warnings

    write_tone(tmp_path / "a.wav")
    rows = "".join(f"s{i},a.wav,{i % 2}\n" for i in range(25)) + "s25,missing.wav,1\n"
    (tmp_path / "t.csv").write_text("speaker,path,target\n" + rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        chunks = iter_manifest(tmp_path / "t.csv", chunksize=10, require_target=True)
        next(chunks)
        del chunks                       # dropped half-way
        gc.collect()
        with pytest.raises(ManifestError, match="line 27"):
            list(iter_manifest(tmp_path / "t.csv", chunksize=10, require_target=True))
        gc.collect()


def test_manifest_ids_come_back_in_nfc_and_forms_are_one_speaker(tmp_path):
    write_tone(tmp_path / "a.wav")
    write_tone(tmp_path / "b.wav")
    (tmp_path / "m.csv").write_text("speaker,path\nZoe\u0308,a.wav\nZo\u00eb,b.wav\n", encoding="utf-8")
    frame = read_manifest(tmp_path / "m.csv")
    assert list(frame["speaker"]) == ["Zo\u00eb", "Zo\u00eb"] and frame["speaker"].nunique() == 1
    (tmp_path / "m.csv").write_text("speaker,path\nZoe\u0308,a.wav\nZo\u00eb,./a.wav\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="line 3 repeats line 2"):
        read_manifest(tmp_path / "m.csv")


def test_manifest_refuses_contradictory_targets(tmp_path):
    write_tone(tmp_path / "a.wav")
    (tmp_path / "t.csv").write_text("speaker,path,target\nx,a.wav,1\ny,a.wav,0\nx,a.wav,false\n")
    with pytest.raises(ManifestError, match="'x' with .*a.wav' is a target on line 2 and a non-target on line 4"):
        read_manifest(tmp_path / "t.csv", require_target=True)


@pytest.mark.parametrize("speaker", ["unknown", "Unknown", "UNKNOWN"])
def test_reserved_id_only_refused_for_enrollment(tmp_path, speaker):
    write_tone(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text(f"speaker,path\nann,a.wav\n{speaker},a.wav\n")
    assert list(read_manifest(tmp_path / "m.csv")["speaker"]) == ["ann", speaker]   # e.g. background lists
    with pytest.raises(ManifestError, match=r"line\(s\) 3: invalid speaker id .*: reserved"):
        read_manifest(tmp_path / "m.csv", for_enrollment=True)
