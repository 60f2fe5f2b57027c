"""From ``pip install`` of the built wheel into a fresh venv to the first ``speakerid verify`` answer.

Usage::

    python bench/bench_install.py [--work DIR] [--no-cache]

Builds the wheel (``pip wheel . --no-deps``, not timed) and two real speakers' files (LibriSpeech test-other from
``../shared`` when it is there, else two synthetic speakers: not timed). Then, timed as a new user types them:

1. ``python -m venv`` a fresh environment;
2. ``pip install <wheel>``: the package and its dependencies from PyPI (pip's own cache is used unless
   ``--no-cache``: the first install on a machine also downloads about 150 MB, which depends on the network);
3. ``speakerid enroll --speaker A FILE FILE`` into a fresh speaker store (``$SPEAKERID_HOME``, no ``--model-dir``);
4. ``speakerid verify --speaker A FILE``: the first answer.

Target (issue 25): steps 1-4 within 60 s on 2 cores. The last line is one JSON object; ``"ratio"`` is the target's
60 s over the measured total (above 1: faster than the target). The wheel's size is reported (target <= 25 MB).
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

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 60.0


def _timed(cmd, **kwargs) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)
    return time.perf_counter() - start, done.stdout.strip()


def _speech(work: Path, shared: Path) -> tuple[list, str]:
    """Two enrollment files of one speaker and a test file of the same speaker (another recording)."""
    enroll_csv = shared / "protocols" / "librispeech-test-other-enroll.csv"
    if enroll_csv.is_file():
        import pandas as pd

        table = pd.read_csv(enroll_csv, dtype=str)
        files = [str((enroll_csv.parent / p).resolve()) for p in table[table["speaker"] == "1688"]["path"]]
        return files[:2], files[2]
    sys.path.insert(0, str(REPO))
    from speakerid.data.synth import make_corpus

    corpus = make_corpus(work / "corpus", n_speakers=1, n_utterances=3, enroll_per_speaker=2, n_background=0,
                         duration_s=(3.0, 3.0), show_progress=False)
    files = sorted(str(p) for p in (corpus.folder / "wav").rglob("*.wav"))
    return files[:2], files[2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--no-cache", action="store_true", help="pip install with --no-cache-dir")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-install-"))
    shutil.rmtree(work / "venv", ignore_errors=True)
    shutil.rmtree(work / "home", ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--quiet", "-w", str(work / "dist")],
                   check=True)
    wheel = max((work / "dist").glob("speakerid_classic-*.whl"), key=lambda p: p.stat().st_mtime)
    enroll, test = _speech(work, args.shared)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env[("SPEAKERID_HOME")] = str(work / "home")
    load = os.getloadavg()
    steps = {}
    steps["venv_s"], _ = _timed([sys.executable, "-m", "venv", str(work / "venv")])
    pip = [str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)]
    steps["pip_install_s"], _ = _timed(pip + (["--no-cache-dir"] if args.no_cache else []), env=env)
    spk = str(work / "venv" / "bin" / "speakerid")
    steps["enroll_s"], said_enroll = _timed([spk, "enroll", "--speaker", "alice", *enroll], env=env, cwd=work)
    steps["verify_s"], said_verify = _timed([spk, "verify", "--speaker", "alice", test], env=env, cwd=work)
    total = sum(steps.values())
    print(f"$ speakerid enroll --speaker alice {' '.join(Path(f).name for f in enroll)}\n{said_enroll}")
    print(f"$ speakerid verify --speaker alice {Path(test).name}\n{said_verify}")
    for name, seconds in steps.items():
        print(f"{name:14s} {seconds:6.1f} s")
    print(json.dumps({"bench": "pip install -> first verify", "wheel_mb": round(wheel.stat().st_size / 1e6, 2),
                      **{k: round(v, 1) for k, v in steps.items()}, "total_s": round(total, 1),
                      "pip_cache": not args.no_cache, "load_before": [round(x, 2) for x in load],
                      "cpus": os.cpu_count(), "target_s": TARGET_S, "ratio": round(TARGET_S / total, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
