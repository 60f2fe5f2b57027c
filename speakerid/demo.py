"""The end-to-end demo behind ``make demo``: synthetic corpus -> the model shipped in the package (enroll, verify,
identify, nothing trained) -> features -> UBM -> enroll -> verify -> identify -> batch-score every trial (raw and
with the default normalisation) -> evaluation report -> the default fused system (``speakerid train``: calibrated
LLRs).

Everything runs offline on speakers that :mod:`speakerid.data.synth` generates, so the demo works on a fresh clone with
no data at all; the shipped model's step uses real speech (LibriSpeech test-other) when ``../shared`` is beside the
clone. Each step prints one short block; the function returns the figures for tests.
"""

from __future__ import annotations

import time
from pathlib import Path

from speakerid.data.manifests import read_manifest
from speakerid.evaluation.report import evaluate
from speakerid.features import FEATURE_NAMES, FeatureConfig, feature_table
from speakerid.scoring.batch import score_trials

__all__ = ["run_demo"]


def _say(out, text=""):
    if out is not None:
        out(text)


def run_demo(data_dir="data/synth", model_dir="data/models", report_dir="data/report", *, n_speakers: int = 30, n_utterances: int = 10,
             n_components: int = 64, random_state: int = 0, force: bool = False, out=print, shared="../shared") -> dict:
    """Run the whole pipeline on a synthetic corpus and return its figures.

    Parameters
    ----------
    data_dir : path
        Where the synthetic corpus is (re)generated; reused when it is already there with the same settings.
    model_dir : path
        Model directory written by the demo (UBM, speakers, threshold). Replaced speakers are re-enrolled.
    report_dir : path
        Score files and the evaluation report (``report.html``, ``metrics.json``, ROC/DET plots).
    n_speakers, n_utterances : int
        Size of the evaluated part of the corpus (as many background speakers as evaluated ones).
    n_components : int
        UBM size (the toolkit default is 256; 64 keeps the demo to about a minute).
    random_state : int
        Seeds the corpus and the UBM training.
    force : bool
        Regenerate the corpus even when it is up to date.
    out : callable or None
        Where lines are printed (``None``: silent).
    shared : path or None
        The shared data folder: the shipped model's step enrolls real speakers from it when it is there.

    Returns
    -------
    dict
        ``corpus`` (the SynthCorpus), ``feature_table``, ``true_claim``, ``false_claim``, ``identify``, ``eer``,
        ``min_dcf``, ``n_trials``, ``shipped`` (the shipped model's claims, or None), ``seconds`` per step.
    """
    from speakerid.data.synth import make_corpus
    from speakerid.verifier import SpeakerVerifier

    timings = {}
    data_dir, model_dir = Path(data_dir), Path(model_dir)

    start = time.perf_counter()
    _say(out, f"[1/8] synthetic corpus in {data_dir}")
    corpus = make_corpus(data_dir, n_speakers=n_speakers, n_utterances=n_utterances, seed=random_state,
                         reuse=not force)
    enroll = read_manifest(corpus.enroll_csv)
    trials = read_manifest(corpus.trials_csv, require_target=True)
    background = read_manifest(corpus.background_csv)
    _say(out, f"      {len(corpus.speakers)} speakers + {len(corpus.background_speakers)} background speakers, "
              f"{corpus.n_files} files, {corpus.total_duration_s / 60:.1f} min of audio, {len(trials)} trials")
    timings["corpus"] = time.perf_counter() - start

    start = time.perf_counter()
    shipped = _shipped_step(corpus, model_dir.parent / "store", shared, out)
    timings["shipped"] = time.perf_counter() - start

    start = time.perf_counter()
    _say(out, "[3/8] features (every extractor, on the enrollment files)")
    table = feature_table(list(enroll["path"]), FeatureConfig(features=FEATURE_NAMES))
    _say(out, f"      {'feature':<9}{'frames':>9}{'dims':>6}{'seconds':>9}")
    for row in table:
        _say(out, f"      {row['feature']:<9}{row['frames']:>9}{row['dims']:>6}{row['seconds']:>9.3f}")
    timings["features"] = time.perf_counter() - start

    start = time.perf_counter()
    _say(out, f"[4/8] UBM: {n_components} components on {len(background)} background files")
    verifier = SpeakerVerifier(model_dir, backend="gmm-ubm")
    # the demo owns its directory: a rerun retrains it and enrolls its speakers again
    trained = verifier.train(corpus.background_csv, n_components=n_components, max_iter=10,
                             random_state=random_state, force=True)
    history = trained["log_likelihood_history"]
    if history:
        _say(out, f"      EM: {len(history)} iterations, average log-likelihood {history[0]:.2f} -> {history[-1]:.2f}")
    timings["ubm"] = time.perf_counter() - start

    start = time.perf_counter()
    _say(out, f"[5/8] enroll {enroll['speaker'].nunique()} speakers from {len(enroll)} files (MAP, r=16)")
    verifier.enroll_manifest(corpus.enroll_csv)
    _say(out, f"      model directory: {model_dir} ({len(verifier.speakers())} speakers)")
    timings["enroll"] = time.perf_counter() - start

    start = time.perf_counter()
    _say(out, "[6/8] verify one true and one false claim, identify the same file")
    target_row = trials[trials["target"] == 1].iloc[0]
    impostor = next(s for s in corpus.speakers if s != target_row["speaker"])
    true_claim = verifier.verify(target_row["speaker"], target_row["path"])
    false_claim = verifier.verify(impostor, target_row["path"])
    name = Path(target_row["path"]).name
    for claim in (true_claim, false_claim):
        _say(out, f"      {name} claims {claim['speaker']}: score {claim['score']:+.3f} "
                  f"(threshold {claim['threshold']:+.3f}) -> {claim['decision']}")
    identified = verifier.identify(target_row["path"], top=3)
    ranked = ", ".join(f"{c['speaker']} {c['score']:+.3f}" for c in identified["candidates"])
    best = "no match" if identified["rejected"] else identified["best"]
    _say(out, f"      identify {name}: best {best} (true speaker {target_row['speaker']}); "
              f"top 3: {ranked}")
    timings["verify"] = time.perf_counter() - start

    start = time.perf_counter()
    report_dir = Path(report_dir)
    _say(out, f"[7/8] batch-score all {len(trials)} trials, raw and with the default normalisation, and evaluate")
    report_dir.mkdir(parents=True, exist_ok=True)
    systems = {"gmm-ubm": report_dir / "scores-gmm-ubm.csv", "gmm-ubm+norm": report_dir / "scores-norm.csv"}
    score_trials(model_dir, corpus.trials_csv, systems["gmm-ubm"], norm="none")
    # the default: S-norm with the cohort train-ubm drew from the background speakers, then T-norm over the
    # other enrolled speakers when there are enough of them
    normalized = score_trials(model_dir, corpus.trials_csv, systems["gmm-ubm+norm"])
    _say(out, f"      default normalisation: {normalized.normalization}")
    report = evaluate(list(systems.values()), report_dir, p_target=0.01, names=list(systems))
    by_name = {row["name"]: row for row in report["systems"]}
    for system_name, row in by_name.items():
        e, d = row["intervals"]["eer"], row["intervals"]["min_dcf@0.01"]
        _say(out, f"      {system_name:<14} EER {row['eer_percent']:5.2f} % [{100 * e['low']:.2f}, "
                  f"{100 * e['high']:.2f}], minDCF(0.01) {row['min_dcf']:.3f} [{d['low']:.3f}, {d['high']:.3f}] "
                  f"({row['n_speakers']} speakers, {row['n_target']} target, {row['n_nontarget']} impostor trials; "
                  "95 % intervals over the speakers)")
    _say(out, f"      report: {report_dir / 'report.html'} (ROC, DET, histograms, metrics.json)")
    eer, dcf = by_name["gmm-ubm"]["eer"], by_name["gmm-ubm"]["min_dcf"]
    timings["score"] = time.perf_counter() - start

    start = time.perf_counter()
    fused = _fused_step(corpus, model_dir.parent / f"{model_dir.name}-fused", target_row, impostor, n_components,
                        random_state, out)
    timings["fused"] = time.perf_counter() - start
    _say(out, f"done in {sum(timings.values()):.1f} s. Next: make verify SPEAKER={target_row['speaker']} "
              f"AUDIO={target_row['path']}")
    return {"corpus": corpus, "feature_table": table, "true_claim": true_claim, "false_claim": false_claim,
            "identify": identified, "eer": eer, "min_dcf": dcf, "n_trials": len(trials), "report": report,
            "fused": fused, "shipped": shipped, "seconds": timings}


