"""Pairs of examples for Siamese training: balanced same/different-speaker pairs, seeded, with a speaker-
disjoint train/validation split and optional hard negatives.

A pair is ``(first, second, different)``: two example indices and ``different = 1`` when they come from
different speakers (the contrastive loss's ``Y``), 0 when from the same one. An *example* is a row of whatever
the caller pairs: a manifest row, or one fixed-length segment of a file (so one file can give several examples
and positive pairs exist even with a single recording per speaker).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from speakerid.exceptions import ParameterError

__all__ = ["Pairs", "check_speakers", "split_speakers", "sample_pairs",]


class Pairs(NamedTuple):
    """Example indices of pairs and whether each pair is of different speakers (1) or the same one (0)."""

    first: np.ndarray
    second: np.ndarray
    different: np.ndarray

    def __len__(self) -> int:  # the number of pairs, not of fields
        return len(self.first)


def _rng(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def check_speakers(labels, source: str = "the data") -> np.ndarray:
    """The distinct speakers of ``labels``, sorted; :class:`ParameterError` naming ``source`` if fewer than 2.

    Examples
    --------
    >>> check_speakers(["b", "a", "b"]).tolist()
    ['a', 'b']
    >>> check_speakers(["a", "a"], source="bg.csv")
    Traceback (most recent call last):
    ...
    speakerid.exceptions.ParameterError: bg.csv: has 1 speaker(s) ('a'); pairs need at least 2 speakers
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ParameterError(f"{source}: speaker labels must be 1-D, got shape {labels.shape}")
    speakers = np.unique(labels)
    if len(speakers) < 2:
        shown = ", ".join(repr(str(s)) for s in speakers[:1])
        raise ParameterError(f"{source}: has {len(speakers)} speaker(s) ({shown}); "
                             "pairs need at least 2 speakers")
    return speakers


def split_speakers(labels, val_fraction: float = 0.2, random_state=0, source: str = "the data"):
    """Boolean masks ``(train, validation)`` over the examples, splitting by *speaker* (no speaker in both).

    Each side keeps at least 2 speakers when ``val_fraction > 0`` (so both can form different-speaker pairs);
    ``val_fraction = 0`` puts everything in training and returns an all-False validation mask.

    Examples
    --------
    >>> labels = np.array(["a", "a", "b", "c", "d", "d"])
    >>> train, val = split_speakers(labels, val_fraction=0.5, random_state=0)
    >>> int(train.sum() + val.sum()), set(labels[train]) & set(labels[val])
    (6, set())
    """
    labels = np.asarray(labels)
    speakers = check_speakers(labels, source)
    val_fraction = float(val_fraction)
    if not 0.0 <= val_fraction < 1.0:
        raise ParameterError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if val_fraction == 0.0:
        return np.ones(len(labels), dtype=bool), np.zeros(len(labels), dtype=bool)
    if len(speakers) < 4:
        raise ParameterError(f"{source}: {len(speakers)} speakers cannot be split into training and "
                             "validation (each side needs 2); add speakers or set the validation fraction "
                             "to 0")
    n_val = min(max(2, int(round(val_fraction * len(speakers)))), len(speakers) - 2)
    val_speakers = _rng(random_state).permutation(speakers)[:n_val]
    val = np.isin(labels, val_speakers)
    return ~val, val


