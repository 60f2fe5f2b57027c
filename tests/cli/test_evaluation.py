"""speakerid evaluate and compare in-process: figures printed with their intervals, the number of speakers and the
method; --json carries the intervals; compare refuses score files of other trials in one line."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main

INTERVAL = r"(\d+\.\d+) \[(\d+\.\d+), (\d+\.\d+)\]"


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(5)
    n_speakers, n_tar, n_non = 30, 6, 18
    speakers = np.r_[np.repeat(np.arange(n_speakers), n_tar), np.repeat(np.arange(n_speakers), n_non)]
    labels = np.r_[np.ones(n_speakers * n_tar, int), np.zeros(n_speakers * n_non, int)]
    base = (np.where(labels == 1, 2.0 + rng.normal(0, 0.8, n_speakers)[speakers],
                     rng.normal(0, 0.6, n_speakers)[speakers]) + rng.normal(size=len(labels)) - 1.0)
    frame = pd.DataFrame({"speaker": [f"s{s}" for s in speakers], "path": [f"t{i}.wav" for i in range(len(labels))],
                          "target": labels, "score": base, "error": ""})
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.assign(score=base + 1.5 * labels).to_csv(tmp_path / "b.csv", index=False)
    return tmp_path / "a.csv", tmp_path / "b.csv", frame


def test_evaluate_prints_intervals_speakers_and_method(files, capsys):
    a, b, _ = files
    status, out, err = _run(capsys, "evaluate", "--scores", a, "--scores", b, "--bootstrap", 300)
    assert status == ExitStatus.OK, err
    lines = out.splitlines()
    assert lines[0].split() == ["system", "trials", "tar/non", "EER", "%", "minDCF", "actDCF", "Cllr", "minCllr"]
    status, js, err = _run(capsys, "evaluate", "--scores", a, "--scores", b, "--bootstrap", 300, "--json")
    parsed = json.loads(js)
    for line, system in zip(lines[2:4], parsed["systems"]):
        cells = re.findall(INTERVAL, line)
        assert len(cells) == 5, line                        # EER, minDCF, actDCF, Cllr, minCllr
        eer = system["intervals"]["eer"]
        assert cells[0] == (f"{100 * eer['value']:.2f}", f"{100 * eer['low']:.2f}", f"{100 * eer['high']:.2f}")
        assert system["intervals"]["n_boot"] == 300 and system["n_speakers"] == 30
    assert "a: 30 speakers (column speaker), 180 target / 540 non-target trials" in out
    assert re.search(r"^intervals: 95 % percentile intervals from 300 bootstrap resamples of the speakers.*Bolle",
                     out, re.M)


def test_evaluate_bootstrap_options(files, capsys):
    a, _, frame = files
    status, out, err = _run(capsys, "evaluate", "--scores", a, "--bootstrap", 0)
    assert status == ExitStatus.OK and "[" not in out.splitlines()[2] and "no confidence intervals" in out
    status, out, err = _run(capsys, "evaluate", "--scores", a, "--bootstrap", 100, "--confidence", 0.5, "--json")
    assert json.loads(out)["systems"][0]["intervals"]["confidence"] == 0.5
    grouped = a.with_name("grouped.csv")
    frame.assign(enroll_speaker=frame["speaker"], room=np.arange(len(frame)) % 4).to_csv(grouped, index=False)
    status, out, err = _run(capsys, "evaluate", "--scores", grouped, "--bootstrap", 50, "--group-by", "room")
    assert status == ExitStatus.OK, err
    assert "4 speakers (column room)" in out
    status, out, err = _run(capsys, "evaluate", "--scores", grouped, "--bootstrap", 50)
    assert "30 speakers (column enroll_speaker)" in out
    for argv, message in [(["--bootstrap", -1], "--bootstrap"), (["--confidence", 2], "confidence"),
                          (["--group-by", "nope"], "no column 'nope'")]:
        status, out, err = _run(capsys, "evaluate", "--scores", a, *argv)
        assert status == ExitStatus.USAGE and message in err and len(err.strip().splitlines()) == 1, err


def test_compare_prints_each_metric_and_a_verdict(files, capsys):
    a, b, _ = files
    status, out, err = _run(capsys, "compare", "--scores", a, "--scores", b, "--name", "base", "--name", "better",
                            "--bootstrap", 300)
    assert status == ExitStatus.OK, err
    assert out.splitlines()[0].startswith("A = base (") and ", B = better (" in out.splitlines()[0]
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines() if re.search(INTERVAL, line)}
    assert list(rows) == ["EER %", "minDCF 0.01", "minDCF 0.1", "actDCF 0.01", "actDCF 0.1", "Cllr", "minCllr",
                          "non-target LLR>=0 %"]
    assert rows["EER %"].endswith("B better") and rows["minCllr"].endswith("B better")
    assert len(re.findall(r"-?\d+\.\d+ \[-?\d+\.\d+, -?\d+\.\d+\]", rows["EER %"])) == 3     # A, B, B - A
    assert "30 speakers (column speaker), 180 target / 540 non-target trials" in out
    assert "subsets bootstrap: 300 resamples of the 30 speakers" in out

    status, out, err = _run(capsys, "compare", "--scores", a, "--scores", b, "--bootstrap", 100, "--p-target", 0.05,
                            "--json")
    parsed = json.loads(out)
    assert parsed["names"] == ["a", "b"] and parsed["eer"]["better"] == "b" and parsed["eer"]["significant"] is True
    assert set(parsed["eer"]) == {"a", "b", "difference", "significant", "better"} and "min_dcf@0.05" in parsed

    status, out, err = _run(capsys, "compare", "--scores", a, "--scores", a, "--bootstrap", 100)
    assert status == ExitStatus.USAGE and "names must differ" in err     # one file twice needs two names
    status, out, err = _run(capsys, "compare", "--scores", a, "--scores", a, "--name", "x", "--name", "y",
                            "--bootstrap", 100)
    assert status == ExitStatus.OK and out.count("no significant difference") == 8


def test_compare_refuses_other_trials_in_one_line(files, capsys):
    a, _, frame = files
    other = a.with_name("other.csv")
    frame.drop(index=10).to_csv(other, index=False)
    status, out, err = _run(capsys, "compare", "--scores", a, "--scores", other)
    assert status == ExitStatus.MANIFEST and not out
    assert err.startswith(f"speakerid: error: {other}: lacks 1 trial(s) of {a}") and err.count("\n") == 1
    flipped = a.with_name("flipped.csv")
    frame.assign(target=1 - frame["target"]).to_csv(flipped, index=False)
    status, out, err = _run(capsys, "compare", "--scores", a, "--scores", flipped)
    assert status == ExitStatus.MANIFEST and f"{flipped}: 720 trial(s) have another target" in err
    status, out, err = _run(capsys, "compare", "--scores", a)
    assert status == ExitStatus.USAGE and "exactly two --scores" in err
    status, out, err = _run(capsys, "compare", "--scores", a, "--scores", a, "--bootstrap", 0)
    assert status == ExitStatus.USAGE and "--bootstrap" in err


def test_evaluate_says_trials_were_resampled_when_no_speaker_column(files, capsys, tmp_path):
    _, _, frame = files
    frame.drop(columns=["speaker"]).to_csv(tmp_path / "nospk.csv", index=False)
    status, out, err = _run(capsys, "evaluate", "--scores", tmp_path / "nospk.csv", "--bootstrap", 100)
    assert status == ExitStatus.OK, err
    assert re.search(r"^intervals: .*resamples of the TRIALS, as if independent", out, re.M)
    assert "resamples of the speakers" not in out


def test_group_by_an_unknown_column_lists_the_whole_header(files, capsys):
    a, _, _ = files
    status, _, err = _run(capsys, "evaluate", "--scores", a, "--group-by", "foo")
    assert status == ExitStatus.USAGE
    assert "no column 'foo'" in err and "speaker, path, target, score, error" in err


def test_compare_raw_scores_leaves_out_the_calibration_metrics(files, capsys):
    a, b, _ = files
    status, js, err = _run(capsys, "compare", "--scores", a, "--scores", b, "--raw-scores", "--bootstrap", 100,
                           "--json")
    assert status == ExitStatus.OK, err
    parsed = json.loads(js)
    assert {"eer", "min_dcf@0.01", "min_cllr"} <= set(parsed)
    assert not {"act_dcf@0.01", "cllr", "nontarget_accept"} & set(parsed)
    status, out, _ = _run(capsys, "compare", "--scores", a, "--scores", b, "--raw-scores", "--bootstrap", 100)
    assert "actDCF" not in out.split("intervals:")[0] and "--raw-scores" in out
