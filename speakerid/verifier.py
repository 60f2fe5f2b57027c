"""SpeakerVerifier: train a background model, enroll, verify and identify, from audio files.

This is the file-level API that the CLI, the web app and batch scoring are thin shells over. It ties together
audio loading, the feature front end, a backend (GMM-UBM by default) and the model directory.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
from joblib import Parallel, delayed

from ._progress import progress
from .backends import UBM_FILE, get_backend
from .exceptions import BandwidthWarning, DataLeakWarning, ParameterError
from .features import extract
from .features.config import FeatureConfig
from .io import atomic_write, load_audio, read_manifest
from .models.gmm_ubm import GMMUBM
from .store import DEFAULT_BACKEND, ModelStore, check_feature_config, validate_speaker_id

__all__ = ["SpeakerVerifier", "file_features"]

FEATURES_FILE = "features.json"
THRESHOLDS_FILE = "thresholds.json"


def file_features(path, config: FeatureConfig) -> tuple[np.ndarray, float]:
    """Load one audio file and return ``(frames, seconds)`` under ``config``.

    Warns with :class:`BandwidthWarning` when the file's rate is below the configuration's (upsampling adds no
    information above the file's Nyquist frequency; train the model at the lower rate instead).
    """
    try:
        native_rate = sf.info(str(path)).samplerate
    except Exception:  # load_audio below reports unreadable files properly
        native_rate = None
    signal, rate = load_audio(path, sample_rate=config.sample_rate)
    if native_rate is not None and native_rate < config.sample_rate:
        warnings.warn(f"{path}: {native_rate} Hz audio upsampled to the model's {config.sample_rate} Hz; the band "
                      f"above {native_rate // 2} Hz is empty (consider a model at --sample-rate {native_rate})",
                      BandwidthWarning, stacklevel=2)
    return extract(signal, config), len(signal) / rate


def _many_features(paths, config, n_jobs=1, desc="features"):
    paths = [str(p) for p in paths]
    if n_jobs in (None, 1) or len(paths) < 4:
        return [file_features(p, config) for p in progress(paths, desc=desc, unit="file")]
    return Parallel(n_jobs=n_jobs)(delayed(file_features)(p, config)
                                   for p in progress(paths, desc=desc, unit="file"))


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
        self.n_jobs = n_jobs
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
                config = FeatureConfig.from_json(saved.read_text(encoding="utf-8"))
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
        self._background_loaded = True
        if self.store.exists(UBM_FILE):
            header, arrays = self.store.load(UBM_FILE, expected_class="GMMUBM")
            check_feature_config(header, self.feature_config, f"{self.store.path(UBM_FILE)}")
            self._background_header = header
            if self.backend.background_file == UBM_FILE:
                self.backend.load_background(header, arrays)
            elif hasattr(self.backend, "use_ubm"):
                self.backend.use_ubm(arrays)
        other = self.backend.background_file
        if other and other != UBM_FILE and self.store.exists(other):
            header, arrays = self.store.load(other)
            check_feature_config(header, self.feature_config, f"{self.store.path(other)}")
            self._background_header = {**self._background_header, **header}
            self.backend.load_background(header, arrays)
        self.backend.check_ready()

    # ------------------------------------------------------------------ background model
    def train_ubm(self, files, speakers=None, n_components=256, relevance_factor=16.0, top_c=5, max_iter=10,
                  random_state=0, verbose=False) -> GMMUBM:
        """Train and save the universal background model from audio files (or a manifest path).

        Returns the fitted :class:`~speakerid.models.gmm_ubm.GMMUBM`. Warns with :class:`DataLeakWarning`
        when already-enrolled speakers are among the background speakers.
        """
        if isinstance(files, (str, Path)):
            manifest = read_manifest(files)
            files, speakers = list(manifest["path"]), list(manifest["speaker"])
        files = list(files)
        if not files:
            raise ParameterError("no background files given")
        background_ids = sorted(set(speakers)) if speakers is not None else []
        self._warn_overlap(set(background_ids) & set(self._all_enrolled()), "already enrolled")
        features = [f for f, _ in _many_features(files, self.feature_config, self.n_jobs, desc="UBM features")]
        model = GMMUBM(n_components=n_components, relevance_factor=relevance_factor, top_c=top_c,
                       max_iter=max_iter, random_state=random_state, verbose=verbose).fit(features)
        header = {"model_class": "GMMUBM", "params": model.get_params(), "feature_config":
                  self.feature_config.to_dict(), "feature_hash": self.feature_config.hash(),
                  "ubm_hash": model.ubm_hash_, "n_files": len(files), "n_frames": int(sum(len(f) for f in features)),
                  "background_speakers": background_ids,
                  "log_likelihood_history": [float(v) for v in getattr(model.ubm_, "log_likelihood_history_", [])]}
        with self.store.lock():
            self._save_config()
            self.store.save(UBM_FILE, model.to_arrays(), header)
        self._background_loaded = False
        self._speaker_cache.clear()
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
    def enroll(self, speaker: str, files) -> dict:
        """Enroll (or re-enroll, replacing) one speaker from audio files; other speakers are untouched."""
        speaker = validate_speaker_id(speaker)
        files = [str(f) for f in ([files] if isinstance(files, (str, Path)) else files)]
        if not files:
            raise ParameterError(f"no enrollment files for speaker {speaker!r}")
        self._load_background()
        self._warn_overlap({speaker} & set(self._background_header.get("background_speakers", [])), "enrolled")
        extracted = _many_features(files, self.feature_config, self.n_jobs, desc=f"enroll {speaker}")
        arrays, params = self.backend.enroll([f for f, _ in extracted])
        seconds = float(sum(s for _, s in extracted))
        header = {"model_class": self.backend.speaker_class, "params": params,
                  "feature_config": self.feature_config.to_dict(), "feature_hash": self.feature_config.hash(),
                  "background_hash": self.backend.background_hash, "n_files": len(files),
                  "total_seconds": round(seconds, 3), "n_frames": int(sum(len(f) for f, _ in extracted)),
                  "files": [Path(f).name for f in files]}
        self._save_config()
        self.store.save_speaker(speaker, arrays, header, backend=self.backend_name)
        self._speaker_cache.pop(speaker, None)
        return {"speaker": speaker, "backend": self.backend_name, "n_files": len(files),
                "total_seconds": header["total_seconds"], "n_frames": header["n_frames"]}

    def enroll_manifest(self, manifest) -> list[dict]:
        """Enroll every speaker of a ``speaker,path`` manifest (grouped by speaker)."""
        frame = read_manifest(manifest)
        groups = list(frame.groupby("speaker", sort=True)["path"])
        return [self.enroll(speaker, list(paths)) for speaker, paths in progress(groups, desc="enroll",
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
        value = float(value)
        if not np.isfinite(value):
            raise ParameterError(f"threshold must be finite, got {value}")
        with self.store.lock():
            thresholds = {**self._thresholds(), self.backend_name: value}
            with atomic_write(self.store.model_dir / THRESHOLDS_FILE, "w") as fh:
                json.dump(thresholds, fh, indent=1, sort_keys=True)

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
        threshold = self.threshold if threshold is None else float(threshold)
        return {"speaker": speaker, "file": str(audio), "score": score, "threshold": threshold,
                "accepted": bool(score >= threshold), "decision": "accept" if score >= threshold else "reject",
                "backend": self.backend_name}

    def identify(self, audio, top: int = 5, threshold: float | None = None, frames=None) -> dict:
        """Rank enrolled speakers by score for ``audio``; ``best`` is ``"unknown"`` below the threshold."""
        if int(top) < 1:
            raise ParameterError(f"top must be >= 1, got {top}")
        speakers = self.speakers()
        if not speakers:
            from .exceptions import NotFittedError
            raise NotFittedError(f"no speaker is enrolled in {self.model_dir} (backend {self.backend_name})")
        frames = self.features(audio) if frames is None else frames
        scores = self.score_frames(speakers, frames)
        order = np.argsort(-scores, kind="stable")[: int(top)]
        threshold = self.threshold if threshold is None else float(threshold)
        ranked = [{"speaker": speakers[i], "score": float(scores[i])} for i in order]
        best = ranked[0]["speaker"] if ranked[0]["score"] >= threshold else "unknown"
        return {"file": str(audio), "best": best, "threshold": threshold, "candidates": ranked,
                "backend": self.backend_name}
