"""The fused system that ``speakerid train`` builds: every system scored on its own scale, one calibrated LLR out.

A fused model directory holds one ordinary model directory per system under ``systems/`` (``gmm-ubm``,
``ivector``, ``siamese``; each keeps its own background model, cohort, speakers and front end) and ``fusion.json``:
the systems' fusion inputs (a system may give several, e.g. the i-vector system's cosine and PLDA scores), the
prior-weighted logistic-regression fusion learned on development trials
(:class:`~speakerid.evaluation.fusion.LinearFusion`, BOSARIS [1]_), the decision prior and the development figures.

Each input is scored by a :class:`~speakerid.verifier.SpeakerVerifier` with its default normalisation (S-norm with
the system's cohort, then T-norm over the other enrolled speakers once :data:`AUTO_ENROLLED_MIN` are enrolled), so
enrollment, cohorts and the enrolled-speaker T-norm work per system before the fusion. Two fusions are stored, one
for the scales with the enrolled T-norm and one without it; the one matching the scales in use is applied. A
trial that any system cannot score (e.g. too little speech) is an error, never a partial fusion. The output is a
natural-log likelihood ratio: accept when it reaches the Bayes threshold ``-logit(p_target)``; the posterior
probability of the claim at prior ``p_target`` is ``sigmoid(llr + logit(p_target))``.

References
----------
.. [1] N. Brümmer and E. de Villiers, "The BOSARIS toolkit: theory, algorithms and code for surviving the
       new DCF", arXiv:1304.2865, 2013.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write
from speakerid._version import __version__
from speakerid.data.manifests import read_manifest, validate_speaker_id
from speakerid.evaluation.fusion import LinearFusion, fuse_score_files
from speakerid.evaluation.metrics import bayes_threshold
from speakerid.evaluation.norm import AUTO_ENROLLED_MIN
from speakerid.exceptions import ModelFormatError, NotFittedError, ParameterError
from speakerid.scoring.systems import DEFAULT_P_TARGET, DEFAULT_SYSTEMS, SYSTEMS
from speakerid.store import FUSION_FILE, SYSTEMS_DIR, ModelStore
from speakerid.verifier import SpeakerVerifier

__all__ = ["SYSTEMS", "DEFAULT_SYSTEMS", "DEFAULT_P_TARGET", "FusedVerifier", "has_fusion", "read_fusion", "input_name",
           "write_fusion", "posterior", "open_verifier", "AUTO_ENROLLED_MIN"]

_FORMAT, _VERSION = "speakerid-fused-system", 1


def input_name(name: str) -> str:
    """The fusion input a ``--system`` name stands for: an input itself (``"ivector-plda"``), or a system's first
    input (``"ivector"`` -> ``"ivector-cosine"``), whose scores are the ``score_<input>`` column of a score file."""
    return SYSTEMS[name][1][0][0] if name in SYSTEMS else name


def posterior(llr, p_target: float) -> np.ndarray:
    """P(same speaker | the trial) of LLRs (natural log) at the prior ``p_target``.

    >>> round(float(posterior(0.0, 0.5)), 3), round(float(posterior(np.log(9), 0.5)), 3)
    (0.5, 0.9)
    """
    p = _check_p_target(p_target)
    z = np.asarray(llr, dtype=np.float64) + math.log(p) - math.log1p(-p)
    return 0.5 * (1.0 + np.tanh(0.5 * z))   # the logistic sigmoid without overflow


def _check_p_target(p_target) -> float:
    try:
        p = float(p_target)
    except (TypeError, ValueError):
        raise ParameterError(f"p_target must be a number, got {p_target!r}") from None
    if not 0.0 < p < 1.0:
        raise ParameterError(f"p_target must be strictly between 0 and 1, got {p_target}")
    return p


def has_fusion(model_dir) -> bool:
    """Whether ``model_dir`` is a fused system built by ``speakerid train``."""
    return (Path(model_dir) / FUSION_FILE).is_file()


def write_fusion(model_dir, data: dict) -> Path:
    """Write ``fusion.json`` (atomically) from the fields :func:`read_fusion` returns."""
    path = Path(model_dir) / FUSION_FILE
    body = {"format": _FORMAT, "format_version": _VERSION, "speakerid_version": __version__, **data}
    with atomic_write(path, "w") as fh:
        fh.write(json.dumps(body, indent=1, sort_keys=True) + "\n")
    return path


def read_fusion(model_dir) -> dict:
    """The checked content of ``fusion.json``: ``systems``, ``inputs``, ``p_target``, ``fusions`` (fitted
    :class:`LinearFusion` under ``"enrolled"`` and ``"plain"``), ``dev``; :class:`ModelFormatError` naming the file."""
    path = Path(model_dir) / FUSION_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFittedError(f"{path}: no fused system here: run 'speakerid train' first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: not a fused-system file ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ModelFormatError(f"{path}: not a fused-system file (no 'format': '{_FORMAT}')")
    if not isinstance(data.get("format_version"), int) or data["format_version"] > _VERSION:
        raise ModelFormatError(f"{path}: format version {data.get('format_version')!r} is not readable by "
                               f"speakerid {__version__} (reads up to {_VERSION})")
    try:
        systems = [str(s) for s in data["systems"]]
        unknown = sorted(set(systems) - set(SYSTEMS))
        if unknown or not systems:
            raise ValueError(f"unknown system(s) {unknown}" if unknown else "no systems")
        inputs = [name for s in systems for name, _ in SYSTEMS[s][1]]
        fusions = {key: LinearFusion.from_dict(value, source=f"{path} [{key}]")
                   for key, value in data["fusions"].items()}
        for key, model in fusions.items():
            if getattr(model, "system_names_", None) != inputs:
                raise ValueError(f"fusion {key!r} combines {getattr(model, 'system_names_', None)}, not {inputs}")
        p_target = _check_p_target(data["p_target"])
    except (KeyError, TypeError, ValueError, ParameterError) as exc:
        reason = f"missing field {exc}" if isinstance(exc, KeyError) else " ".join(str(exc).split())
        raise ModelFormatError(f"{path}: invalid fused system ({reason})") from None
    return {**data, "systems": systems, "inputs": inputs, "fusions": fusions, "p_target": p_target}


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
    ``p_target`` and ``system_scores`` (each input's normalised score).
    """

    backend_name = "fused"
    score_scale = "llr"

    def __init__(self, model_dir, *, p_target=None, n_jobs: int = 1, cache_dir=None, spec=None):
        self.model_dir = Path(model_dir)
        self.spec = read_fusion(self.model_dir) if spec is None else spec   # spec: training, before fusion.json
        self.p_target = self.spec["p_target"] if p_target is None else _check_p_target(p_target)
        self.inputs = self.spec["inputs"]
        self._verifiers, self._owner = {}, {}
        for system in self.spec["systems"]:
            backend, inputs = SYSTEMS[system]
            for name, params in inputs:
                self._verifiers[name] = SpeakerVerifier(self.system_dir(system), backend=backend,
                                                        backend_params=params or None, n_jobs=n_jobs,
                                                        cache_dir=cache_dir)
            self._owner[system] = self._verifiers[input_name(system)]

    @property
    def store(self) -> ModelStore:
        """The fused directory itself (its lock guards enrollment in every system)."""
        return ModelStore(self.model_dir)

    @property
    def feature_config(self):
        """The first system's front end (every system reads audio at the same sample rate)."""
        return next(iter(self._owner.values())).feature_config

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

    # ------------------------------------------------------------------ enrollment
    def enroll(self, speaker: str, files, n_augment=None, *, names=None) -> dict:
        """Enroll one speaker in every system (:meth:`SpeakerVerifier.enroll`); returns the first system's dict
        with ``backend`` ``"fused"``."""
        results = [v.enroll(speaker, files, n_augment, names=names) for v in self._owner.values()]
        self._forget()
        return {**results[0], "backend": self.backend_name}

    def enroll_manifest(self, manifest, n_augment=None) -> list[dict]:
        frame = manifest if hasattr(manifest, "groupby") else read_manifest(manifest, for_enrollment=True)
        results = [v.enroll_manifest(frame, n_augment) for v in self._owner.values()]
        self._forget()
        return [{**r, "backend": self.backend_name} for r in results[0]]

    def speakers(self) -> list[str]:
        """Speakers enrolled in every system (a speaker missing from one cannot get a fused score)."""
        sets = [set(v.speakers()) for v in self._owner.values()]
        return sorted(set.intersection(*sets))

    def speaker_info(self) -> list[dict]:
        keep = set(self.speakers())
        first = next(iter(self._owner.values()))
        headers = {h["speaker"]: h for h in first.store.speaker_headers(first.backend_name)}
        return [{**info, "backend": self.backend_name, "files": list(headers[info["speaker"]].get("files") or [])}
                for info in first.speaker_info() if info["speaker"] in keep]

    def remove(self, *speakers: str) -> None:
        """Remove speakers from every system (each must be enrolled in the first)."""
        speakers = [validate_speaker_id(s) for s in speakers]
        for v in self._owner.values():
            present = [s for s in speakers if s in set(v.speakers())]
            if v is next(iter(self._owner.values())):
                present = speakers                   # the first system names unknown ids in its error
            if present:
                v.remove(*present)
        self._forget()

    def _forget(self) -> None:
        for v in self._verifiers.values():
            v._normalization = None

    # ------------------------------------------------------------------ scoring
    @property
    def fusion_key(self) -> str:
        """``"enrolled"`` when the systems' scales include the enrolled-speaker T-norm, else ``"plain"``."""
        scales = {name: v.score_scale for name, v in self._verifiers.items()}
        with_enrolled = {"enrolled" in scale.split("+") for scale in scales.values()}
        if len(with_enrolled) != 1:
            raise ParameterError(f"the systems' score scales disagree ({scales}); enroll the same speakers in all")
        return "enrolled" if with_enrolled.pop() else "plain"

    @property
    def fusion(self) -> LinearFusion:
        return self.spec["fusions"][self.fusion_key]

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
        speakers = [validate_speaker_id(s) for s in speakers]
        matrix, frames = np.empty((len(speakers), len(self.inputs))), {}
        for j, name in enumerate(self.inputs):
            verifier = self._verifiers[name]
            key = str(verifier.model_dir)
            if key not in frames:
                frames[key] = verifier.features(audio)
            matrix[:, j] = verifier.score_frames(speakers, frames[key])
        return self.fusion.transform(matrix), matrix

    def _score_signal(self, speakers, signal) -> np.ndarray:
        """Fused LLRs of a waveform at the model's rate (a window of :meth:`speaker_turns`)."""
        matrix = np.column_stack([self._verifiers[name]._score_signal(speakers, signal) for name in self.inputs])
        return self.fusion.transform(matrix)

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
        llr, matrix = self.score_file([speaker], audio)
        score = float(llr[0])
        return {"speaker": speaker, "file": str(audio), "score": score, "llr": score,
                **self._decision(score, threshold), "backend": self.backend_name, "scale": self.score_scale,
                "system_scores": dict(zip(self.inputs, map(float, matrix[0])))}

    def identify(self, audio, top: int = 5, threshold=None, frames=None) -> dict:
        """Enrolled speakers ranked by LLR; ``best`` is None (``rejected``) below the threshold. ``frames`` is
        refused: each system computes its own features."""
        if frames is not None:
            raise ParameterError("a fused system reads the audio file itself (each system has its own features)")
        if int(top) < 1:
            raise ParameterError(f"top must be >= 1, got {top}")
        speakers = self.speakers()
        if not speakers:
            raise NotFittedError(f"no speaker is enrolled in every system of {self.model_dir}")
        llr, _ = self.score_file(speakers, audio)
        order = np.argsort(-llr, kind="stable")[: int(top)]
        ranked = [{"speaker": speakers[i], "score": float(llr[i]),
                   "posterior": float(posterior(llr[i], self.p_target))} for i in order]
        decision = self._decision(ranked[0]["score"], threshold)
        return {"file": str(audio), "best": None if not decision["accepted"] else ranked[0]["speaker"],
                "rejected": not decision["accepted"], "candidates": ranked, "backend": self.backend_name,
                "scale": self.score_scale, **{k: decision[k] for k in ("threshold", "threshold_source",
                                                                      "p_target", "posterior")}}

    def score_trials(self, trials, out, **options):
        """Batch-score a trial list: :func:`speakerid.scoring.batch.score_trials` per input (same options, the
        default normalisation), fused with the stored fusion; ``score`` is the LLR, ``score_<input>`` each input's
        score, and a trial without a score from every input is an error row. Returns the first input's
        :class:`~speakerid.scoring.batch.ScoringResult` with the fused file, figures and error count."""
        from speakerid.data.trials import read_score_file
        from speakerid.evaluation.metrics import summary
        from speakerid.scoring.batch import PartialScoringError, score_trials

        start = time.perf_counter()
        strict = options.pop("strict", False)
        if options.get("out_format", "csv") != "csv":
            raise ParameterError("the fused LLRs are written as CSV (--out-format csv); --system NAME writes one "
                                 "system's scores in the other formats")
        Path(out).resolve().parent.mkdir(parents=True, exist_ok=True)      # as score_trials does for its own file
        with tempfile.TemporaryDirectory(prefix="fused-", dir=Path(out).resolve().parent) as tmp:
            results = []
            for name in self.inputs:
                v = self._verifiers[name]
                results.append(score_trials(v.model_dir, trials, Path(tmp) / f"{name}.csv", backend=v.backend_name,
                                            backend_params=v.backend.params or None, **options))
            fuse_score_files([r.out for r in results], out, fusion=self.fusion, names=self.inputs)
        result = results[0]
        data = read_score_file(out, require_target=False, all_columns=False)
        result.out, result.seconds = Path(out), time.perf_counter() - start
        result.n_scored = int(data.usable.sum())
        result.n_errors = result.n_trials - result.n_scored
        result.errors = sorted({(e.line, e.file): e for r in results for e in r.errors}.values(),
                               key=lambda e: e.line)
        result.normalization = "llr (fused: " + ", ".join(f"{n} {r.normalization}"
                                                        for n, r in zip(self.inputs, results)) + ")"
        labels = data.labels
        result.metrics = (summary(data.scores, labels, 0.01, llr=True)
                          if labels is not None and len(np.unique(labels)) == 2 else None)
        if strict and result.n_errors:
            raise PartialScoringError(result)
        return result


