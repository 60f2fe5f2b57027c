"""speakerid embed: ark/scp read back with kaldiio equals the in-memory representation; npz/csv; refusals."""

from __future__ import annotations

import json

import kaldiio
import numpy as np
import pytest
from conftest import tiny_model_dir
from threadpoolctl import threadpool_limits

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.embedding_io import read_embeddings
from speakerid.data.kaldi_manifests import utterance_ids, write_data_dir
from speakerid.data.manifests import read_manifest
from speakerid.verifier import SpeakerVerifier


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_model_dir(tmp_path_factory.mktemp("embed"))


def test_ark_scp_read_back_with_kaldiio_equals_the_in_memory_vectors(tiny, tmp_path, capsys):
    models, corpus = tiny
    capsys.readouterr()
    assert main(["embed", "--model-dir", str(models), "--manifest", str(corpus.enroll_csv), "--out",
                 str(tmp_path / "sv.ark"), "--jobs", "2", "--json"]) == ExitStatus.OK
    summary = json.loads(capsys.readouterr().out)
    manifest = read_manifest(corpus.enroll_csv)
    ids = utterance_ids(manifest["speaker"], manifest["path"])
    assert summary["n_written"] == len(ids) and summary["format"] == "ark"
    loaded = kaldiio.load_scp(str(tmp_path / "sv.scp"))
    assert list(loaded) == ids
    verifier = SpeakerVerifier(models)
    verifier.missing_background()
    with threadpool_limits(limits=1, user_api="blas"):   # as the workers compute (float32 sums are order-bound)
        for utt, path in zip(ids, manifest["path"]):
            expected = np.asarray(verifier.backend.embed(verifier.features(path)), dtype=np.float32).ravel()
            np.testing.assert_array_equal(loaded[utt], expected)
    assert summary["dim"] == expected.size


def test_npz_and_csv_from_a_data_dir_agree(tiny, tmp_path):
    models, corpus = tiny
    write_data_dir(read_manifest(corpus.enroll_csv), tmp_path / "data")
    for fmt in ("npz", "csv"):
        assert main(["embed", "--model-dir", str(models), "--data-dir", str(tmp_path / "data"), "--out",
                     str(tmp_path / f"e.{fmt}")]) == ExitStatus.OK
    ids_npz, npz = read_embeddings(tmp_path / "e.npz")
    ids_csv, table = read_embeddings(tmp_path / "e.csv")
    assert ids_npz == ids_csv and len(ids_npz) == len(read_manifest(corpus.enroll_csv))
    np.testing.assert_allclose(npz, table, rtol=1e-6)


def test_unreadable_audio_is_reported_and_strict_exits_9(tiny, tmp_path, capsys):
    models, corpus = tiny
    (tmp_path / "bad.wav").write_bytes(b"nope")
    first = read_manifest(corpus.enroll_csv)["path"].iloc[0]
    (tmp_path / "m.csv").write_text(f"speaker,path\na,{first}\nb,bad.wav\n")
    status = main(["embed", "--model-dir", str(models), "--manifest", str(tmp_path / "m.csv"), "--out",
                   str(tmp_path / "e.npz"), "--strict"])
    assert status == ExitStatus.PARTIAL_FAILURE
    assert read_embeddings(tmp_path / "e.npz")[0] == [utterance_ids(["a"], [first])[0]]
    assert "b-bad" in capsys.readouterr().out
