"""i-vectors: Baum-Welch statistics, the T matrix, extraction, the ivector backend and train-ivector."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.exceptions import ParameterError
from speakerid.models.gmm import DiagGMM
from speakerid.models.ivector import TotalVariability, baum_welch_stats
from speakerid.models.ivector_system import IVectorSystem
from speakerid.verifier import SpeakerVerifier


def _tiny_ubm(rng, k=3, d=2):
    return DiagGMM.from_params(np.full(k, 1.0 / k), rng.normal(0, 2, (k, d)), rng.uniform(0.5, 2.0, (k, d)))


def _brute_stats(ubm, X):
    """Posteriors from scipy's Gaussian densities, then N and centred F, all in float64."""
    dens = np.stack([w * multivariate_normal(m, np.diag(v)).pdf(X)
                     for w, m, v in zip(ubm.weights_, ubm.means_, ubm.covariances_)], axis=1)
    post = dens / dens.sum(axis=1, keepdims=True)
    N = post.sum(axis=0)
    return N, post.T @ X - N[:, None] * ubm.means_


def test_baum_welch_statistics_match_brute_force(rng):
    ubm = _tiny_ubm(rng)
    utterances = [rng.normal(0, 2, (n, 2)) for n in (40, 7)]
    N, F = baum_welch_stats(ubm, utterances)
    for u, X in enumerate(utterances):
        N_ref, F_ref = _brute_stats(ubm, X)
        np.testing.assert_allclose(N[u], N_ref, atol=1e-4)
        np.testing.assert_allclose(F[u], F_ref, atol=1e-3)
    # top-C with C = 1: hard assignment to the most likely component; C = K is the full posterior
    N1, _ = baum_welch_stats(ubm, utterances, top_c=1)
    np.testing.assert_allclose(N1[0], np.bincount(ubm.predict(utterances[0]), minlength=3), atol=1e-6)
    np.testing.assert_allclose(baum_welch_stats(ubm, utterances, top_c=3)[1], F)
    with pytest.raises(ParameterError, match="columns"):
        baum_welch_stats(ubm, [np.zeros((5, 3))])


def test_ivector_posterior_matches_dense_gaussian_computation(rng):
    k, d, r = 3, 2, 2
    ubm = _tiny_ubm(rng, k, d)
    T = rng.normal(0, 0.7, (k, d, r))
    tv = TotalVariability.from_params(T, ubm.covariances_, batch_size=2)
    N, F = baum_welch_stats(ubm, [rng.normal(0, 2, (n, d)) for n in (30, 5, 60)])
    means, covs = tv.posterior(N, F)
    T_dense = T.reshape(k * d, r)
    sigma_inv = np.diag(1.0 / ubm.covariances_.reshape(-1))
    for u in range(len(N)):
        precision = np.eye(r) + T_dense.T @ sigma_inv @ np.diag(np.repeat(N[u], d)) @ T_dense
        cov = np.linalg.inv(precision)
        np.testing.assert_allclose(covs[u], cov, rtol=1e-10)
        np.testing.assert_allclose(means[u], cov @ T_dense.T @ sigma_inv @ F[u].reshape(-1), rtol=1e-10)
    np.testing.assert_allclose(tv.transform(N, F), means, rtol=1e-9)


def test_em_increases_likelihood_and_recovers_a_planted_subspace(rng):
    k, d, r, n = 6, 3, 2, 300
    variances = rng.uniform(0.5, 2.0, (k, d))
    T_true = rng.normal(0, 1.0, (k, d, r))
    w = rng.normal(size=(n, r))
    N = rng.uniform(5, 40, (n, k))
    # F_c | w ~ N(N_c T_c w, N_c Sigma_c): the statistics of N_c frames drawn around m_c + T_c w
    F = N[:, :, None] * np.einsum("kdr,nr->nkd", T_true, w) + rng.normal(size=(n, k, d)) * np.sqrt(
        N[:, :, None] * variances)
    tv = TotalVariability(rank=r, max_iter=15, random_state=0).fit(N, F, variances)
    history = tv.log_likelihood_history_
    assert np.all(np.diff(history) >= -1e-9 * abs(history[0])), history
    assert history[-1] > history[0]
    # the learned column space contains the planted one
    Q = np.linalg.qr(tv.T_.reshape(k * d, r))[0]
    planted = T_true.reshape(k * d, r)
    residual = planted - Q @ (Q.T @ planted)
    assert np.linalg.norm(residual) < 0.1 * np.linalg.norm(planted)


