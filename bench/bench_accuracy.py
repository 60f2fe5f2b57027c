"""The default path on every shared protocol: ``speakerid train`` then enroll and score with the fused,
calibrated LLR; one table of EER, minDCF, actDCF, Cllr and minCllr per protocol and per development condition,
each with its 95 % interval from a bootstrap over the claimed speakers (``bench/_intervals.py``; the development
figures carry the intervals ``speakerid train`` computed, when it did) and the trial and speaker counts, then one
JSON line (``*_ci`` = ``[low, high]`` beside each figure).

What a new user runs, with no per-protocol setting: ``train_default`` (``speakerid train --manifest
librispeech-background.csv``) at 16 kHz for the LibriSpeech protocols and at 8 kHz for FSDD; each protocol's
enrollment replaces the previous speakers; ``FusedVerifier.score_trials`` (``speakerid score``) scores its trials.
Everything the fusion learned came from the development speakers held out of the background (their figures are
the ``dev-*`` columns, labelled as such); the protocols are evaluation sets. The reference measured in the same
run: one system of the same directories (``--system gmm-ubm``, the former default: GMM-UBM with S-norm and the
enrolled T-norm), whose scores are not calibrated (no actDCF/Cllr). ``bench/bench_systems.py`` has the expert
path (each backend trained by hand).

Targets (issue 16): EER test-other <= 0.1 %, -short <= 2 %, -noisy <= 12 %, FSDD <= 5 %; actDCF(0.01) <= 1.3 x
minDCF(0.01) and Cllr <= 1.3 x minCllr on each protocol; training within 20 minutes on 2 cores.

Usage: ``python bench/bench_accuracy.py [--shared ../shared] [--work-dir DIR] [--jobs 2] [--rates 16000,8000]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _intervals import counts, fmt, line  # noqa: E402
from _intervals import figures as interval_figures  # noqa: E402
from eval_shared import PROTOCOLS  # noqa: E402

from speakerid.data.trials import read_score_file  # noqa: E402
from speakerid.evaluation.bootstrap import speaker_groups  # noqa: E402
from speakerid.scoring.batch import score_trials  # noqa: E402
from speakerid.scoring.fused import FusedVerifier, read_fusion  # noqa: E402
from speakerid.scoring.fused_train import train_default  # noqa: E402
from speakerid.store import FUSION_FILE  # noqa: E402

TARGETS_EER_PCT = {"test-other": 0.1, "test-other-short": 2.0, "test-other-noisy": 12.0, "fsdd": 5.0}
REFERENCE = "gmm-ubm"


def _say(*parts) -> None:
    print(*parts, flush=True)


def figures(path, llr: bool) -> dict:
    """A score file's figures with their speaker-bootstrap intervals; the rows not scored count as ``n_errors``."""
    data = read_score_file(path, require_target=True)
    groups, _, _, _ = speaker_groups(data.frame, data.usable, where=str(path))
    return {**interval_figures(data.scores, data.labels, groups, llr=llr), "n_errors": int(data.n_skipped)}


def _cell(f: dict, key: str) -> str:
    """``value [low, high]`` (a development figure written by an older ``speakerid train`` has no interval)."""
    if key not in f:
        return "-"
    return fmt(f, key, 2 if key == "eer_pct" else 4) if f"{key}_ci" in f else f"{f[key]:.{2 if key == 'eer_pct' else 4}f}"


def _counts(f: dict) -> str:
    if "n_speakers" in f:
        return counts(f)
    return f"{f.get('n_target', '?')} tar / {f.get('n_nontarget', '?')} non"


def print_table(results: dict, dev: dict) -> None:
    """Evaluation rows (every system) and development rows (the fusions), each figure with its interval."""
    keys = ("eer_pct", "min_dcf", "act_dcf", "cllr", "min_cllr")
    _say("")
    _say(f"{'':<44}{'EER %':>24}" + "".join(f"{k:>26}" for k in ("minDCF", "actDCF", "Cllr", "minCllr"))
         + f"{'target EER':>11}   trials")
    for column, systems in list(results.items()) + list(dev.items()):
        for system, f in systems.items():
            if column.startswith("dev") and not system.startswith("fusion"):
                continue
            target = TARGETS_EER_PCT.get(column)
            target = "" if target is None or not system.startswith("default") else f"{target:.1f}"
            _say(f"{column + ' ' + system:<44}{_cell(f, 'eer_pct'):>24}" + "".join(f"{_cell(f, k):>26}" for k in keys[1:])
                 + f"{target:>11}   {_counts(f)}")
    _say("evaluation rows: the shared protocols; dev rows: held-out development speakers of `speakerid train` "
         "(in-sample: the fusion was learned on them; CV: learned on one half of them, scored on the other). "
         "P_target = 0.01; [95 % interval, bootstrap over the claimed speakers].")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    parser.add_argument("--work-dir", default=None, help="keep the model directories and score files here")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rates", default="16000,8000", help="model sample rates to run (Hz)")
    args = parser.parse_args(argv)
    protocols = Path(args.shared) / "protocols"
    if not protocols.is_dir():
        print(f"skipped: {protocols} not found")
        return 0
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="speakerid-accuracy-"))
    results, timings, dev = {}, {}, {}
    for rate in (int(r) for r in args.rates.split(",")):
        model_dir = work / f"default-{rate}"
        start = time.perf_counter()
        if not (model_dir / FUSION_FILE).exists():
            train_default(protocols / "librispeech-background.csv", model_dir, sample_rate=rate, n_jobs=args.jobs,
                          say=lambda text, rate=rate: _say(f"# {rate} Hz: {text}"))
            timings[f"train_{rate}_s"] = round(time.perf_counter() - start, 1)
        spec = read_fusion(model_dir)
        for condition, figs in spec["dev"].items():
            dev[f"dev-{rate // 1000}k-{condition}"] = figs
        for name, (enroll, trials, protocol_rate) in PROTOCOLS.items():
            if protocol_rate != rate:
                continue
            start = time.perf_counter()
            fused = FusedVerifier(model_dir, n_jobs=args.jobs)
            if fused.speakers():
                fused.remove(*fused.speakers())
            fused.enroll_manifest(protocols / enroll)
            out = work / "scores" / name
            out.mkdir(parents=True, exist_ok=True)
            fused.score_trials(protocols / trials, out / "fused.csv", n_jobs=args.jobs)
            one = fused.system(REFERENCE)
            score_trials(one.model_dir, protocols / trials, out / f"{REFERENCE}.csv", backend=one.backend_name,
                         n_jobs=args.jobs, show_progress=False)
            results[name] = {"default (fused LLR)": figures(out / "fused.csv", True),
                             f"reference: --system {REFERENCE}": figures(out / f"{REFERENCE}.csv", False)}
            timings[f"score_{name}_s"] = round(time.perf_counter() - start, 1)
            _say(f"# {name}: " + "; ".join(f"{system}: {line(f)}" for system, f in results[name].items()))

    print_table(results, dev)
    _say(f"# work dir {work}; {timings}")
    print(json.dumps({"bench": "accuracy", "default": "speakerid train (fused, calibrated LLR)", "eval": results,
                      "dev": dev, "targets_eer_pct": TARGETS_EER_PCT, "timings": timings}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
