"""SpeakerVerifier: the facade over a model directory -- enroll, verify, identify, who spoke when.

This is the file-level API that the CLI, the web app and batch scoring are thin shells over. It ties together the
one file -> frames path (:mod:`speakerid.features.pipeline`), a backend (:mod:`speakerid.backends`; GMM-UBM by
default) and the model directory (:class:`~speakerid.store.ModelStore`). Training belongs to the backends
(:meth:`SpeakerVerifier.train` hands over to the backend's own).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speakerid._utils.validation import finite_threshold
from speakerid.backends import _cohort
from speakerid.backends._enrollment import (
    adapt_speakers,
    check_added_copies,
    check_existing,
    enrollment_job,
)
from speakerid.backends._training import DEFAULT_COHORT_SPEAKERS, record_cohort
from speakerid.backends.base import get_backend
from speakerid.data.augment import check_n_augment
from speakerid.data.manifests import read_manifest, validate_speaker_id
from speakerid.evaluation.norm import identification_threshold
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
from speakerid.features.pipeline import file_features
from speakerid.store import DEFAULT_BACKEND, ModelStore, check_feature_config

__all__ = ["SpeakerVerifier", "SEGMENT_S"]

#: Window of :meth:`SpeakerVerifier.identify_segments` and :meth:`SpeakerVerifier.speaker_turns`, in seconds.
SEGMENT_S, _SILENCE_PEAK = 2.0, 1e-6


def _open_set(verifier, threshold, n: int) -> tuple[float, str]:
    """A given threshold as it is, else the saved (or default) one raised for ``n`` speakers on a normalised scale
    (:func:`~speakerid.evaluation.norm.identification_threshold`; a fused system's LLRs keep their Bayes one)."""
    if threshold is not None:
        return finite_threshold(threshold, True), "given"
    return identification_threshold(verifier.threshold, verifier.threshold_source, verifier.score_scale, n)


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
        Parallel workers over files and, enrolling several speakers, over speakers: threads of this process, worker
        processes for large enrollments (:mod:`speakerid.backends._enrollment`; the same models as serially).
    norm, cohort, cohort_top, cache_dir : optional
        Score normalisation of :meth:`score_frames` (so verify, identify, segments), as
        :func:`speakerid.scoring.batch.score_trials` (default ``"auto"``; ``"none"``: raw): the same trial gets
        the same score from both. ``cache_dir``: feature cache for cohort files that must be read, and the
        feature store of enrollment (a rerun reads the stored frames and noisy copies).
    scheduler : str or dask.distributed.Client, optional
        Enroll several speakers on Dask (``"local"`` or ``"tcp://host:port"``, whose workers must see the model
        directory and the audio).
    """

    def __init__(self, model_dir, backend=None, feature_config=None, backend_params=None, n_jobs=1, *,
                 norm="auto", cohort=None, cohort_top=None, cache_dir=None, scheduler=None):
        self.store = ModelStore(model_dir)
        self.scheduler = scheduler
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
        self._speaker_cache: dict[str, tuple] = {}
        self._norm_options = {"norm": norm, "cohort": cohort, "cohort_top": cohort_top}
        _cohort.parse_norm(norm)                          # an unknown method fails here, before any work
        self.cache_dir, self._normalization = cache_dir, None

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
        """Why enrollment and scoring cannot work yet ("no UBM ...: run 'speakerid train-ubm' first"), or None."""
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
        Speakers enrolled against the model it replaces make it a :class:`ParameterError` unless ``force=True``,
        which removes them once the new model is saved (:meth:`~speakerid.backends.base.Backend.train`).
        """
        result = self.backend.train(self.model_dir, manifest, feature_config=self._requested_config,
                                    n_jobs=self.n_jobs, **params)
        self.backend = get_backend(self.backend_name)(self.backend.params)
        self._background_loaded, self._config, self._normalization = False, None, None
        self._speaker_cache.clear()
        return result

    # ------------------------------------------------------------------ enrollment
    def enroll(self, speaker: str, files, n_augment: int | None = None, *, names=None, mode: str = "replace") -> dict:
        """Enroll one speaker from audio files; other speakers are untouched.

        Parameters
        ----------
        speaker : str
            The speaker id (validated: no path separators, control characters, ...).
        files : path or list of paths
        n_augment : int, optional
            Also enroll on this many noisy copies of each file, seeded by the speaker id (``crc32`` of its UTF-8
            bytes, then file ``i`` gets ``[seed, i]``: the rule of :mod:`speakerid.features.pipeline`), recorded in
            the header. ``None`` follows the background model (as many copies as its training made): noise helped
            only when the UBM and the speaker models both saw it (``bench/frontend_ablation.py``).
        names : list of str, optional
            The source file names to record (default: the files' own), e.g. of uploads saved under random names.
        mode : {"replace", "add", "new"}
            For a speaker already enrolled: ``"replace"`` its model by one of these files only (default),
            ``"add"`` the files to it (the statistics the model keeps are summed with theirs: the model equals one
            enrolled from all the files at once, float tolerance; :meth:`Backend.add_to`), or ``"new"``: refuse
            (ParameterError naming it). A speaker not enrolled yet is enrolled in every mode.

        Returns a dict: ``speaker``, ``backend``, ``n_files``, ``total_seconds`` and ``n_frames`` (clean audio; with
        ``"add"``, of all the speaker's files), ``action`` (``"enrolled"``, ``"replaced"`` or ``"added"``).
        Raises NotFittedError when the background model is missing, AudioError for an unreadable file.
        """
        return self._enroll_many([(speaker, files, names)], n_augment, mode)[0]

    def enroll_manifest(self, manifest, n_augment: int | None = None, mode: str = "replace") -> list[dict]:
        """Enroll every speaker of a ``speaker,path`` manifest (CSV or frame, grouped by speaker); ``n_augment``
        and ``mode`` as :meth:`enroll`."""
        frame = manifest if hasattr(manifest, "groupby") else read_manifest(manifest, for_enrollment=True)
        return self._enroll_many([(speaker, list(paths), None)
                                  for speaker, paths in frame.groupby("speaker", sort=True)["path"]], n_augment, mode)

    def enrolled_already(self, speakers, mode: str = "new") -> dict:
        """``{speaker: header}`` of the ``speakers`` enrolled already; with ``mode="new"`` any of them is a
        ParameterError naming the first, its files and how to go on (:func:`check_existing`)."""
        known = set(self.speakers())         # (their headers as stored: a model of an old background counts too)
        return check_existing({s: self.store.load_speaker(s, self.backend_name)[0] for s in speakers if s in known},
                              mode)

    def _enroll_many(self, jobs, n_augment, mode: str = "replace") -> list[dict]:
        """Adapt a model per ``(speaker, files, names)``, score all on the cohort utterances (Z-norm side), save."""
        n_augment = None if n_augment is None else check_n_augment(n_augment)
        jobs = [enrollment_job(*job) for job in jobs]    # bad ids and empty lists fail before any work
        self._load_background()
        found = self.enrolled_already([speaker for speaker, _, _ in jobs], mode)
        previous = {s: self._speaker_entry(s) for s in found} if mode == "add" else {}
        if n_augment is None:
            n_augment = int((self._background_header.get("augment") or {}).get("copies", 0))
        check_added_copies(previous, n_augment)
        background = self._background_header.get("background_speakers", [])
        enrolled = adapt_speakers(jobs, self.backend, self.backend_name, str(self.model_dir), self.feature_config,
                                  n_augment, background, self.n_jobs, self.scheduler, self.cache_dir,
                                  previous=previous)
        _cohort.add_cohort_scores(self.store, self.backend, self.backend_name, self.feature_config,
                                  [(arrays, header) for _, arrays, header in enrolled], self.cache_dir)
        self.store.save_feature_config(self.feature_config)   # atomic; callers may hold the directory's lock
        for speaker, arrays, header in enrolled:
            self.store.save_speaker(speaker, arrays, header, backend=self.backend_name)
            self._speaker_cache.pop(speaker, None)
        self._normalization = None
        actions = {s: "added" if mode == "add" else "replaced" for s in found}
        return [{"speaker": speaker, "backend": self.backend_name, "n_files": header["n_files"],
                 "total_seconds": header["total_seconds"], "n_frames": header["n_frames"],
                 "action": actions.get(speaker, "enrolled")}
                for speaker, _, header in enrolled]

    def speakers(self) -> list[str]:   # enrolled with this backend
        return self.store.speakers(self.backend_name)

    def speaker_info(self) -> list[dict]:
        """One dict per enrolled speaker: id, number of files, seconds, frames, enrolled-at time, file names."""
        return [{"speaker": h["speaker"], "n_files": h.get("n_files"), "total_seconds": h.get("total_seconds"),
                 "n_frames": h.get("n_frames"), "enrolled_at": h.get("created_at"), "backend": self.backend_name,
                 "files": list(h.get("files") or [])}
                for h in sorted(self.store.speaker_headers(self.backend_name), key=lambda h: h["speaker"])]

    def remove(self, *speakers: str) -> None:
        """Remove enrolled speakers, all or none (:class:`UnknownSpeakerError` naming every unknown one)."""
        speakers = [validate_speaker_id(s) for s in speakers]
        self.store.remove_speakers(speakers, backend=self.backend_name)
        for speaker in speakers:
            self._speaker_cache.pop(speaker, None)
        self._normalization = None

    # ------------------------------------------------------------------ scoring
    def _speaker_entry(self, speaker: str) -> tuple:
        """``(header, arrays)`` of an enrolled speaker, checked against the directory, loaded once."""
        if speaker not in self._speaker_cache:
            header, arrays = self.store.load_speaker(speaker, backend=self.backend_name,
                                                     expected_class=self.backend.speaker_class)
            path = self.store.speaker_path(speaker, self.backend_name)
            check_feature_config(header, self.feature_config, f"{path}")
            self.backend.check_speaker_header(header, path)
            self._speaker_cache[speaker] = (header, arrays)
        return self._speaker_cache[speaker]

    def _speaker_model(self, speaker: str) -> dict:
        return self._speaker_entry(speaker)[1]

    @property
    def normalization(self) -> _cohort.CohortNormalization:
        """The score normalisation this verifier applies (resolved on first use)."""
        if self._normalization is None:
            self._load_background()
            self._normalization = _cohort.CohortNormalization(
                self.store, self.backend, self.backend_name, self.feature_config, **self._norm_options,
                enrolled_speakers=self.speakers(), entry=self._speaker_entry, cache_dir=self.cache_dir)
        return self._normalization

    @property
    def score_scale(self) -> str:
        """The scale of :meth:`score_frames` and the threshold: ``"none"`` (raw) or e.g. ``"snorm+enrolled"``."""
        return self.normalization.scale

    def features(self, path) -> np.ndarray:
        """The frames of one audio file under the directory's feature configuration."""
        return file_features(path, self.feature_config)[0]

    def score_frames(self, speakers, frames, normalizer="default") -> np.ndarray:
        """Scores (float64) of one utterance's frames (n_frames, n_dims) against each of ``speakers`` on the
        :attr:`score_scale`: the one scoring path of verify, identify and batch scoring. The utterance is prepared
        once (its UBM alignment) for every model: claimed, enrolled T-norm cohort, impostor cohort. ``normalizer``:
        a :class:`~speakerid.backends._cohort.ScoreNormalizer` (batch workers pass the job's), None (raw)."""
        speakers = [validate_speaker_id(s) for s in speakers]
        normalizer = self.normalization.normalizer(speakers) if normalizer == "default" else normalizer
        self._load_background()
        prepared = self.backend.prepare(frames)
        if normalizer is None:
            return np.asarray(self.backend.score(prepared, [self._speaker_model(s) for s in speakers]), np.float64)
        return normalizer.score(self.backend, prepared, speakers, self._speaker_model)

    @property
    def threshold(self) -> float:
        """The saved threshold, else the :attr:`score_scale`'s default (the backend's for raw scores, else
        :data:`~speakerid.backends._cohort.NORMALIZED_THRESHOLD`); saved for another scale: ConfigMismatchError."""
        saved = self.store.threshold(self.backend.threshold_key(), self.score_scale)[0]
        if saved is not None:
            return saved
        return float(self.backend.default_threshold) if self.score_scale == "none" else _cohort.NORMALIZED_THRESHOLD

    @property
    def threshold_source(self) -> str:
        """Where :attr:`threshold` comes from (``set-threshold far=0.01 ...``, saved, or the default: its meaning)."""
        value, how = self.store.threshold(self.backend.threshold_key(), self.score_scale)
        meaning = self.backend.threshold_meaning if self.score_scale == "none" else _cohort.MEANING
        return how if value is not None else f"{how}, {meaning}"

    def set_threshold(self, value: float, *, how: dict | None = None) -> None:
        """Save a threshold for the :attr:`score_scale`, with ``how`` it was chosen (plain JSON, e.g.
        :meth:`speakerid.evaluation.operating_points.ThresholdChoice.as_dict`)."""
        self.store.save_threshold(self.backend.threshold_key(), finite_threshold(value), self.score_scale, how)

    def set_cohort(self, manifest, max_speakers: int | None = DEFAULT_COHORT_SPEAKERS, random_state: int = 0) -> Path:
        """Record the impostor cohort used by default for score normalization (``cohort.csv``).

        ``manifest`` is a ``speaker,path`` manifest (path or frame); a seeded draw of ``max_speakers`` of its
        speakers (all of them with ``None``) is kept, every file of each, with absolute paths, so the cohort is
        found from any working directory (move the audio and the cohort has to be set again). Warns with
        :class:`DataLeakWarning` when cohort speakers are enrolled. Returns the written file.
        """
        self._normalization = None      # (the prepared cohort and the speakers' cohort scores: rebuilt on use)
        return record_cohort(self.store, manifest, max_speakers, random_state)

    def verify(self, speaker: str, audio, threshold: float | None = None) -> dict:
        """Score a claim that ``audio`` (a file path) is ``speaker``; accept when the score >= the threshold."""
        speaker = validate_speaker_id(speaker)
        frames = self.features(audio)
        score = float(self.score_frames([speaker], frames)[0])
        source = self.threshold_source if threshold is None else "given"
        threshold = self.threshold if threshold is None else finite_threshold(threshold, True)
        return {"speaker": speaker, "file": str(audio), "score": score, "threshold": threshold,
                "threshold_source": source, "accepted": bool(score >= threshold),
                "decision": "accept" if score >= threshold else "reject", "backend": self.backend_name,
                "scale": self.score_scale}

    def identify(self, audio, top: int = 5, threshold: float | None = None, frames=None) -> dict:
        """Rank enrolled speakers by score for ``audio``; below the threshold ``best`` is None and ``rejected``
        True (the top candidate is still listed first). The saved threshold is a verification one: on a normalised
        scale it is raised for the N enrolled speakers (:func:`~speakerid.evaluation.norm.identification_threshold`), so that a voice nobody enrolled is not
        identified more often as N grows; a given ``threshold`` is used as it is."""
        if int(top) < 1:
            raise ParameterError(f"top must be >= 1, got {top}")
        speakers = self.speakers()
        if not speakers:
            raise NotFittedError(f"no speaker is enrolled in {self.model_dir} (backend {self.backend_name})")
        frames = self.features(audio) if frames is None else frames
        scores = self.score_frames(speakers, frames)
        order = np.argsort(-scores, kind="stable")[: int(top)]
        threshold, source = _open_set(self, threshold, len(speakers))
        ranked = [{"speaker": speakers[i], "score": float(scores[i])} for i in order]
        rejected = bool(ranked[0]["score"] < threshold)
        return {"file": str(audio), "best": None if rejected else ranked[0]["speaker"], "rejected": rejected,
                "threshold": threshold, "threshold_source": source, "candidates": ranked,
                "backend": self.backend_name, "scale": self.score_scale}

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
                scores[i] = self._score_signal(speakers, piece)
            except AudioError as exc:
                notes[i] = str(exc)
        return bounds, scores, notes

    def _score_signal(self, speakers, signal) -> np.ndarray:   # a window of a clip, at the model's rate
        return self.score_frames(speakers, extract(signal, self.feature_config))

    def identify_segments(self, audio=None, threshold: float | None = None, *, segment_s: float = SEGMENT_S,
                          hop_s: float | None = None, signal=None, speakers=None) -> list[dict]:
        """Identify every ``segment_s``-second window of a clip on its own (one row per window). Windows start every ``hop_s`` seconds (default ``segment_s``: consecutive pieces), the last one ending at the
        end of the clip (:func:`speakerid.evaluation.turns.window_bounds`). Each is an utterance of its own
        (features under the directory's configuration, its own VAD and CMVN) scored against every speaker; a window
        with no signal (all samples below 1e-6) is reported as silent. :meth:`speaker_turns` merges the windows.

        Parameters
        ----------
        audio : path, optional
            The clip (read at the model's rate unless ``signal``, shape (n_samples,), holds it at that rate).
        threshold : float, optional
            Below it a window's best is ``"unknown"`` (default: the saved one, raised for N as :meth:`identify`).
        segment_s, hop_s : float
            Window length and hop, seconds.
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
        threshold = _open_set(self, threshold, len(speakers))[0]
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
        Returns a :class:`~speakerid.evaluation.turns.SpeakerTurns`."""
        speakers = list(self.speakers() if speakers is None else speakers)
        threshold = _open_set(self, threshold, len(speakers))[0]
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
