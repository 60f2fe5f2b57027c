"""Training that outgrows one machine: driver memory and EM time of map-reduce training at 1x, 4x and 16x.

Usage::

    python bench/bench_scale.py [--base 250] [--components 64] [--iterations 3] [--rank 50] [--work-dir DIR]

A synthetic corpus (``speakerid.data.synth``: 20 evaluated speakers x 6 utterances, 3 to enroll, every test
utterance claimed for every speaker; ``16 x base`` background utterances of 2-3 s, 5 per speaker) is made once;
the 1x, 4x and 16x background sets are its first ``base``, ``4 base`` and ``16 base`` background utterances (whole
speakers). Every training runs as its own process (``train_ubm`` / ``train_ivector`` with one noisy copy per file,
one shared ``--cache`` folder), whose driver peak RSS is its ``VmHWM`` (workers are other processes):

- ``train_ubm`` with 2 joblib workers at 1x, 4x, 16x: driver peak RSS, seconds per EM iteration (the slope in
  seconds per million frames, and how linear it is), feature-extraction seconds per hour of audio;
- the UBM at 1x, 4x, 16x with 2 joblib workers, and at 16x with 1 joblib worker and a Dask LocalCluster of 2
  workers (features read from the store), each ``--repeats`` times, alternated, the fastest kept (the machine's
  cores are shared with other work; the 1-minute load average is reported): the 2-worker speed-up and Dask
  against joblib;
- the reference: the in-memory path (every frame of the store loaded into this process, then
  :meth:`GMMUBM.fit`, what ``train-ubm`` did before) at 1x and 16x, driver peak RSS;
- ``train_ivector`` (own 32-component UBM, rank ``--rank``) at 1x and 16x with 2 workers;
- dev EER (raw scores, ``--norm none``) of the 1x and 16x GMM-UBM and i-vector models on the corpus' trials, with
  its 95 % interval from a bootstrap over the claimed speakers and the trial counts (``bench/_intervals.py``;
  ``dev_eer_figures`` beside ``dev_eer`` in the JSON).

The cores of this machine are shared with other work, which caps the CPU share of a process group: wall-clock
speed-ups then say more about the load than about the code. So one EM statistics pass over the 16x store is
also accounted in CPU seconds per worker process (1 joblib worker, 2 joblib workers, 2 Dask workers):
``em_speedup_2_workers_dedicated_cores`` = CPU seconds of the single worker / CPU seconds of the busiest of two,
the speed-up two dedicated cores give.

The last line is one JSON object with ``rss_growth_ratio`` (driver peak RSS of ``train_ubm`` at 16x / 1x) and
``em_speedup_2_workers`` (UBM EM seconds per iteration at 16x with 1 worker / with 2, wall clock).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _intervals import counts, figures, fmt, groups_of  # noqa: E402  (numpy only; the bootstrap loads late)

SCALES = (1, 4, 16)


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024.0 for line in fh if line.startswith("VmHWM:"))


# ---------------------------------------------------------------------------------------------- child processes

def _child(spec: dict) -> dict:
    """One training in this (fresh) process; what it measured."""
    start = time.perf_counter()
    if spec["what"] == "ubm":
        from speakerid.backends.gmm_ubm import train_ubm

        out = train_ubm(spec["model_dir"], spec["manifest"], n_jobs=spec["jobs"], scheduler=spec.get("scheduler"),
                        cache_dir=spec["cache"], n_components=spec["components"], max_iter=spec["iterations"],
                        n_augment=1, cohort_speakers=0)
        result = {"em_seconds": out["em_seconds"], "n_frames": out["n_frames"], "n_extracted": out["n_extracted"],
                  "extract_seconds": out["extract_seconds"]}
    elif spec["what"] == "ivector":
        from speakerid.backends.ivector import train_ivector

        out = train_ivector(spec["model_dir"], spec["manifest"], n_jobs=spec["jobs"], cache_dir=spec["cache"],
                            rank=spec["rank"], max_iter=spec["iterations"], n_augment=1)
        result = {"em_seconds": out["em_seconds"], "n_segments": out["n_segments"],
                  "extract_seconds": out["extract_seconds"]}
    else:   # the reference: every frame in this process, then the in-memory fit
        from speakerid.data.manifests import read_manifest
        from speakerid.features.feature_store import extract_to_store, read_entry
        from speakerid.models.gmm_ubm import GMMUBM
        from speakerid.store import ModelStore

        config = ModelStore(spec["model_dir"]).feature_config()
        entries, _ = extract_to_store(read_manifest(spec["manifest"])["path"], config, spec["cache"],
                                      n_augment=1, random_state=0)
        frames = [read_entry(e) for e in entries]
        model = GMMUBM(n_components=spec["components"], max_iter=spec["iterations"], random_state=0).fit(frames)
        result = {"em_seconds": model.ubm_.em_seconds_, "n_frames": int(sum(len(f) for f in frames))}
    result.update(seconds=time.perf_counter() - start, peak_rss_mb=_peak_rss_mb())
    return result


def _run_child(spec: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"child {spec['what']} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------- CPU accounting

def _timed_em_task(shared, batch):
    """A worker's UBM EM statistics of each shard of ``batch``, with its process id and CPU / wall seconds."""
    from speakerid.models import sharded

    out = []
    for shard in batch:
        cpu, wall = time.process_time(), time.perf_counter()
        sharded._em_task(shared, [shard])
        out.append((os.getpid(), time.process_time() - cpu, time.perf_counter() - wall))
    return out


