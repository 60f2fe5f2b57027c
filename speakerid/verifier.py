"""SpeakerVerifier: train a background model, enroll, verify and identify, from audio files.

This is the file-level API that the CLI, the web app and batch scoring are thin shells over. It ties together
audio loading, the feature front end, a backend (GMM-UBM by default) and the model directory.
"""

from __future__ import annotations

import json
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from speakerid._utils.files import atomic_write
from speakerid._utils.progress import progress
from speakerid.backends.base import get_backend
from speakerid.data.augment import augment_header, check_copies
from speakerid.data.manifests import read_manifest, validate_speaker_id
from speakerid.exceptions import DataLeakWarning, ModelFormatError, ParameterError
from speakerid.features.config import FeatureConfig
from speakerid.features.pipeline import _many_features, file_features
from speakerid.models.gmm_ubm import GMMUBM
from speakerid.store import (
    COHORT_FILE,
    DEFAULT_BACKEND,
    FEATURES_FILE,
    THRESHOLDS_FILE,
    UBM_FILE,
    ModelStore,
    check_feature_config,
)

__all__ = ["SpeakerVerifier", "file_features",]

#: Noisy copies per background file in :meth:`SpeakerVerifier.train_ubm` unless told otherwise (multi-condition
#: training; chosen on the development protocol by ``bench/frontend_ablation.py`` among 1, 2 and 4 copies: with
#: the enrollment following the UBM it cut the dev noisy EER from 30.3 % to 14.9 % and the mean dev EER over
#: clean/short/noisy/8k from 15.7 % to 12.8 %).
DEFAULT_UBM_AUGMENT = 1
#: Background speakers drawn into the default cohort.
DEFAULT_COHORT_SPEAKERS = 100








