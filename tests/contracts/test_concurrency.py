"""Many processes on one model directory: concurrent enrollments all land; readers never see a torn model."""

from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np
import pytest
from conftest import tiny_model_dir

from speakerid.data.manifests import read_manifest
from speakerid.store import ModelStore

pytestmark = pytest.mark.slow

N_PROCESSES = 8


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return tiny_model_dir(tmp_path_factory.mktemp("concurrency"))


def _quiet_threads():
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"


def _enroll_one(models, speaker, files, start):
    _quiet_threads()
    from speakerid.verifier import SpeakerVerifier

    start.wait(60)
    SpeakerVerifier(models).enroll(speaker, files)


def test_eight_processes_enrolling_at_once_all_land(setup, tmp_path):
    models, corpus = setup
    files = list(read_manifest(corpus.enroll_csv)["path"])
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    speakers = [f"worker-{k}" for k in range(N_PROCESSES)]
    procs = [ctx.Process(target=_enroll_one, args=(str(models), s, files[k % len(files):][:2], start))
             for k, s in enumerate(speakers)]
    for p in procs:
        p.start()
    start.set()  # all released together, after their (slow) imports
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = ModelStore(models)
    assert store.speakers() == sorted(speakers)
    for speaker in speakers:
        header, arrays = store.load_speaker(speaker)
        assert header["speaker"] == speaker and np.all(np.isfinite(arrays["means"]))
    assert not list(models.rglob("*.tmp"))


def _reader(models, speaker, wav, n_reads, start, results):
    _quiet_threads()
    from speakerid.verifier import SpeakerVerifier

    start.wait(60)
    scores, errors = [], []
    for _ in range(n_reads):
        try:  # a fresh verifier each time: no cache, every read goes to the file
            scores.append(SpeakerVerifier(models).verify(speaker, wav)["score"])
        except Exception as exc:  # noqa: BLE001 - any error at all is what this test looks for
            errors.append(f"{type(exc).__name__}: {exc}")
    results.put((scores, errors))


def _re_enroller(models, speaker, file_sets, n_writes, start):
    _quiet_threads()
    from speakerid.verifier import SpeakerVerifier

    start.wait(60)
    verifier = SpeakerVerifier(models)
    for k in range(n_writes):
        verifier.enroll(speaker, file_sets[k % 2])


def test_readers_see_the_old_or_the_new_model_never_a_torn_one(setup):
    models, corpus = setup
    enroll = read_manifest(corpus.enroll_csv)
    trials = read_manifest(corpus.trials_csv)
    speaker, other = corpus.speakers[:2]
    old_files = list(enroll.loc[enroll["speaker"] == speaker, "path"])
    new_files = list(enroll.loc[enroll["speaker"] == other, "path"])
    wav = trials.iloc[0]["path"]
    from speakerid.verifier import SpeakerVerifier

    verifier = SpeakerVerifier(models)
    verifier.enroll(speaker, new_files)
    new_score = SpeakerVerifier(models).verify(speaker, wav)["score"]
    verifier.enroll(speaker, old_files)
    old_score = SpeakerVerifier(models).verify(speaker, wav)["score"]
    assert abs(new_score - old_score) > 1e-6  # the two models are told apart by their scores

    ctx = mp.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    readers = [ctx.Process(target=_reader, args=(str(models), speaker, wav, 5, start, results))
               for _ in range(N_PROCESSES)]
    writer = ctx.Process(target=_re_enroller, args=(str(models), speaker, [new_files, old_files], 8, start))
    for p in [*readers, writer]:
        p.start()
    start.set()
    outcomes = [results.get(timeout=180) for _ in readers]
    for p in [*readers, writer]:
        p.join(120)
        assert p.exitcode == 0
    scores = [s for got, _ in outcomes for s in got]
    errors = [e for _, got in outcomes for e in got]
    assert not errors, errors[:3]
    assert len(scores) == N_PROCESSES * 5
    assert all(min(abs(s - old_score), abs(s - new_score)) < 1e-9 for s in scores)
