"""Trial lists and score files: target labels, the trial-key check, scanning in chunks, the score-file reader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speakerid.data import _keys
from speakerid.data.trials import (
    TARGET_VALUES,
    check_targets,
    check_unique_trials,
    read_chunks,
    read_score_file,
    scan_trials,
    stripped_codes,
    target_labels,
    trial_key,
)
from speakerid.exceptions import ManifestError, ParameterError


# ---------------------------------------------------------------------------------------------- target labels
def test_every_target_spelling_and_the_bad_ones():
    spellings = list(TARGET_VALUES) + [s.upper() for s in TARGET_VALUES] + [f" {s} " for s in TARGET_VALUES]
    labels = target_labels(spellings)
    assert labels.dtype == np.int8 and set(labels.tolist()) == {0, 1}
    assert target_labels([1, 0, 1.0, 0.0, True, False]).tolist() == [1, 0, 1, 0, 1, 0]
    assert target_labels(["2", "-1", "yes", "", "nan", "0.5", None]).tolist() == [-1] * 7


def test_check_targets_names_the_rows_and_values():
    assert check_targets(["TRUE", "nontarget"], [5, 6], "t.csv").tolist() == [1, 0]
    with pytest.raises(ManifestError) as info:
        check_targets(["1"] + ["maybe"] * 12, np.arange(2, 15), "t.csv", unit="line")
    message = str(info.value)
    assert message.startswith("t.csv: target must be 0 or 1; line(s) 3, 4,") and "and 2 more" in message
    assert message.endswith("hold 'maybe', 'maybe', 'maybe'")
    with pytest.raises(ManifestError, match=r"row\(s\) 0 hold 'x'"):
        check_targets(["x"], [0], "frame", unit="row")


def test_stripped_codes_fold_speaker_forms_not_paths():
    codes, uniques = stripped_codes([" Zo\u00eb", "Zoe\u0308 ", "a"], speaker_ids=True)
    assert codes.tolist() == [0, 0, 1] and list(uniques) == ["Zo\u00eb", "a"]
    codes, _ = stripped_codes(["Zo\u00eb.wav", "Zoe\u0308.wav"])   # two different files on disk
    assert codes.tolist() == [0, 1]
    codes, uniques = stripped_codes([])
    assert len(codes) == 0 and len(uniques) == 0


# ---------------------------------------------------------------------------------------------- trial keys
def test_trial_key_normalises_only_what_names_the_same_thing():
    assert trial_key(" Zoe\u0308 ", "./x/../a.wav ") == ("Zo\u00eb", "a.wav")
    assert trial_key("Zoë", "a.wav") != trial_key("zoë", "a.wav")          # ids are case-sensitive
    assert trial_key("Ｚoë", "a.wav") != trial_key("Zoë", "a.wav")          # NFKC variants are other ids
    assert trial_key("a", "") == ("a", "")


def test_check_unique_trials_messages():
    check_unique_trials(["a", "a", "b"], ["x", "y", "x"], [1, 0, 0])
    check_unique_trials([], [])
    with pytest.raises(ManifestError, match=r"^t\.csv: 1 repeated trial row\(s\) .*: line 4 repeats line 2$"):
        check_unique_trials(["a", "b", "a"], ["x", "x", "./x"], rows=[2, 3, 4], source="t.csv")
    with pytest.raises(ManifestError, match=r"1 trial\(s\) listed as both .*'a' with 'x' is a target on row 2 and "
                                            r"a non-target on row 0"):
        check_unique_trials(["a", "b", "a", "a"], ["x", "x", "x", "x"], [0, 1, 1, 0], rows=[0, 1, 2, 3],
                            source="frame", unit="row")


def test_key_hash_collisions_are_confirmed_before_refusing(monkeypatch):
    monkeypatch.setattr(_keys, "coded_key_hashes", lambda s_codes, *_: np.zeros(len(s_codes), np.uint64))
    check_unique_trials(["a", "b", "c"], ["x", "y", "z"], [1, 0, 1])   # every hash equal, no key equal
    with pytest.raises(ManifestError, match="line 4 repeats line 2"):
        check_unique_trials(["a", "b", "a"], ["x", "y", "x"], rows=[2, 3, 4])


def test_key_index_keeps_nine_bytes_a_row():
    index = _keys.KeyIndex()
    for start in range(0, 3000, 1000):
        index.add(_keys.key_hashes([f"s{i % 7}" for i in range(start, start + 1000)],
                                   [f"f{i}.wav" for i in range(start, start + 1000)]), np.ones(1000, np.int8))
    assert sum(h.nbytes for h in index._hashes) + sum(t.nbytes for t in index._targets) == 9 * 3000
    assert index.suspects() == ([], [], 0, 0)


# ---------------------------------------------------------------------------------------------- scanning
def test_scan_counts_claims_and_skips_blank_rows(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("speaker,path,target\nZoe\u0308,a.wav,1\n,,\nZo\u00eb,b.wav,0\nbob,a.wav,false\n", encoding="utf-8")
    assert scan_trials(path, 1) == (3, ["Zo\u00eb", "bob"], True)
    chunks = list(read_chunks(path, 2))
    assert chunks[0][0].loc[2, "speaker"] == "Zoe\u0308"                    # rows are kept as written


@pytest.mark.parametrize("chunksize", [1, 2, 3, 7, 100])
def test_scan_finds_a_repeat_wherever_the_chunks_end(tmp_path, chunksize):
    rows = [f"s{i % 3},f{i}.wav,{i % 2}" for i in range(12)] + ["s1,f4.wav,1"]   # line 6 said 0
    path = tmp_path / "t.csv"
    path.write_text("speaker,path,target\n" + "\n".join(rows) + "\n")
    with pytest.raises(ManifestError, match=r"target on line 14 and a non-target on line 6"):
        scan_trials(path, chunksize)


def test_scan_reports_empty_speakers_before_bad_targets(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("speaker,path,target\na,x.wav,1\na,y.wav,maybe\n,z.wav,0\n")
    with pytest.raises(ManifestError, match=r"empty speaker id on line\(s\) 4"):
        scan_trials(path, 1)
    path.write_text("speaker,path,target\na,x.wav,1\na,y.wav,maybe\n" + "a,w.wav,no\n" * 11)
    with pytest.raises(ManifestError, match=r"line\(s\) 3, 4, .* and 2 more hold 'maybe', 'no', 'no'"):
        scan_trials(path, 4)


# ---------------------------------------------------------------------------------------------- score files
def _scores_csv(tmp_path, text):
    path = tmp_path / "scores.csv"
    path.write_text(text)
    return path


def test_score_file_usable_rows_errors_and_columns(tmp_path):
    path = _scores_csv(tmp_path, "speaker,path,target,score,error,note\n"
                                 "a,x.wav,1,2.5,,n1\n"
                                 "a,y.wav,false,-1,,n2\n"
                                 "b,x.wav,0,,file not found,n3\n"
                                 "b,y.wav,1,7.0,not  scored,n4\n")
    data = read_score_file(path)
    assert data.scores.tolist() == [2.5, -1.0] and data.labels.tolist() == [1, 0] and data.labels.dtype == np.int8
    assert data.usable.tolist() == [True, True, False, False] and data.n_skipped == 2
    assert data.errors == ["file not found", "not scored"]
    assert list(data.frame.columns) == ["speaker", "path", "target", "score", "error", "note"]
    assert data.frame["score"].tolist() == ["2.5", "-1", "", "7.0"]                 # text, as written
    assert list(read_score_file(path, all_columns=False).frame.columns) == ["speaker", "path", "target", "score",
                                                                            "error"]


@pytest.mark.parametrize("text, error, message", [
    ("speaker,path\na,x\n", ManifestError, r"missing column\(s\) score, target; found header 'speaker,path'"),
    ("", ManifestError, "the score file is empty"),
    ("score,target\n1,2\n", ManifestError, r"target must be 0 or 1; line\(s\) 2 hold '2'"),
    ("score,target\n1,1\nx1,0\n", ManifestError, r"score must be a number or empty; line\(s\) 3 hold 'x1'"),
    ("score,target\n1,1\nNaN,0\n", ParameterError, r"NaN scores on line\(s\) 3"),
    ("score,target\n-inf,1\n1,0\n", ParameterError, r"infinite scores on line\(s\) 2"),
    ('score,target\n"1,1\n', ManifestError, "not a readable CSV"),
])
def test_bad_score_files_name_the_file_and_line(tmp_path, text, error, message):
    path = _scores_csv(tmp_path, text)
    with pytest.raises(error, match=message) as info:
        read_score_file(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_score_file_without_target_and_missing_files(tmp_path):
    path = _scores_csv(tmp_path, "speaker,path,score\na,x,1.5\n")
    assert read_score_file(path, require_target=False).labels is None
    with pytest.raises(ManifestError, match="no such score file"):
        read_score_file(tmp_path / "none.csv")
    with pytest.raises(ManifestError, match="not a file"):
        read_score_file(tmp_path)


def test_score_frames_treat_nan_cells_as_missing():
    frame = pd.DataFrame({"speaker": ["a", "a", "b"], "path": ["x", "y", "x"], "target": [1, 0, 0],
                          "score": [0.5, np.nan, -1.0]}, index=[10, 11, 12])
    data = read_score_file(frame, name="system 'A'")
    assert data.scores.tolist() == [0.5, -1.0] and data.n_skipped == 1
    frame.loc[12, "target"] = 3
    with pytest.raises(ManifestError, match=r"^system 'A': target must be 0 or 1; row\(s\) 12 hold '3'"):
        read_score_file(frame, name="system 'A'")


@pytest.mark.parametrize("text", ["speaker,path,target\n", "speaker,path\n", "speaker,path,target\n,,\n \n"])
def test_a_trial_list_without_trials_is_refused(tmp_path, text):
    """A header alone (or only blank rows) is a wrong file, not 0 trials to score: refused like an empty
    enrollment manifest, before any output is written."""
    from speakerid.data.manifests import iter_manifest

    path = tmp_path / "trials.csv"
    path.write_text(text)
    with pytest.raises(ManifestError, match="trial list has a header but no trials") as info:
        scan_trials(path, chunksize=10)
    assert str(path) in str(info.value)
    if text.count("\n") == 1:
        with pytest.raises(ManifestError, match="header but no rows"):
            list(iter_manifest(path, chunksize=10))