def open_verifier(model_dir, *, system=None, backend=None, p_target=None, **kwargs):
    """The verifier a command should use.

    A fused directory (``fusion.json``) without ``backend``: its :class:`FusedVerifier`, or with ``system`` that
    system's :class:`SpeakerVerifier` (its own scale; ``kwargs`` such as ``norm`` apply to it). Any other
    directory: a plain :class:`SpeakerVerifier` (``backend``, ``kwargs``), whose scores are on the scale its
    ``score_scale`` names (not calibrated LLRs). Options that need the other kind raise :class:`ParameterError`.
    """
    if has_fusion(model_dir) and backend is None:
        fused = FusedVerifier(model_dir, p_target=p_target, n_jobs=kwargs.get("n_jobs", 1),
                              cache_dir=kwargs.get("cache_dir"))
        if system is None:
            options = {"norm": "--norm", "backend_params": "--exact", "cohort": "--cohort", "cohort_top": "--cohort-top"}
            extra = sorted(options.get(k, k) for k, v in kwargs.items()
                           if k not in ("n_jobs", "cache_dir") and v not in (None, "auto"))
            if extra:
                raise ParameterError(f"{', '.join(extra)} apply to one system of the fused directory {model_dir}: "
                                     f"add --system NAME (one of {', '.join(fused.inputs)})")
            return fused
        if p_target is not None:
            raise ParameterError("--p-target applies to the fused LLR; one --system's scores are not calibrated")
        one = fused.system(system)
        params = {**one.backend.params, **(kwargs.pop("backend_params", None) or {})}
        return SpeakerVerifier(one.model_dir, backend=one.backend_name, backend_params=params or None, **kwargs)
    if system is not None or p_target is not None:
        raise ParameterError(f"{'--system' if system is not None else '--p-target'} needs a fused model directory "
                             f"(built by 'speakerid train'); {model_dir} has no {FUSION_FILE}")
    return SpeakerVerifier(model_dir, backend=backend, **kwargs)
