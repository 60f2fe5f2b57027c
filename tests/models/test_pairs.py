"""Pair sampling for Siamese training: balance, seeding, speaker-disjoint splits, hard negatives, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from speakerid.backends._training import manifest_pairs
from speakerid.exceptions import ParameterError
from speakerid.models.pairs import check_speakers, sample_pairs, split_speakers

LABELS = np.repeat([f"s{i}" for i in range(10)], [3, 1, 4, 2, 5, 2, 3, 1, 2, 6])


def test_balanced_and_correctly_labelled():
    pairs = sample_pairs(LABELS, 1001, random_state=0)
    assert len(pairs) == 1001 and int(pairs.different.sum()) == 501  # n // 2 same-speaker pairs
    same = LABELS[pairs.first] == LABELS[pairs.second]
    assert np.array_equal(same, pairs.different == 0)
    assert not np.any(pairs.first[same] == pairs.second[same])  # never an example with itself
    # speakers with one example never anchor a same-speaker pair, but appear as impostors
    assert not np.isin(LABELS[pairs.first[same]], ["s1", "s7"]).any()
    assert np.isin(LABELS[pairs.second], ["s1", "s7"]).any()


def test_uniform_impostors():
    labels = np.repeat(["a", "b", "c"], [2, 2, 96])
    pairs = sample_pairs(labels, 20000, random_state=1)
    impostors = pairs.second[(pairs.different == 1) & (labels[pairs.first] == "c")]
    share_a = np.mean(labels[impostors] == "a")
    assert share_a == pytest.approx(0.5, abs=0.05)  # impostors of 'c' split evenly between a and b


def test_seeded_determinism():
    one, two = sample_pairs(LABELS, 200, random_state=3), sample_pairs(LABELS, 200, random_state=3)
    assert all(np.array_equal(a, b) for a, b in zip(one, two))
    other = sample_pairs(LABELS, 200, random_state=4)
    assert not np.array_equal(one.first, other.first)


def test_speaker_disjoint_split():
    train, val = split_speakers(LABELS, val_fraction=0.3, random_state=0)
    assert not np.any(train & val) and np.all(train | val)
    assert set(LABELS[train]).isdisjoint(LABELS[val])
    assert len(set(LABELS[val])) == 3
    again = split_speakers(LABELS, val_fraction=0.3, random_state=0)
    assert np.array_equal(val, again[1])
    assert not split_speakers(LABELS, val_fraction=0.0)[1].any()


def test_hard_negatives_are_nearer():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(20), 5).astype(str)
    embeddings = rng.normal(size=(100, 8))

    def impostor_distance(share):
        pairs = sample_pairs(labels, 2000, random_state=0, hard_negatives=share, embeddings=embeddings)
        neg = pairs.different == 1
        return np.linalg.norm(embeddings[pairs.first[neg]] - embeddings[pairs.second[neg]], axis=1).mean()

    assert impostor_distance(1.0) < 0.8 * impostor_distance(0.0)
    with pytest.raises(ParameterError, match="embeddings"):
        sample_pairs(labels, 10, hard_negatives=0.5)


def test_fewer_than_two_speakers_refused_naming_the_manifest(tmp_path):
    manifest = tmp_path / "one-speaker.csv"
    manifest.write_text("speaker,path\nalice,a.wav\nalice,b.wav\n")
    with pytest.raises(ParameterError, match="one-speaker.csv.*1 speaker"):
        manifest_pairs(manifest, 10)
    with pytest.raises(ParameterError, match="at least 2 speakers"):
        check_speakers([])


def test_other_refusals():
    with pytest.raises(ParameterError, match="no speaker has two examples"):
        sample_pairs(["a", "b", "c"], 10)
    with pytest.raises(ParameterError, match="cannot be split"):
        split_speakers(["a", "a", "b", "c"], val_fraction=0.5)
    with pytest.raises(ParameterError, match="val_fraction"):
        split_speakers(LABELS, val_fraction=1.0)
    with pytest.raises(ParameterError, match="n_pairs"):
        sample_pairs(LABELS, 1)


def test_manifest_pairs(tmp_path):
    rows = [f"s{i},{i}_{k}.wav" for i in range(8) for k in range(3)]
    manifest = tmp_path / "train.csv"
    manifest.write_text("speaker,path\n" + "\n".join(rows) + "\n")
    train, val = manifest_pairs(manifest, 100, val_fraction=0.25, n_val_pairs=40, random_state=0)
    speakers = np.array([r.split(",")[0] for r in rows])
    assert len(train) == 100 and len(val) == 40
    train_speakers = set(speakers[train.first]) | set(speakers[train.second])
    val_speakers = set(speakers[val.first]) | set(speakers[val.second])
    assert train_speakers.isdisjoint(val_speakers) and len(val_speakers) == 2
    assert int(train.different.sum()) == 50 and int(val.different.sum()) == 20
