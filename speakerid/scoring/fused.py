"""The fused system that ``speakerid train`` builds: every system scored on its own scale, one calibrated LLR out.

A fused model directory holds one ordinary model directory per system under ``systems/`` (``gmm-ubm``,
``ivector``, ``siamese``; each keeps its own background model, cohort, speakers and front end) and ``fusion.json``:
the systems' fusion inputs (a system may give several, e.g. the i-vector system's cosine and PLDA scores), the
prior-weighted logistic-regression fusion learned on development trials
(:class:`~speakerid.evaluation.fusion.LinearFusion`, BOSARIS [1]_), the decision prior and the development figures.

Each input is scored by a :class:`~speakerid.verifier.SpeakerVerifier` with a *fixed* normalisation: S-norm
with the system's own cohort (``cohort.csv``, background speakers chosen at training), never the T-norm over the
other enrolled speakers. A trial's LLR therefore depends on its two recordings and the stored models only, not
on who else is enrolled: enrolling a voice under other names cannot move another user's score. A trial that any
system cannot score (e.g. too little speech) is an error, never a partial fusion. The output is a natural-log
likelihood ratio: accept when it reaches the Bayes threshold ``-logit(p_target)``; the posterior probability of
the claim at prior ``p_target`` is ``sigmoid(llr + logit(p_target))``.

:meth:`FusedVerifier.identify` answers over N + 1 hypotheses (each of the N enrolled speakers, or nobody
enrolled), with the prior ``p_target`` that the voice is an enrolled one, shared evenly among the N speakers
(:func:`open_set_posteriors`): adding speakers lowers each one's prior, so it does not inflate false
identifications, and a voice enrolled under two names does not take a genuine decision away.

References
----------
.. [1] N. Brümmer and E. de Villiers, "The BOSARIS toolkit: theory, algorithms and code for surviving the
       new DCF", arXiv:1304.2865, 2013.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from speakerid.data.manifests import read_manifest, validate_speaker_id
from speakerid.evaluation.fusion import LinearFusion, fuse_score_files
from speakerid.evaluation.metrics import bayes_threshold
from speakerid.exceptions import NotFittedError, ParameterError, UnknownSpeakerError
from speakerid.features import extract
from speakerid.features.bandwidth import is_narrowband
from speakerid.scoring import narrowband as _band
from speakerid.scoring.llr import (
    FUSION_KEY,
    check_p_target,
    fixed_norm,
    has_fusion,
    input_name,
    open_set_posteriors,
    posterior,
    read_fusion,
    write_fusion,
)
from speakerid.scoring.systems import DEFAULT_P_TARGET, DEFAULT_SYSTEMS, SYSTEMS
from speakerid.store import SYSTEMS_DIR, ModelStore
from speakerid.verifier import SpeakerVerifier

__all__ = ["SYSTEMS", "DEFAULT_SYSTEMS", "DEFAULT_P_TARGET", "FusedVerifier", "has_fusion", "read_fusion", "input_name",
           "write_fusion", "posterior", "open_set_posteriors", "FUSION_KEY", "fixed_norm"]


class FusedVerifier:
    """Enroll, verify and identify with a fused system: one calibrated LLR per trial.

    Parameters
    ----------
    model_dir : path
        A directory built by ``speakerid train`` (:func:`speakerid.scoring.fused_train.train_default`).
    p_target : float, optional
        Target prior of the decisions (default: the one stored with the model).
    n_jobs : int
        Parallel feature extraction of the systems' verifiers.
    cache_dir : path, optional
        Feature cache for cohort files.
    spec : dict, optional
        What :func:`read_fusion` returns, instead of reading it (training opens the systems before any fusion).

    The output dicts of :meth:`verify` and :meth:`identify` are those of :class:`SpeakerVerifier` (``score`` is
    the LLR, ``scale`` is ``"llr"``) plus ``llr``, ``posterior`` (of the claim, or of the best candidate),
    ``p_target``, ``system_scores`` (each input's normalised score), ``band`` (``"wideband"`` or
    ``"narrowband"``: which systems scored it, :mod:`speakerid.scoring.narrowband`) and ``test_bandwidth_hz``.
    """

    backend_name = "fused"
    score_scale = "llr"

    def __init__(self, model_dir, *, p_target=None, n_jobs: int = 1, cache_dir=None, spec=None):
        self.model_dir = Path(model_dir)
        self.spec = read_fusion(self.model_dir) if spec is None else spec   # spec: training, before fusion.json
        self.p_target = self.spec["p_target"] if p_target is None else check_p_target(p_target)
        self.inputs, self.n_jobs = self.spec["inputs"], n_jobs
        #: AS-norm: the cohort's best N scores only (the narrowband systems' two-condition cohort), or None.
        self.cohort_top = self.spec.get("cohort_top")
        #: The calibration's quality measures (:class:`~speakerid.scoring.quality.QualityInputs`), or None.
        self.quality = self.spec.get("quality")
        self._verifiers, self._owner = {}, {}
        for system in self.spec["systems"]:
            backend, inputs = SYSTEMS[system]
            for name, params in inputs:
                self._verifiers[name] = SpeakerVerifier(self.system_dir(system), backend=backend,
                                                        backend_params=params or None, n_jobs=n_jobs,
                                                        cache_dir=cache_dir, norm=fixed_norm(self.system_dir(system)),
                                                        cohort_top=self.cohort_top)
            self._owner[system] = self._verifiers[input_name(system)]
        branch = self.model_dir / _band.NARROWBAND_DIR
        #: The narrowband systems (a FusedVerifier of ``narrowband/``), or None.
        self.narrowband = (FusedVerifier(branch, p_target=self.p_target, n_jobs=n_jobs, cache_dir=cache_dir)
                           if self.spec.get("narrowband") and has_fusion(branch) else None)

    @property
    def store(self) -> ModelStore:
        """The fused directory itself (its lock guards enrollment in every system)."""
        return ModelStore(self.model_dir)

    @property
    def _first(self) -> SpeakerVerifier:
        """The first system's verifier: its speaker headers hold what the fusion records per speaker."""
        return next(iter(self._owner.values()))

    @property
    def feature_config(self):
        """The first system's front end (every system reads audio at the same sample rate)."""
        return self._first.feature_config

    def missing_background(self) -> str | None:
        """Why a system cannot enroll or score yet, or ``None``."""
        return next((why for why in (v.missing_background() for v in self._owner.values()) if why), None)

    def system_dir(self, system: str) -> Path:
        return self.model_dir / SYSTEMS_DIR / system

    def system(self, name: str) -> SpeakerVerifier:
        """The verifier of one fusion input (e.g. ``"ivector-plda"``) or system (``"ivector"``: its first input)."""
        if name in self._verifiers:
            return self._verifiers[name]
        if name in self._owner:
            return self._owner[name]
        raise ParameterError(f"no system {name!r} in {self.model_dir}; choose one of "
                             f"{', '.join(sorted(set(self._verifiers) | set(self._owner)))}")

    @contextlib.contextmanager
    def _quiet(self):
        """A context in which the wideband systems do not warn about narrowband audio (it is routed instead)."""
        with warnings.catch_warnings():
            if self.narrowband is not None:
                for message in (".*narrowband, e.g. telephone audio", ".*Hz audio upsampled to the model's"):
                    warnings.filterwarnings("ignore", message=message)
            yield

    # ------------------------------------------------------------------ enrollment
    def enroll(self, speaker: str, files, n_augment=None, *, names=None, mode: str = "replace") -> dict:
        """Enroll ``speaker`` from ``files`` (a path or a list of paths) in every system, the narrowband ones too,
        under the directory's lock: two enrollments of one id never mix their files.

        Returns :meth:`SpeakerVerifier.enroll`'s dict (``backend`` ``"fused"``; narrowband systems: ``bandwidth_hz``,
        ``narrowband``); ``n_augment``, ``names``, ``mode`` as there (no adding to a partly enrolled speaker)."""
        files = [files] if isinstance(files, (str, os.PathLike)) else list(files)
        with self.store.lock(), self._quiet():
            self.enrolled_already([speaker], mode)
            results = [v.enroll(speaker, files, n_augment, names=names, mode=mode) for v in self._owner.values()]
            self._keep_cohort_scores([results[0]["speaker"]])
            band = {}
            if self.narrowband is not None:
                self.narrowband.enroll(speaker, files, n_augment, names=names, mode=mode)
                band = self._record_band(results[0]["speaker"], files)
        self._forget()
        return {**results[0], **band, "backend": self.backend_name}

    def enroll_manifest(self, manifest, n_augment=None, mode: str = "replace") -> list[dict]:
        frame = manifest if hasattr(manifest, "groupby") else read_manifest(manifest, for_enrollment=True)
        with self.store.lock(), self._quiet():
            self.enrolled_already(sorted(set(frame["speaker"].astype(str))), mode)
            results = [v.enroll_manifest(frame, n_augment, mode) for v in self._owner.values()]
            self._keep_cohort_scores([r["speaker"] for r in results[0]])
            bands = {}
            if self.narrowband is not None:
                self.narrowband.enroll_manifest(frame, n_augment, mode)
                bands = {r["speaker"]: self._record_band(r["speaker"], frame.loc[frame["speaker"].astype(str)
                                                                                   == r["speaker"], "path"])
                         for r in results[0]}
        self._forget()
        return [{**r, **bands.get(r["speaker"], {}), "backend": self.backend_name} for r in results[0]]

    def enrolled_already(self, speakers, mode: str = "new") -> set:
        found = [set(v.enrolled_already(speakers, mode)) for v in self._owner.values()]   # ("new": refused)
        if mode == "add" and any(f != found[0] for f in found):
            raise ParameterError(f"{sorted(set().union(*found) - set.intersection(*found))}: enrolled in some systems only: --replace")
        return found[0]

    def _keep_cohort_scores(self, speakers) -> None:
        """Score the new speakers on the cohort for the inputs that share another's speaker files (the i-vector's
        PLDA and cosine): kept in their headers now, not computed and written by the first verify."""
        for name in set(self._verifiers) - {input_name(s) for s in self._owner}:
            self._verifiers[name]._normalization = None
            self._verifiers[name]._speaker_cache.clear()     # (a re-enrolled speaker's old model: not scored again)
            self._verifiers[name].normalization.normalizer(speakers)

    def _record_band(self, speaker: str, files) -> dict:
        """Measure the enrollment's bandwidth, keep it in the first system's speaker header."""
        band = _band.enrollment_band(files, self.feature_config.sample_rate)
        first = self._first
        first.store.update_speaker_header(speaker, first.backend_name, band)
        return band

    def narrowband_speakers(self) -> set:
        """The speakers enrolled on narrowband audio (scored by the narrowband systems in every trial)."""
        first = self._first
        return {h["speaker"] for h in first.store.speaker_headers(first.backend_name) if h.get("narrowband")}

    def enrolled_speech_s(self, speakers) -> np.ndarray:
        """Seconds of speech the first system's front end kept of each speaker's enrollment, shape (n,)."""
        first = self._verifiers[self.inputs[0]]
        first._load_background()       # the speaker models are checked against it
        unique, inverse = np.unique(np.asarray(speakers, dtype=str), return_inverse=True)
        frames = np.array([int(first._speaker_entry(str(s))[0].get("n_frames") or 0) for s in unique])
        return self._speech_s(frames)[inverse.ravel()] if len(unique) else np.zeros(0)

    def _speech_s(self, n_frames):
        """Seconds of speech in ``n_frames`` frames of the first system's front end (frames times the shift)."""
        return n_frames * self._verifiers[self.inputs[0]].feature_config.frame_shift_ms / 1000.0

    def speakers(self) -> list[str]:
        """Speakers enrolled in every system (a speaker missing from one cannot get a fused score)."""
        sets = [set(v.speakers()) for v in self._owner.values()]
        if self.narrowband is not None:
            sets.append(set(self.narrowband.speakers()))
        return sorted(set.intersection(*sets))

    def partial_speakers(self) -> dict:
        """Speakers enrolled in some systems only (a file deleted by hand, an enrollment cut short), each with the
        systems that lack it; :meth:`speakers` leaves them out, as no fused score can be made for them."""
        owners = list(self._owner.items()) + ([(f"narrowband/{n}", v) for n, v in self.narrowband._owner.items()]
                                              if self.narrowband is not None else [])
        sets = {name: set(v.speakers()) for name, v in owners}
        return {s: sorted(n for n, ids in sets.items() if s not in ids)
                for s in sorted(set().union(*sets.values()) - set.intersection(*sets.values()))}

    def speaker_info(self) -> list[dict]:
        keep = set(self.speakers())
        first = self._first
        headers = {h["speaker"]: h for h in first.store.speaker_headers(first.backend_name)}
        return [{**info, "backend": self.backend_name, "files": list(headers[info["speaker"]].get("files") or [])}
                for info in first.speaker_info() if info["speaker"] in keep]

    def remove(self, *speakers: str) -> None:
        """Remove speakers from every system (each must be enrolled in the first)."""
        speakers = [validate_speaker_id(s) for s in speakers]
        with self.store.lock():
            for v in [*self._owner.values(), *([self.narrowband] if self.narrowband is not None else [])]:
                first = v is self._first   # names unknown ids in its error
                present = speakers if first else [s for s in speakers if s in set(v.speakers())]
                if present:
                    v.remove(*present)
        self._forget()

    def _forget(self) -> None:
        for v in self._verifiers.values():
            v._normalization, v._speaker_cache = None, {}

    # ------------------------------------------------------------------ scoring
    @property
    def fusion(self) -> LinearFusion:
        """The stored fusion (:data:`FUSION_KEY`) that maps the inputs' scores to the LLR."""
        return self.spec["fusions"][FUSION_KEY]

    @property
    def threshold(self) -> float:
        """The Bayes threshold of the LLR at :attr:`p_target` (costs 1 and 1)."""
        return float(bayes_threshold(self.p_target))

    @property
    def threshold_source(self) -> str:
        return f"Bayes threshold at prior {self.p_target:g}"

    def score_file(self, speakers, audio) -> tuple[np.ndarray, np.ndarray]:
        """``(llr, matrix)``: fused LLRs (n_speakers,) of one file and each input's scores (n_speakers, n_inputs).
        Raises (e.g. :class:`AudioError`) when any system cannot score the file."""
        llr, matrix, _, _ = self._score_routed(speakers, audio)
        return llr, matrix

    def _score_routed(self, speakers, audio):
        """``(llr, matrix, test_bandwidth_hz, routed)``: :meth:`score_file` with each speaker's band (``routed``:
        scored by the narrowband systems) and the test's measured bandwidth (None without narrowband systems)."""
        speakers = [validate_speaker_id(s) for s in speakers]
        routed, bandwidth = np.zeros(len(speakers), bool), None
        if self.narrowband is not None:
            bandwidth = _band.file_bandwidth_hz(audio, self.feature_config.sample_rate)
            narrow = self.narrowband_speakers()
            routed = np.array([is_narrowband(bandwidth) or s in narrow for s in speakers], bool)
        llr, matrix = np.empty(len(speakers)), np.empty((len(speakers), len(self.inputs)))
        if routed.any():
            llr[routed], matrix[routed] = self.narrowband.score_file([s for s, r in zip(speakers, routed) if r],
                                                                      audio)
        wide = [s for s, r in zip(speakers, routed) if not r]
        if wide:
            matrix[~routed], test_s = self._input_scores(wide, lambda verifier: verifier.features(audio))
            llr[~routed] = self._fuse(matrix[~routed], wide, test_s)
        return llr, matrix, bandwidth, routed

    def _input_scores(self, speakers, features) -> tuple[np.ndarray, float]:
        """``(matrix, test_speech_s)``: each input's scores of ``speakers`` (n_speakers, n_inputs) on the frames
        ``features(verifier)`` gives (computed once per front end), and the first front end's speech seconds."""
        frames, columns = {}, []
        for name in self.inputs:
            verifier = self._verifiers[name]
            key = str(verifier.model_dir)
            if key not in frames:
                frames[key] = features(verifier)
            columns.append(verifier.score_frames(speakers, frames[key]))
        first = self._verifiers[self.inputs[0]]
        return np.column_stack(columns), self._speech_s(len(frames[str(first.model_dir)]))

    def _fuse(self, matrix, speakers, test_s) -> np.ndarray:
        """The LLRs of the inputs' scores ``matrix`` (n, n_inputs) of claims ``speakers`` on tests of ``test_s``
        seconds of speech (a number, or one per row), through the quality measures when the fusion has them."""
        if self.quality is None:
            return self.fusion.transform(matrix)
        return self.fusion.transform(self.quality.transform(matrix, self.enrolled_speech_s(speakers), test_s))

    @staticmethod
    def _band_fields(bandwidth, routed) -> dict:
        return {"band": "narrowband" if routed else "wideband",
                "test_bandwidth_hz": None if bandwidth is None else float(bandwidth)}

    def _score_signal(self, speakers, signal) -> np.ndarray:
        """Fused LLRs of a waveform at the model's rate (a window of :meth:`speaker_turns`)."""
        matrix, test_s = self._input_scores(speakers, lambda verifier: extract(signal, verifier.feature_config))
        return self._fuse(matrix, speakers, test_s)

    # windows of a long clip (who spoke when): the verifier's code, on the fused LLR
    _window_scores = SpeakerVerifier._window_scores
    identify_segments = SpeakerVerifier.identify_segments
    speaker_turns = SpeakerVerifier.speaker_turns

    def _decision(self, llr: float, threshold) -> dict:
        source = self.threshold_source if threshold is None else "given"
        threshold = self.threshold if threshold is None else float(threshold)
        return {"threshold": threshold, "threshold_source": source, "accepted": bool(llr >= threshold),
                "decision": "accept" if llr >= threshold else "reject", "p_target": self.p_target,
                "posterior": float(posterior(llr, self.p_target))}

    def verify(self, speaker: str, audio, threshold=None) -> dict:
        """The claim that ``audio`` is ``speaker``: LLR, decision at the Bayes threshold, posterior."""
        speaker = validate_speaker_id(speaker)
        if not self._first.store.has_speaker(speaker, self._first.backend_name):
            enrolled = self.speakers()
            raise UnknownSpeakerError(f"speaker {speaker!r} is not enrolled in {self.model_dir}; enrolled: "
                                      f"{', '.join(enrolled[:10]) + (' ...' if len(enrolled) > 10 else '') or 'nobody'}")
        llr, matrix, bandwidth, routed = self._score_routed([speaker], audio)
        score = float(llr[0])
        return {"speaker": speaker, "file": str(audio), "score": score, "llr": score,
                **self._decision(score, threshold), "backend": self.backend_name, "scale": self.score_scale,
                "system_scores": dict(zip(self.inputs, map(float, matrix[0]))),
                **self._band_fields(bandwidth, routed[0])}

    def identify(self, audio, top: int = 5, threshold=None, frames=None) -> dict:
        """Open-set identification over N + 1 hypotheses: each enrolled speaker, or nobody enrolled.

        Candidates are ranked by LLR; each carries its ``posterior`` among the N + 1 hypotheses at the prior
        ``p_target`` that the voice is an enrolled one (:func:`open_set_posteriors`), and ``p_nobody`` is the
        posterior of nobody enrolled (all N + 1 sum to 1, also the candidates left out by ``top``). The decision
        compares ``open_llr`` (one of the enrolled speakers against nobody, ``log mean exp`` of the LLRs) with the
        Bayes threshold at ``p_target`` (or ``threshold``): accepted, ``best`` is the top candidate; else ``best``
        is None (``rejected``). With one enrolled speaker this is :meth:`verify`. ``frames`` is refused: each system
        computes its own features.

        Raises
        ------
        ParameterError
            ``top`` < 1, or ``frames`` given.
        NotFittedError
            No speaker is enrolled in every system.
        """
        if frames is not None or int(top) < 1:
            raise ParameterError("a fused system reads the audio file itself (each system has its own features)"
                                 if frames is not None else f"top must be >= 1, got {top}")
        speakers = self.speakers()
        if not speakers:
            raise NotFittedError(f"nobody is enrolled in {self.model_dir} yet: enroll with 'speakerid enroll "
                                 "--speaker ID FILE...' first")
        llr, _, bandwidth, routed = self._score_routed(speakers, audio)
        posteriors, p_nobody, open_llr = open_set_posteriors(llr, self.p_target)
        order = np.argsort(-llr, kind="stable")[: int(top)]
        ranked = [{"speaker": speakers[i], "score": float(llr[i]), "posterior": float(posteriors[i]),
                   "band": "narrowband" if routed[i] else "wideband"} for i in order]
        decision = self._decision(open_llr, threshold)
        return {"file": str(audio), "best": None if not decision["accepted"] else ranked[0]["speaker"],
                "rejected": not decision["accepted"], "candidates": ranked, "backend": self.backend_name,
                "scale": self.score_scale, "open_llr": open_llr, "p_nobody": p_nobody,
                "n_enrolled": len(speakers), "test_bandwidth_hz": None if bandwidth is None else float(bandwidth),
                **{k: decision[k] for k in ("threshold", "threshold_source", "p_target")},
                "posterior": float(posteriors[order[0]])}

    def score_trials(self, trials, out, **options):
        """Batch-score a trial list: :func:`speakerid.scoring.batch.score_trials` per input (same options, the
        fixed normalisation :func:`fixed_norm`), fused with the stored fusion; ``score`` is the LLR,
        ``score_<input>`` each input's score, and a trial without a score from every input is an error row. With
        narrowband systems, each trial is routed (a ``band`` column says where; :mod:`~speakerid.scoring.narrowband`).
        Returns the first input's :class:`~speakerid.scoring.batch.ScoringResult` with the fused file, figures
        and error count."""
        from speakerid.data.trials import read_score_file
        from speakerid.evaluation.metrics import summary
        from speakerid.scoring.batch import PartialScoringError

        start = time.perf_counter()
        strict = options.pop("strict", False)
        if options.get("out_format", "csv") != "csv":
            raise ParameterError("the fused LLRs are written as CSV (--out-format csv); --system NAME writes one "
                                 "system's scores in the other formats")
        Path(out).resolve().parent.mkdir(parents=True, exist_ok=True)      # as score_trials does for its own file
        if self.narrowband is None:
            result = self._score_inputs(trials, out, options)
        else:
            result = _band.score_both(self, trials, Path(out), options)
        data = read_score_file(out, require_target=False, all_columns=False)
        result.out, result.seconds = Path(out), time.perf_counter() - start
        result.n_scored = int(data.usable.sum())
        result.n_errors = result.n_trials - result.n_scored
        labels = data.labels
        result.metrics = (summary(data.scores, labels, 0.01, llr=True)
                          if labels is not None and len(np.unique(labels)) == 2 else None)
        if strict and result.n_errors:
            raise PartialScoringError(result)
        return result

    def _score_inputs(self, trials, out, options: dict):
        """Score every input of these (wideband or narrowband) systems and fuse them into ``out``."""
        from speakerid.scoring.batch import score_trials

        with tempfile.TemporaryDirectory(prefix="fused-", dir=Path(out).resolve().parent) as tmp, self._quiet():
            results = []
            for name in self.inputs:
                v = self._verifiers[name]
                results.append(score_trials(v.model_dir, trials, Path(tmp) / f"{name}.csv", backend=v.backend_name,
                                            backend_params=v.backend.params or None,
                                            norm=fixed_norm(v.model_dir), cohort_top=self.cohort_top,
                                            speech_seconds=self.quality is not None and not results, **options))
            inputs = None if self.quality is None else (
                lambda rows, matrix: self.quality.transform(matrix, self.enrolled_speech_s(rows["speaker"]),
                                                            rows["test_speech_s"].to_numpy(float)))
            fuse_score_files([r.out for r in results], out, fusion=self.fusion, names=self.inputs, inputs=inputs)
        result = results[0]
        result.errors = sorted({(e.line, e.file): e for r in results for e in r.errors}.values(),
                               key=lambda e: e.line)
        result.normalization = "llr (fused: " + ", ".join(f"{n} {r.normalization}"
                                                        for n, r in zip(self.inputs, results)) + ")"
        return result