def _em_pass_cpu(manifest, cache, model_dir, jobs, scheduler=None) -> dict:
    """One EM statistics pass over the stored 16x frames under the trained UBM: wall seconds, worker CPU seconds
    in all and of the busiest worker (what the pass takes on dedicated cores: the others' work does not count)."""
    from speakerid._utils.parallel import TaskRunner
    from speakerid.data.manifests import read_manifest
    from speakerid.features.feature_store import extract_to_store, make_shards
    from speakerid.models import _gmm_math as gm
    from speakerid.models.sharded import DEFAULT_SHARD_FRAMES
    from speakerid.store import ModelStore

    store = ModelStore(model_dir)
    arrays = store.load("ubm.npz")[1]
    entries, _ = extract_to_store(read_manifest(manifest)["path"], store.feature_config(), cache, n_augment=1)
    shards = [[e.path for e in shard] for shard in make_shards(entries, DEFAULT_SHARD_FRAMES)]
    w, mu, var = (np.asarray(arrays[k], np.float64) for k in ("weights", "means", "variances"))
    center = w @ mu
    shared = (gm.transposed32(gm.param_matrix(w, mu, var, center)), center.astype(np.float32), 1,
              gm.chunk_rows(len(w), mu.shape[1]))
    with TaskRunner(n_jobs=jobs, scheduler=scheduler) as runner:
        runner.map(_timed_em_task, shared, shards[:2 * max(1, runner.n_workers)])      # workers started, warm
        tic = time.perf_counter()
        done = runner.map(_timed_em_task, shared, shards)
        wall = time.perf_counter() - tic
    per_worker = {}
    for pid, cpu, _ in done:
        per_worker[pid] = per_worker.get(pid, 0.0) + cpu
    return {"wall_s": wall, "cpu_s": sum(per_worker.values()), "busiest_worker_cpu_s": max(per_worker.values()),
            "workers": len(per_worker)}


# ---------------------------------------------------------------------------------------------- evaluation

def _dev_eer(model_dir, corpus, backend) -> tuple[float, dict]:
    """The EER (fraction) of a model on the corpus' trials, and its figures with intervals and counts."""
    from speakerid.evaluation.metrics import eer
    from speakerid.scoring.batch import score_trials
    from speakerid.verifier import SpeakerVerifier

    SpeakerVerifier(model_dir, backend=backend).enroll_manifest(corpus.enroll_csv)
    out = Path(model_dir) / "scores.csv"
    score_trials(model_dir, corpus.trials_csv, out, backend=backend, norm="none", show_progress=False)
    import pandas as pd

    scores = pd.read_csv(out)
    values, labels = scores["score"].to_numpy(float), scores["target"].to_numpy()
    return float(eer(values, labels)), figures(values, labels, groups_of(scores))


