"""Numerical robustness of every training EM on degenerate statistics, and the facts each model reports.

Families: components with zero occupancy, duplicated frames, a constant dimension, fewer segments than the
rank, speakers with one segment (PLDA), singular within-class scatter (LDA, WCCN); and the T-matrix E-step
against the plain per-utterance inverse it replaced.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from speakerid.exceptions import ParameterError
from speakerid.models._frame_checks import DegenerateFramesWarning, check_training_frames, distinct_frames
from speakerid.models.gmm import DiagGMM
from speakerid.models.gmm_ubm import GMMUBM
from speakerid.models.ivector import TotalVariability
from speakerid.models.plda import LDA, PLDA, WCCN
from speakerid.models.speaker_gmm import SpeakerGMM


def _reference_e_step(tv, N, Fw):
    """The E-step as it was: an explicit np.linalg.inv per utterance (kept here only, as the reference)."""
    k, r = N.shape[1], tv._Tw.shape[1]
    A, C, second, ll = np.zeros((k, r, r)), np.zeros((Fw.shape[1], r)), np.zeros((r, r)), 0.0
    for u in range(len(N)):
        L = np.eye(r) + np.einsum("c,crs->rs", N[u], tv._TT.reshape(k, r, r))
        rhs = tv._Tw.T @ Fw[u]
        Linv = np.linalg.inv(L)
        w = Linv @ rhs
        Eww = Linv + np.outer(w, w)
        A += N[u][:, None, None] * Eww
        C += np.outer(Fw[u], w)
        second += Eww
        ll += 0.5 * rhs @ w - 0.5 * np.linalg.slogdet(L)[1]
    return ll, A, C, second


def _random_stats(rng, n, k, d, empty=()):
    N = rng.uniform(0, 30, (n, k))
    N[:, list(empty)] = 0.0
    F = rng.normal(size=(n, k, d)) * np.sqrt(N)[:, :, None]
    return N, F


@pytest.mark.parametrize("batch_size, n_jobs", [(7, 1), (256, 2)])
def test_factorised_e_step_matches_the_per_utterance_inverse(rng, batch_size, n_jobs):
    k, d, r, n = 5, 4, 6, 23
    N, F = _random_stats(rng, n, k, d)
    tv = TotalVariability.from_params(rng.normal(0, 0.5, (k, d, r)), rng.uniform(0.5, 2, (k, d)),
                                      batch_size=batch_size, n_jobs=n_jobs)
    Fw = tv._whiten(F)
    got, want = tv._e_step(N, Fw), _reference_e_step(tv, N, Fw)
    assert got[0] == pytest.approx(want[0], rel=1e-10)
    for g, w in zip(got[1:], want[1:]):
        np.testing.assert_allclose(g, w, rtol=1e-8, atol=1e-10 * np.abs(w).max())
    means, covs = tv.posterior(N, F)
    np.testing.assert_allclose(np.linalg.inv(covs[0]), np.eye(r) + np.einsum(
        "c,crs->rs", N[0], tv._TT.reshape(k, r, r)), rtol=1e-8)


def test_t_matrix_survives_components_without_occupancy(rng):
    k, d, r = 6, 3, 4
    N, F = _random_stats(rng, 40, k, d, empty=(1, 4))
    tv = TotalVariability(rank=r, max_iter=4, random_state=0).fit(N, F, np.ones((k, d)))
    assert tv.empty_components_ == [1, 4] and tv.n_empty_components_ == 2
    assert np.all(tv.T_[[1, 4]] == 0) and np.isfinite(tv.T_).all()
    assert np.abs(tv.T_[[0, 2, 3, 5]]).min(axis=(1, 2)).max() > 0
    assert np.isfinite(tv.transform(N, F)).all()
    history = tv.log_likelihood_history_
    assert np.all(np.diff(history) >= -1e-9 * abs(history[0]))


def test_t_matrix_with_fewer_segments_than_the_rank_stays_finite(rng):
    k, d, r = 4, 5, 12
    N, F = _random_stats(rng, 3, k, d)              # 3 segments, rank 12: rank-deficient statistics
    N[:, 2] = 1e-300                                # and a component whose occupancy underflows
    tv = TotalVariability(rank=r, max_iter=3).fit(N, F, np.ones((k, d)))
    assert tv.empty_components_ == [2]
    assert np.isfinite(tv.T_).all() and np.isfinite(tv.transform(N, F)).all()


def test_ubm_reseeds_components_that_hold_a_few_outlier_frames(rng):
    X = np.concatenate([rng.normal(size=(3000, 3)), rng.normal(40, 1e-3, (2, 3))]).astype(np.float32)
    gmm = DiagGMM(n_components=4, max_iter=15, random_state=0).fit(X)
    n_frames = gmm.weights_ * len(X)
    assert n_frames.min() >= 10, n_frames          # no component lives on the two outliers
    assert np.isfinite(gmm.covariances_).all() and gmm.floored_components_ == []


def test_ubm_on_duplicated_frames_refuses_and_names_the_inputs(rng):
    constant = np.tile(rng.normal(size=6), (300, 1)).astype(np.float32)
    tone = (rng.normal(size=6) + 1e-6 * rng.normal(size=(300, 6))).astype(np.float32)
    with pytest.raises(ParameterError, match=r"collapsed onto the variance floor.*const\.wav, tone\.wav"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateFramesWarning)
            GMMUBM(n_components=8).fit([constant, tone], names=["const.wav", "tone.wav"])
    with pytest.raises(ParameterError, match=r"only 1 distinct frames among 300.*const\.wav"):
        GMMUBM(n_components=8).fit([constant], names=["const.wav"])


def test_a_few_repeated_inputs_warn_with_their_names_and_the_model_is_built(rng):
    speech = [rng.normal(size=(400, 4)).astype(np.float32) for _ in range(3)]
    silence = np.tile(rng.normal(size=4), (50, 1)).astype(np.float32)
    with pytest.warns(DegenerateFramesWarning, match=r"1 of 4 inputs.*dead\.wav \(1 distinct of 50\)"):
        model = GMMUBM(n_components=4, max_iter=3).fit(speech + [silence], names=["a", "b", "c", "dead.wav"])
    assert np.isfinite(model.ubm_.covariances_).all()


def test_constant_dimension_is_refused_everywhere(rng):
    X = rng.normal(size=(500, 4)).astype(np.float32)
    X[:, 2] = 0.25
    with pytest.raises(ParameterError, match=r"dimension\(s\) \[2\] are constant over all 500 frames"):
        GMMUBM(n_components=4).fit(X)
    with pytest.raises(ParameterError, match="constant"):
        SpeakerGMM(n_components=2).enroll(X)
    ubm = GMMUBM(n_components=2, max_iter=2).fit(rng.normal(size=(500, 4)))
    with pytest.raises(ParameterError, match="constant"):
        ubm.enroll(X)


def test_enrollment_from_a_constant_file_is_refused_even_beside_a_noisy_copy(rng):
    ubm = GMMUBM(n_components=2, max_iter=2).fit(rng.normal(size=(500, 3)))
    constant = np.tile(rng.normal(size=3), (200, 1))
    with pytest.raises(ParameterError, match=r"enrollment: 1 of 2 inputs are mostly repeated.*1 distinct of 200"):
        ubm.enroll([constant, constant + rng.normal(0, 0.1, constant.shape)])
    with pytest.raises(ParameterError, match="repeated"):
        SpeakerGMM(n_components=2).enroll([constant, rng.normal(size=(200, 3))])


def test_distinct_frames_and_the_frame_check_report():
    X = np.repeat(np.arange(10.0)[:, None] * [1.0, -2.0], 3, axis=0)
    assert distinct_frames(X) == 10
    with pytest.warns(DegenerateFramesWarning, match="x.wav"):
        report = check_training_frames([X, np.arange(8.0).reshape(4, 2)], n_components=5, names=["x.wav", "y"])
    assert report == {"n_frames": 34, "n_distinct": 14, "repeated": ["x.wav"]}
    with pytest.raises(ParameterError, match="10 distinct frames among 30 cannot support 6 components"):
        check_training_frames([X], n_components=6)


@pytest.mark.parametrize("case", ["one segment per speaker", "constant dimension", "fewer vectors than dims"])
def test_plda_lda_wccn_survive_rank_deficient_scatter(rng, case):
    d = 6
    if case == "one segment per speaker":
        labels = np.array([0, 0, 0, 1, 2, 3, 4, 5, 6])        # six speakers with a single vector
        X = rng.normal(size=(len(labels), d))
    elif case == "constant dimension":
        labels = np.repeat(np.arange(8), 4)
        X = rng.normal(size=(len(labels), d))
        X[:, 3] = 1.0
    else:
        labels = np.repeat(np.arange(2), 2)                    # 4 vectors in 6 dimensions
        X = rng.normal(size=(len(labels), d))
    plda = PLDA(max_iter=5).fit(X, labels)
    assert plda.n_regularised_ >= 1
    for M in (plda.between_, plda.within_):
        assert np.isfinite(M).all() and np.linalg.eigvalsh(M).min() > 0
    assert np.isfinite(plda.score(X[:2], X)).all()
    wccn = WCCN().fit(X, labels)
    assert wccn.regularised_ and np.isfinite(wccn.transform(X)).all()
    lda = LDA(n_components=1).fit(X, labels)
    assert lda.regularised_ and np.isfinite(lda.transform(X)).all()


def test_well_posed_scatter_is_not_reported_as_regularised(rng):
    labels = np.repeat(np.arange(20), 10)
    X = rng.normal(size=(20, 3))[labels] + rng.normal(0, 0.5, (200, 3))
    assert PLDA(max_iter=3).fit(X, labels).n_regularised_ == 0
    assert not WCCN().fit(X, labels).regularised_
    assert not LDA(n_components=2).fit(X, labels).regularised_
