"""Start-up cost of the CLI: ``speakerid --help`` and one ``speakerid verify`` against ``python -c "import numpy"``.

Usage::

    python bench/bench_cli.py [--repeats 7] [--components 256] [--work-dir DIR]

A synthetic corpus (6 speakers) and a model directory with a ``--components`` UBM (3 EM iterations: the model's
size matters here, not its quality) and the enrolled speakers are built first; the verified clip is one 3-s
utterance. Each command runs ``--repeats`` times as a fresh process; the best (minimum) wall time of each is
compared with the best of ``python -c "import numpy"`` measured in the same run, interleaved, so that machine
load affects all alike. ``verify-shipped`` is the same verify with no ``--model-dir``: the speaker enrolled in a
speaker store over the model shipped in the package (two systems in two bands, fused). The last line is one JSON
object: ``help_ratio``, ``verify_ratio`` and ``verify_shipped_ratio`` (command time / numpy import time; targets
3, 8 and 8) and ``"ratio"`` (= ``verify_ratio``).
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _wall(cmd: list[str], env=None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--components", type=int, default=256)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="speakerid-cli-"))

    from speakerid.data.synth import make_corpus

    corpus = make_corpus(work / "corpus", n_speakers=6, n_utterances=4, enroll_per_speaker=3, n_background=8,
                         n_background_utterances=4, duration_s=(3.0, 3.0), show_progress=False)
    models = work / "models"
    spk = [sys.executable, "-m", "speakerid"]
    subprocess.run(spk + ["train-ubm", "--manifest", str(corpus.background_csv), "--model-dir", str(models),
                          "--components", str(args.components), "--iterations", "3", "--force"], check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(spk + ["enroll", "--manifest", str(corpus.enroll_csv), "--model-dir", str(models)], check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import pandas as pd

    trials = pd.read_csv(corpus.trials_csv)
    clip = str(corpus.folder / trials["path"].iloc[0])
    commands = {
        "numpy": [sys.executable, "-c", "import numpy"],
        "help": spk + ["--help"],
        "verify": spk + ["verify", "--model-dir", str(models), "--speaker", str(trials["speaker"].iloc[0]), clip],
    }
    # the shipped model: the speaker enrolled into a speaker store, verify given no --model-dir
    store = {"SPEAKERID_HOME": str(work / "home")}
    speaker = str(trials["speaker"].iloc[0])
    enroll_files = [str(corpus.folder / p) for p in pd.read_csv(corpus.enroll_csv, dtype=str).query(
        "speaker == @speaker")["path"]]
    subprocess.run(spk + ["enroll", "--speaker", speaker, "--replace", *enroll_files], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO), **store})
    commands["verify-shipped"] = spk + ["verify", "--speaker", speaker, clip]
    envs = {"verify-shipped": store}
    for name in ("verify", "verify-shipped"):
        _wall(commands[name], envs.get(name))  # warm the file-system cache and the cohort files verify prepares
    times = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, cmd in commands.items():
            times[name].append(_wall(cmd, envs.get(name)))
    best = {name: min(values) for name, values in times.items()}
    for name in commands:
        print(f"{name:8s} best {best[name]:.3f} s  (median {sorted(times[name])[len(times[name]) // 2]:.3f} s)")
    result = {"bench": "cli", "numpy_s": round(best["numpy"], 4), "help_s": round(best["help"], 4),
              "verify_s": round(best["verify"], 4), "help_ratio": round(best["help"] / best["numpy"], 2),
              "verify_ratio": round(best["verify"] / best["numpy"], 2), "components": args.components,
              "verify_shipped_s": round(best["verify-shipped"], 4),
              "verify_shipped_ratio": round(best["verify-shipped"] / best["numpy"], 2)}
    result["ratio"] = result["verify_ratio"]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
