"""LDA, WCCN, length normalisation and two-covariance PLDA (speakerid.models.plda)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from speakerid.exceptions import NotFittedError, ParameterError
from speakerid.models.plda import LDA, PLDA, WCCN, class_scatter, cosine_scores, length_normalize


def _spd(rng, d, scale=1.0):
    A = rng.normal(size=(d, d))
    return scale * (A @ A.T / d + 0.5 * np.eye(d))


def _labelled(rng, n_classes=30, per_class=6, d=5):
    centres = rng.normal(0, 2.0, (n_classes, d))
    labels = np.repeat(np.arange(n_classes), per_class)
    X = centres[labels] + rng.normal(size=(len(labels), d)) @ _spd(rng, d, 0.3)
    return X, labels


def test_plda_llr_matches_direct_gaussian_computation(rng):
    d = 4
    B, W, mu = _spd(rng, d, 2.0), _spd(rng, d, 0.5), rng.normal(size=d)
    plda = PLDA.from_params(mu, B, W)
    T = B + W
    joint = multivariate_normal(np.r_[mu, mu], np.block([[T, B], [B, T]]))
    single = multivariate_normal(mu, T)
    x, y = rng.normal(size=(5, d)) * 2, rng.normal(size=(7, d)) * 2
    expected = np.array([[joint.logpdf(np.r_[a, b]) - single.logpdf(a) - single.logpdf(b) for b in y] for a in x])
    np.testing.assert_allclose(plda.score(x, y), expected, rtol=1e-8, atol=1e-8)


def test_plda_multi_enrollment_is_the_exact_posterior_predictive(rng):
    d = 3
    B, W, mu = _spd(rng, d), _spd(rng, d, 0.3), rng.normal(size=d)
    plda = PLDA.from_params(mu, B, W)
    e1, e2, t = rng.normal(size=(3, d))
    T = B + W
    # [e1, e2, t] from one speaker, against [e1, e2] from one speaker and t from another
    same = multivariate_normal(np.tile(mu, 3), np.block([[T, B, B], [B, T, B], [B, B, T]]))
    enrol = multivariate_normal(np.tile(mu, 2), np.block([[T, B], [B, T]]))
    expected = same.logpdf(np.r_[e1, e2, t]) - enrol.logpdf(np.r_[e1, e2]) - multivariate_normal(mu, T).logpdf(t)
    got = plda.score(((e1 + e2) / 2)[None], t[None], counts=[2])[0, 0]
    assert got == pytest.approx(expected, rel=1e-8)


def test_plda_em_recovers_planted_covariances_and_does_not_overfit(rng):
    d, n_classes, per_class = 3, 400, 8
    B, W = _spd(rng, d, 2.0), _spd(rng, d, 0.4)
    y = rng.multivariate_normal(np.zeros(d), B, n_classes)
    labels = np.repeat(np.arange(n_classes), per_class)
    X = y[labels] + rng.multivariate_normal(np.zeros(d), W, len(labels))
    plda = PLDA(max_iter=20).fit(X, labels)
    # against the scatter of the planted speaker variables (what an oracle knowing them would estimate)
    np.testing.assert_allclose(plda.between_, np.cov(y.T, bias=True), atol=0.05 * np.abs(B).max())
    np.testing.assert_allclose(plda.within_, W, atol=0.1 * np.abs(W).max())
    same = plda.score(X[:1], X[1:per_class])
    other = plda.score(X[:1], X[per_class::per_class])
    assert same.mean() > 0 > np.median(other)


def test_lda_projected_within_is_identity_and_between_diagonal(rng):
    X, labels = _labelled(rng)
    lda = LDA(n_components=3).fit(X, labels)
    Z = lda.transform(X)
    _, _, within, between = class_scatter(Z, labels, labels.max() + 1)
    np.testing.assert_allclose(within, np.eye(3), atol=1e-4)
    np.testing.assert_allclose(between, np.diag(lda.eigenvalues_), atol=1e-4)
    assert np.all(np.diff(lda.eigenvalues_) <= 0) and lda.eigenvalues_[-1] > 0


def test_lda_keeps_the_most_discriminant_direction(rng):
    labels = np.repeat(np.arange(20), 10)
    X = rng.normal(size=(200, 3))
    X[:, 1] += 5.0 * rng.normal(size=20)[labels]          # only dimension 1 separates the classes
    direction = LDA(n_components=1).fit(X, labels).components_[:, 0]
    assert abs(direction[1]) / np.linalg.norm(direction) > 0.99


def test_lda_dimension_is_checked(rng):
    X, labels = _labelled(rng, n_classes=4)
    with pytest.raises(ParameterError, match="n_components"):
        LDA(n_components=4).fit(X, labels)
    with pytest.raises(NotFittedError):
        LDA().transform(X)


def test_wccn_makes_the_average_within_class_covariance_identity(rng):
    X, labels = _labelled(rng, per_class=5)
    Z = WCCN(reg=0).fit(X, labels).transform(X)
    covs = [np.cov(Z[labels == s].T, bias=True) for s in np.unique(labels)]
    np.testing.assert_allclose(np.mean(covs, axis=0), np.eye(X.shape[1]), atol=1e-8)


def test_length_normalize_unit_norm_and_scale_invariance(rng):
    X = rng.normal(size=(10, 4))
    Z = length_normalize(X)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0)
    np.testing.assert_allclose(length_normalize(3.5 * X), Z)
    np.testing.assert_allclose(cosine_scores(X, 2 * X).diagonal(), 1.0)
    assert np.all(length_normalize(np.zeros((1, 3))) == 0)


def test_bad_inputs(rng):
    with pytest.raises(ParameterError, match="2 classes"):
        PLDA().fit(rng.normal(size=(5, 2)), np.zeros(5))
    with pytest.raises(ParameterError, match="one entry per row"):
        WCCN().fit(rng.normal(size=(5, 2)), np.arange(4))
    with pytest.raises(ParameterError, match="shapes disagree"):
        PLDA.from_params(np.zeros(2), np.eye(3), np.eye(2))
    with pytest.raises(NotFittedError):
        PLDA().score(np.zeros((1, 2)), np.zeros((1, 2)))
