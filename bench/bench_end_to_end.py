"""End to end on real speech: speakerid's default commands against the notebook recipe, in the same run.

Usage::

    python bench/bench_end_to_end.py [--shared ../shared] [--components 64 256] [--jobs 2] [--work-dir DIR]
                                     [--protocols librispeech-test-other librispeech-test-other-short ...]
                                     [--default]

``--default`` times the default system instead of the GMM-UBM commands: ``speakerid train --manifest
librispeech-background.csv --jobs J`` (GMM-UBM with 256 components + i-vector, fused and calibrated on held-out
background speakers), then per protocol ``enroll`` and ``score`` (the fused LLR); compare it with ``--components
256``.

**speakerid** runs exactly what a user types, as separate processes: ``speakerid train-ubm --manifest
librispeech-background.csv --components K``, then per protocol ``speakerid enroll --manifest <protocol>-enroll.csv``
and ``speakerid score --trials <protocol>-trials.csv --jobs J`` (default normalisation), each timed by wall clock,
with its peak RSS (``VmHWM`` of the command's own process; local scoring workers are its threads, Dask workers
are not included). Each protocol's trials are also scored with ``--norm none`` (not counted in the total): the
default normalisation's cost is the default ``score`` time over that raw time (``"norm_cost_ratio"``, target 1.5).

**The notebook recipe** is what a researcher writes with python_speech_features and scikit-learn, plainly:
MFCC 20 (c0 = log energy, 26 filters, 25/10 ms) + Δ + ΔΔ (``psf.delta``, N = 2), energy VAD (frames within 30 dB of
the loudest), per-utterance CMVN; ``sklearn.mixture.GaussianMixture`` (diagonal, K components, 10 EM iterations,
k-means initialisation) on every background frame; per speaker, MAP adaptation of the means (relevance factor 16);
a trial's score is the mean per-frame log-likelihood ratio (speaker GMM vs UBM, ``score_samples``). Each file's
features are computed once (a notebook keeps them in a dict).

Both sides see the same files. EER per protocol for both, with its 95 % interval from a bootstrap over the claimed
speakers and its trial and speaker counts (``bench/_intervals.py``; ``"eer_figures"`` beside ``"eer"`` in the
JSON); the last line is one JSON object with ``"ratio"``
(recipe total seconds / speakerid total seconds at the first ``--components``) and ``"ratio_k256"`` (at 256 when
measured).

**The floor** (:func:`floor`), in the same run: the least the workflow costs as 7 commands with speakerid's own
kernels (interpreter starts, decoding every file once, the bare MFCC kernel once per file, 10 EM iterations on the
clean background frames); ``"ceiling_ratio"`` = recipe total / floor, the largest ratio any implementation of
these commands with these kernels could show.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _intervals import counts, figures, fmt, groups_of  # noqa: E402  (numpy only; the bootstrap loads late)

DEFAULT_PROTOCOLS = ("librispeech-test-other", "librispeech-test-other-short", "librispeech-test-other-noisy")


# ---------------------------------------------------------------------------------------------- the recipe
def recipe_features(path: str) -> np.ndarray:
    import python_speech_features as psf
    import soundfile as sf

    signal, rate = sf.read(path, dtype="float64")
    if signal.ndim > 1:
        signal = signal.mean(axis=1)
    mfcc = psf.mfcc(signal, rate, numcep=20, nfilt=26, winlen=0.025, winstep=0.01, appendEnergy=True,
                    winfunc=np.hamming)
    d1 = psf.delta(mfcc, 2)
    feats = np.hstack([mfcc, d1, psf.delta(d1, 2)])
    energy = mfcc[:, 0]  # log frame energy (appendEnergy)
    keep = energy >= energy.max() - 30.0 * np.log(10.0) / 10.0
    if keep.sum() < 20:
        keep = np.argsort(-energy)[:20]
    feats = feats[keep]
    return (feats - feats.mean(axis=0)) / np.maximum(feats.std(axis=0), 1e-8)


def recipe_map_means(ubm, frames: np.ndarray, relevance_factor: float = 16.0) -> np.ndarray:
    post = ubm.predict_proba(frames)
    n = post.sum(axis=0)
    first = post.T @ frames
    alpha = (n / (n + relevance_factor))[:, None]
    expected = first / np.maximum(n, 1e-10)[:, None]
    return alpha * expected + (1.0 - alpha) * ubm.means_


def recipe(shared: Path, protocols, n_components: int) -> dict:
    from sklearn.mixture import GaussianMixture

    proto_dir = shared / "protocols"
    times = {}
    cache: dict[str, np.ndarray] = {}

    def feats(path):
        if path not in cache:
            cache[path] = recipe_features(path)
        return cache[path]

    def paths(csv):
        frame = pd.read_csv(proto_dir / csv)
        frame["path"] = [str((proto_dir / p).resolve()) for p in frame["path"]]
        return frame

    start = time.perf_counter()
    background = paths("librispeech-background.csv")
    X = np.vstack([feats(p) for p in background["path"]])
    ubm = GaussianMixture(n_components=n_components, covariance_type="diag", max_iter=10, random_state=0,
                          reg_covar=1e-3).fit(X)
    times["train-ubm"] = time.perf_counter() - start
    eers, figs = {}, {}
    for name in protocols:
        start = time.perf_counter()
        enroll = paths(f"{name}-enroll.csv")
        speakers = {}
        for speaker, group in enroll.groupby("speaker"):
            frames = np.vstack([feats(p) for p in group["path"]])
            model = GaussianMixture(n_components=n_components, covariance_type="diag")
            model.weights_, model.covariances_ = ubm.weights_, ubm.covariances_
            model.precisions_cholesky_ = ubm.precisions_cholesky_
            model.means_ = recipe_map_means(ubm, frames)
            speakers[speaker] = model
        times[f"enroll {name}"] = time.perf_counter() - start
        start = time.perf_counter()
        trials = paths(f"{name}-trials.csv")
        scores = []
        ubm_ll = {}
        for speaker, path in zip(trials["speaker"], trials["path"]):
            frames = feats(path)
            if path not in ubm_ll:
                ubm_ll[path] = ubm.score_samples(frames).mean()
            scores.append(speakers[speaker].score_samples(frames).mean() - ubm_ll[path])
        times[f"score {name}"] = time.perf_counter() - start
        eers[name] = _eer(np.array(scores), trials["target"].to_numpy())
        figs[name] = _figures(np.array(scores), trials)
    return {"seconds": times, "total_s": sum(times.values()), "eer": eers, "eer_figures": figs}


def _eer(scores, labels) -> float:
    from speakerid.evaluation.metrics import eer

    return float(eer(scores, labels))


def _figures(scores, trials) -> dict:
    """EER % (and minDCF) with its speaker-bootstrap interval and the counts; computed outside the timed steps."""
    return figures(scores, trials["target"].to_numpy(), groups_of(trials))


# ---------------------------------------------------------------------------------------------- the floor
def floor(shared: Path, protocols, n_components: int, jobs: int) -> dict:
    """What any run of this workflow as separate commands costs at least, measured with speakerid's own kernels.

    * ``start_s``: one interpreter start with numpy (``python -c "import numpy"``, best of 3) per command;
    * ``decode_s``: every file of the workflow read once (soundfile), spread over ``jobs`` cores;
    * ``features_s``: our MFCC + deltas kernel once per file, clean audio only (no speech check, no noisy copy,
      no DC filter), spread over ``jobs`` cores (serial time / ``jobs``);
    * ``em_s``: 10 EM iterations of a K-component diagonal GMM on the clean background frames, ``jobs`` threads.

    Scoring, MAP, normalisation, k-means and every file write are left out, so this is below what any
    implementation with these kernels can reach; the recipe's time over it is the largest ratio the workflow
    allows (``"ceiling_ratio"``).
    """
    import soundfile as sf

    from speakerid.features import extract
    from speakerid.features.config import FeatureConfig
    from speakerid.models.gmm import DiagGMM

    proto_dir = shared / "protocols"
    csvs = ["librispeech-background.csv"] + [f"{n}-{part}.csv" for n in protocols for part in ("enroll", "trials")]
    files = {}
    for csv in csvs:
        frame = pd.read_csv(proto_dir / csv)
        for p in frame["path"]:
            files.setdefault(str((proto_dir / p).resolve()), csv == "librispeech-background.csv")
    starts = []
    for _ in range(3):
        tic = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import numpy"], check=True)
        starts.append(time.perf_counter() - tic)
    n_commands = 1 + 2 * len(protocols)
    tic = time.perf_counter()
    signals = {path: sf.read(path, dtype="float32")[0] for path in files}
    decode = (time.perf_counter() - tic) / jobs
    config = FeatureConfig()
    tic = time.perf_counter()
    background = [extract(signal, config, dc_removed=True) for path, signal in signals.items() if files[path]]
    rest = [extract(signal, config, dc_removed=True) for path, signal in signals.items() if not files[path]]
    features = (time.perf_counter() - tic) / jobs
    X = np.concatenate(background)
    tic = time.perf_counter()
    DiagGMM(n_components, max_iter=10, tol=0.0, n_jobs=jobs, random_state=0).fit(X)
    em = time.perf_counter() - tic
    del rest
    parts = {"start_s": n_commands * min(starts), "decode_s": decode, "features_s": features, "em_s": em}
    return {**{k: round(v, 3) for k, v in parts.items()}, "total_s": round(sum(parts.values()), 3),
            "n_commands": n_commands, "n_files": len(files), "background_frames": len(X)}


# ---------------------------------------------------------------------------------------------- speakerid CLI
def _peak_mb(pid: int) -> float | None:
    """``VmHWM`` of a running process, in MB: the peak of its own memory since ``exec``."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(line.split()[1]) / 1024.0 for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return None


