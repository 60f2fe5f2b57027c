"""Open-set identification as the number of enrolled speakers grows: rank-1 accuracy, detection-and-
identification rate and false-identification rate with 10, 100 and 1,000+ enrolled ids.

The setting of the model-directory issue: the 10 LibriSpeech test-other speakers (their enrollment files) among
distractor ids made of 2.5-s crops of the 223 LibriSpeech background utterances (``bg<utterance>_<crop>``, several
ids per background speaker, as a crowded directory has). Two folds: fold A enrolls 5 test-other speakers, fold B the
other 5; the probes are every test file of the 10 (the ``target`` rows of the trial list): a probe of an enrolled
speaker counts for rank-1 (its speaker ranked first) and DIR (ranked first *and* accepted), a probe of a speaker
not enrolled counts for FIR (anyone accepted). Each figure is given with its 95 % Wilson interval over its probe
count (probes of one speaker are not independent: the intervals are optimistic) and the machine load.

Systems: the shipped default (``speakerid.pretrained``: fused, calibrated LLR; identification over N + 1
hypotheses, ``FusedVerifier.identify``) and, with ``--expert``, the issue's GMM-UBM directory (``train-ubm
--components 32`` on the background, S-norm + enrolled T-norm) deciding with its verification threshold raised
for N (``SpeakerVerifier.identify``, Sidak) and, for comparison, with the verification threshold as it is.

Usage: ``python bench/bench_identify_scale.py [--shared ../shared] [--sizes 10,100,1012] [--expert]
[--jobs 2] [--work-dir DIR]``; ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import soundfile as sf
from scipy.stats import binomtest

CROP_S = 2.5


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _crops(background: pd.DataFrame, out: Path, count: int) -> pd.DataFrame:
    """``count`` distractor ids: 2.5-s crops of the background files, round-robin over the files (crop k of
    every file before crop k + 1 of any), written as 16-kHz WAV."""
    from speakerid.data.audio import load_audio

    out.mkdir(parents=True, exist_ok=True)
    signals = [load_audio(p, 16000)[0] for p in background["path"]]
    rows, k = [], 0
    while len(rows) < count:
        added = False
        for i, signal in enumerate(signals):
            start = int(k * CROP_S * 16000)
            if start + int(CROP_S * 16000) > len(signal) or len(rows) >= count:
                continue
            path = out / f"bg{i:03d}_{k:02d}.wav"
            if not path.exists():
                sf.write(path, signal[start:start + int(CROP_S * 16000)], 16000)
            rows.append({"speaker": f"bg{i:03d}_{k:02d}", "path": str(path)})
            added = True
        if not added:
            break
        k += 1
    return pd.DataFrame(rows)


def _front_ends(model_dir) -> list:
    """The feature configurations every system of a directory (the narrowband ones too) reads audio with."""
    from speakerid.scoring.opening import open_verifier

    verifier = open_verifier(model_dir)
    configs = [verifier.feature_config]
    for fused in (verifier, getattr(verifier, "narrowband", None)):
        configs += [v.feature_config for v in getattr(fused, "_owner", {}).values()]
    return configs


def _usable(crops: pd.DataFrame, configs, jobs: int) -> pd.DataFrame:
    """The crops every front end accepts (a crop of a pause holds no speech: enrollment would refuse it)."""
    from speakerid.features.pipeline import refused_files

    refused = set()
    for config in configs:
        refused |= set(refused_files(list(crops["path"]), config, n_jobs=jobs))
    return crops[~crops["path"].isin(refused)].reset_index(drop=True)


def _interval(hits: int, total: int) -> dict:
    if total == 0:
        return {"value": None, "ci": None, "n": 0}
    ci = binomtest(int(hits), int(total)).proportion_ci(0.95, method="wilson")
    return {"value": round(hits / total, 4), "ci": [round(ci.low, 4), round(ci.high, 4)], "n": int(total)}


def _measure(verifier, probes: pd.DataFrame, enrolled: set, threshold=None) -> dict:
    """rank-1, DIR and FIR of ``verifier`` over ``probes`` (``speaker,path``)."""
    rank1 = dir_hits = n_in = fir_hits = n_out = 0
    for row in probes.itertuples():
        result = verifier.identify(row.path, top=1, threshold=threshold)
        top = result["candidates"][0]["speaker"]
        if row.speaker in enrolled:
            n_in += 1
            rank1 += top == row.speaker
            dir_hits += result["best"] == row.speaker
        else:
            n_out += 1
            fir_hits += result["best"] is not None
    return {"rank1": (rank1, n_in), "dir": (dir_hits, n_in), "fir": (fir_hits, n_out),
            "threshold": result["threshold"], "threshold_source": result.get("threshold_source")}


def _add(a: dict, b: dict) -> dict:
    return {k: (a[k][0] + b[k][0], a[k][1] + b[k][1]) if isinstance(a[k], tuple) else a[k] for k in a}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    parser.add_argument("--sizes", default="10,100,1012",
                        help="enrolled ids (each >= 5; at most 5 + the 1,007 crops the background holds)")
    parser.add_argument("--expert", action="store_true", help="also the GMM-UBM directory of the issue")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work-dir", default=None)
    args = parser.parse_args(argv)
    shared = Path(args.shared)
    protocols = shared / "protocols"
    sizes = sorted(int(s) for s in args.sizes.split(","))
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="speakerid-identify-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    from speakerid.data.manifests import read_manifest
    from speakerid.pretrained import user_model_dir
    from speakerid.scoring.opening import open_verifier

    enroll = read_manifest(protocols / "librispeech-test-other-enroll.csv")
    trials = read_manifest(protocols / "librispeech-test-other-trials.csv", require_target=True)
    probes = trials[trials["target"] == 1][["speaker", "path"]].drop_duplicates("path").reset_index(drop=True)
    background = read_manifest(protocols / "librispeech-background.csv")
    speakers = sorted(enroll["speaker"].unique())
    folds = [speakers[0::2], speakers[1::2]]
    os.environ["SPEAKERID_HOME"] = str(work / "home-0")
    configs = _front_ends(user_model_dir())
    if args.expert:
        from speakerid.features import FeatureConfig

        configs.append(FeatureConfig())
    distractors = _usable(_crops(background, work / "crops", 10 ** 6), configs, args.jobs)
    distractors = distractors.iloc[:max(sizes) - len(folds[0])].reset_index(drop=True)
    if len(distractors) + len(folds[0]) < max(sizes):          # the background holds this many 2.5-s crops
        sizes = sorted({min(s, len(distractors) + len(folds[0])) for s in sizes})
    _say(f"# {len(distractors)} distractor crops (with speech) of {len(background)} background files; "
         f"{len(probes)} probes; load {load}")

    systems = {"default (shipped, fused LLR, N + 1 hypotheses)": None}
    if args.expert:
        systems["GMM-UBM 32, snorm+enrolled, threshold raised for N"] = "raised"
        systems["GMM-UBM 32, snorm+enrolled, verification threshold"] = "plain"
    results, timings = {}, {}
    expert_base = None
    if args.expert:
        from speakerid.backends.gmm_ubm import train_ubm

        expert_base = work / "gmm-ubm-base"
        if not (expert_base / "ubm.npz").exists():
            start = time.perf_counter()
            train_ubm(expert_base, protocols / "librispeech-background.csv", n_components=32, n_jobs=args.jobs)
            timings["train_ubm_s"] = round(time.perf_counter() - start, 1)
    for fold, chosen in enumerate(folds):
        base = {}
        os.environ["SPEAKERID_HOME"] = str(work / f"home-{fold}")
        base["default"] = user_model_dir()
        if expert_base is not None:
            base["expert"] = work / f"expert-{fold}"
            shutil.rmtree(base["expert"], ignore_errors=True)
            shutil.copytree(expert_base, base["expert"])
        enrolled_so_far = 0
        for size in sizes:
            wanted = size - len(chosen)
            batch = distractors.iloc[enrolled_so_far:wanted]
            frame = pd.concat([enroll[enroll["speaker"].isin(chosen)] if enrolled_so_far == 0 else enroll.iloc[:0],
                               batch], ignore_index=True)
            enrolled_so_far = wanted
            for kind, model_dir in base.items():
                start = time.perf_counter()
                verifier = open_verifier(model_dir, n_jobs=args.jobs) if kind == "default" else \
                    open_verifier(model_dir, backend="gmm-ubm", n_jobs=args.jobs)
                if len(frame):
                    verifier.enroll_manifest(frame)
                timings[f"enroll_{kind}_{size}_{fold}_s"] = round(time.perf_counter() - start, 1)
                verifier = open_verifier(model_dir, n_jobs=args.jobs) if kind == "default" else \
                    open_verifier(model_dir, backend="gmm-ubm", n_jobs=args.jobs)
                n = len(verifier.speakers())
                assert n == size, (kind, n, size)
                names = [s for s, how in systems.items() if (how is None) == (kind == "default")]
                for name in names:
                    start = time.perf_counter()
                    threshold = verifier.threshold if systems[name] == "plain" else None
                    measured = _measure(verifier, probes, set(chosen), threshold)
                    timings[f"identify_{kind}_{size}_{fold}_s"] = round(time.perf_counter() - start, 1)
                    key = (name, size)
                    results[key] = measured if key not in results else _add(results[key], measured)
                    _say(f"# fold {fold} {name} N={size}: rank-1 {measured['rank1']}, DIR {measured['dir']}, FIR "
                         f"{measured['fir']} (threshold {measured['threshold']:.2f})")
    table = {}
    print(f"{'system':55s} {'N':>5s}  {'rank-1 %':>22s}  {'DIR %':>22s}  {'FIR %':>22s}")
    for (name, size), r in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        figures = {k: _interval(*r[k]) for k in ("rank1", "dir", "fir")}
        table.setdefault(name, {})[size] = {**figures, "threshold": r["threshold"]}

        def cell(f):
            return f"{100 * f['value']:5.1f} [{100 * f['ci'][0]:5.1f}, {100 * f['ci'][1]:5.1f}] /{f['n']}"

        print(f"{name:55s} {size:5d}  {cell(figures['rank1']):>22s}  {cell(figures['dir']):>22s}  "
              f"{cell(figures['fir']):>22s}")
    print("rank-1: the true speaker ranked first; DIR: ranked first and accepted; FIR: a speaker not enrolled "
          "accepted as someone; [95 % Wilson interval] / probes (2 folds of 5 enrolled test-other speakers)")
    print(json.dumps({"bench": "identify_scale", "results": table, "timings": timings, "load": load,
                      "work_dir": str(work)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
