"""Fusion of score files (``speakerid fuse``): learned on development files, applied to evaluation files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.trials import read_score_file
from speakerid.evaluation.fusion import LinearFusion, fuse_score_files
from speakerid.evaluation.metrics import eer
from speakerid.exceptions import ManifestError, ParameterError


def _systems(rng, n, noise=(1.0, 1.5)):
    """Trials (speaker, path, target) and two systems seeing the same truth through independent noise."""
    labels = rng.permutation(np.r_[np.ones(n, dtype=int), np.zeros(4 * n, dtype=int)])
    truth = np.where(labels == 1, 1.0, -1.0)
    return labels, [truth * (3.0 if i else 1.0) + rng.normal(0, s, labels.size) for i, s in enumerate(noise)]


def _write(path, labels, scores, *, missing=(), shuffle=None):
    rows = [(f"spk{i % 9}", f"test/{i // 9:04d}.wav", t, "" if i in missing else repr(float(s)))
            for i, (t, s) in enumerate(zip(labels, scores))]
    if shuffle is not None:
        rows = [rows[i] for i in shuffle]
    path.write_text("speaker,path,target,score\n" + "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in rows))
    return path


@pytest.fixture
def files(rng, tmp_path):
    dev_labels, dev = _systems(rng, 300)
    eval_labels, evl = _systems(rng, 200)
    order = rng.permutation(eval_labels.size)            # the second system wrote its rows in another order
    return {"dev": [_write(tmp_path / f"dev_{n}.csv", dev_labels, s) for n, s in zip("ab", dev)],
            "eval": [_write(tmp_path / "eval_a.csv", eval_labels, evl[0], missing={5}),
                     _write(tmp_path / "eval_b.csv", eval_labels, evl[1], shuffle=order)],
            "eval_labels": eval_labels, "eval_scores": evl}


def test_learned_fusion_beats_each_system_and_lines_trials_up(files, tmp_path):
    out = tmp_path / "fused.csv"
    result = fuse_score_files(files["eval"], out, train_paths=files["dev"], fusion_out=tmp_path / "f.json")
    assert result["systems"] == ["eval_a", "eval_b"]
    assert all(w > 0 for w in result["weights"])
    assert result["train"]["fusion"]["eer"] < min(result["train"][n]["eer"] for n in ("eval_a", "eval_b"))
    assert result["eval"]["fusion"]["eer"] < min(result["eval"][n]["eer"] for n in ("eval_a", "eval_b"))
    assert result["n_fused"] == files["eval_labels"].size - 1 and result["n_skipped"] == 1

    fused = read_score_file(out)
    assert list(fused.frame.columns) == ["speaker", "path", "target", "score", "score_eval_a", "score_eval_b",
                                         "error"]
    assert fused.frame["error"].iloc[5] == "no score from eval_a" and fused.frame["score"].iloc[5] == ""
    # rows stay in the first file's order, and the second system's scores were matched by (speaker, path)
    b = fused.frame["score_eval_b"].astype(float).to_numpy()
    np.testing.assert_array_equal(b, files["eval_scores"][1])
    model = LinearFusion.load(tmp_path / "f.json")
    assert model.system_names_ == ["eval_a", "eval_b"]
    matrix = np.c_[np.delete(files["eval_scores"][0], 5), np.delete(files["eval_scores"][1], 5)]
    np.testing.assert_allclose(fused.scores, model.transform(matrix), rtol=1e-12)
    assert eer(fused.scores, fused.labels) == pytest.approx(result["eval"]["fusion"]["eer"])


def test_saved_fusion_gives_the_same_file(files, tmp_path):
    fuse_score_files(files["eval"], tmp_path / "one.csv", train_paths=files["dev"], fusion_out=tmp_path / "f.json")
    again = fuse_score_files(files["eval"], tmp_path / "two.csv", fusion=tmp_path / "f.json")
    assert "train" not in again
    assert (tmp_path / "one.csv").read_text() == (tmp_path / "two.csv").read_text()


def test_fusion_errors(files, tmp_path):
    with pytest.raises(ParameterError, match="one development score file per system"):
        fuse_score_files(files["eval"], tmp_path / "o.csv", train_paths=files["dev"][:1])
    with pytest.raises(ParameterError, match="either"):
        fuse_score_files(files["eval"], tmp_path / "o.csv")
    fuse_score_files(files["eval"], tmp_path / "o.csv", train_paths=files["dev"], fusion_out=tmp_path / "f.json")
    with pytest.raises(ParameterError, match="combines 2 system"):
        fuse_score_files(files["eval"][:1], tmp_path / "o.csv", fusion=tmp_path / "f.json")
    short = tmp_path / "short.csv"
    short.write_text("\n".join(files["eval"][1].read_text().splitlines()[:-3]) + "\n")
    with pytest.raises(ManifestError, match=r"short\.csv.*no row for 3 trial"):
        fuse_score_files([files["eval"][0], short], tmp_path / "o.csv", fusion=tmp_path / "f.json")
    assert not (tmp_path / "o.csv").exists() or (tmp_path / "o.csv").stat().st_size > 0
    one_class = tmp_path / "one_class.csv"
    one_class.write_text("speaker,path,target,score\na,x.wav,1,0.5\nb,x.wav,1,0.7\n")
    with pytest.raises(ManifestError, match="cannot learn a fusion"):
        fuse_score_files([one_class], tmp_path / "o.csv", train_paths=[one_class])


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_fuse(files, tmp_path, capsys):
    a, b = files["eval"]
    da, db = files["dev"]
    status, out, err = _run(capsys, "fuse", "--scores", a, "--train", da, "--scores", b, "--train", db,
                            "--out", tmp_path / "fused.csv", "--save-fusion", tmp_path / "f.json")
    assert status == ExitStatus.OK, err
    assert out.startswith("llr = ") and "development trials" in out and "fused 999 trial(s)" in out
    status, out, _ = _run(capsys, "fuse", "--scores", a, "--scores", b, "--fusion", tmp_path / "f.json",
                          "--out", tmp_path / "again.csv", "--json", "--name", "gmm", "--name", "ivec")
    result = json.loads(out)
    assert status == ExitStatus.OK and result["systems"] == ["gmm", "ivec"] and "eval" in result
    assert "score_ivec" in (tmp_path / "again.csv").read_text().splitlines()[0]

    for argv, needle in ((["--scores", a, "--out", tmp_path / "x.csv"], "--train"),
                         (["--scores", a, "--train", da, "--fusion", tmp_path / "f.json", "--out", tmp_path / "x.csv"],
                          "not both"),
                         (["--scores", a, "--train", da, "--name", "p", "--name", "q", "--out", tmp_path / "x.csv"],
                          "one name per system")):
        status, _, err = _run(capsys, "fuse", *argv)
        assert status == ExitStatus.USAGE and needle in err and len(err.strip().splitlines()) == 1
    status, _, err = _run(capsys, "fuse", "--scores", tmp_path / "nope.csv", "--train", da, "--out",
                          tmp_path / "x.csv")
    assert status == ExitStatus.MANIFEST and "nope.csv" in err and len(err.strip().splitlines()) == 1


def test_figures_are_the_one_metrics_summary(files, tmp_path):
    from speakerid.evaluation.metrics import summary

    result = fuse_score_files(files["eval"], tmp_path / "o.csv", train_paths=files["dev"])
    labels, scores = files["eval_labels"], files["eval_scores"]
    usable = np.arange(labels.size) != 5                        # eval_a has no score on row 5
    assert result["eval"]["eval_b"] == summary(scores[1][usable], labels[usable], p_target=0.01, llr=True)
    assert {"eer", "min_dcf", "cllr", "act_dcf", "min_cllr"} <= set(result["train"]["fusion"])


def test_trials_line_up_whatever_the_spelling_of_their_key(tmp_path):
    first = tmp_path / "a.csv"
    first.write_text("speaker,path,target,score\nZo\u00eb,x.wav,1,2.0\nbob,x.wav,0,-1.0\nZo\u00eb,y.wav,0,-2.0\n",
                     encoding="utf-8")
    second = tmp_path / "b.csv"
    second.write_text("speaker,path,score\n Zoe\u0308,./y.wav,-3.0\nbob,sub/../x.wav,-0.5\nZoe\u0308,x.wav,1.5\n",
                      encoding="utf-8")
    result = fuse_score_files([first, second], tmp_path / "f.csv", fusion=_saved_fusion(tmp_path))
    fused = read_score_file(tmp_path / "f.csv")
    assert fused.frame["score_b"].astype(float).tolist() == [1.5, -0.5, -3.0] and result["n_fused"] == 3


def _saved_fusion(tmp_path):
    systems = np.array([[1.0, 2.0], [-1.0, -1.0], [0.5, 1.5], [-2.0, 0.0], [-0.5, -0.5], [0.8, 1.8]])
    model = LinearFusion().fit(systems, [1, 0, 1, 0, 1, 0])      # not separable: no warning
    return model.save(tmp_path / "fusion.json")


def test_score_files_listing_a_trial_twice_are_refused(files, tmp_path):
    doubled = tmp_path / "doubled.csv"
    lines = files["dev"][0].read_text().splitlines()
    doubled.write_text("\n".join(lines + [lines[7]]) + "\n")
    with pytest.raises(ManifestError, match=rf"doubled\.csv: 1 repeated .*line {len(lines) + 1} repeats line 8"):
        fuse_score_files([doubled, files["dev"][1]], tmp_path / "o.csv", train_paths=files["dev"])
    assert not (tmp_path / "o.csv").exists()
