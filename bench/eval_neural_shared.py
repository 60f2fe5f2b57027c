"""Siamese MLP and MLP-classifier embeddings next to GMM-UBM on the LibriSpeech protocols in ../shared.

Trains both networks on ``librispeech-background.csv`` (223 speakers, one recording each, so every recording
is cut into ``--segment-s`` segments to give same-speaker pairs) twice: in ``DIR/neural`` with the default
neural features (20 MFCC + delta, energy VAD, no CMVN) and in ``DIR/neural-all`` with all frame features (MFCC
+ delta, log-mel + delta, ZCR, roll-off, flux, chroma); and a GMM-UBM in ``DIR/gmm-ubm`` with the default
configuration (MFCC 20 + delta + delta-delta, VAD, CMVN). Then, for test-other (full, short, noisy): enroll
the protocol's speakers with every backend and print per system the EER %, minDCF (P_target = 0.01), the trial
accuracy at the EER threshold (the best threshold for these very trials, an oracle) and at the threshold fixed
before seeing them (the validation EER threshold saved with a neural model; 0 for the GMM-UBM log-likelihood
ratio). Each system's figures are the mean over the training seeds; below each system, every run (seed) has its
EER and minDCF with the 95 % interval of a bootstrap over the claimed speakers (``bench/_intervals.py``), and each
system line its target / non-target trial and speaker counts.

Usage: ``python bench/eval_neural_shared.py [--shared ../shared] [--work-dir DIR] [--components 256]``. The
training curves are ``DIR/neural*/training.png`` and ``DIR/neural*/training-mlp.png``. Ends with one JSON
line (the keys as before; per system ``per_run``: each run's figures with ``*_ci``, and the counts).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _intervals import counts, fmt, groups_of  # noqa: E402
from _intervals import figures as interval_figures  # noqa: E402

from speakerid.backends.mlp import train_mlp  # noqa: E402
from speakerid.backends.siamese import train_siamese  # noqa: E402
from speakerid.data.manifests import read_manifest  # noqa: E402
from speakerid.evaluation import metrics  # noqa: E402
from speakerid.models.clipvec import NEURAL_FEATURE_CONFIG  # noqa: E402
from speakerid.verifier import SpeakerVerifier  # noqa: E402

ALL_FEATURES = ("mfcc", "logmel", "zcr", "rolloff", "flux", "chroma")
PROTOCOLS = {name: (f"librispeech-{name}-enroll.csv", f"librispeech-{name}-trials.csv")
             for name in ("test-other", "test-other-short", "test-other-noisy")}


def accuracy_at(scores, labels, threshold) -> float:
    """Share of trials decided correctly when accepting ``score >= threshold``."""
    return float(np.mean((np.asarray(scores) >= threshold) == (np.asarray(labels) == 1)))


def figures(scores, labels, preset_threshold) -> dict:
    value, threshold = metrics.eer(scores, labels, return_threshold=True)
    far, frr = metrics.far_frr_at(scores, labels, preset_threshold)
    return {"eer_pct": 100 * value, "min_dcf": metrics.min_dcf(scores, labels, p_target=0.01),
            "acc_at_eer_threshold_pct": 100 * accuracy_at(scores, labels, threshold),
            "far_at_preset_pct": 100 * far, "frr_at_preset_pct": 100 * frr}


def enroll_fresh(verifier: SpeakerVerifier, manifest) -> None:
    for speaker in verifier.speakers():
        verifier.remove(speaker)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a data leak or bandwidth problem must not pass silently
        verifier.enroll_manifest(manifest)


def score_trials(verifiers: dict, trials) -> dict:
    """Scores of every system; each test file's frames are extracted once per model directory."""
    scores = {name: np.empty(len(trials)) for name in verifiers}
    for path, rows in trials.groupby("path", sort=False):
        where = trials.index.get_indexer(rows.index)
        frames_by_dir = {}
        for name, verifier in verifiers.items():
            key = str(verifier.model_dir)
            if key not in frames_by_dir:
                frames_by_dir[key] = verifier.features(path)
            scores[name][where] = verifier.score_frames(list(rows["speaker"]), frames_by_dir[key])
    return scores


def train_neural(work: Path, background, args, seed: int) -> tuple[dict, dict]:
    """Siamese + MLP with the default neural features and with all features, for one seed."""
    all_features = NEURAL_FEATURE_CONFIG.replace(features=ALL_FEATURES)
    training, systems = {}, {}
    for suffix, model_dir, config in (("", work / f"seed{seed}" / "neural", None),
                                      (" all-feat", work / f"seed{seed}" / "neural-all", all_features)):
        start = time.perf_counter()
        siamese = train_siamese(model_dir, background, feature_config=config, segment_s=args.segment_s,
                                max_epochs=args.epochs, patience=15, random_state=seed, n_jobs=args.jobs)
        training[f"siamese{suffix}"] = {
            "seconds": round(time.perf_counter() - start, 1), "best_epoch": siamese["best_epoch"],
            "epochs_run": siamese["epochs_run"], "n_examples": siamese["n_examples"],
            "val_eer_pct": round(100 * siamese["val_eer"], 2),
            "val_pair_accuracy_pct": round(100 * siamese["val_pair_accuracy"], 2), "plot": siamese["plot"]}
        start = time.perf_counter()
        mlp = train_mlp(model_dir, background, segment_s=args.segment_s, max_epochs=args.epochs, random_state=seed,
                        n_jobs=args.jobs)
        training[f"mlp-embedding{suffix}"] = {
            "seconds": round(time.perf_counter() - start, 1), "best_epoch": mlp["best_epoch"],
            "epochs_run": mlp["epochs_run"], "val_top1_pct": round(100 * mlp["val_accuracy"], 2),
            "val_top5_pct": round(100 * mlp["val_top5_accuracy"], 2),
            "val_pair_eer_pct": round(100 * mlp["val_pair_eer"], 2), "plot": mlp["plot"]}
        systems[f"siamese{suffix}"] = (model_dir, "siamese")
        systems[f"mlp-embedding{suffix}"] = (model_dir, "mlp")
    for system, row in training.items():
        print(f"# seed {seed} {system}: {row}")
    return training, systems


