"""Paired comparison of two systems' score files on the same trials (``speakerid compare``): each metric's
difference B - A with an interval from one bootstrap over the speakers, applied to both systems."""

from __future__ import annotations

import numpy as np

from speakerid._utils.lazy import lazy_import
from speakerid.data.trials import target_labels, trial_key
from speakerid.evaluation import metrics
from speakerid.evaluation.bootstrap import check_bootstrap, paired_comparison, speaker_groups
from speakerid.evaluation.report import ACT_DCF_NOTE, _read_scores, _source_info, _system_names
from speakerid.exceptions import ManifestError, ParameterError

pd = lazy_import("pandas")

__all__ = ["compare"]


def compare(score_a, score_b, names=None, *, p_target=(0.01, 0.1), n_boot: int = 1000, confidence: float = 0.95,
            group_column: str | None = None, random_state=0, score_format=None, key=None, llr: bool = True) -> dict:
    """Compare two systems' score files of the same trials: each metric's difference B - A with its interval.

    The files are joined on their trials (speaker, path); the trials scored in both are compared by a paired
    bootstrap that resamples speakers (:func:`~speakerid.evaluation.bootstrap.paired_comparison`).

    Parameters
    ----------
    score_a, score_b : str, os.PathLike or pandas.DataFrame
        Score files as :func:`evaluate` reads them, with ``speaker``, ``path``, ``target`` and ``score`` columns.
    names : sequence of two str, optional
        The systems' names (default: the file names without ``.csv``).
    p_target, n_boot, confidence, group_column, random_state, score_format, key
        As :func:`evaluate` (``group_column`` is read from ``score_a``); ``n_boot`` must be >= 1.

    Returns
    -------
    dict
        The :func:`~speakerid.evaluation.bootstrap.paired_comparison` result plus ``names``, ``sources``,
        ``p_targets``, ``n_trials`` (in both files), ``n_skipped`` (not scored in one of them), ``group_column``,
        ``n_speakers``, ``intervals_note`` and ``note``.

    Raises
    ------
    ManifestError
        A file is unreadable, lacks the speaker / path / target / score columns, or its trials or their targets
        differ from the other file's (the message names the file and a trial).
    ParameterError
        As :func:`evaluate`.
    """
    sources = [score_a, score_b]
    names = _system_names(sources, names)
    n_boot, confidence = check_bootstrap(n_boot, confidence)
    p_targets = [float(p) for p in np.atleast_1d(p_target)]
    for p in p_targets:
        metrics.bayes_threshold(p)  # validates every p_target before any file is read
    wheres = [name if isinstance(s, pd.DataFrame) else str(s) for name, s in zip(names, sources)]
    files = [_read_scores(s, w, score_format, key, group_column) for s, w in zip(sources, wheres)]
    keys = []
    for data, where in zip(files, wheres):
        missing = [c for c in ("speaker", "path") if c not in data.frame.columns]
        if missing:
            raise ManifestError(f"no {' or '.join(missing)} column: compare matches the two files' trials by "
                                "speaker and path", where)
        keys.append(_trial_keys(data.frame))
    a, b = files
    in_b, in_a = keys[1].get_indexer(keys[0]), keys[0].get_indexer(keys[1])
    for absent, listed, how in ((in_b < 0, keys[0], f"lacks {{}} trial(s) of {wheres[0]}"),
                                (in_a < 0, keys[1], f"has {{}} trial(s) that {wheres[0]} lacks")):
        if absent.any():
            speaker, path = listed[int(np.argmax(absent))]
            raise ManifestError(f"{how.format(int(absent.sum()))}, e.g. speaker {speaker!r}, path {path!r}: the "
                                "two score files must list the same trials", wheres[1])
    labels_a, labels_b = (target_labels(f.frame["target"].to_numpy()) for f in files)   # checked by the reader
    labels_b = labels_b[in_b]
    other = labels_a != labels_b
    if other.any():
        first = keys[0][int(np.argmax(other))]
        raise ManifestError(f"{int(other.sum())} trial(s) have another target than in {wheres[0]}, e.g. speaker "
                            f"{first[0]!r}, path {first[1]!r}", wheres[1])
    both = a.usable & b.usable[in_b]
    scores_a, scores_b = (np.full(len(f.usable), np.nan) for f in files)
    scores_a[a.usable], scores_b[b.usable] = a.scores, b.scores
    scores_a, scores_b = scores_a[both], scores_b[in_b][both]
    groups, column, n_speakers, note = speaker_groups(a.frame, both, group_column, wheres[0])
    try:
        result = paired_comparison(scores_a, scores_b, labels_a[both], groups, p_targets=p_targets, n_boot=n_boot,
                                   confidence=confidence, random_state=random_state, llr=llr)
    except ParameterError as exc:
        raise ParameterError(f"{wheres[0]} vs {wheres[1]}: {exc}") from None
    return {"names": names, "sources": [_source_info(s)["file"] or "<DataFrame>" for s in sources],
            "p_targets": p_targets, "n_trials": len(both), "n_skipped": int((~both).sum()),
            "group_column": None if groups is None else column, "n_speakers": n_speakers, "intervals_note": note,
            "note": ACT_DCF_NOTE, **result}


def _trial_keys(frame):
    """The (speaker, path) trial of every row, compared as :func:`speakerid.data.trials.trial_key` does."""
    columns = []
    for position, column in enumerate(("speaker", "path")):
        codes, uniques = pd.factorize(frame[column].astype(str).to_numpy(dtype=object))
        keyed = np.array([trial_key(u, u)[position] for u in uniques], dtype=object)
        columns.append(keyed[codes])
    return pd.MultiIndex.from_arrays(columns)
