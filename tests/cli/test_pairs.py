"""speakerid score-pairs: the VoxCeleb, Kaldi and CSV forms of one list give identical score files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from conftest import tiny_model_dir

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.manifests import read_manifest
from speakerid.data.score_formats import read_score_table


def test_score_pairs_formats_agree_through_the_cli(tmp_path, capsys):
    models, corpus = tiny_model_dir(tmp_path)
    enroll = read_manifest(corpus.enroll_csv).groupby("speaker")["path"].first()
    trials = read_manifest(corpus.trials_csv, require_target=True).head(12)
    root = tmp_path
    lines = [(_relative(enroll[s], root), _relative(p, root), t) for s, p, t in zip(trials["speaker"], trials["path"], trials["target"])]
    (tmp_path / "veri.txt").write_text("".join(f"{t} {e} {s}\n" for e, s, t in lines))
    (tmp_path / "pairs.csv").write_text("enroll,test,target\n" + "".join(f"{e},{s},{t}\n" for e, s, t in lines))
    files = sorted({x for e, s, _ in lines for x in (e, s)})
    data = tmp_path / "data"
    data.mkdir()
    utt = {f: f"x-{i:03d}" for i, f in enumerate(files)}
    (data / "wav.scp").write_text("".join(f"{utt[f]} {root / f}\n" for f in files))
    (data / "utt2spk").write_text("".join(f"{utt[f]} x\n" for f in files))
    (tmp_path / "trials").write_text("".join(f"{utt[e]} {utt[s]} {'target' if t else 'nontarget'}\n"
                                             for e, s, t in lines))
    capsys.readouterr()
    runs = {"voxceleb": ["--pairs", str(tmp_path / "veri.txt"), "--audio-root", str(root)],
            "csv": ["--pairs", str(tmp_path / "pairs.csv")],
            "kaldi": ["--pairs", str(tmp_path / "trials"), "--data-dir", str(data)]}
    scores = {}
    for name, extra in runs.items():
        out = tmp_path / f"scores-{name}.txt"
        status = main(["score-pairs", "--model-dir", str(models), *extra, "--out", str(out), "--out-format", "kaldi",
                       "--norm", "none", "--json"])
        assert status == ExitStatus.OK
        summary = json.loads(capsys.readouterr().out)
        assert summary["pair_format"] == name and summary["n_scored"] == len(lines)
        scores[name] = read_score_table(out, "kaldi")["score"].to_numpy()
    np.testing.assert_array_equal(scores["voxceleb"], scores["csv"])
    np.testing.assert_array_equal(scores["voxceleb"], scores["kaldi"])


def _relative(path, root) -> str:
    return str(Path(path).relative_to(root))
