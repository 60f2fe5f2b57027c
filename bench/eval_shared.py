"""Accuracy of the GMM systems on the real-speech protocols in ../shared (skips cleanly when it is absent).

For each protocol: train a UBM on the LibriSpeech background manifest (at the protocol's sample rate: FSDD is
8 kHz, so its UBM is trained on the background resampled to 8 kHz rather than upsampling the digits), enroll the
protocol's speakers, score every trial and print EER % and minDCF(P_target=0.01), each with its 95 % interval
from a bootstrap over the claimed speakers (``bench/_intervals.py``), and the target / non-target trial and speaker
counts, of

* GMM-UBM, top-5 Gaussian selection (the default) and exact scoring,
* per-speaker EM GMMs (16 components), raw average log-likelihood and normalised by the UBM,
* GMM-UBM through the batch scorer (``speakerid score``), raw, with S-norm and with adaptive S-norm (top 50),
  the cohort being the background speakers; an evaluation report per protocol.

Usage: ``python bench/eval_shared.py [--shared ../shared] [--components 256] [--protocols a,b]``. Ends with one
JSON line of all figures.
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

from speakerid.data.manifests import read_manifest  # noqa: E402
from speakerid.evaluation.report import evaluate  # noqa: E402
from speakerid.features import FeatureConfig  # noqa: E402
from speakerid.scoring.batch import score_trials  # noqa: E402
from speakerid.verifier import SpeakerVerifier  # noqa: E402

PROTOCOLS = {
    "test-other": ("librispeech-test-other-enroll.csv", "librispeech-test-other-trials.csv", 16000),
    "test-other-short": ("librispeech-test-other-short-enroll.csv", "librispeech-test-other-short-trials.csv",
                         16000),
    "test-other-noisy": ("librispeech-test-other-noisy-enroll.csv", "librispeech-test-other-noisy-trials.csv",
                         16000),
    "fsdd": ("fsdd-enroll.csv", "fsdd-trials.csv", 8000),
}


def score_protocol(verifier: SpeakerVerifier, trials) -> np.ndarray:
    """Every trial's score, extracting each test file once and scoring it against all its claims at once."""
    scores = np.empty(len(trials))
    for path, rows in trials.groupby("path", sort=False):
        frames = verifier.features(path)
        scores[trials.index.get_indexer(rows.index)] = verifier.score_frames(list(rows["speaker"]), frames)
    return scores


def figures(scores, labels, groups) -> dict:
    """EER % and minDCF(0.01) with their speaker-bootstrap intervals (``*_ci``) and counts (raw scores: no actDCF)."""
    return interval_figures(scores, labels, groups)


def _row(name: str, system: str, row: dict) -> str:
    return f"{name:<18}{system:<26}{fmt(row):>24}{fmt(row, 'min_dcf'):>24}   {counts(row)}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    parser.add_argument("--components", type=int, default=256)
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--work-dir", default=None, help="keep the model directories here")
    args = parser.parse_args(argv)
    protocols_dir = Path(args.shared) / "protocols"
    if not protocols_dir.is_dir():
        print(f"skipped: {protocols_dir} not found")
        return 0
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="speakerid-eval-"))
    background = protocols_dir / "librispeech-background.csv"
    results, ubms = {}, {}
    print("EER % and minDCF(0.01) [95 % interval, bootstrap over the claimed speakers]")
    print(f"{'protocol':<18}{'system':<26}{'EER %':>24}{'minDCF':>24}   trials")
    for name in args.protocols.split(","):
        enroll_csv, trials_csv, rate = PROTOCOLS[name]
        trials = read_manifest(protocols_dir / trials_csv, require_target=True)
        labels, groups = trials["target"].to_numpy(), groups_of(trials)
        model_dir = work / f"sr{rate}"
        config = FeatureConfig(sample_rate=rate)
        if rate not in ubms:
            start = time.perf_counter()
            SpeakerVerifier(model_dir, feature_config=config).train(background, n_components=args.components)
            ubms[rate] = time.perf_counter() - start
            print(f"# UBM at {rate} Hz: {args.components} components in {ubms[rate]:.1f} s")
        systems = {
            "gmm-ubm top-5": ("gmm-ubm", {}),
            "gmm-ubm exact": ("gmm-ubm", {"top_c": 0}),
            "per-speaker gmm / ubm": ("gmm", {}),
            "per-speaker gmm raw": ("gmm", {"normalize": "none"}),
        }
        enrolled = set()
        results[name] = {}
        for system, (backend, params) in systems.items():
            verifier = SpeakerVerifier(model_dir, backend=backend, backend_params=params)
            if (backend, name) not in enrolled:
                for speaker in verifier.speakers():
                    verifier.remove(speaker)
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # a data leak or bandwidth problem must not pass silently
                    verifier.enroll_manifest(protocols_dir / enroll_csv)
                enrolled.add((backend, name))
            start = time.perf_counter()
            scores = score_protocol(verifier, trials)
            row = {**figures(scores, labels, groups), "score_s": round(time.perf_counter() - start, 2)}
            results[name][system] = row
            print(_row(name, system, row))
            sys.stdout.flush()
        # the batch-scoring path (speakerid score), raw and with S-norm against the background speakers
        score_files = {}
        for system, norm, slug in (("gmm-ubm (score)", None, "raw"), ("gmm-ubm + s-norm", "snorm", "snorm"),
                                   ("gmm-ubm + as-norm top-50", "snorm50", "asnorm50")):
            out = work / name / f"scores-{slug}.csv"
            out.parent.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            score_trials(model_dir, protocols_dir / trials_csv, out, backend="gmm-ubm",
                         norm="snorm" if norm else "none", cohort=background if norm else None,
                         cohort_top=50 if norm == "snorm50" else None)
            scored = read_manifest(out, require_target=True, check_files=False)
            row = {**figures(scored["score"].to_numpy(), scored["target"].to_numpy(), groups_of(scored)),
                   "score_s": round(time.perf_counter() - start, 2)}
            results[name][system] = row
            score_files[system] = out
            print(_row(name, system, row))
        report = evaluate(list(score_files.values()), work / name / "report", names=list(score_files))
        print(f"# report: {report['out_dir']}/report.html (DET: {report['out_dir']}/det.png)")
    print(json.dumps({"bench": "eval_shared", "components": args.components, "ubm_s": ubms, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
