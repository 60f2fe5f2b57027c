"""``speakerid train``: one command from a background manifest to a fused, calibrated system.

Stages: split the background speakers (seeded, :data:`~speakerid.data.dev_trials.DEV_SHARE` held out for
development); train each system's background models on the training speakers with the backends' own trainers
(:func:`~speakerid.backends.gmm_ubm.train_ubm`, :func:`~speakerid.backends.ivector.train_ivector`,
:func:`~speakerid.backends.siamese.train_siamese`; ``n_jobs`` passed on); build development trials from the
held-out speakers (:mod:`speakerid.scoring.dev_sets`: full length, 2-s crops, 5-dB noise, at the model's rate;
enrollment and test from different recordings when the background has speakers with several, else the halves of
one recording);
enroll the development speakers and score them through each system's ordinary scoring path with the fused
system's fixed normalisation (S-norm with the system's cohort, never the enrolled-speaker T-norm:
:func:`~speakerid.scoring.fused.fixed_norm`); learn the prior-weighted logistic-regression fusion (BOSARIS) on the
pooled conditions; report EER, minDCF, actDCF, Cllr and minCllr per condition, in-sample and cross-validated over two
halves of the development speakers, each with its 95 % interval from a bootstrap over the development speakers
(:func:`speakerid.evaluation.bootstrap.bootstrap_metrics`; :mod:`speakerid.scoring.fusion_fit`); remove the
development speakers again and write ``fusion.json``.

Each finished stage is recorded in the directory (:mod:`speakerid.scoring.training_state`) with the feature store
and the degraded copies kept beside it until the end: an interrupted or failed training leaves a directory that
says it is incomplete, and the same call resumes it from its last finished stage.
"""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path

from speakerid._utils.files import atomic_write, trains_into
from speakerid._utils.lazy import lazy_import
from speakerid._version import __version__
from speakerid.backends._training import read_background
from speakerid.data.dev_trials import DEV_SHARE, split_speakers
from speakerid.exceptions import ParameterError
from speakerid.features.bandwidth import NARROWBAND_EDGE_HZ
from speakerid.scoring import dev_sets
from speakerid.scoring._train_data import (
    cohort_top_for,
    record_system_cohort,
    system_config,
    usable_background,
    usable_copies,
)
from speakerid.scoring.fused import (
    DEFAULT_P_TARGET,
    DEFAULT_SYSTEMS,
    SYSTEMS,
    FusedVerifier,
    fixed_norm,
    write_fusion,
)
from speakerid.scoring.fusion_fit import (
    FIT_P_TARGET,
    dev_figures,
    fit_fusions,
)
from speakerid.scoring.narrowband import NARROWBAND_DIR, NARROWBAND_RATE
from speakerid.scoring.training_state import STATE_FILE, TrainingState, background_fingerprint
from speakerid.store import (
    COHORT_FILE,
    FUSION_FILE,
    IVECTOR_FILE,
    MLP_FILE,
    SIAMESE_FILE,
    SYSTEMS_DIR,
    UBM_FILE,
    ModelStore,
)

pd = lazy_import("pandas")

__all__ = ["train_default", "DEV_SCORES_FILE", "FIT_P_TARGET", "dev_figures"]

