"""evaluate with confidence intervals (which column is resampled, what the report says) and compare (two score files
of the same trials, joined by speaker and path)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from speakerid.evaluation import metrics
from speakerid.evaluation.bootstrap import bootstrap_metrics, paired_comparison
from speakerid.evaluation.comparison import compare
from speakerid.evaluation.report import evaluate
from speakerid.exceptions import ManifestError, ParameterError


def _frame(rng, n_speakers=25, shift=2.0, n_tar=6, n_non=18):
    """A score file's rows: ``n_speakers`` claimed speakers with per-speaker offsets."""
    speakers = np.r_[np.repeat(np.arange(n_speakers), n_tar), np.repeat(np.arange(n_speakers), n_non)]
    labels = np.r_[np.ones(n_speakers * n_tar, int), np.zeros(n_speakers * n_non, int)]
    scores = (np.where(labels == 1, shift + rng.normal(0, 0.8, n_speakers)[speakers],
                       rng.normal(0, 0.6, n_speakers)[speakers]) + rng.normal(size=len(labels)) - 1.0)
    return pd.DataFrame({"speaker": [f"spk{s}" for s in speakers], "path": [f"t{i}.wav" for i in range(len(labels))],
                         "target": labels, "score": scores, "error": ""})


def test_intervals_resample_the_speaker_column_and_hold_the_reported_figures(rng, tmp_path):
    frame = _frame(rng)
    frame.to_csv(tmp_path / "sys.csv", index=False)
    result = evaluate(tmp_path / "sys.csv", tmp_path / "report", p_target=[0.01, 0.05], n_boot=200)
    system = result["systems"][0]
    intervals = system["intervals"]
    assert (system["group_column"], system["n_speakers"], intervals["n_groups"]) == ("speaker", 25, 25)
    assert intervals == bootstrap_metrics(frame["score"], frame["target"], frame["speaker"], p_targets=[0.01, 0.05],
                                          n_boot=200)
    # the interval of each figure is around the figure the table shows
    assert intervals["eer"]["value"] == system["eer"]
    assert intervals["min_dcf@0.01"]["value"] == system["min_dcf"]
    assert intervals["act_dcf@0.01"]["value"] == system["act_dcf"]
    assert intervals["cllr"]["value"] == system["cllr"] and intervals["min_cllr"]["value"] == system["min_cllr"]
    assert intervals["min_dcf@0.05"]["value"] == system["operating_points"][1]["min_dcf"]
    assert intervals["act_dcf@0.05"]["value"] == system["operating_points"][1]["act_dcf"]
    assert system["intervals_note"] is None and "Bolle" in result["intervals"]

    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert saved["systems"][0]["intervals"]["eer"] == intervals["eer"]
    page = (tmp_path / "report" / "report.html").read_text()
    eer = intervals["eer"]
    assert f"{100 * eer['value']:.2f} <small>[{100 * eer['low']:.2f}, {100 * eer['high']:.2f}]</small>" in page
    low, high = intervals["min_dcf@0.05"]["low"], intervals["min_dcf@0.05"]["high"]
    assert f"[{low:.4f}, {high:.4f}]" in page                           # the operating-points table too
    for text in ("<td>25</td>", "25 speakers (column speaker)", "150 target / 450 non-target trials",
                 "subsets bootstrap", "Error analysis of pattern recognition systems", "Efron"):
        assert text in page, text


def test_enroll_speaker_is_preferred_and_group_column_chooses(rng, tmp_path):
    frame = _frame(rng)
    frame["enroll_speaker"] = "e" + (frame.index % 5).astype(str)   # 5 groups
    frame["session"] = np.where(frame.index % 2, "odd", "even")
    frame.to_csv(tmp_path / "s.csv", index=False)
    default = evaluate(tmp_path / "s.csv", n_boot=50)["systems"][0]
    assert (default["group_column"], default["n_speakers"]) == ("enroll_speaker", 5)
    chosen = evaluate(tmp_path / "s.csv", n_boot=50, group_column="session")["systems"][0]
    assert (chosen["group_column"], chosen["n_speakers"], chosen["intervals"]["n_groups"]) == ("session", 2, 2)
    with pytest.raises(ParameterError, match=r"s\.csv: no column 'room' to group the trials by"):
        evaluate(tmp_path / "s.csv", n_boot=50, group_column="room")


