"""Pair scoring: three list formats give the same scores; symmetric scoring; Kaldi segments; failed files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_model_dir

from speakerid.data.kaldi_manifests import write_data_dir
from speakerid.data.manifests import read_manifest
from speakerid.exceptions import ParameterError
from speakerid.scoring.pairs import score_pairs


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    models, corpus = tiny_model_dir(root)
    enroll = read_manifest(corpus.enroll_csv).groupby("speaker")["path"].first()
    trials = read_manifest(corpus.trials_csv, require_target=True)
    pairs = pd.DataFrame({"enroll": [enroll[s] for s in trials["speaker"]], "test": trials["path"].tolist(),
                          "target": trials["target"].tolist()})
    return root, models, pairs


def pair_lists(root, pairs, folder="lists"):
    """The same pairs as VoxCeleb (relative to root), CSV (relative to the list) and Kaldi lists (+ data dir)."""
    lists = root / folder
    lists.mkdir(exist_ok=True)
    rel = {p: str(Path(p).relative_to(root)) for p in set(pairs["enroll"]) | set(pairs["test"])}
    (lists / "veri.txt").write_text("".join(f"{t} {rel[e]} {rel[s]}\n" for e, s, t in pairs.itertuples(index=False)))
    (lists / "pairs.csv").write_text("enroll,test,target\n" + "".join(
        f"../{rel[e]},../{rel[s]},{t}\n" for e, s, t in pairs.itertuples(index=False)))
    files = sorted(rel)
    written = write_data_dir(pd.DataFrame({"speaker": ["x"] * len(files), "path": files}), lists / "data")
    utt = dict(zip(written["path"], written.index))
    (lists / "trials").write_text("".join(f"{utt[e]} {utt[s]} {'target' if t else 'nontarget'}\n"
                                          for e, s, t in pairs.itertuples(index=False)))
    return lists


def test_voxceleb_kaldi_and_csv_lists_give_identical_scores(setup):
    root, models, pairs = setup
    lists = pair_lists(root, pairs)
    vox = score_pairs(models, lists / "veri.txt", audio_root=root, norm="none", chunksize=7)
    csv = score_pairs(models, lists / "pairs.csv", norm="none")
    kaldi = score_pairs(models, lists / "trials", data_dir=lists / "data", norm="none", n_jobs=2)
    assert (vox.pair_format, csv.pair_format, kaldi.pair_format) == ("voxceleb", "csv", "kaldi")
    assert vox.n_scored == csv.n_scored == kaldi.n_scored == len(pairs) and vox.n_errors == 0
    assert vox.n_models == len(set(pairs["enroll"]))   # one model per enrollment file
    np.testing.assert_array_equal(vox.frame["score"], csv.frame["score"])
    np.testing.assert_array_equal(vox.frame["score"], kaldi.frame["score"])
    assert vox.frame["target"].tolist() == pairs["target"].tolist()
    assert vox.metrics is not None and 0.0 <= vox.metrics["eer"] <= 0.5


def test_symmetric_scores_average_both_directions(setup):
    root, models, pairs = setup
    lists = pair_lists(root, pairs.head(6), "sym")
    forward = score_pairs(models, lists / "pairs.csv", norm="none").frame["score"].to_numpy()
    swapped = pairs.head(6)[["test", "enroll", "target"]].rename(columns={"test": "enroll", "enroll": "test"})
    back_lists = pair_lists(root, swapped, "sym_back")
    backward = score_pairs(models, back_lists / "pairs.csv", norm="none").frame["score"].to_numpy()
    both = score_pairs(models, lists / "pairs.csv", norm="none", symmetric=True)
    np.testing.assert_allclose(both.frame["score"], (forward + backward) / 2, rtol=1e-12)
    assert both.n_models == len(set(pairs.head(6)["enroll"]) | set(pairs.head(6)["test"]))


def test_kaldi_segments_score_like_the_cut_files(setup, tmp_path):
    root, models, pairs = setup
    first = pairs.iloc[0]
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"rec-e {first['enroll']}\nrec-t {first['test']}\n")
    (data / "segments").write_text("x-e rec-e 0 -1\nx-t rec-t 0.0 -1\n")
    (data / "utt2spk").write_text("x-e x\nx-t x\n")
    (tmp_path / "trials").write_text("x-e x-t target\n")
    (tmp_path / "p.csv").write_text(f"enroll,test\n{first['enroll']},{first['test']}\n")
    cut = score_pairs(models, tmp_path / "trials", data_dir=data, norm="none").frame["score"]
    whole = score_pairs(models, tmp_path / "p.csv", norm="none").frame["score"]
    assert cut.iloc[0] == pytest.approx(whole.iloc[0], rel=1e-9)


def test_unreadable_files_give_row_errors_and_out_formats(setup, tmp_path):
    root, models, pairs = setup
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    good = pairs.iloc[0]
    (tmp_path / "p.csv").write_text(f"enroll,test,target\n{good['enroll']},{good['test']},1\n"
                                    f"{good['enroll']},bad.wav,0\nbad.wav,{good['test']},0\n")
    result = score_pairs(models, tmp_path / "p.csv", tmp_path / "s.txt", norm="none", out_format="kaldi")
    assert (result.n_scored, result.n_errors) == (1, 2)
    assert len((tmp_path / "s.txt").read_text().splitlines()) == 1   # kaldi holds scored pairs only
    assert all("bad.wav" in reason for _, _, reason in result.errors)
    with pytest.raises(ParameterError, match="enrolled"):
        score_pairs(models, tmp_path / "p.csv", norm="enrolled")


def test_scores_do_not_depend_on_the_callers_blas_threads(setup):
    """Models and scores are computed on one BLAS thread whatever the caller's setting (a GEMM's rounding
    follows its thread count), so a serial run equals a threaded one."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    root, models, pairs = setup
    lists = pair_lists(root, pairs, "blas")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        two = score_pairs(models, lists / "pairs.csv", norm="none")
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        one = score_pairs(models, lists / "pairs.csv", norm="none")
    np.testing.assert_array_equal(two.frame["score"], one.frame["score"])