def test_min_divergence_keeps_the_prior_standard(rng):
    k, d, n = 4, 2, 200
    N = rng.uniform(5, 30, (n, k))
    F = rng.normal(size=(n, k, d)) * 3 * N[:, :, None] ** 0.5 + 2 * N[:, :, None] * rng.normal(size=(n, 1, 1))
    tv = TotalVariability(rank=1, max_iter=8, random_state=1).fit(N, F, np.ones((k, d)))
    means, covs = tv.posterior(N, F)
    second = (covs + means[:, :, None] * means[:, None, :]).mean(axis=0)
    assert second[0, 0] == pytest.approx(1.0, abs=0.05)


def test_total_variability_parameters_are_checked(rng):
    N, F = np.ones((3, 2)), np.zeros((3, 2, 2))
    with pytest.raises(ParameterError, match="rank"):
        TotalVariability(rank=5).fit(N, F, np.ones((2, 2)))
    with pytest.raises(ParameterError, match="statistics"):
        TotalVariability(rank=1).fit(N, F[:, :1], np.ones((2, 2)))


def test_system_round_trip_through_arrays(rng):
    ubm = _tiny_ubm(rng, 4, 2)
    centres = rng.normal(0, 1.5, (6, 2))
    sessions = [rng.normal(centres[s], 1.0, (80, 2)) for s in range(6) for _ in range(4)]
    labels = np.repeat(np.arange(6), 4)
    system = IVectorSystem(rank=3, max_iter=3, lda_dim=2).fit(ubm, sessions, labels)
    again = IVectorSystem.from_arrays(system.to_arrays(), system.get_params())
    tests = [rng.normal(centres[s], 1.0, (50, 2)) for s in range(6)]
    models = system.embed(tests[:3])
    for scoring in ("plda", "cosine"):
        np.testing.assert_array_equal(again.score_vectors(models, again.embed(tests), scoring=scoring),
                                      system.score_vectors(models, system.embed(tests), scoring=scoring))
    with pytest.raises(ParameterError, match="lda_dim"):
        IVectorSystem(rank=3, lda_dim=6).fit(ubm, sessions, labels)
    with pytest.raises(ParameterError, match="several sessions per speaker"):
        system.fit_backend(system.train_ivectors_[::4], labels[::4])


