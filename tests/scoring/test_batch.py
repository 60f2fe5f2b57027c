"""Batch scoring (speakerid.scoring.batch, ``speakerid score``): same scores as verify, streaming, errors, parallelism."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.manifests import read_manifest
from speakerid.evaluation.norm import normalize_scores
from speakerid.exceptions import DataLeakWarning, ManifestError, ParameterError, UnknownSpeakerError
from speakerid.scoring import batch as scoring
from speakerid.scoring import worker as scoring_worker
from speakerid.scoring.batch import PartialScoringError, score_frame, score_trials, trial_metrics
from speakerid.store import COHORT_FILE
from speakerid.verifier import SpeakerVerifier


@pytest.fixture(scope="module")
def model_dir(synth_corpus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("score-models")
    verifier = SpeakerVerifier(folder)
    verifier.train(synth_corpus.background_csv, n_components=8, max_iter=3)
    verifier.enroll_manifest(synth_corpus.enroll_csv)
    (folder / COHORT_FILE).unlink()     # raw scores by default here; the default cohort has its own tests
    return folder


def test_default_cohort_is_drawn_from_the_background_and_used_by_default(synth_corpus, trials, tmp_path):
    verifier = SpeakerVerifier(tmp_path / "m")
    verifier.train(synth_corpus.background_csv, n_components=8, max_iter=3)
    verifier.enroll_manifest(synth_corpus.enroll_csv)
    cohort = pd.read_csv(tmp_path / "m" / COHORT_FILE, dtype=str)
    background = read_manifest(synth_corpus.background_csv)
    assert set(cohort["speaker"]) == set(background["speaker"])          # fewer than 100: all of them
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in cohort["path"])

    auto = score_trials(tmp_path / "m", trials, tmp_path / "auto.csv")
    # 6 speakers are enrolled (>= AUTO_ENROLLED_MIN): the default adds the T-norm over the other enrolled ones
    explicit = score_trials(tmp_path / "m", trials, tmp_path / "snorm.csv", norm="snorm+enrolled",
                            cohort=tmp_path / "m" / COHORT_FILE)
    raw = score_trials(tmp_path / "m", trials, tmp_path / "raw.csv", norm="none")
    assert auto.normalization.startswith("snorm") and raw.normalization == "none"
    assert auto.normalization.endswith("T-norm over the other enrolled speakers (5 per trial, the claimed one "
                                       "left out)")
    assert (tmp_path / "auto.csv").read_bytes() == (tmp_path / "snorm.csv").read_bytes()
    assert explicit.n_scored == raw.n_scored == auto.n_scored
    assert (tmp_path / "auto.csv").read_bytes() != (tmp_path / "raw.csv").read_bytes()

    verifier.set_cohort(synth_corpus.background_csv, max_speakers=3, random_state=1)
    assert pd.read_csv(tmp_path / "m" / COHORT_FILE, dtype=str)["speaker"].nunique() == 3
    with pytest.raises(ParameterError, match="at least 2 speakers"):
        verifier.set_cohort(synth_corpus.background_csv, max_speakers=1)
    with pytest.warns(DataLeakWarning, match="enrolled"):
        verifier.set_cohort(synth_corpus.enroll_csv)


@pytest.fixture
def trials(synth_corpus, tmp_path):
    """The corpus trial list copied beside its audio folder (relative paths), with extra columns."""
    frame = pd.read_csv(synth_corpus.trials_csv, dtype=str, keep_default_na=False)
    frame.insert(1, "session", [f"s{i % 3}" for i in range(len(frame))])
    frame["note"] = ['a "quoted", text' if i % 5 == 0 else "" for i in range(len(frame))]
    frame["path"] = [str(synth_corpus.folder / p) for p in frame["path"]]
    path = tmp_path / "trials.csv"
    frame.iloc[::-1].to_csv(path, index=False)  # not grouped by speaker: order must be kept anyway
    return path


def _read(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_scores_equal_verify_and_rows_pass_through(model_dir, trials):
    out = trials.with_name("scores.csv")
    result = score_trials(model_dir, trials, out, norm="none")
    written, given = _read(out), _read(trials)
    assert list(written.columns) == list(given.columns) + ["score", "error"]
    pd.testing.assert_frame_equal(written[given.columns], given)          # every value as written, in order
    assert result.n_trials == result.n_scored == len(given) and result.n_errors == 0
    assert (written["error"] == "").all() and result.has_target and result.out == out
    verifier = SpeakerVerifier(model_dir, norm="none")
    expected = [verifier.verify(s, p)["score"] for s, p in zip(given["speaker"], given["path"])]
    np.testing.assert_allclose(written["score"].astype(float), expected, rtol=1e-6, atol=1e-6)
    # each distinct test file is one task, scored against all its claims at once
    assert result.n_tasks == given["path"].nunique()


def test_small_chunks_give_the_same_file(model_dir, trials, tmp_path):
    score_trials(model_dir, trials, tmp_path / "one.csv")
    score_trials(model_dir, trials, tmp_path / "many.csv", chunksize=7)
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "many.csv").read_bytes()


def test_score_frame_relative_paths_and_metrics(model_dir, synth_corpus, monkeypatch):
    monkeypatch.chdir(synth_corpus.folder)
    frame = pd.read_csv(synth_corpus.trials_csv, dtype={"speaker": str})
    scored = score_frame(model_dir, frame)
    assert list(scored.columns) == list(frame.columns) + ["score", "error"]
    assert np.isfinite(scored["score"]).all() and scored["target"].tolist() == frame["target"].tolist()
    figures = trial_metrics(scored)
    assert 0.0 <= figures["eer"] < 0.5 and figures["n_target"] == int(frame["target"].sum())


def test_unknown_speakers_all_listed_before_scoring(model_dir, trials, tmp_path, monkeypatch):
    frame = _read(trials)
    frame.loc[[0, 3, 5], "speaker"] = ["nobody-1", "nobody-2", "nobody-3"]
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)

    def no_scoring(*args):
        raise AssertionError("scoring started")

    monkeypatch.setattr(scoring, "score_tasks", no_scoring)
    out = tmp_path / "never.csv"
    with pytest.raises(UnknownSpeakerError, match="nobody-1, nobody-2, nobody-3") as info:
        score_trials(model_dir, bad, out, chunksize=2)
    assert "3 claimed speaker(s)" in str(info.value) and str(info.value).startswith(f"{bad}: ")  # names the list
    assert not out.exists() and not list(tmp_path.glob(".*"))


def test_manifest_problems_name_the_file(model_dir, tmp_path):
    bad = tmp_path / "trials.csv"
    bad.write_text("speaker,file\nspk001,a.wav\n")
    with pytest.raises(ManifestError, match="missing column"):
        score_trials(model_dir, bad, tmp_path / "o.csv")
    bad.write_text("speaker,path,target\nspk001,a.wav,1\nspk001,b.wav,maybe\n,c.wav,0\n")
    with pytest.raises(ManifestError, match=r"empty speaker id on line\(s\) 4"):
        score_trials(model_dir, bad, tmp_path / "o.csv")
    bad.write_text("speaker,path,target\nspk001,a.wav,1\nspk001,b.wav,maybe\n")
    with pytest.raises(ManifestError, match=r"line\(s\) 3"):
        score_trials(model_dir, bad, tmp_path / "o.csv")
    with pytest.raises(ParameterError, match="model directory"):
        score_trials(tmp_path / "no-models", bad, tmp_path / "o.csv")
    with pytest.raises(ParameterError, match="chunksize"):
        score_trials(model_dir, bad, tmp_path / "o.csv", chunksize=0)
    assert not (tmp_path / "o.csv").exists()


def _with_bad_audio(trials, tmp_path):
    frame = _read(trials)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file" * 10)
    frame.loc[1, "path"] = str(tmp_path / "missing.wav")
    frame.loc[[2, 7], "path"] = str(broken)
    # two claims on the broken file: another speaker on row 7 (the same trial twice would be refused)
    frame.loc[7, ["speaker", "target"]] = ["spk001" if frame.loc[2, "speaker"] != "spk001" else "spk002", "0"]
    path = tmp_path / "bad-audio.csv"
    frame.to_csv(path, index=False)
    return path, broken


def test_unreadable_and_missing_audio_are_row_errors(model_dir, trials, tmp_path):
    path, broken = _with_bad_audio(trials, tmp_path)
    out = tmp_path / "scores.csv"
    result = score_trials(model_dir, path, out, chunksize=4)
    written = _read(out)
    assert result.n_errors == 3 and result.n_scored == len(written) - 3
    assert written.loc[1, "error"] == "file not found" and written.loc[1, "score"] == ""
    assert "not a readable audio file" in written.loc[2, "error"] and written.loc[7, "score"] == ""
    assert written.loc[7, "error"] == written.loc[2, "error"]
    assert (written.drop(index=[1, 2, 7])["error"] == "").all()
    assert [(e.line, e.file) for e in result.errors] == [(3, str(tmp_path / "missing.wav")), (4, str(broken)),
                                                          (9, str(broken))]
    with pytest.raises(PartialScoringError) as info:
        score_trials(model_dir, path, out, strict=True)
    assert info.value.exit_code == ExitStatus.PARTIAL_FAILURE and info.value.result.n_errors == 3
    assert str(info.value).startswith(f"3 of {len(written)} trial(s) could not be scored (first: ")
    assert _read(out).equals(written)  # the output is written all the same


def test_output_is_atomic(model_dir, trials, tmp_path, monkeypatch):
    out = tmp_path / "scores.csv"
    out.write_text("old\n")
    calls = []

    def fail_on_third(*args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("worker died")
        return real(*args)

    real = scoring_worker._score_task
    monkeypatch.setattr(scoring_worker, "_score_task", fail_on_third)
    with pytest.raises(RuntimeError, match="worker died"):
        score_trials(model_dir, trials, out, chunksize=10)
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "trials.csv"]


def test_jobs_and_dask_give_identical_scores(model_dir, trials, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    base = score_trials(model_dir, trials, tmp_path / "serial.csv", chunksize=40)
    two = score_trials(model_dir, trials, tmp_path / "two.csv", n_jobs=2, chunksize=40)
    procs = score_trials(model_dir, trials, tmp_path / "procs.csv", n_jobs=2, chunksize=40, processes=True)
    dask = score_trials(model_dir, trials, tmp_path / "dask.csv", scheduler="local", n_jobs=2, chunksize=40)
    assert two.runner == "2 threads" and procs.runner == "joblib (2 processes)"
    assert dask.runner == "dask (LocalCluster, 2 workers)"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        by_address = score_trials(model_dir, trials, tmp_path / "tcp.csv", scheduler=cluster.scheduler_address)
        score_trials(model_dir, trials, tmp_path / "client.csv", scheduler=client, chunksize=40)
        assert client.status == "running"  # a Client given is left open
    assert by_address.runner.startswith("dask (tcp://")
    serial = _read(tmp_path / "serial.csv")["score"].astype(np.float32)
    for name in ("two.csv", "procs.csv", "dask.csv", "tcp.csv", "client.csv"):
        np.testing.assert_array_equal(_read(tmp_path / name)["score"].astype(np.float32), serial)
    assert base.n_scored == two.n_scored == dask.n_scored == len(serial)


def test_feature_cache_hits_and_corrupt_entry(model_dir, trials, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = score_trials(model_dir, trials, tmp_path / "a.csv", cache_dir=cache)
    n_files = _read(trials)["path"].nunique()
    entries = sorted(cache.rglob("*.npy"))
    assert first.cache_misses == n_files == len(entries) and first.cache_hits == 0

    import speakerid.verifier

    def no_extraction(*args, **kwargs):
        raise AssertionError("features extracted despite the cache")

    with monkeypatch.context() as patch:
        patch.setattr(speakerid.verifier, "file_features", no_extraction)
        second = score_trials(model_dir, trials, tmp_path / "b.csv", cache_dir=cache)
    assert second.cache_hits == n_files and second.cache_misses == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()

    entries[0].write_bytes(entries[0].read_bytes()[:50])  # truncated entry: recomputed and rewritten
    third = score_trials(model_dir, trials, tmp_path / "c.csv", cache_dir=cache)
    assert third.cache_misses == 1 and third.cache_hits == n_files - 1
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "c.csv").read_bytes()
    assert np.load(entries[0], allow_pickle=False).ndim == 2


def test_changed_model_is_reloaded(model_dir, synth_corpus, trials, tmp_path):
    copied = tmp_path / "models"
    shutil.copytree(model_dir, copied)
    before = score_trials(copied, trials, tmp_path / "before.csv", norm="none")
    enroll = read_manifest(synth_corpus.enroll_csv)
    speaker = synth_corpus.speakers[0]
    SpeakerVerifier(copied).enroll(speaker, list(enroll.query("speaker == @speaker")["path"])[:1])
    score_trials(copied, trials, tmp_path / "after.csv", norm="none")
    a, b = _read(tmp_path / "before.csv"), _read(tmp_path / "after.csv")
    claimed = a["speaker"] == speaker
    assert before.n_scored == len(a)
    assert (a.loc[claimed, "score"] != b.loc[claimed, "score"]).all()
    assert a.loc[~claimed, "score"].equals(b.loc[~claimed, "score"])


@pytest.mark.parametrize("method", ["znorm", "tnorm", "snorm", "ztnorm"])
def test_cohort_normalisation_matches_score_norm(model_dir, synth_corpus, trials, tmp_path, method):
    cohort = read_manifest(synth_corpus.background_csv)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataLeakWarning)
        result = score_trials(model_dir, trials, tmp_path / "n.csv", norm=method, cohort=synth_corpus.background_csv,
                              cohort_top=3)
    normed = _read(tmp_path / "n.csv")["score"].astype(float).to_numpy()
    raw = _read(trials)
    verifier = SpeakerVerifier(model_dir, norm="none")
    cohort_frames = [verifier.features(p) for p in cohort["path"]]
    claimed = sorted(set(raw["speaker"]))
    z = np.stack([verifier.score_frames(claimed, f) for f in cohort_frames], axis=1)
    models = [verifier.backend.enroll([cohort_frames[i] for i in idx])[0]
              for idx in cohort.reset_index(drop=True).groupby("speaker", sort=True).indices.values()]
    backend = verifier.backend
    test_cohort = np.stack([backend.score(backend.prepare(verifier.features(p)), models) for p in raw["path"]])
    cohort_cohort = np.stack([backend.score(backend.prepare(f), models) for f in cohort_frames], axis=1)
    scores = np.array([verifier.score_frames([s], verifier.features(p))[0]
                       for s, p in zip(raw["speaker"], raw["path"])])
    expected = normalize_scores(scores, method, model_cohort=z[[claimed.index(s) for s in raw["speaker"]]],
                                test_cohort=test_cohort, cohort_cohort=cohort_cohort, top_n=3)
    np.testing.assert_allclose(normed, expected, rtol=1e-4, atol=1e-4)   # float32 scores, normalised
    assert result.n_scored == len(raw)


def test_cohort_overlapping_trial_speakers_warns(model_dir, synth_corpus, trials, tmp_path):
    with pytest.warns(DataLeakWarning, match="cohort speaker"):
        score_trials(model_dir, trials, tmp_path / "n.csv", norm="znorm", cohort=synth_corpus.enroll_csv)
    with pytest.raises(ParameterError, match="needs a cohort manifest"):
        score_trials(model_dir, trials, tmp_path / "n.csv", norm="snorm")
    with pytest.raises(ParameterError, match="no cohort normalisation"):
        score_trials(model_dir, trials, tmp_path / "n.csv", norm="none", cohort=synth_corpus.enroll_csv)
    with pytest.raises(ParameterError, match="cohort_top"):
        score_trials(model_dir, trials, tmp_path / "n.csv", cohort_top=3)
    with pytest.raises(ParameterError, match="unknown score normalisation"):
        score_trials(model_dir, trials, tmp_path / "n.csv", norm="fnorm", cohort=synth_corpus.enroll_csv)



def _leave_out(matrix: pd.DataFrame) -> pd.DataFrame:
    """Reference enrolled-speaker T-norm by loops: ``matrix`` (test files x enrolled speakers) of scores."""
    out = matrix.copy()
    for path, row in matrix.iterrows():
        for speaker in matrix.columns:
            others = row.drop(speaker).to_numpy(float)
            out.loc[path, speaker] = (row[speaker] - others.mean()) / others.std()
    return out


@pytest.mark.parametrize("method", ["enrolled", "snorm+enrolled"])
def test_enrolled_tnorm_equals_a_loop_over_the_other_speakers(model_dir, synth_corpus, trials, tmp_path, method):
    """Each trial is T-normalised by the test file's scores against every *other* enrolled speaker, whether the
    trial list claims them or not (the claims here are one per file)."""
    base = {} if method == "enrolled" else {"norm": "snorm", "cohort": synth_corpus.background_csv}
    full = score_trials(model_dir, trials, tmp_path / "full.csv", **(base or {"norm": "none"})).out
    matrix = _read(full).assign(score=lambda f: f["score"].astype(float)).pivot(
        index="path", columns="speaker", values="score")
    assert matrix.shape[1] == 6 and matrix.notna().all().all()
    expected = _leave_out(matrix)

    one_claim = _read(trials).drop_duplicates("path").copy()       # one claimed speaker per test file
    one_claim["speaker"] = [synth_corpus.speakers[i % 6] for i in range(len(one_claim))]
    one_claim.to_csv(tmp_path / "one.csv", index=False)
    cohort = {} if method == "enrolled" else {"cohort": synth_corpus.background_csv}
    result = score_trials(model_dir, tmp_path / "one.csv", tmp_path / "out.csv", norm=method, chunksize=5,
                          **cohort)
    got = _read(tmp_path / "out.csv")
    assert result.n_scored == len(one_claim)
    assert "T-norm over the other enrolled speakers (5 per trial" in result.normalization
    want = [expected.loc[p, s] for p, s in zip(got["path"], got["speaker"])]
    np.testing.assert_allclose(got["score"].astype(float), want, rtol=2e-5, atol=2e-5)


def test_enrolled_tnorm_options(model_dir, synth_corpus, trials, tmp_path):
    auto = score_trials(model_dir, trials, tmp_path / "auto.csv")      # no cohort.csv here, 6 speakers enrolled
    assert auto.normalization == "T-norm over the other enrolled speakers (5 per trial, the claimed one left out)"
    assert (tmp_path / "auto.csv").read_bytes() == score_trials(
        model_dir, trials, tmp_path / "e.csv", norm="enrolled").out.read_bytes()
    few = tmp_path / "few"
    shutil.copytree(model_dir, few)
    verifier = SpeakerVerifier(few)
    for speaker in synth_corpus.speakers[2:]:
        verifier.remove(speaker)
    kept = _read(trials).query("speaker in @synth_corpus.speakers[:2]")
    kept.to_csv(tmp_path / "kept.csv", index=False)
    assert score_trials(few, tmp_path / "kept.csv", tmp_path / "k.csv").normalization == "none"   # auto: < 6
    with pytest.raises(ParameterError, match="at least 3 enrolled speakers"):
        score_trials(few, tmp_path / "kept.csv", tmp_path / "k.csv", norm="enrolled")
    for bad in ("enrolled+snorm", "snorm+", "snorm+znorm", "fnorm+enrolled", 3):
        with pytest.raises(ParameterError, match="unknown score normalisation"):
            score_trials(model_dir, trials, tmp_path / "n.csv", norm=bad)


def test_cli_norm_enrolled(model_dir, synth_corpus, trials, tmp_path, capsys):
    status, out, err = _cli(capsys, "score", "--model-dir", model_dir, "--trials", trials, "--out",
                            tmp_path / "s.csv", "--norm", "snorm+enrolled", "--cohort", synth_corpus.background_csv)
    assert status == ExitStatus.OK and "snorm (cohort" in out and "+ T-norm over the other enrolled" in out
    status, out, err = _cli(capsys, "score", "--model-dir", model_dir, "--trials", trials, "--out",
                            tmp_path / "s.csv", "--norm", "enrolled+snorm")
    assert status == ExitStatus.USAGE and "invalid choice" in err and len(err.strip().splitlines()) <= 2

def _cli(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_score_summary_and_exit_codes(model_dir, trials, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    status, text, err = _cli(capsys, "score", "--model-dir", model_dir, "--trials", trials, "--out", out)
    assert status == ExitStatus.OK, err
    assert f"scored {len(_read(trials))} of {len(_read(trials))} trials (0 error(s))" in text
    assert "EER" in text and "minDCF" in text and str(out) in text

    bad_audio, broken = _with_bad_audio(trials, tmp_path)
    status, text, err = _cli(capsys, "score", "--model-dir", model_dir, "--trials", bad_audio, "--out", out)
    assert status == ExitStatus.OK, err
    assert "(3 error(s))" in text and f"error: {broken}: not a readable audio file" in text
    status, text, _ = _cli(capsys, "score", "--model-dir", model_dir, "--trials", bad_audio, "--out", out,
                           "--strict", "--exact")
    assert status == ExitStatus.PARTIAL_FAILURE and "file not found" in text

    unknown = tmp_path / "unknown.csv"
    unknown.write_text(f"speaker,path\nghost,{broken}\n")
    status, _, err = _cli(capsys, "score", "--model-dir", model_dir, "--trials", unknown, "--out", out)
    assert status == ExitStatus.UNKNOWN_SPEAKER and "ghost" in err and len(err.strip().splitlines()) == 1
    status, _, err = _cli(capsys, "score", "--model-dir", model_dir, "--trials", tmp_path / "nope.csv", "--out", out)
    assert status == ExitStatus.MANIFEST and "nope.csv" in err
    status, _, err = _cli(capsys, "score", "--model-dir", model_dir, "--trials", trials, "--out", out,
                          "--norm", "snorm")
    assert status == ExitStatus.USAGE