def _fused_step(corpus, model_dir, target_row, impostor, n_components, random_state, out):
    """``speakerid train`` on the background speakers (small models), enroll, two claims as LLRs; or None when the
    corpus has too few background speakers for a development split."""
    from speakerid.data.dev_trials import MIN_DEV_SPEAKERS
    from speakerid.scoring.fused import FusedVerifier
    from speakerid.scoring.fused_train import train_default

    n_background = len(corpus.background_speakers)
    if n_background < MIN_DEV_SPEAKERS + 2:
        _say(out, f"[8/8] default fused system skipped: {n_background} background speakers, it needs "
                  f"{MIN_DEV_SPEAKERS + 2}")
        return None
    _say(out, "[8/8] the default system: speakerid train (GMM-UBM + i-vector, fused and calibrated on held-out "
              "background speakers)")
    small = {"gmm-ubm": {"n_components": n_components},
             "ivector": {"ubm_components": min(32, n_components), "rank": 50}}
    result = train_default(corpus.background_csv, model_dir, random_state=random_state, system_params=small,
                           force=True)   # the demo owns its directory: a rerun trains it again
    for condition, figures in result["dev"].items():
        f = figures["fusion (dev, in-sample)"]
        ci = {key: f"[{f[key + '_ci'][0]:.{d}f}, {f[key + '_ci'][1]:.{d}f}]"
              for key, d in (("eer_pct", 2), ("act_dcf", 3), ("min_dcf", 3), ("cllr", 3), ("min_cllr", 3))}
        _say(out, f"      dev {condition:<6} EER {f['eer_pct']:5.2f} % {ci['eer_pct']}, actDCF {f['act_dcf']:.3f} "
                  f"{ci['act_dcf']} (minDCF {f['min_dcf']:.3f} {ci['min_dcf']}), Cllr {f['cllr']:.3f} {ci['cllr']} "
                  f"(min {f['min_cllr']:.3f} {ci['min_cllr']}); {f['n_speakers']} speakers")
    verifier = FusedVerifier(model_dir)
    verifier.enroll_manifest(corpus.enroll_csv)
    claims = [verifier.verify(s, target_row["path"]) for s in (target_row["speaker"], impostor)]
    for claim, genuine in zip(claims, (True, False)):
        right = (claim["decision"] == "accept") == genuine
        verdict = "right" if right else f"wrong: a false {'reject' if genuine else 'accept'}"
        _say(out, f"      {Path(target_row['path']).name} claims {claim['speaker']}: {claim['decision']}ed ({verdict}), "
                  f"LLR {claim['llr']:+.2f}, P(same speaker) = {claim['posterior']:.2f} at prior "
                  f"{claim['p_target']:g}")
    _say(out, f"      (small models from {n_background} synthetic background speakers: real use trains on hundreds, "
              "see the README's figures on real speech)")
    return {"train": result, "claims": claims}


