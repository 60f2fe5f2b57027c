"""speakerid.evaluation.plots and speakerid.evaluation.report: figures, the report folder, metrics equal to speakerid.evaluation.metrics, bad
score files, and the ``speakerid evaluate`` command in-process."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy.stats import norm

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.trials import read_score_file
from speakerid.evaluation import metrics, plots, report
from speakerid.exceptions import ManifestError, ParameterError


def _trials(rng, n=400, shift=2.0):
    labels = (rng.random(n) < 0.2).astype(int)
    labels[:2] = [0, 1]
    return rng.normal(size=n) + shift * labels, labels


def _score_csv(path, scores, labels, skipped=()):
    """A score file as the scoring step writes it: failed trials have an empty score and an error text."""
    frame = pd.DataFrame({"speaker": "spk", "path": [f"x{i}.wav" for i in range(len(scores))], "target": labels,
                          "score": scores, "error": ""})
    frame["score"] = frame["score"].astype(object)
    for i in skipped:
        frame.loc[i, "score"] = ""
        frame.loc[i, "error"] = "audio is silent"
    frame.to_csv(path, index=False)
    return path


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def _curves(fig, kind):
    return [line for line in fig.axes[0].lines if str(line.get_gid()).startswith(f"{kind}:")]


# ---------------------------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------------------------

def test_det_axes_are_probit_with_percent_labels(rng):
    fig = plots.plot_det({"A": _trials(rng)})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    expected = norm.ppf([0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    for ticks, labels in ((ax.get_xticks(), ax.get_xticklabels()), (ax.get_yticks(), ax.get_yticklabels())):
        np.testing.assert_allclose(ticks, expected)
        assert [t.get_text() for t in labels] == ["0.1", "0.5", "1", "2", "5", "10", "20", "40"]
    np.testing.assert_allclose(ax.get_xlim(), norm.ppf([0.0005, 0.5]))
    assert "%" in ax.get_xlabel() and "%" in ax.get_ylabel()


def test_det_curve_data_and_eer_points(rng):
    systems = [("A", *_trials(rng)), ("B", *_trials(rng, shift=1.0))]
    fig = plots.plot_det(systems)
    curves = _curves(fig, "det")
    assert [c.get_gid() for c in curves] == ["det:A", "det:B"]
    for curve, (name, scores, labels) in zip(curves, systems):
        assert curve.get_gid() == f"det:{name}"
        _, p_miss, p_fa = metrics.det_curve(scores, labels)
        # every drawn point is an operating point, in probit coordinates
        drawn = set(zip(np.round(curve.get_xdata(), 9), np.round(curve.get_ydata(), 9)))
        assert drawn <= set(zip(np.round(plots.probit(p_fa), 9), np.round(plots.probit(p_miss), 9)))
        assert f"EER {100 * metrics.eer(scores, labels):.2f} %" in curve.get_label()
    eer_points = [c.get_offsets()[0] for c in fig.axes[0].collections]
    for point, (_, scores, labels) in zip(eer_points, systems):
        np.testing.assert_allclose(point, [plots.probit(metrics.eer(scores, labels))] * 2)


def test_det_thins_many_points_but_keeps_the_ends(rng):
    scores, labels = _trials(rng, n=200_000)
    curve = _curves(plots.plot_det({"big": (scores, labels)}), "det")[0]
    assert len(curve.get_xdata()) < 20_000
    assert curve.get_xdata()[0] == plots.probit(1.0) and curve.get_ydata()[-1] == plots.probit(1.0)


def test_roc_curve_is_metrics_roc(rng):
    scores, labels = _trials(rng)
    fig = plots.plot_roc({"A": (scores, labels)})
    (curve,) = _curves(fig, "roc")
    fpr, tpr, _ = metrics.roc(scores, labels)
    np.testing.assert_allclose(curve.get_xdata(), fpr)
    np.testing.assert_allclose(curve.get_ydata(), tpr)
    eer = metrics.eer(scores, labels)
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets()[0], [eer, 1 - eer])


def test_plots_draw_on_given_axes_and_histograms(rng, tmp_path):
    fig = Figure()
    axes = fig.subplots(1, 3)
    scores, labels = _trials(rng)
    assert plots.plot_roc({"A": (scores, labels)}, ax=axes[0]) is fig
    assert plots.plot_det({"A": (scores, labels)}, ax=axes[1]) is fig
    assert plots.plot_score_histograms(scores, labels, ax=axes[2], name="A", bins=20) is fig
    heights = [p.get_height() for p in axes[2].patches]
    assert len(heights) == 40 and axes[2].get_title() == "A: score distributions"
    threshold = metrics.eer(scores, labels, return_threshold=True)[1]
    assert axes[2].lines[0].get_xdata()[0] == threshold


def test_save_figure_is_atomic_and_follows_the_suffix(rng, tmp_path):
    fig = plots.plot_roc({"A": _trials(rng)})
    assert plots.save_figure(fig, tmp_path / "sub" / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in plots.save_figure(fig, tmp_path / "roc.svg").read_bytes()[:500]
    with pytest.raises(ParameterError, match="png, svg or pdf"):
        plots.save_figure(fig, tmp_path / "roc.gif")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["roc.png", "roc.svg"]


@pytest.mark.parametrize("call, message", [
    (lambda: plots.plot_det({}), "no systems"),
    (lambda: plots.plot_roc([("A", [0.1, 0.2])]), "sequence of"),
    (lambda: plots.plot_det({"A": ([0.1, 0.2], [1, 1])}), "only one class"),
    (lambda: plots.plot_det({"A": ([0.1, 0.2], [0, 1])}, limits=(0.5, 0.1)), "limits"),
    (lambda: plots.plot_score_histograms([0.1, np.nan], [0, 1]), "NaN"),
    (lambda: plots.plot_score_histograms([0.1, 0.2], [0, 1], bins=0), "bins"),
])
def test_plot_bad_input(call, message):
    with pytest.raises(ParameterError, match=message):
        call()


def test_no_pyplot_state():
    code = ("import sys, speakerid.evaluation.plots as p, speakerid.evaluation.report; p.plot_det({'a': ([0, 1], [0, 1])}); "
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------------------------

def test_evaluate_writes_a_complete_report(rng, tmp_path, monkeypatch):
    a_scores, a_labels = _trials(rng)
    b_scores, b_labels = _trials(rng, shift=0.7)
    a_csv = _score_csv(tmp_path / "gmm.csv", a_scores, a_labels, skipped=(5, 9, 11))
    b_csv = _score_csv(tmp_path / "weak.csv", b_scores, b_labels)
    det_figures = []

    def spy_det(systems, *args, **kwargs):
        det_figures.append(plots.plot_det(systems, *args, **kwargs))
        return det_figures[-1]

    monkeypatch.setattr(report, "plot_det", spy_det)
    out = tmp_path / "report"
    result = report.evaluate([a_csv, b_csv], out, p_target=0.05)

    assert sorted(p.name for p in out.iterdir()) == ["det.png", "hist_gmm.png", "hist_weak.png", "metrics.json",
                                                     "report.html", "roc.png"]
    assert len(det_figures) == 1 and len(_curves(det_figures[0], "det")) == 2

    saved = json.loads((out / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert saved["systems"] == json.loads(json.dumps(result["systems"]))
    assert saved["p_target"] == 0.05 and saved["speakerid_version"] and "LLR" in saved["note"].upper()
    keep = np.ones(len(a_scores), bool)
    keep[[5, 9, 11]] = False
    for system, (scores, labels) in zip(saved["systems"], [(a_scores[keep], a_labels[keep]), (b_scores, b_labels)]):
        assert system["eer"] == metrics.eer(scores, labels)
        assert system["eer_percent"] == pytest.approx(100 * metrics.eer(scores, labels))
        assert system["eer_threshold"] == metrics.eer(scores, labels, return_threshold=True)[1]
        assert [system["min_dcf"], system["min_dcf_threshold"]] == list(
            metrics.min_dcf(scores, labels, 0.05, return_threshold=True))
        assert system["act_dcf"] == metrics.act_dcf(scores, labels, p_target=0.05)
        assert system["act_dcf_threshold"] == metrics.bayes_threshold(0.05)
        assert system["cllr"] == metrics.cllr(scores, labels)
        assert system["min_cllr"] == metrics.min_cllr(scores, labels)
        assert (system["n_target"], system["n_nontarget"]) == (labels.sum(), (labels == 0).sum())
    gmm = saved["systems"][0]
    assert (gmm["name"], gmm["n_skipped"], gmm["n_trials"], gmm["skipped_errors"]) == (
        "gmm", 3, len(a_scores), ["audio is silent"])
    assert gmm["source"] == str(a_csv.resolve()) and len(gmm["input"]["sha256"]) == 64

    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 4 and "src=\"http" not in page
    for text in ("gmm", "weak", "speakerid", saved["created"], str(a_csv.resolve()), "3 row(s) without a score",
                 f"{gmm['eer_percent']:.2f}", "Bayes threshold"):
        assert text in page


def test_evaluate_dataframes_names_and_infinite_thresholds(tmp_path):
    inverted = pd.DataFrame({"score": [0.8, 0.9, 0.1, 0.2], "target": [0, 0, 1, 1]})
    separable = pd.DataFrame({"score": [0.1, 0.2, 0.8, None], "target": ["0", "false", "1", "1"],
                              "error": [None, None, None, "too short"]})
    result = report.evaluate([inverted, separable], tmp_path, names=["inv", "sep/v1"])
    inv, sep = result["systems"]
    assert inv["eer"] == 1.0 and inv["min_dcf_threshold"] == np.inf and inv["source"] == "<DataFrame>"
    assert sep["eer"] == 0.0 and sep["n_skipped"] == 1 and sep["skipped_errors"] == ["too short"]
    assert result["files"]["hist"] == {"inv": "hist_inv.png", "sep/v1": "hist_sep_v1.png"}
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["systems"][0]["min_dcf_threshold"] == "inf"


def test_rows_with_an_error_are_skipped_whatever_their_score(tmp_path):
    path = tmp_path / "scored.csv"
    path.write_text("speaker,path,target,score,error\n"
                    "a,x.wav,1,2.5,\n"
                    "a,y.wav,0,-1.0,\n"
                    "b,z.wav,0,inf,not scored\n"
                    "b,w.wav,1,nan,cannot decode audio\n"
                    "b,v.wav,0,,cannot decode audio\n")
    data = read_score_file(path)
    assert data.scores.tolist() == [2.5, -1.0] and data.labels.tolist() == [1, 0]
    assert data.n_skipped == 3 and data.errors == ["not scored", "cannot decode audio"]


def test_single_path_and_default_names(rng, tmp_path):
    scores, labels = _trials(rng)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = report.evaluate(_score_csv(tmp_path / "a" / "scores.csv", scores, labels), tmp_path / "r1")
    assert [s["name"] for s in one["systems"]] == ["scores"]
    two = report.evaluate([_score_csv(tmp_path / d / "scores.csv", scores, labels) for d in "ab"], tmp_path / "r2")
    assert [s["name"] for s in two["systems"]] == ["a/scores", "b/scores"]


@pytest.mark.parametrize("content, error, message", [
    ("speaker,path,llr\nx,y,0.5\n", ManifestError, r"missing column\(s\) score, target"),
    ("score\n0.5\n", ManifestError, r"missing column\(s\) target"),
    ("", ManifestError, "empty"),
    ("score,target\n0.5,1\n0.2,yes\n", ManifestError, r"target must be 0 or 1; line\(s\) 3 hold 'yes'"),
    ("score,target\n0.5,1\nabc,0\n", ManifestError, r"score must be a number or empty; line\(s\) 3"),
    ("score,target\n0.5,1\nnan,0\n0.1,0\n", ParameterError, r"NaN scores on line\(s\) 3"),
    ("score,target\n0.5,1\n0.4,1\n", ParameterError, "only one class"),
    ("score,target\n0.5,1\n,0\n", ParameterError, "only one class"),
    ("score,target\n,1\n,0\n", ParameterError, "no trials"),
    ("score,target\ninf,1\n0.2,0\n", ParameterError, "infinite scores"),
])
def test_bad_score_files_name_the_file(tmp_path, content, error, message):
    path = tmp_path / "bad-scores.csv"
    path.write_text(content)
    with pytest.raises(error, match=message) as info:
        report.evaluate(path, tmp_path / "out")
    assert str(path) in str(info.value)
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_bad_evaluate_arguments(rng, tmp_path):
    csv = _score_csv(tmp_path / "s.csv", *_trials(rng))
    with pytest.raises(ManifestError, match="no such score file"):
        report.evaluate(tmp_path / "missing.csv", tmp_path / "out")
    with pytest.raises(ParameterError, match="1 name"):
        report.evaluate([csv, csv], tmp_path / "out", names=["x"])
    with pytest.raises(ParameterError, match="repeated: x"):
        report.evaluate([csv, csv], tmp_path / "out", names=["x", "x"])
    with pytest.raises(ParameterError, match="no score files"):
        report.evaluate([], tmp_path / "out")
    with pytest.raises(ParameterError, match="p_target"):
        report.evaluate(csv, tmp_path / "out", p_target=1.5)
    with pytest.raises(ParameterError, match="not a folder"):
        report.evaluate(csv, csv)


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------

def test_cli_evaluate_table_and_json(rng, tmp_path, capsys):
    a = _score_csv(tmp_path / "a.csv", *_trials(rng), skipped=(3,))
    b = _score_csv(tmp_path / "b.csv", *_trials(rng, shift=1.0))
    status, out, err = _run(capsys, "evaluate", "--scores", a, "--scores", b, "--name", "GMM", "--name", "weak",
                            "--out-dir", tmp_path / "rep", "--p-target", 0.05)
    assert status == ExitStatus.OK, err
    lines = out.splitlines()
    assert lines[0].split() == ["system", "trials", "tar/non", "EER", "%", "minDCF", "actDCF", "Cllr", "minCllr"]
    saved = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    for line, system in zip(lines[2:4], saved["systems"]):
        assert line.split()[:3] == [system["name"], f"{system['n_target']}/{system['n_nontarget']}",
                                    f"{system['eer_percent']:.2f}"]
    assert "GMM: 1 trial(s) without a score skipped: audio is silent" in out
    assert lines[-1] == f"report: {(tmp_path / 'rep' / 'report.html').resolve()}"

    status, out, err = _run(capsys, "evaluate", "--scores", a, "--out-dir", tmp_path / "rep2", "--json")
    assert status == ExitStatus.OK, err
    parsed = json.loads(out)
    assert parsed["systems"][0]["name"] == "a" and parsed["report"].endswith("report.html")


def test_cli_evaluate_errors(rng, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("speaker,llr\nx,1\n")
    status, _, err = _run(capsys, "evaluate", "--scores", bad, "--out-dir", tmp_path / "r")
    assert status == ExitStatus.MANIFEST and str(bad) in err and "score, target" in err
    assert len(err.strip().splitlines()) == 1
    one_class = _score_csv(tmp_path / "one.csv", [0.1, 0.2], [1, 1])
    status, _, err = _run(capsys, "evaluate", "--scores", one_class, "--out-dir", tmp_path / "r")
    assert status == ExitStatus.USAGE and str(one_class) in err and "only one class" in err
    status, _, err = _run(capsys, "evaluate", "--out-dir", tmp_path / "r")
    assert status == ExitStatus.USAGE and "--scores" in err


def test_report_survives_extreme_scores(tmp_path):
    # scores near the float64 limits (a broken system) still give a report; the plots draw them at the edges
    path = tmp_path / "extreme.csv"
    path.write_text("speaker,path,target,score\n" + "".join(
        f"s{i},f{i}.wav,{i % 2},{v!r}\n" for i, v in enumerate([-1e308, 1e308, 0.5, 0.2, 1.0, -3.0])))
    result = report.evaluate([path], tmp_path / "report")
    assert (tmp_path / "report" / "report.html").is_file()
    assert result["systems"][0]["eer"] == pytest.approx(metrics.eer([-1e308, 1e308, 0.5, 0.2, 1.0, -3.0],
                                                                    [0, 1, 0, 1, 0, 1]))


def test_det_legend_explains_systems_without_errors():
    from speakerid.evaluation.plots import plot_det

    fig = plot_det([("perfect", [0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), ("noisy", [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])])
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "no errors: nothing to draw" in texts[0] and "no errors" not in texts[1]
