"""Embedding export: Kaldi ark/scp (read back with kaldiio itself), npz and CSV; pickled ark entries refused."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest

from speakerid.data.embedding_io import EMBEDDING_FORMATS, EmbeddingWriter, embedding_format, read_embeddings
from speakerid.exceptions import ManifestError, ParameterError


@pytest.fixture
def vectors(rng):
    return [f"spk{k // 3}-utt{k}" for k in range(7)], rng.normal(size=(7, 5)).astype(np.float32)


def test_ark_scp_read_back_with_kaldiio_equals_the_vectors(tmp_path, vectors):
    ids, matrix = vectors
    with EmbeddingWriter(tmp_path / "out" / "ivectors.ark") as writer:
        writer.write(ids[:4], matrix[:4])  # streamed in two chunks
        writer.write(ids[4:], matrix[4:])
    loaded = kaldiio.load_scp(str(tmp_path / "out" / "ivectors.scp"))
    assert list(loaded) == ids
    for utt, row in zip(ids, matrix):
        np.testing.assert_array_equal(loaded[utt], row)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize("fmt", EMBEDDING_FORMATS)
def test_every_format_reads_back(tmp_path, vectors, fmt):
    ids, matrix = vectors
    with EmbeddingWriter(tmp_path / f"e.{fmt}") as writer:
        writer.write(ids, matrix)
    back_ids, back = read_embeddings(tmp_path / f"e.{fmt}")
    assert back_ids == ids
    np.testing.assert_allclose(back, matrix, rtol=1e-6)


def test_writer_refuses_bad_rows_and_leaves_no_file(tmp_path, vectors):
    ids, matrix = vectors
    with pytest.raises(ParameterError, match="repeats"):
        with EmbeddingWriter(tmp_path / "e.ark") as writer:
            writer.write(["a", "a"], matrix[:2])
    assert not (tmp_path / "e.ark").exists() and not list(tmp_path.iterdir())
    with pytest.raises(ParameterError, match="dimension 3 after 5"):
        with EmbeddingWriter(tmp_path / "e.csv") as writer:
            writer.write(ids[:1], matrix[:1])
            writer.write(ids[1:2], matrix[1:2, :3])
    with pytest.raises(ParameterError, match="embedding format"):
        embedding_format("e.txt")


def test_pickled_and_command_scp_entries_are_refused(tmp_path):
    (tmp_path / "evil.ark").write_bytes(b"utt PKL\x80\x04.")
    (tmp_path / "evil.scp").write_text(f"utt {tmp_path / 'evil.ark'}:4\n")
    with pytest.raises(ManifestError, match="not a Kaldi binary vector"):
        read_embeddings(tmp_path / "evil.scp")
    (tmp_path / "evil.scp").write_text("utt cat x.ark |\n")
    with pytest.raises(ManifestError, match="line 1: expected"):
        read_embeddings(tmp_path / "evil.ark")
