"""Enrollment of a manifest on workers (speakerid.backends._enrollment): the same speaker models anywhere."""

from __future__ import annotations

import numpy as np
import pytest

from speakerid.backends.gmm_ubm import train_ubm
from speakerid.verifier import SpeakerVerifier


@pytest.fixture(scope="module")
def ubm_dir(synth_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("enroll")
    train_ubm(root / "base", synth_corpus.background_csv, n_components=8, max_iter=2, cohort_speakers=0)
    return root


def _models(model_dir):
    verifier = SpeakerVerifier(model_dir)
    return {s: verifier.store.load_speaker(s, "gmm-ubm") for s in verifier.speakers()}


@pytest.mark.parametrize("how", [{"n_jobs": 2}, {"n_jobs": 2, "threads": True}, {"n_jobs": 2, "scheduler": "local"},
                                 {"cache": True}])
def test_speakers_on_workers_get_the_serial_models(synth_corpus, ubm_dir, tmp_path, how, monkeypatch):
    import shutil

    from speakerid.backends import _enrollment

    if not how.get("threads"):   # this small corpus on worker processes all the same (else: on threads)
        monkeypatch.setattr(_enrollment, "MIN_FILES_PER_WORKER", 1)

    serial_dir, other_dir = tmp_path / "serial", tmp_path / "other"
    shutil.copytree(ubm_dir / "base", serial_dir)
    shutil.copytree(ubm_dir / "base", other_dir)
    serial = SpeakerVerifier(serial_dir).enroll_manifest(synth_corpus.enroll_csv)
    options = {k: v for k, v in how.items() if k not in ("cache", "threads")}
    if how.get("cache"):
        options["cache_dir"] = tmp_path / "store"
    other = SpeakerVerifier(other_dir, **options).enroll_manifest(synth_corpus.enroll_csv)
    assert [r["speaker"] for r in serial] == [r["speaker"] for r in other] == sorted(synth_corpus.speakers)
    assert [r["n_frames"] for r in serial] == [r["n_frames"] for r in other]
    a, b = _models(serial_dir), _models(other_dir)
    for speaker in a:
        (header_a, arrays_a), (header_b, arrays_b) = a[speaker], b[speaker]
        if "scheduler" in how:   # Dask workers start OpenBLAS single-threaded: float32 rounding of the features
            np.testing.assert_allclose(arrays_a["means"], arrays_b["means"], rtol=0, atol=1e-5)
        else:
            np.testing.assert_array_equal(arrays_a["means"], arrays_b["means"])
        assert header_a["augment"] == header_b["augment"] and header_a["n_frames"] == header_b["n_frames"]
    if how.get("cache"):      # a rerun with the store reads it: the same models again
        again_dir = tmp_path / "again"
        shutil.copytree(ubm_dir / "base", again_dir)
        SpeakerVerifier(again_dir, cache_dir=tmp_path / "store").enroll_manifest(synth_corpus.enroll_csv)
        for speaker, (_, arrays) in _models(again_dir).items():
            np.testing.assert_array_equal(arrays["means"], a[speaker][1]["means"])


def test_workers_only_when_they_pay_for_themselves():
    from speakerid.backends._enrollment import MIN_FILES_PER_WORKER, on_workers

    few = [(f"s{i}", ["a.wav"] * 3, None) for i in range(10)]                      # 30 files
    many = [(f"s{i}", ["a.wav"] * 3, None) for i in range(MIN_FILES_PER_WORKER)]  # 3 files a speaker
    assert not on_workers(few, 2, None) and on_workers(many, 2, None)
    assert not on_workers(many, 1, None)                   # one worker: in this process
    assert on_workers(few, 2, "local")                      # a Dask scheduler asked for: always
    assert not on_workers(few[:1], 2, "local")              # one speaker: nothing to spread