#: The development scores the fusions were learned on (kept so that the fusion can be reproduced).
DEV_SCORES_FILE = "dev-scores.csv"
def _check_systems(systems) -> list[str]:
    systems = [s.strip() for s in (systems.split(",") if isinstance(systems, str) else systems) if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems or len(set(systems)) != len(systems):
        raise ParameterError(f"systems must be distinct names among {', '.join(SYSTEMS)}; got {systems}")
    return [s for s in SYSTEMS if s in systems]          # the fusion's order is the registry's


def _train_system(system: str, directory: Path, manifest, rate: int, n_jobs: int, random_state: int,
                  params: dict, scheduler=None, cache_dir=None, verbose=False) -> dict:
    """The backend's own trainer on the training speakers (its defaults unless ``params``, the model's rate).

    The map-reduce trainers (GMM-UBM, i-vector) run on ``scheduler`` and share the feature store ``cache_dir``
    (one extraction of each file for both); the Siamese network trains in this process. ``verbose`` (a bool, or a
    callable deciding when the trainer starts its EM): the trainers' one line per EM iteration."""
    workers = {"n_jobs": n_jobs, "scheduler": scheduler, "cache_dir": cache_dir}
    if system == "gmm-ubm":
        from speakerid.backends.gmm_ubm import train_ubm
        return train_ubm(directory, manifest, feature_config=system_config(system, rate),
                         random_state=random_state, verbose=verbose, **workers, **params)
    if system == "ivector":
        from speakerid.backends.ivector import train_ivector
        return train_ivector(directory, manifest, feature_config=system_config(system, rate),
                             random_state=random_state, verbose=verbose() if callable(verbose) else verbose,
                             **workers, **params)
    from speakerid.backends.siamese import train_siamese
    return train_siamese(directory, manifest, feature_config=system_config(system, rate), n_jobs=n_jobs,
                         random_state=random_state, **params)


def _check_target(model_dir: Path, force: bool) -> None:
    """Refuse a model directory whose models or enrollments training would destroy or leave orphaned."""
    if not model_dir.exists():
        return
    if not model_dir.is_dir():
        raise ParameterError(f"{model_dir}: not a directory")
    expert = sorted(p.name for p in model_dir.iterdir()
                    if p.name in (UBM_FILE, IVECTOR_FILE, SIAMESE_FILE, MLP_FILE, ModelStore.SPEAKER_DIR))
    if expert:
        raise ParameterError(f"{model_dir}: holds models of the expert commands ({', '.join(expert)}); "
                             "'speakerid train' needs a new model directory")
    systems = model_dir / SYSTEMS_DIR
    enrolled = set().union(*(ModelStore(d).enrolled_speakers() for d in systems.iterdir() if d.is_dir())) \
        if systems.is_dir() else set()
    if enrolled and not force and not (model_dir / STATE_FILE).exists():   # (an unfinished one's dev speakers)
        raise ParameterError(f"{model_dir}: {len(enrolled)} speaker(s) are enrolled; retraining replaces every "
                             "system and removes them (use --force, or train into a new model directory)")


def _stage_frame(state: TrainingState, stage: str, make) -> pd.DataFrame:
    """A stage whose result is a table of files: ``make()`` once, then read back from the work folder (so that
    a resumed run and an uninterrupted one go on from the same table)."""
    path = state.work / f"{stage}.csv"
    if not state.is_done(stage):
        state.work.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "w") as fh:
            make().to_csv(fh, index=False)
        state.mark(stage)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _score_dev(fused: FusedVerifier, dev: dict, work: Path, n_jobs: int, say) -> pd.DataFrame:
    """Enroll each condition's development speakers, score its trials with every input (fixed normalisation)."""
    with warnings.catch_warnings():    # the development audio's own bandwidth is not the user's concern
        warnings.filterwarnings("ignore", message=".*narrowband, e.g. telephone audio")
        return _score_dev_conditions(fused, dev, work, n_jobs, say)


def _score_dev_conditions(fused: FusedVerifier, dev: dict, work: Path, n_jobs: int, say) -> pd.DataFrame:
    from speakerid.scoring.batch import score_trials

    frames, enrolled_from = [], None
    for condition, (enroll_csv, trials_csv) in dev.items():
        say(f"  scoring development condition {condition!r}")
        enroll_frame = pd.read_csv(enroll_csv, dtype=str)
        if enrolled_from is None or not enroll_frame.equals(enrolled_from):
            for verifier in fused._owner.values():
                if verifier.speakers():
                    verifier.remove(*verifier.speakers())
            fused.enroll_manifest(enroll_frame)
            enrolled_from = enroll_frame
        table = pd.read_csv(trials_csv, dtype={"speaker": str}).drop(columns=["condition", "record"], errors="ignore")
        table.insert(0, "condition", condition)
        for i, name in enumerate(fused.inputs):
            verifier = fused.system(name)
            out = work / f"{condition}-{name}.csv"
            result = score_trials(verifier.model_dir, trials_csv, out, backend=verifier.backend_name,
                                  backend_params=verifier.backend.params or None,
                                  norm=fixed_norm(verifier.model_dir), cohort_top=fused.cohort_top, n_jobs=n_jobs,
                                  show_progress=False, speech_seconds=i == 0)
            scored = pd.read_csv(result.out)
            table[name] = scored["score"].to_numpy(float)
            if i == 0:      # the quality measures of the calibration (the first system's front end)
                table["enroll_speech_s"] = fused.enrolled_speech_s(table["speaker"])
                table["test_speech_s"] = scored["test_speech_s"].to_numpy(float)
        frames.append(table)
    for verifier in fused._owner.values():
        if verifier.speakers():
            verifier.remove(*verifier.speakers())
    return pd.concat(frames, ignore_index=True)


