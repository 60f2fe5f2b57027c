"""Score normalisation shared by every backend: the cohort kept in the model directory and the normaliser that
``verify``, ``identify`` and batch ``score`` all apply, so that one trial gets one score whatever scored it.

The directory's cohort (``cohort.csv``, drawn from the background speakers by ``train-ubm``) is prepared once and
stored as ``cohort-<backend>.npz``: its speaker models and its utterances' frames (a shipped model's packed cohort:
float16, or the i-vectors), with the hash of ``cohort.csv``, of the background model and of the feature
configuration. A changed cohort list, UBM or front end makes the file stale: rebuilt, never used. Each speaker's
scores on the cohort utterances (Z-norm side) are kept in its header under a key hashing the cohort's content and
the scoring parameters; one that does not match is recomputed. Arithmetic: :mod:`speakerid.evaluation.norm`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speakerid._utils.files import unless_read_only
from speakerid._utils.hashing import arrays_hash
from speakerid._utils.progress import progress
from speakerid._utils.validation import shorten
from speakerid.backends._packed import unpack_arrays
from speakerid.data.manifests import read_manifest
from speakerid.evaluation.norm import (
    AUTO_ENROLLED_MIN,
    ENROLLED,
    ENROLLED_COHORT_MAX,
    NORM_METHODS,
    leave_out_tnorm,
    normalize_scores,
)
from speakerid.exceptions import DataLeakWarning, ModelFormatError, ParameterError
from speakerid.features.cache import FeatureCache
from speakerid.features.pipeline import background_features
from speakerid.store import COHORT_FILE, load_model_file, save_model_file

__all__ = ["NORM_METHODS", "ENROLLED", "ENROLLED_COHORT_MAX", "AUTO_ENROLLED_MIN", "NORMALIZED_THRESHOLD",
           "COHORT_SCORES", "parse_norm", "resolve_norm", "enrolled_cohort", "CohortSet", "directory_cohort",
           "build_cohort", "cohort_scores", "rows_key", "ScoreNormalizer", "CohortNormalization",
           "add_cohort_scores", "scores_entry"]

#: Default decision threshold of normalised scores, set a priori (not tuned): Z/T/S-norm make impostor scores
#: about standard normal, so 2.0 is "2 impostor standard deviations", about 2.3 % false accepts if they were
#: exactly Gaussian. Raw scores keep the backend's own default. Choose and save a threshold for an operating
#: point on development scores (``speakerid set-threshold``).
NORMALIZED_THRESHOLD = 2.0
#: What :data:`NORMALIZED_THRESHOLD` means, said with every decision that uses it.
MEANING = "a priori: 2 impostor standard deviations (not a probability; 'speakerid train' gives calibrated LLRs)"
#: Speaker-header entry of the speaker's scores on the cohort utterances (one per scoring: :func:`scores_entry`).
COHORT_SCORES = "cohort_scores"


def scores_entry(backend) -> str:
    """The header entry of a speaker's cohort scores under ``backend``'s scoring parameters."""
    return COHORT_SCORES + (":" + json.dumps(backend.params, sort_keys=True, default=str) if backend.params else "")
_COHORT_CLASS = "CohortSet"


# ------------------------------------------------------------------------------------------------ options
def parse_norm(norm) -> tuple:
    """``(method, enrolled)`` of a ``norm`` value: method None/"auto"/a cohort method; enrolled True/False/"auto".

    >>> parse_norm("snorm+enrolled"), parse_norm("enrolled"), parse_norm("auto"), parse_norm(None)
    (('snorm', True), (None, True), ('auto', 'auto'), (None, False))
    """
    if norm is None or norm == "none":
        return None, False
    if norm == "auto":
        return "auto", "auto"
    if norm == ENROLLED:
        return None, True
    method, plus, suffix = norm.partition("+") if isinstance(norm, str) else (norm, "", "")
    if method in NORM_METHODS and (not plus or suffix == ENROLLED):
        return method, bool(plus)
    raise ParameterError(f"unknown score normalisation {norm!r}; choose auto, none, {ENROLLED}, one of "
                         f"{', '.join(NORM_METHODS)}, or one of those followed by +{ENROLLED}")


def resolve_norm(norm, cohort, model_dir) -> tuple:
    """``(method, cohort, enrolled)``: ``norm="auto"`` is S-norm when a cohort is given or the directory has
    ``cohort.csv`` (then ``cohort`` is that file). Raises :class:`ParameterError` for an unknown method, a cohort
    without a method or a method without a cohort."""
    method, enrolled = parse_norm(norm)
    own = Path(model_dir) / COHORT_FILE
    if method == "auto":
        method = "snorm" if cohort is not None or own.is_file() else None
    if method is None and cohort is not None:
        raise ParameterError("a cohort was given but no cohort normalisation: drop the cohort or choose "
                             f"one of {', '.join(NORM_METHODS)}")
    if method is not None and cohort is None:
        if not own.is_file():
            raise ParameterError(f"score normalisation {method!r} needs a cohort manifest: give one, or train the "
                                 f"UBM from a manifest so that {own} is written")
        cohort = own
    return method, cohort, enrolled


def enrolled_cohort(speakers, enrolled) -> tuple:
    """The enrolled speakers the T-norm over the others uses (``enrolled`` True or "auto"), or ``()``."""
    speakers = sorted(speakers)
    if not enrolled or (enrolled == "auto" and len(speakers) < AUTO_ENROLLED_MIN):
        return ()
    if len(speakers) < 3:
        raise ParameterError(f"T-norm over the enrolled speakers needs at least 3 enrolled speakers (the claimed "
                             f"one is left out of its cohort); {len(speakers)} are enrolled")
    if len(speakers) > ENROLLED_COHORT_MAX:   # a seeded draw: the same cohort for every run on these models
        keep = np.random.default_rng(0).choice(len(speakers), ENROLLED_COHORT_MAX, replace=False)
        speakers = [speakers[i] for i in sorted(keep)]
    return tuple(speakers)


# ------------------------------------------------------------------------------------------------ the cohort
@dataclass
class CohortSet:
    """An enrolled impostor cohort: a model per cohort speaker, each utterance as frames or prepared (i-vector)."""

    speakers: tuple
    models: list
    utterances: list
    key: str                  # hash of the models, the utterances and the background model they were made with
    prepared: bool = False    # utterances are ``backend.prepare`` outputs (a packed cohort), not frames

    def scores(self, backend, models) -> np.ndarray:
        """:func:`cohort_scores` of ``models`` against this cohort's utterances."""
        return cohort_scores(backend, models, self.utterances, prepared=self.prepared)


