"""DiagGMM (chunked float32 EM), MAP adaptation and LLR scoring, checked against scikit-learn and float64 references."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from speakerid.exceptions import NotFittedError, ParameterError
from speakerid.models import llr as llr_module
from speakerid.models.gmm import DiagGMM, map_adapt
from speakerid.models.llr import llr_scores


def mixture_data(rng, n=3000, d=4, k=6, spread=4.0):
    """Frames from a random diagonal mixture with well-separated clusters (float32)."""
    centers = rng.normal(scale=spread, size=(k, d))
    scales = rng.uniform(0.5, 1.5, size=(k, d))
    labels = rng.integers(0, k, size=n)
    return (centers[labels] + rng.normal(size=(n, d)) * scales[labels]).astype(np.float32), labels


def reference_llr(ubm, spk, X, top_c=None):
    """float64 reference: per-component weighted log-likelihoods, top-C by sorting, log-sum-exp."""
    def comp_loglik(g):
        X64 = X.astype(np.float64)
        diff = X64[:, None, :] - g.means_[None]
        return (np.log(g.weights_) - 0.5 * np.sum(np.log(2 * np.pi * g.covariances_), axis=1)
                - 0.5 * np.sum(diff ** 2 / g.covariances_[None], axis=2))

    lu, ls = comp_loglik(ubm), comp_loglik(spk)
    if top_c is not None:
        idx = np.argsort(-lu, axis=1)[:, :top_c]
        lu, ls = np.take_along_axis(lu, idx, 1), np.take_along_axis(ls, idx, 1)
    return float(np.mean(logsumexp(ls, axis=1) - logsumexp(lu, axis=1)))


@pytest.fixture
def data(rng):
    return mixture_data(rng)


@pytest.fixture
def ubm(data):
    return DiagGMM(n_components=8, max_iter=30, random_state=0).fit(data[0])


# ---------------------------------------------------------------------------------------------- EM vs sklearn
@pytest.mark.parametrize("n_iter", [1, 5, 15])
def test_em_matches_sklearn_from_same_init(data, rng, n_iter):
    X = data[0]
    k = 6
    means0 = X[rng.choice(len(X), k, replace=False)].astype(np.float64)
    weights0, vars0 = np.full(k, 1.0 / k), np.ones((k, X.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = GaussianMixture(k, covariance_type="diag", reg_covar=1e-6, max_iter=n_iter, tol=0.0, init_params="random",
                             weights_init=weights0, means_init=means0, precisions_init=1.0 / vars0,
                             random_state=0).fit(X.astype(np.float64))
    ours = DiagGMM(k, max_iter=n_iter, tol=0.0, var_floor=0.0, reg_covar=1e-6, weights_init=weights0,
                   means_init=means0, variances_init=vars0).fit(X)
    assert ours.n_iter_ == n_iter and len(ours.log_likelihood_history_) == n_iter
    assert ours.score(X) == pytest.approx(sk.score(X), rel=1e-3)
    assert ours.score(X) == pytest.approx(sk.score(X), abs=1e-4)           # in fact much closer
    assert ours.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-3)
    np.testing.assert_allclose(ours.means_, sk.means_, atol=1e-3)
    np.testing.assert_allclose(ours.covariances_, sk.covariances_, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(ours.weights_, sk.weights_, atol=1e-4)


def test_score_samples_and_posteriors_match_sklearn(data):
    X = data[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = GaussianMixture(6, covariance_type="diag", max_iter=5, random_state=0).fit(X)
    ours = DiagGMM.from_params(sk.weights_, sk.means_, sk.covariances_)
    expected = sk.score_samples(X.astype(np.float64))
    got = ours.score_samples(X)
    assert got.dtype == np.float64 and got.shape == (len(X),)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.score_samples(X.astype(np.float64)), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), atol=1e-4)
    assert ours.score(X) == pytest.approx(sk.score(X), rel=1e-5)
    assert (ours.predict(X) == sk.predict(X)).mean() > 0.999


def test_em_increases_likelihood_and_converges(data):
    X = data[0]
    g = DiagGMM(8, max_iter=200, tol=1e-4, random_state=0).fit(X)
    hist = np.array(g.log_likelihood_history_)
    assert g.converged_ and g.n_iter_ < 200 and len(hist) == g.n_iter_
    assert np.all(np.diff(hist) > -1e-4)                                   # EM is monotone (float32 noise aside)
    assert g.lower_bound_ == hist[-1]
    assert g.weights_.sum() == pytest.approx(1.0) and g.n_features_in_ == X.shape[1]
    assert g.means_.shape == (8, 4) and g.covariances_.shape == (8, 4) and np.all(g.covariances_ > 0)


@pytest.mark.parametrize("init", ["kmeans++", "kmeans", "random"])
def test_inits_give_a_good_fit(data, init):
    X = data[0]
    g = DiagGMM(6, max_iter=50, init=init, random_state=0).fit(X)
    single = DiagGMM(1, max_iter=5, random_state=0).fit(X)
    assert g.score(X) > single.score(X) + 1.0


def test_random_state_determinism(data):
    X = data[0]
    a = DiagGMM(8, max_iter=5, random_state=3).fit(X)
    b = DiagGMM(8, max_iter=5, random_state=3).fit(X)
    c = DiagGMM(8, max_iter=5, random_state=4).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.covariances_, b.covariances_)
    assert a.log_likelihood_history_ == b.log_likelihood_history_
    assert not np.array_equal(a.means_, c.means_)


def test_chunking_and_threads_do_not_change_results(data):
    X = data[0]
    fits = [DiagGMM(8, max_iter=10, random_state=0, chunk_size=cs, n_jobs=nj).fit(X)
            for cs, nj in ((64, 1), (100_000, 1), (257, 2), (None, -1))]
    for g in fits[1:]:      # float32 sums differ in rounding only; EM carries that through 10 iterations
        np.testing.assert_allclose(g.means_, fits[0].means_, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(g.covariances_, fits[0].covariances_, rtol=1e-3)
        np.testing.assert_allclose(g.log_likelihood_history_, fits[0].log_likelihood_history_, rtol=1e-5)
    g = fits[0]
    small = g.score_samples(X)
    g.chunk_size = 5000
    np.testing.assert_allclose(g.score_samples(X), small, rtol=1e-5, atol=1e-5)


def test_float64_input_matches_float32(data):
    X = data[0]
    a = DiagGMM(6, max_iter=10, random_state=0).fit(X)
    b = DiagGMM(6, max_iter=10, random_state=0).fit(X.astype(np.float64))
    np.testing.assert_allclose(a.means_, b.means_, atol=1e-4)


def test_empty_component_is_reseeded_by_splitting(data):
    X = data[0]
    means0 = X[:6].astype(np.float64).copy()
    means0[0] = 1e4                                          # a component no frame will ever choose
    g = DiagGMM(6, max_iter=10, tol=0.0, means_init=means0).fit(X)
    assert g.n_reseeded_ >= 1
    assert np.all(np.abs(g.means_) < 100) and np.all(np.isfinite(g.covariances_))
    assert g.weights_.sum() == pytest.approx(1.0) and np.all(g.weights_ > 0)


def test_duplicates_and_too_many_components_stay_finite(rng):
    X = np.repeat(rng.normal(size=(5, 3)), 60, axis=0).astype(np.float32)   # 5 distinct points, 10 components
    g = DiagGMM(10, max_iter=20, random_state=0).fit(X)
    for arr in (g.weights_, g.means_, g.covariances_):
        assert np.all(np.isfinite(arr))
    assert np.all(g.covariances_ > 0) and g.weights_.sum() == pytest.approx(1.0)
    assert np.all(np.isfinite(g.score_samples(X)))
    const = DiagGMM(2, max_iter=3, random_state=0).fit(np.ones((50, 2)))   # zero data variance: absolute floor
    assert np.all(const.covariances_ > 0) and np.isfinite(const.score(np.ones((3, 2))))


def test_variance_floor_is_relative_to_data_variance(rng):
    X = np.column_stack([rng.normal(size=2000), rng.integers(0, 3, 2000) * 10.0]).astype(np.float32)
    g = DiagGMM(6, max_iter=20, var_floor=1e-2, reg_covar=0.0, random_state=0).fit(X)
    assert np.all(g.covariances_ >= 1e-2 * X.var(axis=0) * (1 - 1e-6))


def test_verbose_logs_every_iteration(data, capsys):
    DiagGMM(4, max_iter=3, tol=0.0, random_state=0, verbose=1).fit(data[0])
    err = capsys.readouterr().err
    assert err.count("DiagGMM EM iteration") == 3 and "avg log-likelihood" in err


# ---------------------------------------------------------------------------------------------- from_params
def test_from_params_round_trip(ubm, data):
    X = data[0]
    g = DiagGMM.from_params(ubm.weights_.astype(np.float32), ubm.means_, ubm.covariances_, chunk_size=100)
    assert g.n_components == 8 and g.chunk_size == 100 and g.n_features_in_ == 4
    np.testing.assert_allclose(g.weights_, ubm.weights_, rtol=1e-6)
    np.testing.assert_array_equal(g.means_, ubm.means_)
    np.testing.assert_allclose(g.score_samples(X), ubm.score_samples(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("w, m, v, match", [
    ([0.5, 0.5], [[0.0], [1.0]], [[1.0], [-1.0]], "variances must be > 0"),
    ([0.5, 0.6], [[0.0], [1.0]], [[1.0], [1.0]], "summing to 1"),
    ([1.0], [[0.0], [1.0]], [[1.0], [1.0]], "inconsistent GMM parameter shapes"),
    ([0.5, 0.5], [[0.0], [np.nan]], [[1.0], [1.0]], "NaN"),
])
def test_from_params_rejects_bad_parameters(w, m, v, match):
    with pytest.raises(ParameterError, match=match):
        DiagGMM.from_params(w, m, v)


# ---------------------------------------------------------------------------------------------- MAP adaptation
def test_map_with_huge_relevance_factor_returns_the_ubm(ubm, data):
    spk = map_adapt(ubm, data[0][:500], relevance_factor=1e12, adapt=("weights", "means", "variances"))
    np.testing.assert_allclose(spk.means_, ubm.means_, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(spk.weights_, ubm.weights_, rtol=1e-5)
    np.testing.assert_allclose(spk.covariances_, ubm.covariances_, rtol=1e-5)
    assert spk is not ubm and spk.n_components == ubm.n_components
    inf = map_adapt(ubm, data[0][:500], relevance_factor=np.inf, adapt="means")
    np.testing.assert_allclose(inf.means_, ubm.means_, atol=1e-12)


def test_map_follows_reynolds_formulas(rng):
    ubm = DiagGMM.from_params([0.5, 0.5], [[-3.0, 0.0], [3.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]])
    X = rng.normal([4.0, 1.0], 0.5, size=(400, 2))
    r = 4.0
    post = ubm.predict_proba(X)
    nk = post.sum(0)
    alpha = (nk / (nk + r))[:, None]
    ex = post.T @ X / nk[:, None]
    ex2 = post.T @ X ** 2 / nk[:, None]
    spk = map_adapt(ubm, X, relevance_factor=r, adapt=("weights", "means", "variances"))
    mu = alpha * ex + (1 - alpha) * ubm.means_
    w = alpha[:, 0] * nk / len(X) + (1 - alpha[:, 0]) * ubm.weights_
    var = alpha * ex2 + (1 - alpha) * (ubm.covariances_ + ubm.means_ ** 2) - mu ** 2
    np.testing.assert_allclose(spk.means_, mu, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(spk.weights_, w / w.sum(), rtol=1e-4)
    np.testing.assert_allclose(spk.covariances_, var, rtol=1e-4)
    assert spk.weights_.sum() == pytest.approx(1.0)
    # component 2 moved (almost) all the way to the data; component 1, which saw no frames, stayed put
    assert abs(spk.means_[1, 0] - X[:, 0].mean()) < 0.05 and spk.means_[0, 0] == pytest.approx(-3.0, abs=1e-3)
    means_only = map_adapt(ubm, X, relevance_factor=r)
    np.testing.assert_array_equal(means_only.weights_, ubm.weights_)
    np.testing.assert_array_equal(means_only.covariances_, ubm.covariances_)
    np.testing.assert_allclose(means_only.means_, mu, rtol=1e-4, atol=1e-5)


def test_map_small_relevance_moves_means_towards_data(ubm, data):
    X, labels = data
    frames = X[labels == 2] + 0.5                   # a "speaker" near one background cluster
    near = np.argmax(ubm.predict_proba(frames).sum(0))
    d_ubm = np.linalg.norm(ubm.means_[near] - frames.mean(0))
    d_small = np.linalg.norm(map_adapt(ubm, frames, relevance_factor=1.0).means_[near] - frames.mean(0))
    d_large = np.linalg.norm(map_adapt(ubm, frames, relevance_factor=1e4).means_[near] - frames.mean(0))
    assert d_small < d_large < d_ubm


def test_map_adapted_variances_are_floored():
    ubm = DiagGMM.from_params([0.5, 0.5], [[0.0], [5.0]], [[1.0], [1.0]])
    spk = map_adapt(ubm, np.full((1000, 1), 5.0), relevance_factor=0.01, adapt=("means", "variances"))
    floor = ubm.var_floor * (0.5 * (1 + 0) + 0.5 * (1 + 25) - 2.5 ** 2)
    assert spk.covariances_[1, 0] == pytest.approx(floor, rel=1e-6)


# ---------------------------------------------------------------------------------------------- LLR scoring
@pytest.fixture
def speakers(ubm, data):
    X, labels = data
    return [map_adapt(ubm, X[labels == 1][:300]),
            map_adapt(ubm, X[labels == 4][:300], relevance_factor=4.0, adapt=("weights", "means", "variances")),
            ubm]


def test_llr_exact_matches_float64_reference(ubm, speakers, data):
    X = data[0][-500:]
    got = llr_scores(ubm, speakers, X)
    assert got.dtype == np.float64 and got.shape == (3,)
    expected = [reference_llr(ubm, s, X) for s in speakers]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # the difference of two float32 average log-likelihoods is only good to ~1e-5 absolute
    np.testing.assert_allclose(got[:2], [s.score(X) - ubm.score(X) for s in speakers[:2]], atol=1e-4)
    assert abs(got[2]) < 1e-6                                                  # the UBM against itself


def test_llr_top_c_equal_to_k_is_exact(ubm, speakers, data):
    X = data[0][-500:]
    np.testing.assert_allclose(llr_scores(ubm, speakers, X, top_c=8), llr_scores(ubm, speakers, X),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(llr_scores(ubm, speakers, X, top_c=100), llr_scores(ubm, speakers, X),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("top_c", [1, 3, 5])
@pytest.mark.parametrize("gather_ratio", [0, 10_000])                         # force gathering / the full GEMM
def test_llr_top_c_matches_reference(ubm, speakers, data, top_c, gather_ratio, monkeypatch):
    monkeypatch.setattr(llr_module, "_GATHER_RATIO", gather_ratio)
    X = data[0][-500:]
    got = llr_scores(ubm, speakers, X, top_c=top_c)
    np.testing.assert_allclose(got, [reference_llr(ubm, s, X, top_c) for s in speakers], rtol=1e-5, atol=1e-6)
    assert abs(got[2]) < 1e-6


def test_llr_top5_close_to_exact_on_separated_data(ubm, speakers, data):
    X = data[0][-500:]
    np.testing.assert_allclose(llr_scores(ubm, speakers, X, top_c=5), llr_scores(ubm, speakers, X), atol=1e-3)


def test_llr_argpartition_path_and_chunking(rng):
    X, _ = mixture_data(rng, n=1500, d=3, k=10)
    ubm = DiagGMM(40, max_iter=5, random_state=0, chunk_size=128).fit(X)
    spk = map_adapt(ubm, X[:200], adapt=("means", "weights"))
    got = llr_scores(ubm, [spk], X[-300:], top_c=20)                           # > 16: np.argpartition
    assert got[0] == pytest.approx(reference_llr(ubm, spk, X[-300:], 20), rel=1e-5, abs=1e-6)
    big = DiagGMM.from_params(ubm.weights_, ubm.means_, ubm.covariances_, chunk_size=100_000)
    for c in (None, 3):
        assert llr_scores(big, [spk], X, top_c=c)[0] == pytest.approx(llr_scores(ubm, [spk], X, top_c=c)[0],
                                                                      rel=1e-5, abs=1e-6)


def test_llr_many_speakers_equal_one_at_a_time(ubm, speakers, data):
    X = data[0][-300:]
    together = llr_scores(ubm, speakers, X, top_c=3)
    alone = [llr_scores(ubm, [s], X, top_c=3)[0] for s in speakers]
    np.testing.assert_allclose(together, alone, rtol=1e-6, atol=1e-7)
    assert llr_scores(ubm, [], X).shape == (0,)


def test_llr_prefers_the_true_speaker(ubm, data):
    X, labels = data
    shift = np.float32(0.7)                         # speakers deviate from the background clusters
    a = map_adapt(ubm, X[labels == 1][:200] + shift)
    b = map_adapt(ubm, X[labels == 3][:200] - shift)
    for c in (None, 5):
        scores = llr_scores(ubm, [a, b], X[labels == 1][200:400] + shift, top_c=c)
        assert scores[0] > 0.1 and scores[0] > scores[1] + 0.1


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("params, name", [
    ({"n_components": 0}, "n_components"), ({"n_components": 2.5}, "n_components"), ({"max_iter": -1}, "max_iter"),
    ({"tol": -1.0}, "tol"), ({"var_floor": 1.5}, "var_floor"), ({"reg_covar": -1e-6}, "reg_covar"),
    ({"init": "spectral"}, "init"), ({"chunk_size": 0}, "chunk_size"), ({"n_jobs": 0}, "n_jobs"),
    ({"tol": "small"}, "tol"),
])
def test_bad_hyper_parameters(data, params, name):
    with pytest.raises(ParameterError, match=name):
        DiagGMM(**{"n_components": 2, **params}).fit(data[0])


def test_bad_inputs(data):
    X = data[0]
    with pytest.raises(ParameterError, match="2-D"):
        DiagGMM(2).fit(X[:, 0])
    bad = X[:100].copy()
    bad[7, 1] = np.nan
    with pytest.raises(ParameterError, match="NaN or infinite"):
        DiagGMM(2).fit(bad)
    bad[7, 1] = np.inf
    with pytest.raises(ParameterError, match="NaN or infinite"):
        DiagGMM(2).fit(bad)
    with pytest.raises(ParameterError, match=r"5 frames cannot fit 10 components.*lower n_components"):
        DiagGMM(10).fit(X[:5])
    with pytest.raises(ParameterError, match="empty"):
        DiagGMM(2).fit(np.zeros((0, 3)))
    with pytest.raises(ParameterError, match="means_init"):
        DiagGMM(2, means_init=np.zeros((3, 4))).fit(X)
    with pytest.raises(ParameterError, match="numeric"):
        DiagGMM(2).fit(np.array([["a", "b"], ["c", "d"]]))


def test_unfitted_and_mismatched_models(ubm, data):
    X = data[0]
    for method in ("score_samples", "score", "predict_proba"):
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(DiagGMM(2), method)(X)
    with pytest.raises(NotFittedError):
        map_adapt(DiagGMM(2), X)
    with pytest.raises(NotFittedError):
        llr_scores(DiagGMM(2), [ubm], X)
    with pytest.raises(ParameterError, match="5 columns.*trained on 4"):
        ubm.score(np.zeros((3, 5)))
    with pytest.raises(ParameterError, match="adapt"):
        map_adapt(ubm, X, adapt=("covariances",))
    with pytest.raises(ParameterError, match="relevance_factor"):
        map_adapt(ubm, X, relevance_factor=0)
    with pytest.raises(ParameterError, match="top_c"):
        llr_scores(ubm, [ubm], X, top_c=-1)
    other = DiagGMM.from_params(np.full(2, 0.5), np.zeros((2, 4)), np.ones((2, 4)))
    with pytest.raises(ParameterError, match="differs from the UBM"):
        llr_scores(ubm, [other], X)
    with pytest.raises(ParameterError, match="DiagGMM"):
        llr_scores(ubm, [{"means": ubm.means_}], X)
