"""The file -> frames pipeline on workers: the same frames and the same warnings as in this process."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf

from speakerid.exceptions import BandwidthWarning
from speakerid.features.config import FeatureConfig
from speakerid.features.pipeline import many_features


@pytest.fixture(scope="module")
def narrowband_files(synth_corpus, tmp_path_factory):
    """Six of the synthetic corpus's utterances written again at 8 kHz (a 16-kHz model upsamples them)."""
    from scipy.signal import resample_poly

    from speakerid.data.manifests import read_manifest

    root = tmp_path_factory.mktemp("narrowband")
    paths = []
    for i, path in enumerate(read_manifest(synth_corpus.enroll_csv)["path"][:6]):
        audio, rate = sf.read(path, dtype="float64")
        out = root / f"utt{i}.wav"
        sf.write(out, resample_poly(audio, 8000, rate), 8000, subtype="PCM_16")
        paths.append(str(out))
    return paths


@pytest.mark.parametrize("n_jobs,processes", [(1, False), (2, False), (2, True)])
def test_every_files_warning_reaches_the_caller(narrowband_files, n_jobs, processes, monkeypatch):
    from speakerid.features import pipeline

    if processes:     # this small list on worker processes all the same (else: threads of this process)
        monkeypatch.setattr(pipeline, "MIN_FILES_PER_PROCESS", 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = many_features(narrowband_files, FeatureConfig(), n_jobs=n_jobs, n_augment=1, random_state=3)
    bandwidth = [str(w.message) for w in caught if issubclass(w.category, BandwidthWarning)]
    assert sorted(m.split(": ")[0] for m in bandwidth) == sorted(narrowband_files)
    assert all("8000 Hz audio upsampled to the model's 16000 Hz" in m for m in bandwidth)
    assert [len(sessions) for sessions, _ in results] == [2] * len(narrowband_files)


def test_workers_give_the_serial_frames_in_order(narrowband_files, monkeypatch):
    from speakerid.features import pipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BandwidthWarning)
        serial = many_features(narrowband_files, FeatureConfig(), n_jobs=1, n_augment=1, random_state=3)
        threads = many_features(narrowband_files, FeatureConfig(), n_jobs=2, n_augment=1, random_state=3)
        monkeypatch.setattr(pipeline, "MIN_FILES_PER_PROCESS", 1)
        processes = many_features(narrowband_files, FeatureConfig(), n_jobs=2, n_augment=1, random_state=3)
    for parallel in (threads, processes):
        for (a, seconds_a), (b, seconds_b) in zip(serial, parallel):
            assert seconds_a == seconds_b
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x, y)