def summarize(name: str, scores: dict, labels, groups, thresholds: dict) -> dict:
    """Per system: the figures' mean over its runs (seeds), each run's EER and minDCF with their speaker-bootstrap
    intervals (``per_run``) and the counts; prints the system's line and one line per run."""
    per_run = {key: figures(scores[key], labels, thresholds[key]) for key in scores}
    intervals = {key: interval_figures(scores[key], labels, groups) for key in scores}
    out = {}
    for system in dict.fromkeys(system for system, _ in per_run):
        rows = [row for (s, _), row in per_run.items() if s == system]
        runs = [(seed, ci) for (s, seed), ci in intervals.items() if s == system]
        mean = {k: round(float(np.mean([r[k] for r in rows])), 3) for k in rows[0]}
        eers = [r["eer_pct"] for r in rows]
        trial_counts = {k: runs[0][1][k] for k in ("n_speakers", "n_target", "n_nontarget")}
        out[system] = {**mean, "eer_pct_per_seed": [round(e, 2) for e in eers], **trial_counts,
                       "per_run": [{"seed": seed, **ci} for seed, ci in runs]}
        if len(runs) == 1:   # one run: its interval is the figure's
            out[system].update(eer_pct_ci=runs[0][1]["eer_pct_ci"], min_dcf_ci=runs[0][1]["min_dcf_ci"])
        spread = f"({min(eers):.2f}..{max(eers):.2f})" if len(rows) > 1 else ""
        print(f"{name:<18}{system:<24}{mean['eer_pct']:>8.2f} {spread:>13}{mean['min_dcf']:>8.3f}"
              f"{mean['acc_at_eer_threshold_pct']:>11.2f}"
              f"{mean['far_at_preset_pct']:>10.1f}/{mean['frr_at_preset_pct']:<7.1f}   {counts(trial_counts)}")
        for seed, ci in runs:
            print(f"{'':<18}  {'seed ' + str(seed) if seed is not None else 'run':<22}EER {fmt(ci)} %, "
                  f"minDCF {fmt(ci, 'min_dcf')}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    parser.add_argument("--work-dir", default=None, help="keep the model directories here")
    parser.add_argument("--components", type=int, default=256, help="GMM-UBM components (0: skip GMM-UBM)")
    parser.add_argument("--segment-s", type=float, default=2.0)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", default="0,1,2", help="train the networks once per seed (default 0,1,2)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    args = parser.parse_args(argv)
    protocols_dir = Path(args.shared) / "protocols"
    if not protocols_dir.is_dir():
        print(f"skipped: {protocols_dir} not found")
        return 0
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="speakerid-neural-"))
    background = protocols_dir / "librispeech-background.csv"
    seeds = [int(s) for s in args.seeds.split(",")]
    training, runs = {}, []  # runs: (system, seed or None, model_dir, backend)
    for seed in seeds:
        training[seed], systems = train_neural(work, background, args, seed)
        runs += [(system, seed, model_dir, backend) for system, (model_dir, backend) in systems.items()]
    if args.components:
        start = time.perf_counter()
        SpeakerVerifier(work / "gmm-ubm").train(background, n_components=args.components)
        print(f"# gmm-ubm: {time.perf_counter() - start:.1f} s")
        runs.append((f"gmm-ubm {args.components}", None, work / "gmm-ubm", "gmm-ubm"))
    sys.stdout.flush()

    results = {}
    print(f"\nmean (min..max) over seeds {args.seeds}; preset threshold = the validation EER threshold "
          "saved with a neural model, 0 for GMM-UBM; below each system, every run's EER and minDCF(0.01) "
          "[95 % interval, bootstrap over the claimed speakers]")
    print(f"{'protocol':<18}{'system':<24}{'EER % (min..max)':>22}{'minDCF':>8}{'acc@EER %':>11}"
          f"{'FAR/FRR@preset %':>18}")
    for name in args.protocols.split(","):
        enroll_csv, trials_csv = PROTOCOLS[name]
        trials = read_manifest(protocols_dir / trials_csv, require_target=True)
        labels = trials["target"].to_numpy()
        verifiers = {}
        for system, seed, model_dir, backend in runs:
            verifiers[(system, seed)] = SpeakerVerifier(model_dir, backend=backend)
            enroll_fresh(verifiers[(system, seed)], protocols_dir / enroll_csv)
        scores = score_trials(verifiers, trials)
        thresholds = {key: verifier.threshold for key, verifier in verifiers.items()}
        results[name] = summarize(name, scores, labels, groups_of(trials), thresholds)
        sys.stdout.flush()
    print(json.dumps({"bench": "eval_neural_shared", "segment_s": args.segment_s, "seeds": seeds,
                      "n_target": int(labels.sum()), "n_trials": len(labels),
                      "training": training, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
