"""Each trial once: (speaker, path) keys of a trial list as 64-bit hashes, to find trials listed twice or as both
a target and a non-target in bounded memory (the machinery behind :func:`speakerid.data.trials.check_unique_trials`).
"""

from __future__ import annotations

import os
import unicodedata

import numpy as np
import pandas as pd

from speakerid.exceptions import ManifestError

_MAX_SHOWN = 5


def speaker_key(speaker) -> str:
    """A speaker id as compared: stripped, in Unicode NFC (as :func:`~speakerid.data.manifests.validate_speaker_id`
    returns it), so "Zoë" typed with a combining diaeresis is the same speaker."""
    return unicodedata.normalize("NFC", str(speaker).strip())


def path_key(path) -> str:
    """A path as compared: stripped and :func:`os.path.normpath`-ed (``./a.wav`` is ``a.wav``)."""
    path = str(path).strip()
    return os.path.normpath(path) if path else ""


def key_hashes(speakers, paths) -> np.ndarray:
    """A 64-bit hash per row of its (speaker, path) key; equal keys give equal hashes."""
    s_codes, s_uniques = pd.factorize(np.asarray(speakers, dtype=object))
    p_codes, p_uniques = pd.factorize(np.asarray(paths, dtype=object))
    s_hash = pd.util.hash_array(np.array([speaker_key(s) for s in s_uniques], dtype=object))
    p_hash = pd.util.hash_array(np.array([path_key(p) for p in p_uniques], dtype=object))
    if not len(s_codes):
        return np.zeros(0, dtype=np.uint64)
    return (s_hash[s_codes] * np.uint64(0x9E3779B97F4A7C15)) ^ p_hash[p_codes]   # wraps around: a hash mix


class KeyIndex:
    """The (speaker, path) keys of a trial list, added chunk by chunk as 8-byte hashes plus a 1-byte target, so
    that repeated and contradictory trials are found in 9 bytes a row without keeping the list."""

    def __init__(self):
        self._hashes, self._targets = [], []

    def add(self, speakers, paths, targets=None) -> None:
        hashes = key_hashes(speakers, paths)
        self._hashes.append(hashes)
        self._targets.append(np.full(len(hashes), -1, np.int8) if targets is None
                             else np.asarray(targets, dtype=np.int8))

    def suspects(self):
        """``(contradictory, repeated)``: the hashes of the first few keys listed with both targets, and of the
        first few listed twice with one target, in the order their second row comes; plus the two counts."""
        hashes = np.concatenate(self._hashes) if self._hashes else np.zeros(0, np.uint64)
        targets = np.concatenate(self._targets) if self._targets else np.zeros(0, np.int8)
        self._hashes, self._targets = [hashes], [targets]
        order = np.argsort(hashes, kind="stable")
        sorted_hashes, sorted_targets = hashes[order], targets[order]
        starts = np.flatnonzero(np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]])
        sizes = np.diff(np.r_[starts, len(hashes)])
        groups = np.flatnonzero(sizes > 1)
        if not len(groups):
            return [], [], 0, 0
        both = (np.maximum.reduceat(sorted_targets, starts) == 1) & \
               (np.minimum.reduceat(np.where(sorted_targets < 0, 2, sorted_targets), starts) == 0)
        second = order[starts[groups] + 1]             # where each repeated key comes back
        by_position = np.argsort(second, kind="stable")
        contradictory = [int(sorted_hashes[starts[g]]) for g in groups[by_position] if both[g]]
        repeated = [int(sorted_hashes[starts[g]]) for g in groups[by_position] if not both[g]]
        return contradictory[:_MAX_SHOWN], repeated[:_MAX_SHOWN], len(contradictory), \
            int((sizes[groups] - 1)[~both[groups]].sum())


def refuse_repeated(index: KeyIndex, chunks, source, unit: str) -> None:
    """Raise :class:`ManifestError` naming the rows of trials listed twice or with both targets.

    ``chunks`` is a callable giving the list again as ``(speakers, paths, targets or None, rows)`` parts: read
    only when the hashes found a suspect, to name the rows and to confirm that the keys are really equal.
    """
    contradictory, repeated, n_contradictory, n_repeated = index.suspects()
    wanted = set(contradictory) | set(repeated)
    if not wanted:
        return
    seen, clashes, repeats = {}, [], []
    for speakers, paths, targets, rows in chunks():
        hashes = key_hashes(speakers, paths)
        for i in np.flatnonzero(np.isin(hashes, np.fromiter(wanted, np.uint64, len(wanted)))):
            key = (speaker_key(speakers[i]), path_key(paths[i]))
            target = -1 if targets is None else int(targets[i])
            if key not in seen:
                seen[key] = {target: rows[i]}
            elif target in seen[key]:
                repeats.append(f"{unit} {rows[i]} repeats {unit} {seen[key][target]}")
            elif target >= 0 and 1 - target in seen[key] and len(seen[key]) == 1:
                seen[key][target] = rows[i]
                clashes.append(f"speaker {key[0]!r} with {key[1]!r} is a target on {unit} {seen[key][1]} and a "
                               f"non-target on {unit} {seen[key][0]}")
    if clashes:
        more = f" and {n_contradictory - len(clashes)} more" if n_contradictory > len(clashes) else ""
        raise ManifestError(f"{n_contradictory} trial(s) listed as both target and non-target (same speaker and "
                            f"path): {'; '.join(clashes)}{more}", source)
    if repeats:
        more = f" and {n_repeated - len(repeats)} more" if n_repeated > len(repeats) else ""
        raise ManifestError(f"{n_repeated} repeated trial row(s) (same speaker and path; list each trial once): "
                            f"{'; '.join(repeats)}{more}", source)
