"""A development protocol cut from the background speakers, so that no system is tuned on test speakers.

The shared protocols (LibriSpeech test-other full/short/noisy, FSDD) are *evaluation* sets: model choice, option
choice, calibration and fusion weights must not look at them. This script splits the 223 LibriSpeech background
speakers into a training part (183 speakers: UBM, total variability, PLDA, cohorts) and 40 held-out *development*
speakers, and writes development conditions that mirror the evaluation ones:

``clean``  enroll on the first half of the speaker's one ~12-s utterance, test on the second half;
``short``  same enrollment, tests are three 2-s crops from the second half;
``noisy``  the ``short`` crops mixed with pink noise at 5 dB SNR (the evaluation's noisy condition, as documented
           in ``../shared/data/README.md``);
``8k``     audio resampled to 8 kHz, enrollment on ten 0.5-s crops from the first half, tests are six 0.5-s crops
           from the second half (a stand-in for the FSDD digits: tiny 8 kHz clips).

Limits, said plainly: each dev speaker has a single recording, so enrollment and test come from the same session
(no channel mismatch) — dev error rates are optimistic; they are for *comparing* options, not for quoting. 40
speakers × 3 target crops gives 120 target trials per condition.

Usage: ``python bench/dev_protocol.py --out DIR [--shared ../shared]``. Files are written once (kept when present).
Import :func:`build` to get the manifest paths.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from speakerid.data.audio import load_audio
from speakerid.data.augment import add_noise
from speakerid.data.dev_trials import has_sound
from speakerid.data.manifests import read_manifest

N_DEV = 40
SEED = 20261123
CONDITIONS = ("clean", "short", "noisy", "8k")
VERSION = 1


def _split(speakers: list[str]) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(SEED)
    dev = sorted(rng.choice(sorted(speakers), size=N_DEV, replace=False).tolist())
    return sorted(set(speakers) - set(dev)), dev


def _crops(n_samples: int, length: int, count: int) -> list[int]:
    """Start offsets of ``count`` evenly spaced crops of ``length`` samples inside ``n_samples`` (fewer if short)."""
    if n_samples < length:
        return [0]
    count = min(count, n_samples // length)
    return [int(s) for s in np.linspace(0, n_samples - length, count).round()]


def _rel(path: Path, folder: Path) -> str:
    return os.path.relpath(path, folder)


def _write(path: Path, signal: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, signal, rate, subtype="PCM_16")


def _trials(tests: list[tuple[str, Path]], speakers: list[str], out: Path) -> pd.DataFrame:
    rows = [(claim, _rel(p, out), int(claim == true)) for true, p in tests for claim in speakers]
    return pd.DataFrame(rows, columns=["speaker", "path", "target"])


def build(out, shared="../shared") -> dict:
    """Write (once) the development audio and manifests under ``out``; return ``{name: manifest path}``.

    Names: ``bg-train`` (183 speakers), ``bg-dev`` (the 40 dev speakers' full utterances) and
    ``dev-<condition>-enroll`` / ``dev-<condition>-trials`` for each condition in :data:`CONDITIONS`.
    """
    out, shared = Path(out).resolve(), Path(shared).resolve()
    names = ["bg-train", "bg-dev"] + [f"dev-{c}-{k}" for c in CONDITIONS for k in ("enroll", "trials")]
    paths = {n: out / f"{n}.csv" for n in names}
    stamp = out / "dev-protocol.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("version") == VERSION:
        return paths
    background = read_manifest(shared / "protocols" / "librispeech-background.csv")
    train, dev = _split(sorted(background["speaker"].unique()))
    out.mkdir(parents=True, exist_ok=True)
    for name, keep in (("bg-train", train), ("bg-dev", dev)):
        part = background[background["speaker"].isin(keep)]
        pd.DataFrame({"speaker": part["speaker"], "path": [_rel(Path(p), out) for p in part["path"]]}).to_csv(
            paths[name], index=False)

    rng = np.random.default_rng(SEED)
    enroll = {c: [] for c in CONDITIONS}
    tests = {c: [] for c in CONDITIONS}
    dev_rows = background[background["speaker"].isin(dev)].sort_values("speaker")
    for speaker, path in zip(dev_rows["speaker"], dev_rows["path"]):
        for rate, cond_list in ((16000, ("clean", "short", "noisy")), (8000, ("8k",))):
            signal, _ = load_audio(path, rate)
            half = signal.size // 2
            first, second = signal[:half], signal[half:]
            base = out / "wav" / f"{rate // 1000}k" / speaker
            if rate == 16000:
                _write(base / "enroll.wav", first, rate)
                for cond in cond_list:
                    enroll[cond].append((speaker, base / "enroll.wav"))
                _write(base / "test_full.wav", second, rate)
                tests["clean"].append((speaker, base / "test_full.wav"))
                for i, start in enumerate(_crops(second.size, 2 * rate, 3)):
                    crop = second[start:start + 2 * rate]
                    _write(base / f"test_short_{i}.wav", crop, rate)
                    tests["short"].append((speaker, base / f"test_short_{i}.wav"))
                    _write(base / f"test_noisy_{i}.wav", add_noise(crop, 5.0, rng, "pink", rate), rate)
                    tests["noisy"].append((speaker, base / f"test_noisy_{i}.wav"))
            else:
                crop_len = rate // 2
                for i, start in enumerate(_crops(first.size, crop_len, 10)):
                    if has_sound(first[start:start + crop_len]):
                        _write(base / f"enroll_{i}.wav", first[start:start + crop_len], rate)
                        enroll["8k"].append((speaker, base / f"enroll_{i}.wav"))
                for i, start in enumerate(_crops(second.size, crop_len, 6)):
                    if has_sound(second[start:start + crop_len]):
                        _write(base / f"test_{i}.wav", second[start:start + crop_len], rate)
                        tests["8k"].append((speaker, base / f"test_{i}.wav"))
    for cond in CONDITIONS:
        pd.DataFrame([(s, _rel(p, out)) for s, p in enroll[cond]], columns=["speaker", "path"]).to_csv(
            paths[f"dev-{cond}-enroll"], index=False)
        _trials(tests[cond], dev, out).to_csv(paths[f"dev-{cond}-trials"], index=False)
    stamp.write_text(json.dumps({"version": VERSION, "seed": SEED, "dev_speakers": dev,
                                 "n_train_speakers": len(train)}, indent=1))
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the dev audio and manifests")
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    args = parser.parse_args(argv)
    if not (Path(args.shared) / "protocols" / "librispeech-background.csv").exists():
        print(f"no shared data at {args.shared}; nothing to do", file=sys.stderr)
        return 0
    for name, path in build(args.out, args.shared).items():
        n = len(pd.read_csv(path))
        print(f"{name:20s} {n:6d} rows  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