def run_command(args: list[str], log) -> tuple[float, float]:
    """Run one speakerid command; return (wall seconds, peak RSS MB of its process).

    The peak is the process's ``VmHWM``, read every 20 ms until it exits: ``ru_maxrss`` of a child counts the
    memory of this process at the fork (Linux keeps the pre-``exec`` high-water mark), which the notebook recipe's
    features inflate. Where ``/proc`` is missing, ``ru_maxrss`` is reported.
    """
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "speakerid", *args], stdout=log, stderr=log,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    peak = None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak = max(filter(None, (peak, _peak_mb(proc.pid))), default=None)
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"speakerid {' '.join(args)} failed with exit {proc.returncode}; see the log")
    return seconds, peak if peak is not None else usage.ru_maxrss / 1024.0


def ours(shared: Path, protocols, n_components: int | None, jobs: int, work: Path, log) -> dict:
    """What a user types: ``train-ubm --components K`` (or, with ``n_components`` None, the fused default
    ``speakerid train``), then ``enroll`` and ``score`` per protocol; each expert-path protocol is also scored with
    ``--norm none`` (not in the total) for the normalisation's cost."""
    proto_dir = shared / "protocols"
    times, rss, eers, figs, raw = {}, {}, {}, {}, {}
    tag = "default" if n_components is None else f"k{n_components}"
    train = (["train", "--jobs", str(jobs)] if n_components is None
             else ["train-ubm", "--components", str(n_components)])
    base = work / f"models-{tag}"
    shutil.rmtree(base, ignore_errors=True)
    times[train[0]], rss[train[0]] = run_command(
        train + ["--manifest", str(proto_dir / "librispeech-background.csv"), "--model-dir", str(base)], log)
    for name in protocols:
        model_dir = work / f"models-{tag}-{name}"
        shutil.rmtree(model_dir, ignore_errors=True)
        shutil.copytree(base, model_dir)
        key = f"enroll {name}"
        times[key], rss[key] = run_command(["enroll", "--manifest", str(proto_dir / f"{name}-enroll.csv"),
                                            "--model-dir", str(model_dir)], log)
        out = work / f"scores-{tag}-{name}.csv"
        score = ["score", "--model-dir", str(model_dir), "--trials", str(proto_dir / f"{name}-trials.csv"),
                 "--jobs", str(jobs)]
        key = f"score {name}"
        times[key], rss[key] = run_command(score + ["--out", str(out)], log)
        scores = pd.read_csv(out)
        eers[name] = _eer(scores["score"].to_numpy(float), scores["target"].to_numpy())
        figs[name] = _figures(scores["score"].to_numpy(float), scores)
        if n_components is not None:   # the same trials scored raw: what the default normalisation costs
            raw[name], _ = run_command(score + ["--out", str(out.with_suffix(".raw.csv")), "--norm", "none"], log)
    result = {"seconds": times, "peak_rss_mb": rss, "total_s": sum(times.values()), "eer": eers,
              "eer_figures": figs}
    if raw:
        result.update(raw_score_s=raw, norm_cost_ratio=sum(times[f"score {n}"] for n in protocols) / sum(raw.values()))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--components", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--protocols", nargs="+", default=list(DEFAULT_PROTOCOLS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--default", action="store_true", help="time `speakerid train` + enroll + score instead")
    args = parser.parse_args(argv)
    if not (args.shared / "protocols").is_dir():
        raise SystemExit(f"{args.shared}/protocols not found (give --shared)")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="speakerid-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    with open(work / "commands.log", "w") as log:
        for k in args.components:
            mine = ours(args.shared, args.protocols, None if args.default else k, args.jobs, work, log)
            ref = recipe(args.shared, args.protocols, k)
            low = floor(args.shared, args.protocols, k, args.jobs)
            results[k] = {"speakerid": mine, "recipe": ref, "floor": low, "ratio": ref["total_s"] / mine["total_s"],
                          "ceiling_ratio": ref["total_s"] / low["total_s"]}
            what = "speakerid train (fused)" if args.default else "speakerid default"
            print(f"\nK = {k}: {what} {mine['total_s']:.1f} s, notebook recipe {ref['total_s']:.1f} s "
                  f"-> {results[k]['ratio']:.2f}x")
            print(f"{'step':40s} {'speakerid s':>12s} {'peak RSS MB':>12s} {'recipe s':>10s}")
            for step in mine["seconds"]:
                print(f"{step:40s} {mine['seconds'][step]:12.2f} {mine['peak_rss_mb'][step]:12.0f} "
                      f"{ref['seconds'].get(step, float('nan')):10.2f}")
            if "norm_cost_ratio" in mine:   # the expert path's measure (the fused default has its own scale)
                print(f"default normalisation costs {mine['norm_cost_ratio']:.2f}x raw scoring (score --norm none: "
                      + ", ".join(f"{v:.2f} s" for v in mine["raw_score_s"].values()) + ")")
            print(f"floor of the workflow ({low['n_commands']} commands, {low['n_files']} files; start-up "
                  f"{low['start_s']:.2f} s, decode {low['decode_s']:.2f} s, clean MFCC kernel {low['features_s']:.2f} s,"
                  f" 10 EM iterations {low['em_s']:.2f} s): {low['total_s']:.1f} s -> at most "
                  f"{results[k]['ceiling_ratio']:.1f}x the recipe")
            print("EER % [95 % interval, bootstrap over the claimed speakers], speakerid vs the recipe:")
            for n in args.protocols:
                print(f"  {n:38s} {fmt(mine['eer_figures'][n])} vs {fmt(ref['eer_figures'][n])}   "
                      f"{counts(mine['eer_figures'][n])}")
    first = args.components[0]
    summary = {"bench": "end_to_end", "default_path": args.default, "ratio": round(results[first]["ratio"], 3),
               "ratio_k256": round(results[256]["ratio"], 3) if 256 in results else None,
               "ceiling_ratio": round(results[first]["ceiling_ratio"], 3),
               "norm_cost_ratio": (round(results[first]["speakerid"]["norm_cost_ratio"], 3)
                                   if "norm_cost_ratio" in results[first]["speakerid"] else None),
               "components": args.components, "jobs": args.jobs,
               "results": {str(k): v for k, v in results.items()}}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