def _usable(fused: FusedVerifier, signal) -> bool:
    """Whether every system's front end finds enough speech in ``signal`` (a crop at the model's rate)."""
    from speakerid.exceptions import AudioError
    from speakerid.features import extract
    from speakerid.features.speech import check_speech

    try:
        for verifier in fused._owner.values():       # the checks a file gets (features.pipeline), then the frames
            check_speech(signal, verifier.feature_config, "a development crop")
            extract(signal, verifier.feature_config)
    except AudioError:
        return False
    return True


@trains_into(1, "speakerid train")
def train_default(manifest, model_dir, *, systems=DEFAULT_SYSTEMS, sample_rate: int = 16000, n_jobs: int = 1,
                  dev_share: float = DEV_SHARE, p_target: float = DEFAULT_P_TARGET, random_state: int = 0,
                  system_params: dict | None = None, say=None, scheduler=None, cache_dir=None,
                  force: bool = False, verbose=False, narrowband: bool = True, noise_csv=None,
                  augment_copies: int = 1, resume: bool = True, command: str | None = None) -> dict:
    """Train the fused, calibrated default system of a model directory from a background manifest.

    Parameters
    ----------
    manifest : path or pandas.DataFrame
        ``speaker,path`` background speech (at least 8 speakers; keep them disjoint from the evaluated ones).
    model_dir : path
        A new (or an earlier ``train``'s) model directory; its ``systems/`` and ``fusion.json`` are replaced.
    systems : str or list of str
        Among :data:`~speakerid.scoring.fused.SYSTEMS` (``"gmm-ubm,ivector"`` by default).
    sample_rate : int
        The model's sample rate, Hz (audio is resampled to it; 8000 adds the 0.5-s ``tiny`` dev condition).
    n_jobs : int
        Passed to every trainer and to the development scoring.
    scheduler : str or dask.distributed.Client, optional
        Dask scheduler of the map-reduce trainers (GMM-UBM and i-vector, see
        :func:`~speakerid.backends.gmm_ubm.train_ubm`); a remote one needs ``cache_dir`` on a shared file system.
    cache_dir : str or os.PathLike, optional
        Feature store kept for later runs (an interrupted run resumes from it). Without it the systems share a
        temporary one for the run, so each background file is read and analysed once for all of them.
    force : bool
        Retrain a fused directory that has enrolled speakers: its systems, their enrollments and thresholds are
        replaced (without it such a directory is refused before anything is touched).
    dev_share : float
        Share of the background speakers held out for development.
    p_target : float
        The decisions' target prior stored with the model (``--p-target`` of the scoring commands overrides it).
    random_state : int
        Seeds the split, the development noise and the trainers.
    system_params : dict, optional
        ``{system: {trainer keyword: value}}`` overriding a trainer's defaults (e.g. small models in tests).
    say : callable, optional
        ``say(text)`` is called at each stage (the CLI prints it).
    verbose : bool or callable
        The GMM-UBM and i-vector trainers print one line per EM iteration on stderr (a callable is asked when
        each trainer starts its EM: the CLI's :func:`~speakerid._utils.progress.stage_lines`).
    narrowband : bool
        At a rate above 10 kHz, also train the same systems at 8 kHz into ``narrowband/`` (same split, own
        development trials and fusion, a ``telephone`` condition among them): telephone-band audio is then scored
        by them (:mod:`speakerid.scoring.narrowband`). Doubles the training time.
    noise_csv : path, optional
        A ``kind,path,licence`` list of noise, music, speech and room-response recordings (``noise.csv``): the
        training speakers' files get ``augment_copies`` degraded copies each, in real noise, music, babble and
        rooms (:mod:`speakerid.scoring.augment_background`; telephone channels too for the narrowband systems).
        Without it the trainers' own synthetic noise is the only augmentation.
    augment_copies : int
        Degraded copies per training file with ``noise_csv``.
    resume : bool
        A training into ``model_dir`` that did not finish (interrupted, failed) is resumed: the stages it finished
        are kept, if it had the same settings (:mod:`speakerid.scoring.training_state`). False starts over.
    command : str, optional
        The command line that resumes this training, named by the other commands while it is unfinished.

    Returns
    -------
    dict
        ``model_dir``, ``systems``, ``inputs``, ``weights`` (per fusion), ``dev`` (:func:`dev_figures`),
        ``timings_s``, ``n_train_speakers``, ``n_dev_speakers``, ``n_refused_files``; ``narrowband``: the same for
        the narrowband systems (or None).

    Raises
    ------
    ParameterError
        Unknown systems, too few speakers, a bad share, prior or sample rate; a directory holding the expert
        commands' models, or enrolled speakers without ``force``. ManifestError/AudioError from the data. Every
        check runs before the directory is changed.
    """
    say = say or (lambda text: None)
    systems = _check_systems(systems)
    if not 0.0 < float(p_target) < 1.0:
        raise ParameterError(f"p_target must be strictly between 0 and 1, got {p_target}")
    for system in systems:      # the front ends' checks (e.g. an analysis frame longer than the FFT) before any work
        system_config(system, sample_rate)
    if isinstance(augment_copies, bool) or not isinstance(augment_copies, int) or augment_copies < 0:
        raise ParameterError(f"augment_copies must be a non-negative integer, got {augment_copies!r}")
    _check_target(Path(model_dir), force)
    if noise_csv is not None:
        from speakerid.scoring.augment_background import load_bank

        bank = load_bank(noise_csv)
    frame, _ = read_background(manifest)
    frame = frame.assign(speaker=frame["speaker"].astype(str))
    n_listed = len(frame)
    model_dir = Path(model_dir)
    branch = narrowband and sample_rate > 2 * NARROWBAND_EDGE_HZ
    state = TrainingState(model_dir, {
        "speakerid_version": __version__, "background": background_fingerprint(frame), "systems": systems,
        "sample_rate": int(sample_rate), "dev_share": float(dev_share), "random_state": int(random_state),
        "system_params": system_params or {}, "noise_csv": None if noise_csv is None else str(noise_csv),
        "augment_copies": int(augment_copies), "narrowband": bool(branch)}, resume=resume, command=command, say=say)
    if not state.resumed:
        for stale in (model_dir / FUSION_FILE, model_dir / SYSTEMS_DIR, model_dir / NARROWBAND_DIR):
            if stale.is_dir():
                shutil.rmtree(stale)
            elif stale.exists():
                stale.unlink()
    frame = _stage_frame(state, "usable", lambda: usable_background(frame, systems, sample_rate, model_dir, n_jobs,
                                                                     say))
    train_speakers, dev_speakers = split_speakers(frame["speaker"].unique(), dev_share, random_state,
                                                  candidates=dev_sets.multi_recording_speakers(frame))
    bank = None if noise_csv is None else bank.with_babble_sources(
        frame.loc[frame["speaker"].isin(train_speakers), "path"])
    train_frame = frame[frame["speaker"].isin(train_speakers)].reset_index(drop=True)
    clean_train_frame = train_frame[["speaker", "path"]]
    timings, total = state.record.setdefault("timings_s", {}), len(systems) + 3 + branch
    # the feature store and the degraded copies stay in the work folder until the training ends: a rerun after
    # an interruption reads them again instead of starting from zero
    store = cache_dir if cache_dir is not None else state.work / "features"
    if bank is not None and augment_copies:
        from speakerid.scoring.augment_background import augmented_background

        def augment():
            copies = augmented_background(train_frame, state.work / "augment", bank, copies=augment_copies,
                                          narrowband=sample_rate <= NARROWBAND_RATE, seed=random_state,
                                          n_jobs=n_jobs, say=say)
            return usable_copies(copies, systems, sample_rate, n_jobs, say)

        start = time.perf_counter()
        train_frame = _stage_frame(state, "augment", augment)
        timings["augment_s"] = round(time.perf_counter() - start, 1)
    for i, system in enumerate(systems, 1):
        if state.is_done(f"system:{system}"):
            say(f"[{i}/{total}] {system}: trained before the interruption, kept")
            continue
        say(f"[{i}/{total}] training {system} on {len(train_speakers)} background speakers")
        start = time.perf_counter()
        shutil.rmtree(model_dir / SYSTEMS_DIR / system, ignore_errors=True)    # what an interrupted run left
        params = {**({"cohort_speakers": 0} if system == "gmm-ubm" else {}), **(system_params or {}).get(system, {})}
        _train_system(system, model_dir / SYSTEMS_DIR / system, train_frame[["speaker", "path"]], sample_rate,
                      n_jobs, random_state, params, scheduler, store, verbose)
        # every system's S-norm cohort: the same draw of training speakers, their original files (not the
        # degraded copies)
        record_system_cohort(ModelStore(model_dir / SYSTEMS_DIR / system), clean_train_frame, sample_rate,
                             random_state)
        timings[f"train_{system}_s"] = round(time.perf_counter() - start, 1)
        state.mark(f"system:{system}")
    inputs = [name for s in systems for name, _ in SYSTEMS[s][1]]
    cohort_top = cohort_top_for(sample_rate, model_dir / SYSTEMS_DIR / systems[0] / COHORT_FILE)
    provisional = {"systems": systems, "p_target": float(p_target), "fusions": {}, "dev": {},
                   "cohort_top": cohort_top}
    work = model_dir / "dev"
    if state.is_done("dev"):
        say(f"[{len(systems) + 1}/{total}] development scores: made before the interruption, kept")
        kind = state.record["dev_trials"]
    else:
        shutil.rmtree(work, ignore_errors=True)
        say(f"[{len(systems) + 1}/{total}] building development trials from {len(dev_speakers)} held-out speakers")
        start = time.perf_counter()
        fused = FusedVerifier(model_dir, n_jobs=n_jobs, spec={**provisional, "inputs": inputs})
        dev, kind = dev_sets.build_trials(frame[frame["speaker"].isin(dev_speakers)], work / "audio", sample_rate,
                                          random_state, usable=lambda signal: _usable(fused, signal),
                                          n_jobs=n_jobs, bank=bank)
        say(f"  development trials: {dev_sets.KINDS[kind]}")
        _score_dev(fused, dev, work / "scores", n_jobs, say).to_csv(work / DEV_SCORES_FILE, index=False)
        timings["dev_s"] = round(time.perf_counter() - start, 1)
        shutil.rmtree(work / "audio", ignore_errors=True)
        shutil.rmtree(work / "scores", ignore_errors=True)
        state.record["dev_trials"] = kind
        state.mark("dev")
    # the fusion learns from the scores as stored, whether made by this run or by an interrupted one
    table = pd.read_csv(work / DEV_SCORES_FILE, dtype={"speaker": str, "path": str, "condition": str})
    say(f"[{len(systems) + 2}/{total}] learning the fusion and calibration on {len(table)} development trials")
    fusions, quality = fit_fusions(table, inputs)
    figures = dev_figures(table, inputs, fusions, quality)
    narrow = None
    if branch:
        say(f"[{total - 1}/{total}] training the narrowband systems ({NARROWBAND_RATE} Hz) on the same speakers")
        start = time.perf_counter()
        narrow = train_default(frame, model_dir / NARROWBAND_DIR, systems=systems, sample_rate=NARROWBAND_RATE,
                               n_jobs=n_jobs, dev_share=dev_share, p_target=p_target, random_state=random_state,
                               system_params=system_params, say=lambda text: say(f"  narrowband: {text}"),
                               scheduler=scheduler, cache_dir=cache_dir, force=True, verbose=verbose,
                               narrowband=False, noise_csv=noise_csv, augment_copies=augment_copies,
                               resume=resume, command=command)
        timings["narrowband_s"] = round(time.perf_counter() - start, 1)
    write_fusion(model_dir, {"systems": systems, "p_target": float(p_target), "sample_rate": int(sample_rate),
                             "cohort_top": cohort_top,
                             "narrowband": {"dir": NARROWBAND_DIR, "sample_rate": NARROWBAND_RATE,
                                            "edge_hz": NARROWBAND_EDGE_HZ} if branch else None,
                             "fusions": {v: m.to_dict() for v, m in fusions.items()}, "dev": figures,
                             "quality": None if quality is None else quality.to_dict(),
                             "split": {"random_state": int(random_state), "dev_share": float(dev_share),
                                       "dev_speakers": dev_speakers, "n_train_speakers": len(train_speakers),
                                       "dev_trials": kind},
                             "augmentation": None if bank is None or not augment_copies else {
                                 "noise_csv": str(noise_csv), "copies": int(augment_copies),
                                 "n_training_files": len(train_frame)},
                             "dev_scores": f"dev/{DEV_SCORES_FILE}", "timings_s": timings})
    state.finish()
    say(f"[{total}/{total}] wrote {model_dir / FUSION_FILE}")
    return {"model_dir": str(model_dir), "systems": systems, "inputs": inputs,
            "weights": {v: {"weights": m.weights_.tolist(), "bias": m.bias_} for v, m in fusions.items()},
            "dev": figures, "dev_trials": kind, "timings_s": timings, "n_train_speakers": len(train_speakers),
            "n_dev_speakers": len(dev_speakers), "n_refused_files": n_listed - len(frame), "narrowband": narrow}
