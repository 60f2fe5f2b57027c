"""Batch scoring throughput and memory: ``speakerid.scoring.batch.score_trials`` on a large synthetic trial list.

Usage::

    python bench/bench_scoring.py [--trials 100000] [--rss-trials 1000000] [--speakers 20] [--components 64]
                                  [--chunksize 50000] [--repeats 2] [--quick]

A synthetic corpus (``--speakers`` evaluated speakers, 10 utterances each, 3 to enroll) and a GMM-UBM model
directory are built in a temporary folder. The trial list repeats every (claimed speaker, test file) pair of the
corpus until it holds ``--trials`` rows, so trials far outnumber files, as in a real evaluation list. The feature
cache is warmed first, then the same list is scored with jobs=1, jobs=2 (worker threads) and a Dask LocalCluster
(2 worker processes), raw (``norm="none"``). Throughput is the best of ``--repeats`` runs after one untimed
warm-up run (workers started, speaker models loaded); it includes checking, reading and writing the CSV. The Dask cluster is started once and its
Client passed as ``scheduler``, so its start-up is not counted. The scores of the three runs are compared.

Peak memory: a child process scores a ``--rss-trials`` list (and a 200,000-trial one) with jobs=1 and reports its
RSS before and its peak ``ru_maxrss`` (``resource.getrusage``) after; the peak is reset after the imports
(``/proc/self/clear_refs``), so the growth is what scoring added to the process. The ``--rss-trials`` list is
scored raw and with the default normalisation (S-norm with the directory's cohort + T-norm over the other enrolled
speakers): both must stay bounded by the chunk. The last line printed is one JSON object with ``trials_per_s``
(best configuration), ``rss_growth_mb`` (the raw ``--rss-trials`` run) and ``rss_growth_mb_default_norm`` among
other figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from speakerid.data.manifests import read_manifest
from speakerid.data.synth import make_corpus
from speakerid.scoring.batch import score_trials
from speakerid.verifier import SpeakerVerifier  # noqa: E402

TARGET_RSS_TRIALS = 200_000


def build(folder: Path, n_speakers: int, n_components: int):
    corpus = make_corpus(folder / "corpus", n_speakers=n_speakers, n_utterances=10, enroll_per_speaker=3,
                         n_background=n_speakers, n_background_utterances=4, duration_s=(2.0, 4.0), seed=0,
                         show_progress=False)
    model_dir = folder / "models"
    verifier = SpeakerVerifier(model_dir)
    verifier.train(corpus.background_csv, n_components=n_components, max_iter=5)
    verifier.enroll_manifest(corpus.enroll_csv)
    return corpus, model_dir


def write_trials(corpus, n_trials: int, path: Path) -> Path:
    """Every (speaker, test file) pair of the corpus, repeated until ``n_trials`` rows, in shuffled blocks."""
    pairs = read_manifest(corpus.trials_csv, require_target=True)
    pairs["path"] = [os.path.relpath(p, path.parent) for p in pairs["path"]]
    rng = np.random.default_rng(0)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("speaker,path,target,trial\n")
        written = 0
        while written < n_trials:
            block = pairs.iloc[rng.permutation(len(pairs))[: n_trials - written]]
            ids = np.arange(written, written + len(block))
            fh.write("".join(f"{s},{p},{t},t{i}\n" for s, p, t, i in
                             zip(block["speaker"], block["path"], block["target"], ids)))
            written += len(block)
    return path


def _reset_peak_rss() -> bool:
    """Reset the peak RSS to the current RSS (Linux >= 4.0), so that imports do not count; False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_child(argv) -> None:
    """Child process: score one list with jobs=1 and print the RSS before and the peak RSS after, in MB.

    The peak is ``ru_maxrss`` of ``resource.getrusage``, reset to the current RSS after the imports when the
    kernel allows it; otherwise the growth is measured from the current RSS and may include the import peak
    (an upper bound).
    """
    model_dir, trials, out, cache, chunksize, norm = argv
    reset = _reset_peak_rss()
    before = _current_rss_mb()
    tic = time.perf_counter()
    result = score_trials(model_dir, trials, out, cache_dir=cache, chunksize=int(chunksize), show_progress=False,
                          norm=norm)
    seconds = time.perf_counter() - tic
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"before_mb": before, "after_mb": after, "n_trials": result.n_trials, "seconds": seconds,
                      "peak_reset": reset}))


def measure_rss(model_dir, trials, out, cache, chunksize, norm="none") -> dict:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss-child", str(model_dir), str(trials),
                           str(out), str(cache), str(chunksize), norm], capture_output=True, text=True, check=True)
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    figures["growth_mb"] = figures["after_mb"] - figures["before_mb"]
    return figures