# ------------------------------------------------------------------ the backend and the command line
def _cli(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def ivector_dir(synth_corpus, tmp_path_factory):
    """A model directory with a tiny UBM and i-vector extractor trained on the synthetic background."""
    model_dir = tmp_path_factory.mktemp("ivector")
    assert main(["train-ubm", "--manifest", str(synth_corpus.background_csv), "--model-dir", str(model_dir),
                 "--components", "8", "--iterations", "3"]) == ExitStatus.OK
    assert main(["train-ivector", "--manifest", str(synth_corpus.background_csv), "--model-dir", str(model_dir),
                 "--rank", "6", "--lda-dim", "4", "--segment-s", "1", "--augment", "0", "--iterations", "3",
                 "--scoring", "plda", "--ubm-components", "0", "--json"]) == 0
    return model_dir


def test_backend_enroll_save_load_same_scores(ivector_dir, synth_corpus, capsys):
    trials = pd.read_csv(synth_corpus.trials_csv)
    test = synth_corpus.folder / trials["path"][0]
    for scoring in ("plda", "cosine"):
        verifier = SpeakerVerifier(ivector_dir, backend="ivector", backend_params={"scoring": scoring})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            verifier.enroll_manifest(synth_corpus.enroll_csv)
        speakers = verifier.speakers()
        first = verifier.score_frames(speakers, verifier.features(test))
        fresh = SpeakerVerifier(ivector_dir, backend="ivector", backend_params={"scoring": scoring})
        np.testing.assert_array_equal(fresh.score_frames(speakers, fresh.features(test)), first)
        assert np.all(np.isfinite(first)) and len(set(first.round(9))) == len(first)
    # enrollment is not augmented with noisy copies, whatever the directory's UBM was trained with
    assert all("augment" not in h for h in fresh.store.speaker_headers("ivector"))
    result = fresh.identify(test, top=10)
    assert result["backend"] == "ivector" and len(result["candidates"]) == len(speakers)


def test_score_command_with_snorm(ivector_dir, synth_corpus, tmp_path, capsys):
    status, _, err = _cli(capsys, "enroll", "--manifest", synth_corpus.enroll_csv, "--model-dir", ivector_dir,
                          "--backend", "ivector", "--replace")
    assert status == ExitStatus.OK, err
    out = tmp_path / "scores.csv"
    for extra in ([], ["--cohort", synth_corpus.background_csv, "--norm", "snorm"]):
        status, _, err = _cli(capsys, "score", "--model-dir", ivector_dir, "--trials", synth_corpus.trials_csv,
                              "--out", out, "--backend", "ivector", *extra)
        assert status == ExitStatus.OK, err
        scored = pd.read_csv(out)
        assert scored["score"].notna().all() and len(scored) == synth_corpus.n_trials
    status, text, err = _cli(capsys, "verify", "--model-dir", ivector_dir, "--backend", "ivector", "--speaker",
                             scored["speaker"][0], synth_corpus.folder / scored["path"][0], "--json")
    assert status == ExitStatus.OK, err
    assert '"score"' in text


def test_train_ivector_errors_are_one_line(synth_corpus, ivector_dir, tmp_path, capsys):
    bg = synth_corpus.background_csv
    status, _, err = _cli(capsys, "train-ivector", "--manifest", bg, "--model-dir", tmp_path / "empty",
                          "--ubm-components", "0")
    assert status == ExitStatus.NOT_FITTED and "train-ubm" in err and len(err.strip().splitlines()) == 1
    status, _, err = _cli(capsys, "train-ivector", "--manifest", bg, "--model-dir", ivector_dir, "--rank", "0", "--force")
    assert status == ExitStatus.USAGE and "--rank" in err and len(err.strip().splitlines()) == 1
    status, _, err = _cli(capsys, "train-ivector", "--manifest", bg, "--model-dir", ivector_dir, "--rank", "100000",
                          "--lda-dim", "3", "--force")
    assert status == ExitStatus.USAGE and "rank" in err and len(err.strip().splitlines()) == 1
    status, _, err = _cli(capsys, "train-ivector", "--manifest", bg, "--model-dir", ivector_dir, "--lda-dim", "50",
                          "--rank", "4", "--force")
    assert status == ExitStatus.USAGE and "lda_dim" in err
    (tmp_path / "nothing").mkdir()          # an empty model directory (a missing one is a usage error)
    status, _, err = _cli(capsys, "verify", "--model-dir", tmp_path / "nothing", "--backend", "ivector",
                          "--speaker", "a", synth_corpus.folder / pd.read_csv(synth_corpus.trials_csv)["path"][0])
    assert status == ExitStatus.NOT_FITTED and "train-ivector" in err


def test_train_ivector_warns_about_enrolled_background_speakers(ivector_dir, synth_corpus, tmp_path, capsys):
    model_dir = shutil.copytree(ivector_dir, tmp_path / "models")
    enrolled = pd.read_csv(synth_corpus.enroll_csv)
    leak = tmp_path / "leak.csv"
    rows = pd.concat([pd.read_csv(synth_corpus.background_csv), enrolled.head(2)])
    rows["path"] = [str(synth_corpus.folder / p) for p in rows["path"]]
    rows.to_csv(leak, index=False)
    SpeakerVerifier(model_dir, backend="ivector").enroll(enrolled["speaker"][0],
                                                           [synth_corpus.folder / enrolled["path"][0]])
    status, _, err = _cli(capsys, "train-ivector", "--manifest", leak, "--model-dir", model_dir, "--rank", "4",
                          "--lda-dim", "3", "--augment", "0", "--iterations", "1", "--ubm-components", "0", "--json",
                          "--force")
    assert status == ExitStatus.OK and "DataLeak" not in err and "already enrolled" in err


def test_train_ivector_with_its_own_ubm_needs_no_ubm_file(synth_corpus, tmp_path, capsys):
    model_dir = tmp_path / "own"
    status, text, err = _cli(capsys, "train-ivector", "--manifest", synth_corpus.background_csv, "--model-dir",
                             model_dir, "--ubm-components", "4", "--rank", "4", "--lda-dim", "3", "--segment-s",
                             "0", "--augment", "1", "--iterations", "2", "--scoring", "cosine", "--json")
    assert status == ExitStatus.OK, err
    assert not (model_dir / "ubm.npz").exists() and (model_dir / "ivector.npz").is_file()
    verifier = SpeakerVerifier(model_dir, backend="ivector", backend_params={"enroll": "average"})
    enroll = pd.read_csv(synth_corpus.enroll_csv)
    files = [synth_corpus.folder / p for p in enroll["path"][enroll["speaker"] == enroll["speaker"][0]]]
    verifier.enroll("alice", files)
    model = verifier._speaker_model("alice")
    assert int(model["count"]) == len(files) and abs(verifier.verify("alice", files[0])["score"]) <= 1.0