def test_without_usable_speakers_trials_are_resampled_with_a_note(rng, tmp_path):
    frame = _frame(rng)
    one = evaluate(frame.assign(speaker="same"), n_boot=50, names=["one"])["systems"][0]
    assert one["group_column"] is None and one["n_speakers"] == 1
    assert "same speaker" in one["intervals_note"] and one["intervals"]["resampled"] == "trials"
    none = evaluate(frame[["target", "score"]], n_boot=50)["systems"][0]
    assert none["n_speakers"] is None and "no speaker column" in none["intervals_note"]
    blank = frame.copy()
    blank.loc[3, "speaker"] = " "
    with pytest.raises(ParameterError, match=r"1 scored row\(s\) have an empty 'speaker'"):
        evaluate(blank, n_boot=50)


def test_no_intervals_and_bad_bootstrap_arguments(rng, tmp_path):
    frame = _frame(rng)
    off = evaluate(frame, tmp_path / "r", n_boot=0)
    assert off["systems"][0]["intervals"] is None and "n_boot = 0" in off["intervals"]
    assert "<small>[" not in (tmp_path / "r" / "report.html").read_text()
    for kwargs, message in [({"n_boot": -1}, "n_boot"), ({"n_boot": 1.5}, "n_boot"), ({"confidence": 1.2}, "confidence"),
                            ({"confidence": "x"}, "confidence")]:
        with pytest.raises(ParameterError, match=message):
            evaluate(frame, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# compare
# ---------------------------------------------------------------------------------------------------------------

def test_compare_joins_the_trials_whatever_their_order(rng, tmp_path):
    a = _frame(rng)
    b = a.copy()
    b["score"] = a["score"] + 1.0 * a["target"]
    b.loc[4, "path"] = "./" + b.loc[4, "path"]        # the same trial, written differently
    b.loc[7, ["score", "error"]] = [None, "no speech"]   # not scored in B: left out of both
    a.to_csv(tmp_path / "a.csv", index=False)
    b.sample(frac=1.0, random_state=1).to_csv(tmp_path / "b.csv", index=False)
    result = compare(tmp_path / "a.csv", tmp_path / "b.csv", n_boot=200)
    keep = np.ones(len(a), bool)
    keep[7] = False
    expected = paired_comparison(a["score"][keep], a["score"][keep] + a["target"][keep], a["target"][keep],
                                 a["speaker"][keep], n_boot=200)
    assert {k: result[k] for k in expected} == expected
    assert result["names"] == ["a", "b"] and result["n_trials"] == len(a) and result["n_skipped"] == 1
    assert result["eer"]["better"] == "b" and (result["group_column"], result["n_speakers"]) == ("speaker", 25)


@pytest.mark.parametrize("edit, message", [
    (lambda b: b.drop(index=3), r"b\.csv: lacks 1 trial\(s\) of .*a\.csv, e\.g\. speaker 'spk0', path 't3\.wav'"),
    (lambda b: pd.concat([b, b.iloc[:1].assign(path="new.wav")]), r"b\.csv: has 1 trial\(s\) that .*a\.csv lacks"),
    (lambda b: b.assign(target=np.where(b.index == 5, 1 - b["target"], b["target"])),
     r"b\.csv: 1 trial\(s\) have another target than in .*a\.csv, e\.g\. speaker 'spk0', path 't5\.wav'"),
    (lambda b: b.drop(columns="path"), r"b\.csv: no path column"),
])
def test_compare_refuses_files_of_other_trials(rng, tmp_path, edit, message):
    a = _frame(rng)
    a.to_csv(tmp_path / "a.csv", index=False)
    edit(a.copy()).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(ManifestError, match=message):
        compare(tmp_path / "a.csv", tmp_path / "b.csv", n_boot=20)


def test_compare_arguments(rng, tmp_path):
    a = _frame(rng)
    with pytest.raises(ParameterError, match="n_boot"):
        compare(a, a, names=["x", "y"], n_boot=0)
    with pytest.raises(ParameterError, match="repeated"):
        compare(a, a, names=["x", "x"])
    same = compare(a, a, names=["x", "y"], n_boot=50)
    assert all(not v["significant"] and v["difference"] == {"value": 0.0, "low": 0.0, "high": 0.0}
               for v in same.values() if isinstance(v, dict) and "difference" in v)
    assert metrics.eer(a["score"], a["target"]) == same["eer"]["a"]["value"]
