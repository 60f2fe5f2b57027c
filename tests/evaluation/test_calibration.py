"""Linear calibration and fusion: what they do to Cllr, exact LLRs as a fixed point, persistence, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.trials import read_score_file
from speakerid.evaluation.calibration import LinearCalibration
from speakerid.evaluation.fusion import LinearFusion, load_calibration
from speakerid.evaluation.metrics import cllr, eer, min_cllr
from speakerid.exceptions import ManifestError, ModelFormatError, NotFittedError, ParameterError


def exact_llrs(rng, mu=2.0, n=20000):
    """Scores that are exact LLRs: target N(mu, 2 mu), non-target N(-mu, 2 mu) (variances)."""
    scores = np.r_[rng.normal(mu, np.sqrt(2 * mu), n), rng.normal(-mu, np.sqrt(2 * mu), n)]
    return scores, np.r_[np.ones(n, dtype=int), np.zeros(n, dtype=int)]


# ------------------------------------------------------------------------------------------------ calibration

def test_calibration_lowers_cllr_of_distorted_scores(rng):
    llr, labels = exact_llrs(rng, n=3000)
    raw = 4.0 * llr + 7.0
    calibrated = LinearCalibration().fit(raw, labels).transform(raw)
    assert cllr(calibrated, labels) < 0.5 * cllr(raw, labels)
    assert cllr(calibrated, labels) < cllr(llr, labels) + 0.01     # as good as the truth, to noise


@pytest.mark.parametrize("p_target", [0.5, 0.1, 0.9])
def test_exact_llrs_are_a_fixed_point(rng, p_target):
    # well-specified model: the prior-weighted fit returns log posterior odds, minus logit(p_target) = identity
    llr, labels = exact_llrs(rng, n=50000)
    cal = LinearCalibration(p_target=p_target).fit(llr, labels)
    assert cal.a_ == pytest.approx(1.0, abs=0.03)
    assert cal.b_ == pytest.approx(0.0, abs=0.05)
    assert (cal.n_target_, cal.n_nontarget_) == (50000, 50000)


def test_calibration_is_monotone_so_discrimination_is_unchanged(rng):
    llr, labels = exact_llrs(rng, n=2000)
    raw = 0.3 * llr - 2.0
    calibrated = LinearCalibration().fit(raw, labels).transform(raw)
    assert min_cllr(calibrated, labels) == pytest.approx(min_cllr(raw, labels), abs=1e-12)
    assert eer(calibrated, labels) == pytest.approx(eer(raw, labels), abs=1e-12)


def test_unbalanced_trials_are_weighted_to_the_prior(rng):
    llr, labels = exact_llrs(rng, n=40000)
    keep = (labels == 0) | (np.arange(len(labels)) % 20 == 0)    # 1 target for every 10 non-targets
    cal = LinearCalibration().fit(llr[keep], labels[keep])
    assert cal.a_ == pytest.approx(1.0, abs=0.06) and cal.b_ == pytest.approx(0.0, abs=0.1)


def test_perfectly_separable_scores_warn_but_stay_finite():
    with pytest.warns(UserWarning, match="separate target and non-target trials perfectly"):
        cal = LinearCalibration().fit([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])
    assert np.isfinite([cal.a_, cal.b_]).all() and cal.a_ > 0


def test_save_load_round_trip(rng, tmp_path):
    llr, labels = exact_llrs(rng, n=500)
    cal = LinearCalibration(p_target=0.2).fit(3 * llr, labels)
    path = cal.save(tmp_path / "sub" / "cal.json")
    data = json.loads(path.read_text())
    assert data["class"] == "LinearCalibration" and data["format_version"] == 1
    assert {"speakerid_version", "format", "a", "b", "p_target"} <= set(data)
    for loaded in (LinearCalibration.load(path), load_calibration(path)):
        assert type(loaded) is LinearCalibration
        assert (loaded.a_, loaded.b_, loaded.p_target) == (cal.a_, cal.b_, 0.2)
        np.testing.assert_array_equal(loaded.transform(llr), cal.transform(llr))
    assert LinearCalibration.from_dict(cal.to_dict()).a_ == cal.a_
    assert "a=" in repr(cal) and repr(LinearCalibration()) == "LinearCalibration(p_target=0.5)"


def test_bad_input_to_fit_and_transform():
    with pytest.raises(ParameterError, match="only one class"):
        LinearCalibration().fit([1.0, 2.0, 3.0], [1, 1, 1])
    with pytest.raises(ParameterError, match=r"NaN scores at positions \[1\]"):
        LinearCalibration().fit([1.0, np.nan, 3.0], [1, 0, 1])
    with pytest.raises(ParameterError, match="differ in length: 3 scores, 2 labels"):
        LinearCalibration().fit([1.0, 2.0, 3.0], [1, 0])
    with pytest.raises(ParameterError, match="p_target must be strictly between 0 and 1"):
        LinearCalibration(p_target=1.0).fit([1.0, 2.0], [1, 0])
    with pytest.raises(NotFittedError, match="not fitted"):
        LinearCalibration().transform([1.0])
    with pytest.raises(NotFittedError):
        LinearCalibration().save("never-written.json")
    cal = LinearCalibration().fit([0.0, 1.0, 0.5, 2.0], [0, 0, 1, 1])
    with pytest.raises(ParameterError, match="NaN or infinite"):
        cal.transform([1.0, np.inf])


def test_loading_bad_files_raises_model_format_error(tmp_path, rng):
    llr, labels = exact_llrs(rng, n=100)
    good = LinearCalibration().fit(llr, labels).to_dict()
    cases = {
        "missing.json": None,
        "garbage.json": "{not json",
        "other.json": json.dumps({"hello": 1}),
        "newer.json": json.dumps(dict(good, format_version=99)),
        "fusion.json": json.dumps(dict(good, **{"class": "LinearFusion"})),
        "no_a.json": json.dumps({k: v for k, v in good.items() if k != "a"}),
        "nan_b.json": json.dumps(dict(good, b=float("nan"))),
        "bad_prior.json": json.dumps(dict(good, p_target=3)),
    }
    messages = {"missing.json": "no such calibration file", "garbage.json": "not a JSON calibration file",
                "other.json": "not a speakerid calibration", "newer.json": "newer speakerid",
                "fusion.json": "expected 'LinearCalibration'", "no_a.json": "missing field 'a'",
                "nan_b.json": "b is not finite", "bad_prior.json": "p_target"}
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(ModelFormatError, match=messages[name]) as info:
            LinearCalibration.load(path)
        assert str(path) in str(info.value)


# ------------------------------------------------------------------------------------------------------ fusion

def test_fusion_of_two_noisy_systems_beats_each(rng):
    n = 3000
    labels = np.r_[np.ones(n, dtype=int), np.zeros(n, dtype=int)]
    clean = np.where(labels == 1, 1.0, -1.0)
    systems = np.c_[clean + rng.normal(0, 1.0, 2 * n), 5.0 * (clean + rng.normal(0, 1.5, 2 * n)) + 3.0]
    fusion = LinearFusion().fit(systems, labels)
    fused = fusion.transform(systems)
    for column in systems.T:
        single = LinearCalibration().fit(column, labels).transform(column)
        assert cllr(fused, labels) < cllr(single, labels)
        assert eer(fused, labels) < eer(column, labels)
    # the better system gets more weight per unit of its own scale
    assert fusion.weights_[0] > 5.0 * fusion.weights_[1] > 0


def test_fusion_round_trip_and_errors(rng, tmp_path):
    labels = np.r_[np.ones(200, dtype=int), np.zeros(200, dtype=int)]
    systems = np.c_[labels + rng.normal(0, 1, 400), labels + rng.normal(0, 1, 400), rng.normal(0, 1, 400)]
    fusion = LinearFusion().fit(systems, labels)
    loaded = load_calibration(fusion.save(tmp_path / "fusion.json"))
    assert type(loaded) is LinearFusion and loaded.n_systems_ == 3
    np.testing.assert_allclose(loaded.transform(systems), fusion.transform(systems), rtol=0, atol=0)
    with pytest.raises(ParameterError, match="has 2 column.*fitted on 3 systems"):
        fusion.transform(systems[:, :2])
    with pytest.raises(ParameterError, match=r"must be 2-D.*shape \(400,\)"):
        LinearFusion().fit(systems[:, 0], labels)
    bad = systems.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ParameterError, match=r"NaN or infinite.*\(5, 1\)"):
        LinearFusion().fit(bad, labels)
    with pytest.raises(ParameterError, match="differ in length"):
        LinearFusion().fit(systems, labels[:-1])
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps(dict(fusion.to_dict(), **{"class": "Isotonic"})))
    with pytest.raises(ModelFormatError, match="holds a 'Isotonic', expected one of"):
        load_calibration(unknown)
    with pytest.raises(ModelFormatError, match="expected 'LinearFusion'"):
        LinearFusion.from_dict(LinearCalibration().fit(systems[:, 0], labels).to_dict())


# ---------------------------------------------------------------------------------------------- score files/CLI

def _write_scores(path, scores, labels, *, failed_rows=1, extra_header=""):
    lines = ["speaker,path,target,score,error" + extra_header]
    lines += [f"{i % 7:03d},utt{i}.wav,{t},{float(s)!r}," for i, (s, t) in enumerate(zip(scores, labels))]
    lines += [f"x,bad{i}.wav,1,,AudioError: silent" for i in range(failed_rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_fit_then_apply(rng, tmp_path, capsys):
    llr, labels = exact_llrs(rng, n=300)
    dev = _write_scores(tmp_path / "dev.csv", 2.0 * llr - 1.0, labels, failed_rows=2)
    cal_path = tmp_path / "cal.json"
    status, out, err = _run(capsys, "calibrate", "--scores", dev, "--out", cal_path)
    assert status == ExitStatus.OK, err
    assert "a = " in out and "b = " in out and "min Cllr" in out and "skipped 2 row(s)" in out
    cal = LinearCalibration.load(cal_path)
    assert cal.a_ == pytest.approx(0.5, abs=0.1)

    status, out, err = _run(capsys, "calibrate", "--scores", dev, "--out", tmp_path / "j.json", "--json",
                            "--p-target", "0.3")
    result = json.loads(out)
    assert status == ExitStatus.OK and result["p_target"] == 0.3 and result["n_skipped"] == 2
    assert result["cllr_after"] < result["cllr_before"] and result["min_cllr"] <= result["cllr_after"]

    calibrated = tmp_path / "calibrated.csv"
    status, out, err = _run(capsys, "calibrate", "--apply", cal_path, "--scores", dev, "--out", calibrated)
    assert status == ExitStatus.OK, err
    header = calibrated.read_text().splitlines()[0]
    assert header == "speaker,path,target,score,raw_score,error"
    data = read_score_file(calibrated)
    assert data.usable.sum() == 600 and (~data.usable).sum() == 2
    np.testing.assert_allclose(data.scores, cal.transform(2.0 * llr - 1.0), rtol=1e-15)
    np.testing.assert_array_equal(data.frame["raw_score"][data.usable].astype(float), 2.0 * llr - 1.0)
    assert data.frame["speaker"].iloc[0] == "000"     # text columns are copied untouched
    assert data.frame["error"].iloc[-1] == "AudioError: silent"


def test_cli_errors_are_one_line_and_name_the_file(rng, tmp_path, capsys):
    llr, labels = exact_llrs(rng, n=50)
    dev = _write_scores(tmp_path / "dev.csv", llr, labels)
    no_score = tmp_path / "no_score.csv"
    no_score.write_text("speaker,path,target\na,b.wav,1\n")
    status, _, err = _run(capsys, "calibrate", "--scores", no_score, "--out", tmp_path / "c.json")
    assert status == ExitStatus.MANIFEST and str(no_score) in err and "score" in err
    assert len(err.strip().splitlines()) == 1

    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{oops")
    status, _, err = _run(capsys, "calibrate", "--apply", bad_json, "--scores", dev, "--out", tmp_path / "o.csv")
    assert status == ExitStatus.MODEL_FORMAT and str(bad_json) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.csv").exists()

    one_class = _write_scores(tmp_path / "one.csv", [1.0, 2.0], [1, 1])
    status, _, err = _run(capsys, "calibrate", "--scores", one_class, "--out", tmp_path / "c.json")
    assert status == ExitStatus.MANIFEST and "only one class" in err and str(one_class) in err

    bad_score = tmp_path / "bad_score.csv"
    bad_score.write_text("speaker,path,target,score\na,b.wav,1,1.5\na,c.wav,0,abc\n")
    status, _, err = _run(capsys, "calibrate", "--scores", bad_score, "--out", tmp_path / "c.json")
    assert status == ExitStatus.MANIFEST and "line(s) 3" in err

    status, _, err = _run(capsys, "calibrate", "--scores", dev, "--out", tmp_path / "c.json", "--p-target", "2")
    assert status == ExitStatus.USAGE and "p_target" in err
    cal = tmp_path / "cal.json"
    assert _run(capsys, "calibrate", "--scores", dev, "--out", cal)[0] == ExitStatus.OK
    status, _, err = _run(capsys, "calibrate", "--apply", cal, "--scores", dev, "--out", tmp_path / "o.csv",
                          "--p-target", "0.1")
    assert status == ExitStatus.USAGE and "--p-target" in err
    twice = tmp_path / "twice.csv"
    assert _run(capsys, "calibrate", "--apply", cal, "--scores", dev, "--out", twice)[0] == ExitStatus.OK
    status, _, err = _run(capsys, "calibrate", "--apply", cal, "--scores", twice, "--out", tmp_path / "x.csv")
    assert status == ExitStatus.MANIFEST and "raw_score" in err
    status, _, err = _run(capsys, "calibrate", "--scores", tmp_path / "nope.csv", "--out", cal)
    assert status == ExitStatus.MANIFEST and "no such score file" in err


def test_read_score_file_without_target(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("speaker,path,score\na,b.wav,1.5\na,c.wav,\n")
    data = read_score_file(path, require_target=False)
    assert data.labels is None and data.scores.tolist() == [1.5] and data.usable.tolist() == [True, False]
    with pytest.raises(ManifestError, match="missing column.*target"):
        read_score_file(path)
