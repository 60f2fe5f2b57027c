"""Each trial once: (speaker, path) keys of a trial list as 64-bit hashes, to find trials listed twice or as both
a target and a non-target in bounded memory (the machinery behind :func:`speakerid.data.trials.check_unique_trials`).
"""

from __future__ import annotations

import os
import unicodedata

import numpy as np

from speakerid._utils.lazy import lazy_import
from speakerid.exceptions import ManifestError

pd = lazy_import("pandas")

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
    return coded_key_hashes(s_codes, s_uniques, p_codes, p_uniques)


def coded_key_hashes(s_codes, s_uniques, p_codes, p_uniques) -> np.ndarray:
    """:func:`key_hashes` of factorised columns (``s_uniques[s_codes]`` the speakers): only the distinct values
    are normalised and hashed, the rows are mixed by index."""
    if not len(s_codes):
        return np.zeros(0, dtype=np.uint64)
    s_hash = pd.util.hash_array(np.array([speaker_key(s) for s in s_uniques], dtype=object))
    p_hash = pd.util.hash_array(np.array([path_key(p) for p in p_uniques], dtype=object))
    return (s_hash[s_codes] * np.uint64(0x9E3779B97F4A7C15)) ^ p_hash[p_codes]   # wraps around: a hash mix


class KeyIndex:
    """The (speaker, path) keys of a trial list, added chunk by chunk as 8-byte hashes plus a 1-byte target, so
    that repeated and contradictory trials are found in 9 bytes a row without keeping the list (about twice
    that for a moment at the end, to sort the hashes)."""

    def __init__(self):
        self._hashes, self._targets = [], []

    def add(self, hashes, targets=None) -> None:
        """Add the rows of a chunk: their :func:`key_hashes` and 0/1 targets (None: no target column)."""
        self._hashes.append(np.asarray(hashes, dtype=np.uint64))
        self._targets.append(np.full(len(hashes), -1, np.int8) if targets is None
                             else np.asarray(targets, dtype=np.int8))

    def suspects(self):
        """``(contradictory, repeated, n_contradictory, n_repeated)``: the hashes of the first few keys listed
        with both targets, and of the first few listed twice with one target, in the order their second row
        comes; and how many keys are contradictory, how many rows repeat a key with its target."""
        hashes = np.concatenate(self._hashes) if self._hashes else np.zeros(0, np.uint64)
        targets = np.concatenate(self._targets) if self._targets else np.zeros(0, np.int8)
        self._hashes, self._targets = [hashes], [targets]
        ordered = np.sort(hashes)
        repeated_values = ordered[1:][ordered[1:] == ordered[:-1]]     # sorted, with repeats
        del ordered
        if not len(repeated_values):
            return [], [], 0, 0
        repeated_values = repeated_values[np.r_[True, repeated_values[1:] != repeated_values[:-1]]]
        at = np.minimum(np.searchsorted(repeated_values, hashes), len(repeated_values) - 1)
        rows = np.flatnonzero(repeated_values[at] == hashes)         # the rows of repeated keys, in order
        del at
        order = np.argsort(hashes[rows], kind="stable")
        rows = rows[order]
        sorted_hashes, sorted_targets = hashes[rows], targets[rows]
        starts = np.flatnonzero(np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]])
        sizes = np.diff(np.r_[starts, len(rows)])
        both = (np.maximum.reduceat(sorted_targets, starts) == 1) & \
               (np.minimum.reduceat(np.where(sorted_targets < 0, 2, sorted_targets), starts) == 0)
        by_position = np.argsort(rows[starts + 1], kind="stable")    # where each repeated key comes back
        first_hash = sorted_hashes[starts[by_position]]
        contradictory, repeated = first_hash[both[by_position]], first_hash[~both[by_position]]
        return ([int(h) for h in contradictory[:_MAX_SHOWN]], [int(h) for h in repeated[:_MAX_SHOWN]],
                len(contradictory), int((sizes - 1)[~both].sum()))


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
