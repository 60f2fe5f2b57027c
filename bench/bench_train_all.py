"""``speakerid train`` on all the shared speech: wall time and peak memory, with the notebook recipe beside it.

The background is every shared corpus that is not evaluation: the 223 LibriSpeech background utterances and the
speechocean762 and Speech Commands speakers the development suite leaves for training (``bench/dev_suite.py``'s
fixed split; test-other, FSDD and the suite's development speakers are never used). ``speakerid train`` runs as a
user types it (one process, ``--jobs J``, with ``--noise-csv`` the shared noise list unless ``--no-augment``);
its peak memory is the largest sum of the resident sets of the command and all its worker processes, sampled
every 0.2 s. In the same run the notebook recipe (``bench_end_to_end.recipe_features``: psf MFCC + Δ + ΔΔ, VAD,
CMVN; a ``GaussianMixture`` UBM of ``--components`` components, 10 EM iterations) trains on the same files.

Targets (issue 24): train <= 20 minutes on 2 cores, peak <= 4 GB. The last line is one JSON object; ``"ratio"`` is
the recipe's seconds over ours (it trains one GMM where ours trains two systems in two bands, augmented,
and calibrates them).

Usage::

    python bench/bench_train_all.py [--shared ../shared] [--jobs 2] [--components 256] [--work DIR] [--no-augment]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from bench_end_to_end import recipe_features  # noqa: E402
from dev_suite import split  # noqa: E402


def all_shared_background(shared: Path) -> pd.DataFrame:
    """``speaker,path`` (absolute) of every shared training file: LibriSpeech background + the suite's training
    speakers of speechocean762 and Speech Commands."""
    csv = shared / "protocols" / "librispeech-background.csv"
    libri = pd.read_csv(csv, dtype=str)
    libri["path"] = [str((csv.parent / p).resolve()) for p in libri["path"]]
    parts = split(shared)
    return pd.concat([libri[["speaker", "path"]], parts["speechocean762"][1][["speaker", "path"]],
                      parts["speechcommands"][1][["speaker", "path"]]], ignore_index=True)


def _tree_rss_mb(root: int) -> float:
    """The resident memory of ``root`` and every descendant, MB (from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid and p not in tree]
        tree.update(children)
        frontier.extend(children)
    total = 0.0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/status") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024.0
        except (OSError, StopIteration, ValueError):
            continue
    return total


def run_train(args: list[str], log) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "speakerid", *args], stdout=log, stderr=log,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid))
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"speakerid {' '.join(args)} failed with exit {proc.returncode}; see the log")
    return seconds, peak


def recipe_train(paths, n_components: int) -> dict:
    from sklearn.mixture import GaussianMixture

    start = time.perf_counter()
    frames = []
    for path in paths:
        try:
            frames.append(recipe_features(path))
        except Exception:            # a notebook skips what psf cannot read
            continue
    X = np.vstack(frames)
    features_s = time.perf_counter() - start
    GaussianMixture(n_components=n_components, covariance_type="diag", max_iter=10, random_state=0,
                    reg_covar=1e-3).fit(X)
    return {"total_s": round(time.perf_counter() - start, 1), "features_s": round(features_s, 1),
            "n_frames": len(X)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--components", type=int, default=256, help="the recipe's UBM size (default 256)")
    parser.add_argument("--work", type=Path, default=None, help="keep the model directory and log here")
    parser.add_argument("--no-augment", action="store_true", help="train without --noise-csv")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-train-all-"))
    work.mkdir(parents=True, exist_ok=True)
    manifest = work / "all-shared.csv"
    background = all_shared_background(args.shared)
    background.to_csv(manifest, index=False)
    command = ["train", "--manifest", str(manifest), "--model-dir", str(work / "model"), "--jobs", str(args.jobs),
               "--force"]
    if not args.no_augment:
        command += ["--noise-csv", str(args.shared / "protocols" / "noise.csv")]
    load = os.getloadavg()
    with open(work / "train.log", "w") as log:
        seconds, peak = run_train(command, log)
    print(f"speakerid train: {len(background)} files, {background['speaker'].nunique()} speakers: {seconds:.1f} s, "
          f"peak {peak:.0f} MB (command and workers)", flush=True)
    recipe = recipe_train(background["path"], args.components)
    print(f"notebook recipe, GMM-UBM K={args.components}: {recipe['total_s']:.1f} s", flush=True)
    spec = json.loads((work / "model" / "fusion.json").read_text())
    print(json.dumps({"bench": "speakerid train on all the shared speech", "n_files": len(background),
                      "n_speakers": int(background["speaker"].nunique()), "jobs": args.jobs,
                      "augmented": not args.no_augment, "train_s": round(seconds, 1), "peak_mb": round(peak),
                      "timings_s": spec.get("timings_s"), "recipe": recipe, "load_before": load,
                      "cpus": os.cpu_count(), "target_s": 1200, "target_mb": 4096,
                      "ratio": round(recipe["total_s"] / seconds, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