def _shipped_step(corpus, store, shared, out):
    """Enroll three speakers into a demo store over the shipped model (real speech from ``shared`` when it is
    there, else the synthetic corpus), verify a true and a false claim and identify; None without a shipped model."""
    from speakerid import pretrained
    from speakerid.exceptions import NotFittedError

    try:
        model_dir = pretrained.user_model_dir(root=store)
    except NotFittedError as exc:
        _say(out, f"[2/8] the shipped model: skipped ({exc})")
        return None
    enroll_csv = None if shared is None else Path(shared) / "protocols" / "librispeech-test-other-enroll.csv"
    real = enroll_csv is not None and enroll_csv.is_file()
    enroll = read_manifest(enroll_csv if real else corpus.enroll_csv)
    speakers = sorted(enroll["speaker"].unique())[:3]
    groups = {s: list(enroll.loc[enroll["speaker"] == s, "path"]) for s in speakers}
    tests = {s: files.pop() for s, files in groups.items()}            # one file of each held out as a test
    where = ("LibriSpeech test-other (../shared)" if real
             else "the synthetic corpus (not speech: expect poor answers; real voices give the model card's figures)")
    _say(out, f"[2/8] the model shipped with speakerid, nothing trained: enroll {len(speakers)} speakers of {where} "
              f"into {model_dir}")
    verifier = pretrained.Verifier(model_dir)
    for speaker, files in groups.items():
        verifier.enroll(speaker, files)
    claims = [verifier.verify(speakers[0], tests[speakers[0]]), verifier.verify(speakers[1], tests[speakers[0]])]
    name = Path(tests[speakers[0]]).name
    for claim in claims:
        _say(out, f"      {name} claims {claim['speaker']}: {claim['decision']}, LLR {claim['llr']:+.2f}, "
                  f"P(same speaker) = {claim['posterior']:.2f} [{claim['band']}]")
    identified = verifier.identify(tests[speakers[0]], top=3)
    best = "no match" if identified["rejected"] else identified["best"]
    _say(out, f"      identify {name}: {best} (true speaker {speakers[0]}). From the shell: speakerid enroll --speaker ID "
              "FILE..., speakerid verify --speaker ID FILE (no --model-dir: your own store, 'speakerid model-card')")
    return {"claims": claims, "identify": identified, "real_speech": real}