def timed(repeats, func):
    """Best time of ``repeats`` calls after one untimed warm-up call (workers started, models loaded)."""
    func()
    best = None
    for _ in range(repeats):
        tic = time.perf_counter()
        result = func()
        elapsed = time.perf_counter() - tic
        best = elapsed if best is None else min(best, elapsed)
    return best, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--rss-trials", type=int, default=1_000_000)
    parser.add_argument("--speakers", type=int, default=20)
    parser.add_argument("--components", type=int, default=64)
    parser.add_argument("--chunksize", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="20,000 trials, 200,000 for RSS, 1 repeat")
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--rss-child":
        return rss_child(sys.argv[2:])
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.rss_trials, args.repeats = 20_000, TARGET_RSS_TRIALS, 1

    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        folder = Path(tmp)
        tic = time.perf_counter()
        corpus, model_dir = build(folder, args.speakers, args.components)
        trials = write_trials(corpus, args.trials, folder / "trials.csv")
        n_files = pd.read_csv(corpus.trials_csv)["path"].nunique()
        print(f"corpus: {args.speakers} speakers, {n_files} test files, {args.components}-component UBM, "
              f"{args.trials} trials ({time.perf_counter() - tic:.1f} s to build)")
        cache = folder / "cache"
        warm = score_trials(model_dir, trials, folder / "warm.csv", cache_dir=cache, chunksize=args.chunksize,
                            norm="none")
        print(f"cache warmed: {warm.cache_misses} files extracted in {warm.seconds:.1f} s")

        rows, outputs = [], {}
        for name, options in [("jobs=1", {}), ("jobs=2", {"n_jobs": 2}), ("dask LocalCluster x2", "dask")]:
            out = folder / f"{name.split()[0].replace('=', '')}.csv"
            if options == "dask":
                # the cluster is started once, outside the timing; its per-chunk scheduling is timed
                from dask.distributed import Client, LocalCluster

                with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, Client(cluster) as client:
                    seconds, result = timed(args.repeats, lambda o=out, c=client: score_trials(
                        model_dir, trials, o, cache_dir=cache, scheduler=c, chunksize=args.chunksize, norm="none"))
            else:
                seconds, result = timed(args.repeats, lambda o=out, kw=options: score_trials(
                    model_dir, trials, o, cache_dir=cache, chunksize=args.chunksize, norm="none", **kw))
            outputs[name] = pd.read_csv(out, usecols=["score"])["score"].to_numpy(np.float32)
            rows.append((name, result.n_trials, seconds, result.n_trials / seconds))
        reference = outputs["jobs=1"]
        identical = all(np.array_equal(reference, v) for v in outputs.values())

        rss = {}
        for n in sorted({TARGET_RSS_TRIALS, args.rss_trials}):   # (the default normalisation after the largest)
            big = write_trials(corpus, n, folder / f"trials-{n}.csv")
            rss[n] = measure_rss(model_dir, big, folder / f"scores-{n}.csv", cache, args.chunksize)
            if n == args.rss_trials:
                rss["default"] = measure_rss(model_dir, big, folder / f"scores-{n}.csv", cache, args.chunksize,
                                             "auto")
            big.unlink()

    print(f"\n{'configuration':<24}{'trials':>10}{'seconds':>10}{'trials/s':>12}")
    for name, n, seconds, rate in rows:
        print(f"{name:<24}{n:>10}{seconds:>10.2f}{rate:>12.0f}")
    print(f"scores identical (float32) across configurations: {identical}")
    print(f"\n{'peak RSS (jobs=1)':<24}{'trials':>10}{'seconds':>10}{'base MB':>10}{'peak MB':>10}{'growth MB':>11}")
    for n, r in rss.items():
        label = "default normalisation" if n == "default" else ""
        print(f"{label:<24}{r['n_trials']:>10}{r['seconds']:>10.1f}{r['before_mb']:>10.0f}{r['after_mb']:>10.0f}"
              f"{r['growth_mb']:>11.1f}")
    best = max(rows, key=lambda r: r[3])
    print(json.dumps({"trials_per_s": round(best[3], 1), "best_config": best[0],
                      "rss_growth_mb": round(rss[args.rss_trials]["growth_mb"], 1), "rss_trials": args.rss_trials,
                      "rss_growth_mb_200k": round(rss[TARGET_RSS_TRIALS]["growth_mb"], 1),
                      "rss_growth_mb_default_norm": round(rss["default"]["growth_mb"], 1),
                      "trials": args.trials, "chunksize": args.chunksize, "scores_identical": identical,
                      **{f"trials_per_s_{name.split()[0].replace('=', '')}": round(rate, 1)
                         for name, _, _, rate in rows}}))


if __name__ == "__main__":
    main()
