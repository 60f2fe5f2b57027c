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


# ------------------------------------------------------------------ an enrolled speaker: replace, add, or refuse
def _enroll_files(synth_corpus):
    import pandas as pd

    frame = pd.read_csv(synth_corpus.enroll_csv, dtype=str)
    files = [str(synth_corpus.enroll_csv.parent / p) for p in frame.loc[frame["speaker"] == frame["speaker"][0], "path"]]
    test = pd.read_csv(synth_corpus.trials_csv, dtype=str)["path"].map(lambda p: str(synth_corpus.trials_csv.parent / p))
    return files, list(test[:3])


@pytest.fixture(scope="module")
def ivector_dirs(synth_corpus, tmp_path_factory):
    from speakerid.backends.ivector import train_ivector

    root = tmp_path_factory.mktemp("ivector-add")
    for enroll in ("pool", "average"):
        train_ivector(root / enroll, synth_corpus.background_csv, ubm_components=8, rank=10, max_iter=2,
                      n_augment=0, segment_s=1.0, enroll=enroll)
    return root


@pytest.mark.parametrize("system", ["gmm-ubm", "gmm-ubm+noise", "ivector-pool", "ivector-average"])
def test_adding_files_gives_the_model_of_one_enrollment_of_all(synth_corpus, ubm_dir, ivector_dirs, tmp_path,
                                                               system):
    """enroll [a] then add [b, c] == enroll [a, b, c]: the kept statistics add up (the noisy copies of the added
    files are seeded as files 1 and 2 of one enrollment); arrays within float32 rounding (the frames' float32
    sums are cut at other places: 1e-5 of each array's largest value), scores to 1e-4."""
    import shutil

    source = ubm_dir / "base" if system.startswith("gmm-ubm") else ivector_dirs / system.split("-")[1]
    augment = 1 if system == "gmm-ubm+noise" else None
    files, tests = _enroll_files(synth_corpus)
    at_once, added = tmp_path / "at-once", tmp_path / "added"
    shutil.copytree(source, at_once)
    shutil.copytree(source, added)
    kind = "ivector" if system.startswith("ivector") else "gmm-ubm"
    SpeakerVerifier(at_once, backend=kind).enroll("s", files, augment)
    verifier = SpeakerVerifier(added, backend=kind)
    first = verifier.enroll("s", files[:1], augment, mode="new")
    result = verifier.enroll("s", files[1:], augment, mode="add")
    assert first["action"] == "enrolled" and result["action"] == "added" and result["n_files"] == len(files)
    (h1, a1), (h2, a2) = (SpeakerVerifier(d, backend=kind).store.load_speaker("s", kind) for d in (at_once, added))
    assert h1["files"] == h2["files"] and h1["n_frames"] == h2["n_frames"]
    assert h1["total_seconds"] == pytest.approx(h2["total_seconds"], abs=2e-3)
    assert sorted(a1) == sorted(a2)
    for key in a1:
        x, y = np.asarray(a1[key], float), np.asarray(a2[key], float)
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(x).max()), err_msg=key)
    for path in tests:
        assert SpeakerVerifier(added, backend=kind).verify("s", path)["score"] == pytest.approx(
            SpeakerVerifier(at_once, backend=kind).verify("s", path)["score"], abs=1e-4)


def test_an_enrolled_speaker_is_refused_replaced_or_added_to(synth_corpus, ubm_dir, tmp_path):
    import shutil

    from speakerid.exceptions import ParameterError

    files, _ = _enroll_files(synth_corpus)
    shutil.copytree(ubm_dir / "base", tmp_path / "m")
    verifier = SpeakerVerifier(tmp_path / "m")
    verifier.enroll("s", files)
    with pytest.raises(ParameterError, match=r"speaker 's' is already enrolled \(3 file\(s\), [0-9.]+ s, since .*\): "
                                             r"give --replace .* or --add"):
        verifier.enroll("s", files[:1], mode="new")
    with pytest.raises(ParameterError, match="mode must be one of replace, add, new"):
        verifier.enroll("s", files[:1], mode="append")
    assert verifier.enroll("s", files[:1])["action"] == "replaced"          # the Python API's default
    assert verifier.speaker_info()[0]["n_files"] == 1
    with pytest.raises(ParameterError, match=r"enrolled with 1 noisy copies per file; add files the same way "
                                             r"\(--augment 1\)"):
        verifier.enroll("s", files[1:], 2, mode="add")
    assert verifier.enroll("t", files[1:], mode="add")["action"] == "enrolled"   # nobody to add to: enrolled


def test_per_speaker_gmms_cannot_be_added_to(synth_corpus, tmp_path):
    from speakerid.exceptions import ParameterError

    files, _ = _enroll_files(synth_corpus)
    verifier = SpeakerVerifier(tmp_path / "m", backend="gmm", backend_params={"n_components": 2})
    verifier.enroll("s", files[:2])
    with pytest.raises(ParameterError, match=r"the gmm backend cannot add sessions .* \(--replace\)"):
        verifier.enroll("s", files[2:], mode="add")
    assert verifier.speaker_info()[0]["n_files"] == 2          # refused: the model is as it was