def _subset(corpus, n_files: int, path: Path) -> tuple[Path, float]:
    """The first ``n_files`` background rows as a manifest (absolute paths); its audio seconds."""
    import pandas as pd
    import soundfile as sf

    frame = pd.read_csv(corpus.background_csv).iloc[:n_files].copy()
    frame["path"] = [str((corpus.folder / p).resolve()) for p in frame["path"]]
    frame.to_csv(path, index=False)
    return path, float(sum(sf.info(p).duration for p in frame["path"]))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=250, help="background utterances at 1x (default 250)")
    parser.add_argument("--components", type=int, default=64, help="UBM components (default 64)")
    parser.add_argument("--iterations", type=int, default=3, help="EM iterations (default 3)")
    parser.add_argument("--rank", type=int, default=50, help="i-vector rank (default 50)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each 16x worker setting (default 3)")
    parser.add_argument("--work-dir", default=None, help="keep the corpus, store and models here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return {}
    from speakerid.data.synth import make_corpus

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-scale-"))
    tic = time.perf_counter()
    corpus = make_corpus(work / "corpus", n_speakers=20, n_utterances=6, enroll_per_speaker=3,
                         n_background=16 * args.base // 5, n_background_utterances=5, duration_s=(2.0, 3.0),
                         seed=0, show_progress=False, reuse=True)
    print(f"corpus: {corpus.n_files} files, {corpus.n_trials} trials ({time.perf_counter() - tic:.0f} s)",
          file=sys.stderr)
    cache = work / "store"
    common = {"cache": str(cache), "components": args.components, "iterations": args.iterations,
              "rank": args.rank}
    rows, audio_s, ubm_dirs = {}, {}, {}
    for scale in SCALES:
        manifest, audio_s[scale] = _subset(corpus, scale * args.base, work / f"background-{scale}x.csv")
        ubm_dirs[scale] = work / f"ubm-{scale}x"
        rows[("ubm", scale, "joblib 2")] = _run_child({**common, "what": "ubm", "manifest": str(manifest),
                                                       "model_dir": str(ubm_dirs[scale]), "jobs": 2})
        print(f"train_ubm {scale}x: {rows[('ubm', scale, 'joblib 2')]}", file=sys.stderr)
    big = str(work / "background-16x.csv")
    extract_s = rows[("ubm", 16, "joblib 2")]["extract_seconds"]      # the 3 x base files the 4x run had not
    load = [os.getloadavg()[0]]
    settings = [(scale, "joblib 2", {"jobs": 2}) for scale in SCALES] + [
        (16, "joblib 1", {"jobs": 1}), (16, "dask 2", {"jobs": 2, "scheduler": "local"})]
    for repeat in range(args.repeats):     # alternated; the fastest of each kept (other work shares the cores)
        for scale, label, extra in settings:
            if label == "joblib 2" and repeat == 0:
                continue                   # the runs above
            row = _run_child({**common, "what": "ubm", "manifest": str(work / f"background-{scale}x.csv"),
                              "model_dir": str(work / f"ubm-{scale}x-{label.replace(' ', '')}-{repeat}"), **extra})
            key = ("ubm", scale, label)
            if key not in rows or np.mean(row["em_seconds"]) < np.mean(rows[key]["em_seconds"]):
                rows[key] = row
            load.append(os.getloadavg()[0])
    cpu = {label: _em_pass_cpu(big, cache, ubm_dirs[16], jobs, scheduler)
           for label, jobs, scheduler in (("joblib 1", 1, None), ("joblib 2", 2, None), ("dask 2", 2, "local"))}
    print(f"EM pass CPU accounting: {cpu}", file=sys.stderr)
    for scale in (1, 16):
        rows[("in-memory", scale, "threads 2")] = _run_child({**common, "what": "inmem", "jobs": 2,
                                                             "manifest": str(work / f"background-{scale}x.csv"),
                                                             "model_dir": str(ubm_dirs[scale])})
        rows[("ivector", scale, "joblib 2")] = _run_child({**common, "what": "ivector", "jobs": 2,
                                                          "manifest": str(work / f"background-{scale}x.csv"),
                                                          "model_dir": str(work / f"ivector-{scale}x")})
    dev = {f"{kind}_{scale}x": _dev_eer(work / f"{'ubm' if kind == 'gmm-ubm' else 'ivector'}-{scale}x", corpus,
                                        kind)
           for kind in ("gmm-ubm", "ivector") for scale in (1, 16)}
    eers = {key: value for key, (value, _) in dev.items()}

    def per_iter(key):
        return float(np.mean(rows[key]["em_seconds"]))

    frames = np.array([rows[("ubm", s, "joblib 2")]["n_frames"] for s in SCALES], float) / 1e6
    times = np.array([per_iter(("ubm", s, "joblib 2")) for s in SCALES])
    slope, intercept = np.polyfit(frames, times, 1)
    linear_r2 = 1 - np.sum((times - (slope * frames + intercept)) ** 2) / np.sum((times - times.mean()) ** 2)
    new_audio_h = (audio_s[16] - audio_s[4]) / 3600.0
    print(f"\n{'run':<28}{'frames':>10}{'driver RSS MB':>15}{'s / EM iter':>13}{'total s':>10}")
    for (what, scale, how), row in rows.items():
        print(f"{what + ' ' + str(scale) + 'x ' + how:<28}{row.get('n_frames', row.get('n_segments', 0)):>10}"
              f"{row['peak_rss_mb']:>15.0f}{per_iter((what, scale, how)):>13.2f}{row['seconds']:>10.1f}")
    print("dev EER % [95 % interval, bootstrap over the claimed speakers]: " + "; ".join(
        f"{key} {fmt(figs)} ({counts(figs)})" for key, (_, figs) in dev.items()))
    summary = {
        "base_utterances": args.base, "components": args.components, "iterations": args.iterations,
        "audio_hours": {f"{s}x": round(audio_s[s] / 3600, 3) for s in SCALES},
        "rss_growth_ratio": rows[("ubm", 16, "joblib 2")]["peak_rss_mb"] / rows[("ubm", 1, "joblib 2")]["peak_rss_mb"],
        "rss_growth_ratio_in_memory": (rows[("in-memory", 16, "threads 2")]["peak_rss_mb"]
                                       / rows[("in-memory", 1, "threads 2")]["peak_rss_mb"]),
        "em_s_per_iter_per_million_frames": slope, "em_linear_r2": linear_r2,
        "em_speedup_2_workers": per_iter(("ubm", 16, "joblib 1")) / per_iter(("ubm", 16, "joblib 2")),
        "dask_over_joblib_2_workers": per_iter(("ubm", 16, "dask 2")) / per_iter(("ubm", 16, "joblib 2")),
        "em_speedup_2_workers_dedicated_cores": cpu["joblib 1"]["cpu_s"] / cpu["joblib 2"]["busiest_worker_cpu_s"],
        "dask_over_joblib_2_workers_dedicated_cores": (cpu["dask 2"]["busiest_worker_cpu_s"]
                                                       / cpu["joblib 2"]["busiest_worker_cpu_s"]),
        "em_pass_cpu_accounting": cpu,
        "extract_s_per_audio_hour_2_workers": extract_s / new_audio_h if new_audio_h else None,
        "ubm_em_s_per_iter_per_audio_hour_2_workers": per_iter(("ubm", 16, "joblib 2")) / (audio_s[16] / 3600),
        "ivector_em_s_per_iter_per_audio_hour_2_workers": per_iter(("ivector", 16, "joblib 2")) / (audio_s[16] / 3600),
        "dev_eer": eers, "dev_eer_figures": {key: figs for key, (_, figs) in dev.items()},
        "load_average_during_speedup_runs": [round(x, 2) for x in load],
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
