"""The pool-adjacent-violators fit behind minCllr (:mod:`speakerid.evaluation._sweep`) against scikit-learn's."""

import numpy as np
import pytest
from sklearn.isotonic import isotonic_regression

from speakerid.evaluation import metrics
from speakerid.evaluation._sweep import _isotonic


@pytest.mark.parametrize("n", [1, 2, 3, 10, 257, 5000])
@pytest.mark.parametrize("kind", ["random", "decreasing", "increasing", "constant", "shares"])
def test_isotonic_equals_scikit_learn(n, kind):
    rng = np.random.default_rng(n)
    values = {"random": rng.random(n), "decreasing": np.linspace(1, 0, n), "increasing": np.linspace(0, 1, n),
              "constant": np.full(n, 0.3), "shares": rng.integers(0, 4, n) / 3.0}[kind]
    weights = rng.integers(1, 6, n).astype(float)
    np.testing.assert_allclose(_isotonic(values, weights),
                               isotonic_regression(values, sample_weight=weights, increasing=True), atol=1e-12)


def test_isotonic_is_non_decreasing_and_keeps_the_weighted_mean():
    rng = np.random.default_rng(1)
    values, weights = rng.random(1000), rng.random(1000) + 0.1
    fit = _isotonic(values, weights)
    assert np.all(np.diff(fit) >= 0)
    assert np.isclose(np.average(fit, weights=weights), np.average(values, weights=weights))


def test_min_cllr_of_separable_scores_is_zero_and_of_uninformative_scores_is_one():
    labels = np.array([0] * 50 + [1] * 50)
    assert metrics.min_cllr(np.arange(100.0), labels) == pytest.approx(0.0, abs=1e-12)
    assert metrics.min_cllr(np.zeros(100), labels) == pytest.approx(1.0)
