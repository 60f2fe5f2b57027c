"""The GMM kernels' own k-means++ seeding against scikit-learn's (the draws it reproduces)."""

from __future__ import annotations

import numpy as np
import pytest

from speakerid.models._gmm_math import kmeans_plusplus


def _family(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "mfcc-like":      # correlated dims of unequal scale, like cepstra with deltas
        X = rng.normal(size=(5000, 60)) * rng.uniform(0.2, 4.0, 60) + 3 * rng.normal(size=(5000, 1))
        return X.astype(np.float32)
    if kind == "clusters":       # well separated blobs: the seeds must land in different ones
        centres = rng.normal(scale=20.0, size=(12, 5))
        return (centres[rng.integers(0, 12, 3000)] + rng.normal(size=(3000, 5))).astype(np.float32)
    if kind == "duplicates":     # many identical rows (silence frames after CMVN): ties in every distance
        base = rng.normal(size=(40, 3))
        return base[rng.integers(0, 40, 2000)].astype(np.float32)
    if kind == "offset":         # a large common offset: float32 cancellation in |x|^2 - 2xc + |c|^2
        return (1000.0 + rng.normal(size=(3000, 8))).astype(np.float32)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["mfcc-like", "clusters", "duplicates", "offset"])
@pytest.mark.parametrize("n_clusters,seed", [(1, 0), (8, 1), (64, 2), (40, 3)])
def test_same_rows_as_scikit_learn(kind, n_clusters, seed):
    from sklearn.cluster import kmeans_plusplus as reference

    X = _family(kind, seed)
    expected = reference(X, n_clusters, random_state=np.random.RandomState(seed))[1]
    got = kmeans_plusplus(X, n_clusters, np.random.RandomState(seed))
    assert got.dtype.kind == "i" and got.shape == (n_clusters,)
    np.testing.assert_array_equal(got, expected)


def test_seeds_spread_over_separated_clusters():
    rng = np.random.default_rng(7)
    centres = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
    labels = rng.integers(0, 4, 4000)
    X = (centres[labels] + rng.normal(size=(4000, 2))).astype(np.float32)
    picked = kmeans_plusplus(X, 4, np.random.RandomState(0))
    assert sorted(labels[picked]) == [0, 1, 2, 3]
    assert len(set(picked.tolist())) == 4
