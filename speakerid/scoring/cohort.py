"""Impostor cohorts for batch score normalisation (Z/T/ZT/S-norm, see :mod:`speakerid.scoring.norm`).

A cohort manifest's speakers are enrolled in memory with the verifier's backend (cohort models) and its files
are the cohort utterances. Before any trial is scored, every claimed speaker is scored against every cohort
utterance (Z-norm statistics, once per speaker) and every cohort model against every cohort utterance (ZT-norm);
the scores of each test file against the cohort models (T-norm) are computed by the workers beside its trial
scores, from the cohort models saved to a temporary ``.npz``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speakerid._utils.progress import progress
from speakerid.data.manifests import read_manifest
from speakerid.exceptions import DataLeakWarning, ParameterError
from speakerid.features.cache import FeatureCache

__all__ = ["Cohort", "prepare_cohort", "save_models", "load_models"]


@dataclass
class Cohort:
    """Cohort scores of one scoring run; :meth:`normalise` applies the method to a batch of trials."""

    method: str
    top_n: int | None
    model_cohort: np.ndarray      # (n_claimed, n_cohort_utts): claimed speaker models vs cohort utterances
    claimed_index: dict           # claimed speaker id -> row of model_cohort
    cohort_cohort: np.ndarray     # (n_cohort_models, n_cohort_utts)
    speakers: tuple = ()          # the cohort speakers, in model order

    def normalize(self, scores, speakers, test_cohort=None) -> np.ndarray:
        """Normalised ``scores`` of trials claiming ``speakers``; ``test_cohort`` (n_trials, n_cohort_models)."""
        from speakerid.scoring.norm import normalize_scores

        rows = np.fromiter((self.claimed_index[s] for s in speakers), dtype=np.int64, count=len(speakers))
        return normalize_scores(scores, self.method, model_cohort=self.model_cohort[rows], test_cohort=test_cohort,
                                cohort_cohort=self.cohort_cohort, top_n=self.top_n)


def prepare_cohort(verifier, cohort_csv, claimed, method: str, top_n, cache_dir, folder,
                   extra=()) -> tuple[Cohort, str]:
    """Enroll the cohort of ``cohort_csv`` and compute its fixed score matrices for the ``claimed`` speakers
    (and the ``extra`` enrolled speakers whose scores are normalised too: the enrolled-speaker T-norm's cohort).

    Returns the :class:`Cohort` and the path of the saved cohort models (in ``folder``) for the workers.
    Warns with :class:`DataLeakWarning` when cohort speakers are among the claimed speakers.
    """
    manifest = read_manifest(cohort_csv).reset_index(drop=True)
    if manifest.empty:
        raise ParameterError(f"{cohort_csv}: the cohort manifest holds no files")
    if top_n is not None and (isinstance(top_n, bool) or int(top_n) < 1):
        raise ParameterError(f"cohort top-N must be a positive integer, got {top_n!r}")
    overlap = sorted(set(manifest["speaker"]) & set(claimed))
    if overlap:
        warnings.warn(f"{len(overlap)} cohort speaker(s) are also claimed in the trials ({', '.join(overlap[:10])})"
                      ": their normalisation statistics include target scores; keep the cohort disjoint from the "
                      "evaluated speakers", DataLeakWarning, stacklevel=3)
    cache = FeatureCache(cache_dir, verifier.feature_config)
    frames = [cache.features(p) for p in progress(list(manifest["path"]), desc="cohort", unit="file")]
    # score_frames also loads the background model, which enrolling the cohort needs
    scored = list(claimed) + sorted(set(extra) - set(claimed))
    model_cohort = np.stack([verifier.score_frames(scored, f) for f in frames], axis=1)
    groups = manifest.groupby("speaker", sort=True).indices
    backend = verifier.backend
    models = [backend.enroll([frames[i] for i in idx])[0] for idx in groups.values()]
    cohort_cohort = np.stack([np.asarray(backend.score(backend.prepare(f), models), dtype=np.float64)
                              for f in frames], axis=1)
    path = Path(folder) / "cohort_models.npz"
    save_models(models, path)
    cohort = Cohort(method, None if top_n is None else int(top_n), model_cohort,
                    {s: i for i, s in enumerate(scored)}, cohort_cohort, tuple(groups))
    return cohort, str(path)


def save_models(models: list, path) -> None:
    """Save a list of speaker models (dicts of arrays) to one ``.npz`` (no pickles)."""
    np.savez(path, **{f"{i}:{name}": np.asarray(a) for i, m in enumerate(models) for name, a in m.items()})


def load_models(path) -> list:
    """The list of speaker models saved by :func:`save_models`."""
    models: dict[int, dict] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            index, name = key.split(":", 1)
            models.setdefault(int(index), {})[name] = data[key]
    return [models[i] for i in sorted(models)]
