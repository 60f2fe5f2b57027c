"""GMM-UBM and per-speaker GMM estimators on arrays (no files)."""

from __future__ import annotations

import numpy as np
import pytest

from speakerid.exceptions import ModelFormatError, NotFittedError, ParameterError
from speakerid.models.gmm_ubm import GMMUBM
from speakerid.models.speaker_gmm import SpeakerGMM


def _speaker_frames(rng, centre, n=600, dims=4):
    return (rng.normal(size=(n, dims)) * 0.8 + centre).astype(np.float32)


@pytest.fixture
def fitted(rng):
    centres = rng.normal(scale=3.0, size=(6, 4))
    background = np.concatenate([_speaker_frames(rng, c) for c in centres])
    return GMMUBM(n_components=8, max_iter=8, random_state=0).fit(background), centres


def test_true_speaker_scores_higher(fitted, rng):
    model, centres = fitted
    alice, bob = model.enroll(_speaker_frames(rng, centres[0] + 0.5)), model.enroll(_speaker_frames(rng, centres[3]))
    test = _speaker_frames(rng, centres[0] + 0.5, n=300)
    scores = model.score([alice, bob], test)
    assert scores.shape == (2,) and scores[0] > 0 >= scores[1]  # bob only moved components far from here


def test_top_c_equal_to_k_is_exact(fitted, rng):
    model, centres = fitted
    speaker = model.enroll(_speaker_frames(rng, centres[1]))
    test = _speaker_frames(rng, centres[1], n=200)
    exact = model.score([speaker], test, top_c=None)
    assert np.allclose(model.score([speaker], test, top_c=8), exact, rtol=1e-5, atol=1e-6)
    assert np.allclose(model.score([speaker], test, top_c=5), exact, rtol=0.05, atol=0.02)


def test_huge_relevance_factor_keeps_the_ubm(fitted, rng):
    model, centres = fitted
    model = GMMUBM(**{**model.get_params(), "relevance_factor": 1e12, "adapt": ("means", "weights", "variances")})
    model.ubm_, model.n_features_in_ = fitted[0].ubm_, 4
    speaker = model.enroll(_speaker_frames(rng, centres[2]))
    assert np.allclose(speaker["means"], model.ubm_.means_, atol=1e-5)
    assert np.allclose(speaker["weights"], model.ubm_.weights_, atol=1e-6)
    assert np.allclose(speaker["variances"], model.ubm_.covariances_, rtol=1e-4)
    assert np.allclose(model.score([speaker], _speaker_frames(rng, centres[2], n=100), top_c=None), 0.0, atol=1e-5)


def test_arrays_round_trip_gives_identical_scores(fitted, rng):
    model, centres = fitted
    speaker = model.enroll(_speaker_frames(rng, centres[4]))
    again = GMMUBM.from_arrays(model.to_arrays(), model.get_params())
    test = _speaker_frames(rng, centres[4], n=150)
    assert again.ubm_hash_ == model.ubm_hash_
    assert np.array_equal(again.score([speaker], test), model.score([speaker], test))


def test_errors(fitted, rng):
    with pytest.raises(NotFittedError, match="train-ubm"):
        GMMUBM().enroll(np.zeros((10, 4)))
    with pytest.raises(ParameterError, match="adapt"):
        GMMUBM(adapt="covariance").fit(rng.normal(size=(100, 2)))
    model, _ = fitted
    with pytest.raises(ParameterError, match="columns"):
        model.score([model.enroll(rng.normal(size=(50, 4)))], rng.normal(size=(20, 3)))
    with pytest.raises(ModelFormatError, match="shape"):
        model.score([{"means": np.zeros((3, 4), np.float32)}], rng.normal(size=(20, 4)))
    with pytest.raises(ModelFormatError, match="lacks"):
        GMMUBM.from_arrays({"means": np.zeros((2, 2))}, {})


def test_speaker_gmm_baseline(rng):
    centres = rng.normal(scale=3.0, size=(2, 3))
    estimator = SpeakerGMM(n_components=4, random_state=0)
    a = estimator.enroll(_speaker_frames(rng, centres[0], dims=3))
    b = estimator.enroll(_speaker_frames(rng, centres[1], dims=3))
    scores = estimator.score([a, b], _speaker_frames(rng, centres[0], n=200, dims=3))
    assert scores[0] > scores[1]
    ubm = GMMUBM(n_components=4, random_state=0).fit(np.concatenate([_speaker_frames(rng, c, dims=3)
                                                                      for c in centres])).ubm_
    normalised = SpeakerGMM(n_components=4, random_state=0, normalize="ubm").score([a, b],
                                                                                   _speaker_frames(rng, centres[0],
                                                                                                   n=200, dims=3),
                                                                                   ubm=ubm)
    assert normalised[0] > normalised[1]