def _manifest_hash(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _identity(backend, backend_name: str, config, cohort_csv) -> dict:
    return {"cohort_hash": _manifest_hash(cohort_csv), "background_hash": str(backend.background_hash),
            "feature_hash": config.hash(), "backend": backend_name}


def cohort_path(store, backend_name: str) -> Path:
    """Where the directory's prepared cohort of ``backend_name`` is kept."""
    return store.path(f"cohort-{backend_name}.npz")


def directory_cohort(store, backend, backend_name: str, config, *, cache_dir=None, frames=None) -> CohortSet:
    """The directory's cohort (``cohort.csv``) enrolled with ``backend``: read from its file when that was made
    from this very cohort list, background model and front end, else built (``frames``: the cohort files' frames
    when the caller has them, else extracted) and saved for the next run (kept in memory when the directory is
    read-only)."""
    csv = store.model_dir / COHORT_FILE
    path = cohort_path(store, backend_name)
    identity = _identity(backend, backend_name, config, csv)
    if frames is None and path.is_file():
        stat = path.stat()
        found = _read_cohort(str(path), stat.st_mtime_ns, stat.st_size, json.dumps(identity, sort_keys=True))
        if found is not None:
            return found
    cohort = build_cohort(backend, csv, config, cache_dir=cache_dir, frames=frames)
    arrays = _to_arrays(cohort)
    with unless_read_only(), store.lock():          # read-only: this run keeps it in memory
        save_model_file(path, arrays, {"model_class": _COHORT_CLASS, **identity, "key": cohort.key,
                                       "speakers": list(cohort.speakers)})
    return cohort


@functools.lru_cache(maxsize=2)
def _read_cohort(path: str, mtime_ns: int, size: int, identity: str) -> CohortSet | None:
    """The cohort file when its header has ``identity`` (JSON), else None (stale or unreadable: rebuilt). Read once
    per version of the file in a process: a fused system's inputs (cosine and PLDA) share one."""
    try:
        header, arrays = load_model_file(path, _COHORT_CLASS)
    except ModelFormatError:
        return None
    wanted = json.loads(identity)
    return _from_arrays(header, arrays) if all(header.get(k) == v for k, v in wanted.items()) else None


def build_cohort(backend, cohort_csv, config, *, cache_dir=None, frames=None) -> CohortSet:
    """Enroll every speaker of a ``speaker,path[,condition]`` cohort manifest with ``backend`` (from the clean
    frames of its files: ``frames`` in manifest order, else extracted through the feature cache ``cache_dir``; a
    row with a ``condition`` is degraded first, seeded, its frames not cached)."""
    manifest = read_manifest(cohort_csv).reset_index(drop=True)
    if manifest.empty:
        raise ParameterError(f"{cohort_csv}: the cohort manifest holds no files")
    if frames is None:
        cache = FeatureCache(cache_dir, config, extract=background_features)
        conditions = (manifest["condition"].fillna("").astype(str).str.strip() if "condition" in manifest.columns
                      else [""] * len(manifest))
        frames = [_degraded_frames(p, c, config) if c else cache.features(p)
                  for p, c in progress(list(zip(manifest["path"], conditions)), desc="cohort", unit="file")]
    groups = manifest.groupby("speaker", sort=True).indices
    models = [backend.enroll([frames[i] for i in idx])[0] for idx in groups.values()]
    utterances = [np.asarray(f, dtype=np.float32) for f in frames]
    key = arrays_hash({**_flat_models(models), "frames": np.concatenate(utterances),
                       "background": np.frombuffer(str(backend.background_hash).encode(), np.uint8)})
    return CohortSet(tuple(str(s) for s in groups), models, utterances, key)


def _degraded_frames(path, condition: str, config) -> np.ndarray:
    """The frames of a cohort file through ``condition`` (a :mod:`speakerid.degrade` condition that needs no
    recordings, e.g. ``telephone:gsm``), seeded by the path and the condition: the same cohort rebuilds the same."""
    import zlib

    from speakerid.data.audio import load_audio, resample
    from speakerid.degrade import degrade
    from speakerid.features import extract
    from speakerid.features.framing import remove_dc_offset

    signal, rate = load_audio(path, sample_rate=config.sample_rate)
    out = degrade(signal, rate, condition, random_state=zlib.crc32(f"{path}|{condition}".encode()))
    if out.sample_rate != config.sample_rate:
        out = out._replace(signal=resample(out.signal, out.sample_rate, config.sample_rate))
    filtered = remove_dc_offset(np.asarray(out.signal, dtype=np.float32), config.sample_rate)
    return extract(filtered, config, dc_removed=True)


def _flat_models(models) -> dict:
    return {f"model{i}:{name}": np.asarray(a) for i, m in enumerate(models) for name, a in m.items()}


def _unflatten(arrays: dict) -> list:
    models: dict[int, dict] = {}
    for index, key, value in ((*k[5:].split(":", 1), v) for k, v in arrays.items() if k.startswith("model")):
        models.setdefault(int(index), {})[key] = value
    return [models[i] for i in sorted(models)]


def _to_arrays(cohort: CohortSet) -> dict:
    if cohort.prepared:
        return {**_flat_models(cohort.models), "prepared": np.stack(cohort.utterances)}
    lengths = np.array([len(u) for u in cohort.utterances], dtype=np.int64)
    return {**_flat_models(cohort.models), "frames": np.concatenate(cohort.utterances), "lengths": lengths}


def _from_arrays(header: dict, arrays: dict) -> CohortSet:
    arrays = unpack_arrays(arrays) if header.get("packed") else arrays    # a shipped model's (8-bit) cohort
    if "prepared" in arrays:
        return CohortSet(tuple(header["speakers"]), _unflatten(arrays), list(arrays["prepared"]), header["key"], True)
    bounds = np.r_[0, np.cumsum(arrays["lengths"])]
    utterances = [arrays["frames"][a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return CohortSet(tuple(header["speakers"]), _unflatten(arrays), utterances, header["key"])


def cohort_scores(backend, models, utterances, *, prepared: bool = False) -> np.ndarray:
    """Scores of each model (rows) against each cohort utterance (columns), float64 (n_models, n_utterances);
    each utterance is prepared once for all the models (``prepared``: the utterances already are)."""
    if not models:
        return np.zeros((0, len(utterances)))
    return np.stack([np.asarray(backend.score(u if prepared else backend.prepare(u), models), dtype=np.float64)
                     for u in utterances], axis=1)


def rows_key(cohort: CohortSet, backend) -> str:
    """The key under which a speaker's cohort scores are kept: the cohort's content and the scoring parameters."""
    params = json.dumps(backend.params, sort_keys=True, default=str)
    return hashlib.sha256(f"{cohort.key}\0{params}".encode()).hexdigest()[:32]


# ------------------------------------------------------------------------------------------------ the normaliser
@dataclass
class ScoreNormalizer:
    """Everything the normalisation of one test utterance's scores needs, fixed for a run.

    ``method`` (a cohort method of :mod:`speakerid.evaluation.norm`, or None) uses ``cohort_models`` (T side:
    scored on the test utterance) and ``model_cohort`` (speaker -> its scores on the cohort utterances, Z side);
    ``enrolled`` (possibly empty) is the cohort of the T-norm over the other enrolled speakers, applied after.
    """

    method: str | None
    top_n: int | None = None
    cohort_models: list = field(default_factory=list)
    model_cohort: dict = field(default_factory=dict)
    cohort_cohort: np.ndarray | None = None
    enrolled: tuple = ()
    scale: str = "none"

    def needed(self, claimed) -> list:
        """``claimed`` plus the enrolled cohort speakers it lacks: every speaker a test file is scored against."""
        have = set(claimed)
        return list(claimed) + [s for s in self.enrolled if s not in have]

    def score(self, backend, prepared, claimed, model_of) -> np.ndarray:
        """Normalised scores (float64, one per ``claimed`` speaker) of one prepared test utterance; every model
        (claimed, enrolled cohort, impostor cohort) is scored from the same ``prepared`` alignment."""
        speakers = self.needed(claimed)
        raw = np.asarray(backend.score(prepared, [model_of(s) for s in speakers]), dtype=np.float64)
        test = None
        if self.method in ("tnorm", "snorm", "ztnorm"):
            test = np.asarray(backend.score(prepared, self.cohort_models), dtype=np.float64)
        return self.normalize(raw, speakers, len(claimed), test)

    def normalize(self, raw, speakers, n_claimed: int, test_cohort=None) -> np.ndarray:
        """The first ``n_claimed`` of ``raw`` (scores of one test utterance against ``speakers``, which include
        the enrolled cohort), normalised; ``test_cohort`` (n_cohort_models,) are its cohort-model scores."""
        scores = np.asarray(raw, dtype=np.float64)
        if self.method is not None:
            z = (np.stack([self.model_cohort[s] for s in speakers])
                 if self.method in ("znorm", "snorm", "ztnorm") else None)
            t = None if test_cohort is None else np.broadcast_to(test_cohort, (len(scores), len(test_cohort)))
            scores = normalize_scores(scores, self.method, model_cohort=z, test_cohort=t,
                                      cohort_cohort=self.cohort_cohort, top_n=self.top_n)
        if self.enrolled:
            index = {s: i for i, s in enumerate(self.enrolled)}
            where = np.fromiter((index.get(s, -1) for s in speakers), dtype=np.int64, count=len(speakers))
            cohort = np.empty(len(self.enrolled))
            cohort[where[where >= 0]] = scores[where >= 0]      # every cohort speaker is among ``speakers``
            return leave_out_tnorm(scores[:n_claimed], cohort, where[:n_claimed])
        return scores[:n_claimed]

    def save(self, path) -> None:
        """Write the normaliser to one ``.npz`` (no pickles), for workers to :meth:`load`."""
        speakers = sorted(self.model_cohort)
        arrays = {**_flat_models(self.cohort_models),
                  "rows": (np.stack([self.model_cohort[s] for s in speakers]) if speakers else np.zeros((0, 0)))}
        if self.cohort_cohort is not None:
            arrays["cohort_cohort"] = self.cohort_cohort
        meta = {"method": self.method, "top_n": self.top_n, "enrolled": list(self.enrolled), "scale": self.scale,
                "row_speakers": speakers}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path) -> ScoreNormalizer:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(bytes(arrays.pop("meta")).decode("utf-8"))
        rows = arrays.pop("rows")
        cohort_cohort = arrays.pop("cohort_cohort", None)
        models = _unflatten(arrays)
        return cls(meta["method"], meta["top_n"], models, dict(zip(meta["row_speakers"], rows)), cohort_cohort,
                   tuple(meta["enrolled"]), meta["scale"])


class CohortNormalization:
    """The score normalisation of one model directory and backend, resolved once and filled in lazily.

    Parameters
    ----------
    store : ModelStore
    backend : Backend
        With its background model loaded.
    backend_name : str
    config : FeatureConfig
    norm, cohort, cohort_top
        As :func:`speakerid.scoring.batch.score_trials` (``"auto"``: S-norm with the directory's cohort when it
        has one, then T-norm over the other enrolled speakers when at least :data:`AUTO_ENROLLED_MIN` are).
    enrolled_speakers : list of str
        The speakers enrolled with ``backend``.
    entry : callable
        ``entry(speaker) -> (header, arrays)`` of an enrolled speaker.
    cache_dir : str, optional
        Feature cache for cohort files that must be read.
    """

    def __init__(self, store, backend, backend_name: str, config, *, norm="auto", cohort=None, cohort_top=None,
                 enrolled_speakers=(), entry=None, cache_dir=None):
        self.store, self.backend, self.backend_name, self.config = store, backend, backend_name, config
        self.entry, self.cache_dir = entry, cache_dir
        method, cohort_csv, enrolled = resolve_norm(norm, cohort, store.model_dir)
        if cohort_top is not None and (method is None or isinstance(cohort_top, bool) or int(cohort_top) < 1):
            raise ParameterError(f"cohort top-N must be a positive integer used with a cohort method, got "
                                 f"{cohort_top!r}")
        self.own_cohort = cohort_csv is not None and (
            Path(cohort_csv).resolve() == (store.model_dir / COHORT_FILE).resolve())
        self.cohort_csv = cohort_csv
        top_n = None if cohort_top is None else int(cohort_top)
        enrolled = enrolled_cohort(enrolled_speakers, enrolled)
        scale = "+".join(([f"{method}{'' if top_n is None else f' top {top_n}'}"] if method else [])
                         + ([ENROLLED] if enrolled else [])) or "none"
        self.normalizer_ = ScoreNormalizer(method, top_n, enrolled=enrolled, scale=scale)
        self.cohort_ = None
        self._warned: set = set()

    @property
    def scale(self) -> str:
        """What the scores are: ``"none"`` (raw), else e.g. ``"snorm+enrolled"``."""
        return self.normalizer_.scale

    def cohort(self) -> CohortSet:
        """The cohort of the run's method (the directory's, kept in its file, or the given manifest's)."""
        if self.cohort_ is None:
            self.cohort_ = (directory_cohort(self.store, self.backend, self.backend_name, self.config,
                                             cache_dir=self.cache_dir) if self.own_cohort
                            else build_cohort(self.backend, self.cohort_csv, self.config, cache_dir=self.cache_dir))
        return self.cohort_

    def normalizer(self, speakers=()) -> ScoreNormalizer | None:
        """The normaliser (None for raw scores) holding the cohort scores of ``speakers`` and the enrolled cohort."""
        normalizer = self.normalizer_
        if normalizer.scale == "none":
            return None
        method = normalizer.method
        if method is not None and not normalizer.cohort_models:
            cohort = self.cohort()
            normalizer.cohort_models = cohort.models
            if method == "ztnorm":
                normalizer.cohort_cohort = cohort.scores(self.backend, cohort.models)
        if method is not None:
            overlap = sorted(set(normalizer.needed(speakers)) & set(self.cohort().speakers) - self._warned)
            if overlap:
                self._warned.update(overlap)
                warnings.warn(f"{len(overlap)} cohort speaker(s) are also scored speakers ({shorten(overlap)}): "
                              "their normalisation statistics include target scores; keep the cohort disjoint "
                              "from the evaluated speakers", DataLeakWarning, stacklevel=3)
        if method in ("znorm", "snorm", "ztnorm"):
            missing = [s for s in normalizer.needed(speakers) if s not in normalizer.model_cohort]
            if missing:
                normalizer.model_cohort.update(self._rows(missing))
        return normalizer

    def _rows(self, speakers) -> dict:
        """Each speaker's scores on the cohort utterances: from its header when kept there under the current key,
        else computed (and kept, for the directory's cohort)."""
        cohort = self.cohort()
        key = rows_key(cohort, self.backend)
        rows, todo = {}, []
        for speaker in speakers:
            header, arrays = self.entry(speaker)
            saved = header.get(scores_entry(self.backend)) if self.own_cohort else None
            if (isinstance(saved, dict) and saved.get("key") == key
                    and len(saved.get("scores", ())) == len(cohort.utterances)):
                rows[speaker] = np.asarray(saved["scores"], dtype=np.float64)
            else:
                todo.append((speaker, arrays))
        if todo:
            computed = cohort.scores(self.backend, [arrays for _, arrays in todo])
            for (speaker, _), row in zip(todo, computed):
                rows[speaker] = row
                if self.own_cohort:
                    self._keep(speaker, {"key": key, "scores": row.tolist()})
        return rows

    def _keep(self, speaker, entry) -> None:
        with unless_read_only():                   # read-only directory: recomputed next time
            self.store.update_speaker_header(speaker, self.backend_name, {scores_entry(self.backend): entry})


def add_cohort_scores(store, backend, backend_name: str, config, enrolled, cache_dir=None) -> None:
    """Put the :func:`scores_entry` in the header of each freshly enrolled ``(arrays, header)`` (every model scored
    from one preparation of each cohort utterance); nothing when the directory has no cohort."""
    if not enrolled or not (store.model_dir / COHORT_FILE).is_file():
        return
    cohort = directory_cohort(store, backend, backend_name, config, cache_dir=cache_dir)
    key = rows_key(cohort, backend)
    rows = cohort.scores(backend, [arrays for arrays, _ in enrolled])
    for (_, header), row in zip(enrolled, rows):
        header[scores_entry(backend)] = {"key": key, "scores": row.tolist()}
