"""SpeakerVerifier: the facade over a model directory -- enroll, verify, identify, who spoke when.

This is the file-level API that the CLI, the web app and batch scoring are thin shells over. It ties together the
one file -> frames path (:mod:`speakerid.features.pipeline`), a backend (:mod:`speakerid.backends`; GMM-UBM by
default) and the model directory (:class:`~speakerid.store.ModelStore`). Training belongs to the backends
(:meth:`SpeakerVerifier.train` hands over to the backend's own).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write
from speakerid._utils.progress import progress
from speakerid.backends._training import DEFAULT_COHORT_SPEAKERS, record_cohort, warn_overlap
from speakerid.backends.base import get_backend
from speakerid.data.augment import augment_header, check_n_augment
from speakerid.data.manifests import read_manifest, validate_speaker_id
from speakerid.evaluation.turns import (
    SpeakerTurns,
    label_windows,
    merge_windows,
    smooth_labels,
    window_bounds,
)
from speakerid.exceptions import AudioError, ModelFormatError, NotFittedError, ParameterError
from speakerid.features import extract
from speakerid.features.config import FeatureConfig
from speakerid.features.pipeline import file_features, many_features
from speakerid.store import DEFAULT_BACKEND, THRESHOLDS_FILE, ModelStore, check_feature_config

__all__ = ["SpeakerVerifier", "SEGMENT_S"]

#: Window of :meth:`SpeakerVerifier.identify_segments` and :meth:`SpeakerVerifier.speaker_turns`, in seconds.
SEGMENT_S = 2.0
_SILENCE_PEAK = 1e-6


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
            self._config = self.store.feature_config(self._requested_config)
        return self._config

    def _load_background(self) -> None:
        """Hand every background file the backend declares (and the directory has) to the backend, once."""
        if self._background_loaded:
            return
        merged = {}
        for name in self.backend.background_files:
            if not self.store.exists(name):
                continue               # the backend's check_ready says whether it needed it
            header, arrays = self.store.load(name)
            check_feature_config(header, self.feature_config, f"{self.store.path(name)}")
            merged.update(header)
            self._take_background(name, self.backend.load_background, name, header, arrays)
        self.backend.check_ready()
        self._background_header = merged
        self._background_loaded = True

    def missing_background(self) -> str | None:
        """Why enrollment and scoring cannot work yet (e.g. "no UBM ...: run 'speakerid train-ubm' first"), or
        ``None`` when the backend has what it needs."""
        try:
            self._load_background()
        except NotFittedError as exc:
            return str(exc)
        return None

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

    # ------------------------------------------------------------------ training (the backend's own)
    def train(self, manifest, **params) -> dict:
        """Train this backend's background model on a ``speaker,path`` manifest: :meth:`Backend.train`.

        The directory's feature configuration (or the one given to the constructor) and ``n_jobs`` are passed
        on; ``params`` are the backend's (e.g. ``n_components``, ``max_iter``, ``n_augment``, ``random_state``
        for GMM-UBM, see :func:`speakerid.backends.gmm_ubm.train_ubm`). Returns what the training returns.
        """
        result = self.backend.train(self.model_dir, manifest, feature_config=self._requested_config,
                                    n_jobs=self.n_jobs, **params)
        self.backend = get_backend(self.backend_name)(self.backend.params)
        self._background_loaded, self._config = False, None
        self._speaker_cache.clear()
        return result

    # ------------------------------------------------------------------ enrollment
    def enroll(self, speaker: str, files, n_augment: int | None = None, *, names=None) -> dict:
        """Enroll (or re-enroll, replacing) one speaker from audio files; other speakers are untouched.

        Parameters
        ----------
        speaker : str
            The speaker id (validated: no path separators, control characters, ...).
        files : path or list of paths
            Enrollment audio.
        n_augment : int, optional
            Also enroll on this many noisy copies of each file, seeded by the speaker id (``crc32`` of its UTF-8
            bytes, then file ``i`` gets ``[seed, i]``: the rule of :mod:`speakerid.features.pipeline`) and recorded
            in the speaker's header. ``None`` (the default) follows the background model: as many copies as its
            training made (0 for a UBM trained without them) -- multi-condition training helped only when the
            UBM and the speaker models both saw noise (``bench/frontend_ablation.py``).
        names : list of str, optional
            What to record as the source file names in the header (default: the files' own names), e.g. the names
            users gave to uploads saved under random names.

        Returns
        -------
        dict
            ``speaker``, ``backend``, ``n_files``, ``total_seconds`` (clean audio), ``n_frames`` (clean frames).

        Raises
        ------
        NotFittedError
            When the backend's background model is missing. ``AudioError`` for an unreadable file.
        """
        if n_augment is not None:
            n_augment = check_n_augment(n_augment)
        speaker = validate_speaker_id(speaker, for_enrollment=True)
        files = [str(f) for f in ([files] if isinstance(files, (str, Path)) else files)]
        if not files:
            raise ParameterError(f"no enrollment files for speaker {speaker!r}")
        names = [Path(f).name for f in files] if names is None else [str(n) for n in names]
        if len(names) != len(files):
            raise ParameterError(f"{len(names)} names given for {len(files)} enrollment files")
        self._load_background()
        if n_augment is None:
            n_augment = int((self._background_header.get("augment") or {}).get("copies", 0))
        warn_overlap({speaker} & set(self._background_header.get("background_speakers", [])), "enrolled")
        seed = zlib.crc32(speaker.encode("utf-8"))
        extracted = many_features(files, self.feature_config, n_jobs=self.n_jobs, n_augment=n_augment,
                                  random_state=seed, desc=f"enroll {speaker}")
        # the copies enlarge the adaptation data; the header counts the clean frames
        arrays, params = self.backend.enroll([frames for sessions, _ in extracted for frames in sessions])
        header = {"model_class": self.backend.speaker_class, "params": params,
                  "feature_config": self.feature_config.to_dict(), "feature_hash": self.feature_config.hash(),
                  "background_hash": self.backend.background_hash, "n_files": len(files),
                  "total_seconds": round(float(sum(s for _, s in extracted)), 3),
                  "n_frames": int(sum(len(sessions[0]) for sessions, _ in extracted)), "files": names}
        if n_augment:
            header["augment"] = augment_header(n_augment, seed)
        self.store.save_feature_config(self.feature_config)   # atomic; callers may hold the directory's lock
        self.store.save_speaker(speaker, arrays, header, backend=self.backend_name)
        self._speaker_cache.pop(speaker, None)
        return {"speaker": speaker, "backend": self.backend_name, "n_files": len(files),
                "total_seconds": header["total_seconds"], "n_frames": header["n_frames"]}

    def enroll_manifest(self, manifest, n_augment: int | None = None) -> list[dict]:
        """Enroll every speaker of a ``speaker,path`` manifest (CSV or frame, grouped by speaker); ``n_augment`` as
        :meth:`enroll`."""
        frame = manifest if hasattr(manifest, "groupby") else read_manifest(manifest, for_enrollment=True)
        groups = list(frame.groupby("speaker", sort=True)["path"])
        return [self.enroll(speaker, list(paths), n_augment=n_augment)
                for speaker, paths in progress(groups, desc="enroll", unit="speaker")]

    def speakers(self) -> list[str]:
        return self.store.speakers(self.backend_name)

    def speaker_info(self) -> list[dict]:
        """One dict per enrolled speaker: id, files, seconds, frames, enrolled-at time."""
        return [{"speaker": h["speaker"], "n_files": h.get("n_files"), "total_seconds": h.get("total_seconds"),
                 "n_frames": h.get("n_frames"), "enrolled_at": h.get("created_at"), "backend": self.backend_name}
                for h in sorted(self.store.speaker_headers(self.backend_name), key=lambda h: h["speaker"])]

    def remove(self, *speakers: str) -> None:
        """Remove enrolled speakers, all or none (:class:`UnknownSpeakerError` naming every unknown one)."""
        speakers = [validate_speaker_id(s) for s in speakers]
        self.store.remove_speakers(speakers, backend=self.backend_name)
        for speaker in speakers:
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
        if isinstance(saved, dict):
            saved = saved.get("threshold")
        return float(saved) if isinstance(saved, (int, float)) else float(self.backend.default_threshold)

    @property
    def threshold_source(self) -> str:
        """Where :attr:`threshold` comes from, in words (``set-threshold far=0.01 on dev.csv: ...``, ``saved``, or
        the backend's default)."""
        saved = self._thresholds().get(self.backend_name)
        if isinstance(saved, dict) and isinstance(saved.get("threshold"), (int, float)):
            how = saved.get("how") or {}
            rates = (f" (FAR {100 * how['far']:.2f} %, FRR {100 * how['frr']:.2f} %)"
                     if isinstance(how.get("far"), float) and isinstance(how.get("frr"), float) else "")
            return f"set-threshold {how.get('criterion', '?')} on {how.get('scores', '?')}{rates}"
        if isinstance(saved, (int, float)):
            return "saved"
        return f"the {self.backend_name} default"

    def set_threshold(self, value: float, *, how: dict | None = None) -> None:
        """Save a decision threshold for this backend in the model directory, with ``how`` it was chosen (plain
        JSON, e.g. :meth:`speakerid.evaluation.operating_points.ThresholdChoice.as_dict` and the score file)."""
        value = _finite_threshold(value)
        entry = value if how is None else {"threshold": value, "how": json.loads(json.dumps(how))}
        with self.store.lock():
            thresholds = {**self._thresholds(), self.backend_name: entry}
            with atomic_write(self.store.model_dir / THRESHOLDS_FILE, "w") as fh:
                json.dump(thresholds, fh, indent=1, sort_keys=True)

    def set_cohort(self, manifest, max_speakers: int | None = DEFAULT_COHORT_SPEAKERS,
                   random_state: int = 0) -> Path:
        """Record the impostor cohort used by default for score normalization (``cohort.csv``).

        ``manifest`` is a ``speaker,path`` manifest (path or frame); a seeded draw of ``max_speakers`` of its
        speakers (all of them with ``None``) is kept, every file of each, with absolute paths, so the cohort is
        found from any working directory (move the audio and the cohort has to be set again). Warns with
        :class:`DataLeakWarning` when cohort speakers are enrolled. Returns the written file.
        """
        return record_cohort(self.store, manifest, max_speakers, random_state)

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
        source = self.threshold_source if threshold is None else "given"
        threshold = self.threshold if threshold is None else _finite_threshold(threshold, True)
        return {"speaker": speaker, "file": str(audio), "score": score, "threshold": threshold,
                "threshold_source": source, "accepted": bool(score >= threshold),
                "decision": "accept" if score >= threshold else "reject", "backend": self.backend_name}

    def identify(self, audio, top: int = 5, threshold: float | None = None, frames=None) -> dict:
        """Rank enrolled speakers by score for ``audio``; below the threshold ``best`` is None and ``rejected``
        True (the top candidate is still listed first)."""
        if int(top) < 1:
            raise ParameterError(f"top must be >= 1, got {top}")
        speakers = self.speakers()
        if not speakers:
            raise NotFittedError(f"no speaker is enrolled in {self.model_dir} (backend {self.backend_name})")
        frames = self.features(audio) if frames is None else frames
        scores = self.score_frames(speakers, frames)
        order = np.argsort(-scores, kind="stable")[: int(top)]
        source = self.threshold_source if threshold is None else "given"
        threshold = self.threshold if threshold is None else _finite_threshold(threshold, True)
        ranked = [{"speaker": speakers[i], "score": float(scores[i])} for i in order]
        rejected = bool(ranked[0]["score"] < threshold)
        return {"file": str(audio), "best": None if rejected else ranked[0]["speaker"], "rejected": rejected,
                "threshold": threshold, "threshold_source": source, "candidates": ranked,
                "backend": self.backend_name}

    def _window_scores(self, audio, signal, window_s, hop_s, speakers):
        """``(bounds, scores, notes)`` of the windows of a clip: scores (n_windows, n_speakers), NaN rows where a
        window is silent or holds no usable speech (``notes`` says which)."""
        from speakerid.data.audio import load_audio

        if not speakers:
            raise NotFittedError(f"no speaker is enrolled in {self.model_dir} (backend {self.backend_name})")
        config = self.feature_config
        rate = config.sample_rate
        if signal is None:
            signal, rate = load_audio(audio, sample_rate=rate)
        bounds = window_bounds(len(signal) / rate, window_s, window_s if hop_s is None else hop_s)
        scores, notes = np.full((len(bounds), len(speakers)), np.nan), [""] * len(bounds)
        for i, (start_s, end_s) in enumerate(bounds):
            piece = signal[int(round(start_s * rate)):int(round(end_s * rate))]
            if float(np.max(np.abs(piece))) < _SILENCE_PEAK:
                notes[i] = "silent"
                continue
            try:
                scores[i] = self.score_frames(speakers, extract(piece, config))
            except AudioError as exc:
                notes[i] = str(exc)
        return bounds, scores, notes

    def identify_segments(self, audio=None, threshold: float | None = None, *, segment_s: float = SEGMENT_S,
                          hop_s: float | None = None, signal=None, speakers=None) -> list[dict]:
        """Identify every ``segment_s``-second window of a clip on its own (one row per window).

        Windows start every ``hop_s`` seconds (default ``segment_s``: consecutive pieces), the last one ending at the
        end of the clip (:func:`speakerid.evaluation.turns.window_bounds`). Each is an utterance of its own
        (features under the directory's configuration, its own VAD and CMVN) scored against every speaker; a window
        with no signal (all samples below 1e-6) is reported as silent. :meth:`speaker_turns` merges the windows.

        Parameters
        ----------
        audio : path, optional
            The clip (read at the model's rate unless ``signal`` is given).
        threshold : float, optional
            Below it a window's best is ``"unknown"`` (default: the saved threshold).
        segment_s, hop_s : float
            Window length and hop, seconds.
        signal : numpy.ndarray of shape (n_samples,), optional
            The clip already loaded at the model's rate (``feature_config.sample_rate``).
        speakers : list of str, optional
            Candidates (default: every enrolled speaker).

        Returns
        -------
        list of dict
            Per window: ``index`` (from 1), ``start_s``, ``end_s``, ``best`` (``"unknown"`` below the threshold),
            ``speaker`` (the highest-scoring id even below it), ``score`` (``None`` when the window could not be
            scored) and ``note`` (why not).
        """
        speakers = list(self.speakers() if speakers is None else speakers)
        threshold = self.threshold if threshold is None else _finite_threshold(threshold, True)
        bounds, scores, notes = self._window_scores(audio, signal, segment_s, hop_s, speakers)
        labels, best = label_windows(scores, speakers, threshold)
        return [{"index": i + 1, "start_s": round(float(a), 2), "end_s": round(float(b), 2), "best": label,
                 "speaker": None if np.isnan(score) else speakers[int(np.nanargmax(scores[i]))],
                 "score": None if np.isnan(score) else float(score), "note": notes[i]}
                for i, ((a, b), label, score) in enumerate(zip(bounds, labels, best))]

    def speaker_turns(self, audio=None, *, signal=None, window_s: float = SEGMENT_S, hop_s: float = 1.0,
                      threshold: float | None = None, speakers=None, min_duration_s: float | None = None
                      ) -> SpeakerTurns:
        """Who spoke when: the enrolled speaker (or ``unknown``) of each stretch of a long recording.

        The windows of :meth:`identify_segments` are labelled with their best speaker (``unknown`` below the
        threshold, or when not scorable), stretches shorter than ``min_duration_s`` (default ``window_s``; 0 keeps
        all) are absorbed by a neighbour, and neighbours with the same label are merged
        (:mod:`speakerid.evaluation.turns`). The ``segments`` command and the web page's table show the result.

        Returns
        -------
        SpeakerTurns
        """
        speakers = list(self.speakers() if speakers is None else speakers)
        threshold = self.threshold if threshold is None else _finite_threshold(threshold, True)
        bounds, scores, notes = self._window_scores(audio, signal, window_s, hop_s, speakers)
        labels, best = label_windows(scores, speakers, threshold)
        labels = smooth_labels(bounds, labels, float(window_s if min_duration_s is None else min_duration_s))
        column = {speaker: k for k, speaker in enumerate(speakers)}
        # a relabelled window reports the score of its new speaker (unknown ones keep their best score)
        label_scores = [scores[i, column[lab]] if lab in column else best[i] for i, lab in enumerate(labels)]
        stretches = merge_windows(bounds, labels, label_scores)
        edges = np.cumsum([0] + [s.n_windows for s in stretches])
        stretch_notes = [notes[a] if all(notes[a:b]) else "" for a, b in zip(edges[:-1], edges[1:])]
        return SpeakerTurns(stretches, stretch_notes, threshold, float(window_s), float(hop_s),
                            float(bounds[-1, 1]))