def _finite_threshold(value, allow_infinite: bool = False) -> float:
    """A threshold as float; NaN (which rejects every claim) is refused, ±inf only where asked for."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"threshold must be a number, got {value!r}") from None
    if np.isnan(value) or (not allow_infinite and not np.isfinite(value)):
        raise ParameterError(f"threshold must be {'a number' if allow_infinite else 'finite'}, got {value}")
    return value


class SpeakerVerifier:
    """Enroll speakers into a model directory and verify or identify voices against them.

    Parameters
    ----------
    model_dir : str or os.PathLike
        Folder of the background model and speaker models (created when first written).
    backend : str, optional
        ``"gmm-ubm"`` (default; MAP-adapted GMM-UBM) or ``"gmm"`` (per-speaker EM GMMs), or any registered
        backend. ``None`` picks the only backend with enrolled speakers, else ``"gmm-ubm"``.
    feature_config : FeatureConfig, optional
        Front-end settings. A model directory keeps the configuration it was built with; giving a different one
        is a :class:`~speakerid.exceptions.ConfigMismatchError`.
    backend_params : dict, optional
        Scoring options of the backend (e.g. ``{"top_c": 0}`` for exact GMM-UBM scoring).
    n_jobs : int
        Parallel feature extraction over files (joblib).
    """

    def __init__(self, model_dir, backend=None, feature_config=None, backend_params=None, n_jobs=1):
        self.store = ModelStore(model_dir)
        if backend is None:
            present = self.store.backends()
            backend = present[0] if len(present) == 1 else DEFAULT_BACKEND
        self.backend_name = backend
        self.backend = get_backend(backend)(backend_params)
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0 or n_jobs < -1:
            raise ParameterError(f"n_jobs must be a positive integer or -1 (all cores), got {n_jobs!r}")
        self.n_jobs = int(n_jobs)
        self._requested_config = feature_config
        self._config = None
        self._background_loaded = False
        self._background_header = {}
        self._speaker_cache: dict[str, dict] = {}

    @property
    def model_dir(self) -> Path:
        return self.store.model_dir

    # ------------------------------------------------------------------ configuration
    @property
    def feature_config(self) -> FeatureConfig:
        """The directory's feature configuration (saved on first write; defaults when the directory is new)."""
        if self._config is None:
            saved = self.store.model_dir / FEATURES_FILE
            if saved.is_file():
                try:
                    config = FeatureConfig.from_json(saved.read_text(encoding="utf-8"))
                except (UnicodeDecodeError, ParameterError) as exc:
                    raise ModelFormatError(f"{saved}: unreadable feature configuration ({exc})") from None
                if self._requested_config is not None:
                    config.check_same(self._requested_config, f"model directory {self.model_dir}")
            else:
                config = self._requested_config or FeatureConfig()
            self._config = config
        return self._config

    def _save_config(self) -> None:
        path = self.store.model_dir / FEATURES_FILE
        if not path.is_file():
            with atomic_write(path, "w") as fh:
                fh.write(self.feature_config.to_json())

    def _load_background(self) -> None:
        if self._background_loaded:
            return
        if self.store.exists(UBM_FILE):
            header, arrays = self.store.load(UBM_FILE, expected_class="GMMUBM")
            check_feature_config(header, self.feature_config, f"{self.store.path(UBM_FILE)}")
            self._background_header = header
            if self.backend.background_file == UBM_FILE:
                self._take_background(UBM_FILE, self.backend.load_background, header, arrays)
            elif hasattr(self.backend, "use_ubm"):
                self._take_background(UBM_FILE, self.backend.use_ubm, arrays)
        other = self.backend.background_file
        if other and other != UBM_FILE and self.store.exists(other):
            header, arrays = self.store.load(other)
            check_feature_config(header, self.feature_config, f"{self.store.path(other)}")
            self._background_header = {**self._background_header, **header}
            self._take_background(other, self.backend.load_background, header, arrays)
        self.backend.check_ready()
        self._background_loaded = True

    def _take_background(self, name, load, *args) -> None:
        """Hand a background file's arrays to the backend; arrays it refuses make a ModelFormatError naming it."""
        try:
            load(*args)
        except ModelFormatError as exc:
            text = str(exc)
            path = str(self.store.path(name))
            raise ModelFormatError(text if path in text else f"{path}: {text}") from None
        except (ParameterError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise ModelFormatError(f"{self.store.path(name)}: invalid model arrays "
                                   f"({' '.join(str(exc).split())})") from None

    # ------------------------------------------------------------------ background model
    def train_ubm(self, files, speakers=None, n_components=256, relevance_factor=16.0, top_c=5, max_iter=10,
                  random_state=0, verbose=False, augment=DEFAULT_UBM_AUGMENT) -> GMMUBM:
        """Train and save the universal background model from audio files (or a manifest path).

        ``augment=N`` adds N noisy copies of every background file (multi-condition training: generic noise
        seeded by ``random_state`` and the file's position, see :func:`augmented_features`; default
        :data:`DEFAULT_UBM_AUGMENT`, 0 for clean training only); the header records it under ``"augment"`` and
        :meth:`enroll` makes as many copies by default.

        Returns the fitted :class:`~speakerid.models.gmm_ubm.GMMUBM`. Warns with :class:`DataLeakWarning`
        when already-enrolled speakers are among the background speakers. Given a manifest, also records a
        draw of its speakers as the directory's default score-normalisation cohort (:meth:`set_cohort`).
        """
        augment = check_copies(augment)
        manifest = None
        if isinstance(files, (str, Path)):
            manifest = read_manifest(files)
            files, speakers = list(manifest["path"]), list(manifest["speaker"])
        files = list(files)
        if not files:
            raise ParameterError("no background files given")
        background_ids = sorted(set(speakers)) if speakers is not None else []
        self._warn_overlap(set(background_ids) & set(self._all_enrolled()), "already enrolled")
        extracted = _many_features(files, self.feature_config, self.n_jobs, desc="UBM features", copies=augment,
                                   seed=random_state)
        features = [f for frames, _ in extracted for f in (frames if augment else [frames])]
        model = GMMUBM(n_components=n_components, relevance_factor=relevance_factor, top_c=top_c,
                       max_iter=max_iter, random_state=random_state, verbose=verbose).fit(features)
        header = {"model_class": "GMMUBM", "params": model.get_params(), "feature_config":
                  self.feature_config.to_dict(), "feature_hash": self.feature_config.hash(),
                  "ubm_hash": model.ubm_hash_, "n_files": len(files), "n_frames": int(sum(len(f) for f in features)),
                  "background_speakers": background_ids, "augment": augment_header(augment, random_state),
                  "log_likelihood_history": [float(v) for v in getattr(model.ubm_, "log_likelihood_history_", [])]}
        with self.store.lock():
            self._save_config()
            self.store.save(UBM_FILE, model.to_arrays(), header)
        self._background_loaded = False
        self._speaker_cache.clear()
        if manifest is not None:   # the default score-normalisation cohort: background speakers
            self.set_cohort(manifest)
        return model

    def _all_enrolled(self) -> list[str]:
        return [s for b in self.store.backends() for s in self.store.speakers(b)]

    @staticmethod
    def _warn_overlap(overlap, how) -> None:
        if overlap:
            shown = ", ".join(sorted(overlap)[:10])
            warnings.warn(f"{len(overlap)} speaker(s) are both background and {how} speakers ({shown}): "
                          "evaluation on them is optimistic; keep background and test speakers disjoint",
                          DataLeakWarning, stacklevel=3)

    # ------------------------------------------------------------------ enrollment
    def enroll(self, speaker: str, files, augment: int | None = None, *, names=None) -> dict:
        """Enroll (or re-enroll, replacing) one speaker from audio files; other speakers are untouched.

        ``augment=N`` also adapts the model on N noisy copies of each file (seeded by the speaker id; recorded
        in the speaker's header). ``None`` (the default) follows the background model: as many copies as
        :meth:`train_ubm` made (0 for a UBM trained without them) -- multi-condition training helped only when
        the UBM and the speaker models both saw noise (``bench/frontend_ablation.py``). ``names``: what to
        record as the source file names in the model's header (default: the files' own names), e.g. the names
        users gave to uploads saved under random names.
        """
        if augment is not None:
            augment = check_copies(augment)
        speaker = validate_speaker_id(speaker)
        files = [str(f) for f in ([files] if isinstance(files, (str, Path)) else files)]
        if not files:
            raise ParameterError(f"no enrollment files for speaker {speaker!r}")
        names = [Path(f).name for f in files] if names is None else [str(n) for n in names]
        if len(names) != len(files):
            raise ParameterError(f"{len(names)} names given for {len(files)} enrollment files")
        self._load_background()
        if augment is None:
            augment = int((self._background_header.get("augment") or {}).get("copies", 0))
        self._warn_overlap({speaker} & set(self._background_header.get("background_speakers", [])), "enrolled")
        seed = zlib.crc32(speaker.encode("utf-8"))
        extracted = _many_features(files, self.feature_config, self.n_jobs, desc=f"enroll {speaker}",
                                   copies=augment, seed=seed)
        if augment:  # the copies enlarge the adaptation data; the header counts the clean frames
            arrays, params = self.backend.enroll([f for frames, _ in extracted for f in frames])
            extracted = [(frames[0], seconds) for frames, seconds in extracted]
        else:
            arrays, params = self.backend.enroll([f for f, _ in extracted])
        seconds = float(sum(s for _, s in extracted))
        header = {"model_class": self.backend.speaker_class, "params": params,
                  "feature_config": self.feature_config.to_dict(), "feature_hash": self.feature_config.hash(),
                  "background_hash": self.backend.background_hash, "n_files": len(files),
                  "total_seconds": round(seconds, 3), "n_frames": int(sum(len(f) for f, _ in extracted)),
                  "files": names}
        if augment:
            header["augment"] = augment_header(augment, seed)
        self._save_config()
        self.store.save_speaker(speaker, arrays, header, backend=self.backend_name)
        self._speaker_cache.pop(speaker, None)
        return {"speaker": speaker, "backend": self.backend_name, "n_files": len(files),
                "total_seconds": header["total_seconds"], "n_frames": header["n_frames"]}

    def enroll_manifest(self, manifest, augment: int | None = None) -> list[dict]:
        """Enroll every speaker of a ``speaker,path`` manifest (grouped by speaker); ``augment`` as :meth:`enroll`."""
        frame = read_manifest(manifest)
        groups = list(frame.groupby("speaker", sort=True)["path"])
        return [self.enroll(speaker, list(paths), augment=augment) for speaker, paths in progress(groups, desc="enroll",
                                                                                  unit="speaker")]

    def speakers(self) -> list[str]:
        return self.store.speakers(self.backend_name)

    def speaker_info(self) -> list[dict]:
        """One dict per enrolled speaker: id, files, seconds, frames, enrolled-at time."""
        return [{"speaker": h["speaker"], "n_files": h.get("n_files"), "total_seconds": h.get("total_seconds"),
                 "n_frames": h.get("n_frames"), "enrolled_at": h.get("created_at"), "backend": self.backend_name}
                for h in sorted(self.store.speaker_headers(self.backend_name), key=lambda h: h["speaker"])]

    def remove(self, speaker: str) -> None:
        self.store.remove_speaker(speaker, backend=self.backend_name)
        self._speaker_cache.pop(speaker, None)

    # ------------------------------------------------------------------ scoring
    def _speaker_model(self, speaker: str) -> dict:
        if speaker not in self._speaker_cache:
            header, arrays = self.store.load_speaker(speaker, backend=self.backend_name,
                                                     expected_class=self.backend.speaker_class)
            path = self.store.speaker_path(speaker, self.backend_name)
            check_feature_config(header, self.feature_config, f"{path}")
            self.backend.check_speaker_header(header, path)
            self._speaker_cache[speaker] = arrays
        return self._speaker_cache[speaker]

    def features(self, path) -> np.ndarray:
        """The frames of one audio file under the directory's feature configuration."""
        return file_features(path, self.feature_config)[0]

    def score_frames(self, speakers, frames) -> np.ndarray:
        """Scores of one utterance's frames against each of ``speakers`` (loaded once, then cached)."""
        self._load_background()
        models = [self._speaker_model(validate_speaker_id(s)) for s in speakers]
        return np.asarray(self.backend.score(self.backend.prepare(frames), models), dtype=np.float64)

    @property
    def threshold(self) -> float:
        """The saved decision threshold of this backend, or the backend's default."""
        saved = self._thresholds().get(self.backend_name)
        return float(saved) if saved is not None else float(self.backend.default_threshold)

    def set_threshold(self, value: float) -> None:
        """Save a decision threshold for this backend in the model directory."""
        value = _finite_threshold(value)
        with self.store.lock():
            thresholds = {**self._thresholds(), self.backend_name: value}
            with atomic_write(self.store.model_dir / THRESHOLDS_FILE, "w") as fh:
                json.dump(thresholds, fh, indent=1, sort_keys=True)

    def set_cohort(self, manifest, max_speakers: int | None = DEFAULT_COHORT_SPEAKERS,
                   random_state: int = 0) -> Path:
        """Record the impostor cohort used by default for score normalisation (``cohort.csv``).

        ``manifest`` is a ``speaker,path`` manifest (path or frame); a seeded draw of ``max_speakers`` of its
        speakers (all of them with ``None``) is kept, every file of each, with absolute paths, so the cohort is
        found from any working directory (move the audio and the cohort has to be set again). Warns with
        :class:`DataLeakWarning` when cohort speakers are enrolled. Returns the written file.
        """
        frame = read_manifest(manifest) if isinstance(manifest, (str, Path)) else manifest
        speakers = sorted(frame["speaker"].unique())
        if not speakers:
            raise ParameterError("the cohort manifest holds no speakers")
        if max_speakers is not None:
            if isinstance(max_speakers, bool) or int(max_speakers) < 2:
                raise ParameterError(f"a cohort needs at least 2 speakers, got max_speakers={max_speakers!r}")
            if len(speakers) > int(max_speakers):
                rng = np.random.default_rng(random_state)
                speakers = sorted(rng.choice(speakers, size=int(max_speakers), replace=False).tolist())
        self._warn_overlap(set(speakers) & set(self._all_enrolled()), "enrolled")
        chosen = frame[frame["speaker"].isin(speakers)]
        rows = pd.DataFrame({"speaker": chosen["speaker"],
                             "path": [str(Path(p).resolve()) for p in chosen["path"]]})
        path = self.store.model_dir / COHORT_FILE
        with self.store.lock():
            with atomic_write(path, "w") as fh:
                rows.to_csv(fh, index=False, lineterminator="\n")
        return path

    def _thresholds(self) -> dict:
        path = self.store.model_dir / THRESHOLDS_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (OSError, ValueError):
            data = {}
        return data if isinstance(data, dict) else {}

    def verify(self, speaker: str, audio, threshold: float | None = None) -> dict:
        """Score a claim that ``audio`` (a file path) is ``speaker``; accept when the score >= the threshold."""
        speaker = validate_speaker_id(speaker)
        frames = self.features(audio)
        score = float(self.score_frames([speaker], frames)[0])
        threshold = self.threshold if threshold is None else _finite_threshold(threshold, True)
        return {"speaker": speaker, "file": str(audio), "score": score, "threshold": threshold,
                "accepted": bool(score >= threshold), "decision": "accept" if score >= threshold else "reject",
                "backend": self.backend_name}

    def identify(self, audio, top: int = 5, threshold: float | None = None, frames=None) -> dict:
        """Rank enrolled speakers by score for ``audio``; ``best`` is ``"unknown"`` below the threshold."""
        if int(top) < 1:
            raise ParameterError(f"top must be >= 1, got {top}")
        speakers = self.speakers()
        if not speakers:
            from speakerid.exceptions import NotFittedError
            raise NotFittedError(f"no speaker is enrolled in {self.model_dir} (backend {self.backend_name})")
        frames = self.features(audio) if frames is None else frames
        scores = self.score_frames(speakers, frames)
        order = np.argsort(-scores, kind="stable")[: int(top)]
        threshold = self.threshold if threshold is None else _finite_threshold(threshold, True)
        ranked = [{"speaker": speakers[i], "score": float(scores[i])} for i in order]
        best = ranked[0]["speaker"] if ranked[0]["score"] >= threshold else "unknown"
        return {"file": str(audio), "best": best, "threshold": threshold, "candidates": ranked,
                "backend": self.backend_name}