def sample_pairs(labels, n_pairs: int, random_state=0, *, hard_negatives: float = 0.0, embeddings=None,
                 n_candidates: int = 10, source: str = "the data") -> Pairs:
    """Draw ``n_pairs`` pairs, half same-speaker and half different-speaker, in random order.

    Same-speaker pairs: an anchor drawn uniformly among the examples whose speaker has at least two, and
    another example of that speaker. Different-speaker pairs: an anchor drawn uniformly, and an example of
    another speaker -- drawn uniformly, or for a share ``hard_negatives`` of them the nearest (in
    ``embeddings``) of ``n_candidates`` drawn uniformly: the impostors the current model confuses most.

    Parameters
    ----------
    labels : array_like, shape (n_examples,)
        Speaker of every example.
    n_pairs : int
        Pairs to draw (>= 2); ``n_pairs // 2`` are same-speaker.
    random_state : int or numpy.random.Generator
    hard_negatives : float in [0, 1]
    embeddings : array_like, shape (n_examples, dims), optional
        Needed when ``hard_negatives > 0``.
    source : str
        Named in error messages (e.g. the manifest path).

    Examples
    --------
    >>> pairs = sample_pairs(["a", "a", "b", "b"], 8, random_state=0)
    >>> len(pairs), int(pairs.different.sum())
    (8, 4)
    """
    labels = np.asarray(labels)
    check_speakers(labels, source)
    n_pairs = int(n_pairs)
    if n_pairs < 2:
        raise ParameterError(f"n_pairs must be >= 2, got {n_pairs}")
    hard_negatives = float(hard_negatives)
    if not 0.0 <= hard_negatives <= 1.0:
        raise ParameterError(f"hard_negatives must be a share in [0, 1], got {hard_negatives}")
    if hard_negatives and embeddings is None:
        raise ParameterError("hard negatives need the examples' embeddings")
    rng = _rng(random_state)
    codes = np.unique(labels, return_inverse=True)[1].ravel()
    counts = np.bincount(codes)
    by_speaker = np.argsort(codes, kind="stable")         # example indices grouped by speaker
    starts = np.r_[0, np.cumsum(counts)[:-1]]

    n_same = n_pairs // 2
    can_anchor = np.flatnonzero(counts[codes] >= 2)
    if len(can_anchor) == 0:
        raise ParameterError(f"{source}: no speaker has two examples, so there are no same-speaker pairs "
                             "(cut the recordings into segments, e.g. segment_s=2)")
    anchors = rng.choice(can_anchor, size=n_same)
    speaker = codes[anchors]
    # another example of the same speaker: skip the anchor's own slot
    offset = rng.integers(0, counts[speaker] - 1)
    position = _position_in_speaker(anchors, codes, by_speaker, starts)
    offset = offset + (offset >= position)
    partners = by_speaker[starts[speaker] + offset]

    n_diff = n_pairs - n_same
    neg_anchors = rng.integers(0, len(labels), size=n_diff)
    impostors = _other_speaker(neg_anchors, codes, counts, by_speaker, starts, rng)
    n_hard = int(round(hard_negatives * n_diff))
    if n_hard:
        embeddings = np.asarray(embeddings, dtype=np.float64)
        if embeddings.shape[0] != len(labels):
            raise ParameterError(f"embeddings have {embeddings.shape[0]} rows for {len(labels)} examples")
        hard = rng.choice(n_diff, size=n_hard, replace=False)
        candidates = np.stack([_other_speaker(neg_anchors[hard], codes, counts, by_speaker, starts, rng)
                               for _ in range(max(1, int(n_candidates)))], axis=1)
        gaps = embeddings[candidates] - embeddings[neg_anchors[hard]][:, None, :]
        impostors[hard] = candidates[np.arange(n_hard), np.argmin(np.sum(gaps * gaps, axis=2), axis=1)]

    first = np.r_[anchors, neg_anchors]
    second = np.r_[partners, impostors]
    different = np.r_[np.zeros(n_same, dtype=np.int8), np.ones(n_diff, dtype=np.int8)]
    order = rng.permutation(n_pairs)
    return Pairs(first[order].astype(np.int64), second[order].astype(np.int64), different[order])


def _position_in_speaker(examples, codes, by_speaker, starts) -> np.ndarray:
    """Rank of each example among its speaker's examples (in ``by_speaker`` order)."""
    rank = np.empty(len(codes), dtype=np.int64)
    rank[by_speaker] = np.arange(len(codes)) - starts[codes[by_speaker]]
    return rank[examples]


def _other_speaker(anchors, codes, counts, by_speaker, starts, rng) -> np.ndarray:
    """One example of another speaker per anchor, uniform over all examples not of the anchor's speaker."""
    n_examples = len(codes)
    own = codes[anchors]
    draw = rng.integers(0, n_examples - counts[own])
    # index into by_speaker, skipping the block of the anchor's own speaker
    draw = draw + np.where(draw >= starts[own], counts[own], 0)
    return by_speaker[draw]


