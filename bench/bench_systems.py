"""Every system on every shared protocol (the expert path: each backend trained by hand, fusions learned here): a
table of EER % and one of minDCF(P_target = 0.01), each figure with its 95 % interval from a bootstrap over the
claimed speakers (``bench/_intervals.py``) and each column with its target / non-target trial and speaker counts,
then one JSON line (``eer_pct``, ``min_dcf``, ``n_trials`` as before, ``*_ci`` and the counts beside them). The
default path is bench/bench_accuracy.py.

Systems: per-speaker GMM (normalised by the UBM), GMM-UBM trained on clean background speech (raw and with S-norm),
the multi-condition GMM-UBM (the library default: UBM and enrollment also see a noisy copy of every file; raw, with
S-norm, and with the default scoring: S-norm then T-norm over the other enrolled speakers), i-vector cosine and
PLDA (the settings ``bench/eval_ivector.py`` chose on dev: own 32-component UBM, rank 200, 1.5-s segments, 2 noisy
copies), the Siamese MLP, each also "+enrolled" (T-norm over the other enrolled speakers,
:func:`speakerid.evaluation.norm.leave_out_tnorm`), and linear fusions: of the cohort-normalised systems alone
("fusion, cohort norm only") and of their "+enrolled" forms, plain and quality-aware (each system's score also
multiplied by the test file's energy spread, :mod:`speakerid.features.quality`, so the weights follow the recording's
noise level). The dev columns also show each fusion cross-validated on dev (learned on half of the dev speakers,
scored on the other half, and the other way round): the figures on which the fusion inputs were chosen.

Nothing here looks at the evaluation speakers while training or choosing (but see FSDD below). Every background
model (UBM, cohort, total variability, LDA/WCCN/PLDA, Siamese network) is trained on the 223 LibriSpeech background
speakers (``bg-train`` of ``bench/dev_protocol.py``). The development set is the cross-recording protocol of
``bench/dev_protocol.py`` (enrollment and test from different recordings; speakers of other corpora): speechocean762
dev speakers in ``clean``, ``short`` (2-s tests) and ``noisy`` (2-s tests + real noise at 5 dB), FSDD in ``8k``. The
fusion is learned on it -- one fusion for the 16 kHz systems, learned on the pooled dev clean/short/noisy trials,
one for the 8 kHz systems, learned on the dev 8k trials -- and the front-end/i-vector settings were chosen on it
(see ``bench/frontend_ablation.py`` and ``bench/eval_ivector.py``; the settings pinned here were chosen on the
former same-recording protocol). FSDD has only six speakers, so the dev 8k speakers are the FSDD evaluation
speakers (other files): the FSDD fusion figures are not speaker-independent. The library defaults are used as they
are: there are no per-protocol settings or thresholds. ``--old-halves`` also scores the former same-recording dev
condition (``dev-halves``: optimistic, reported only, not used to learn anything; the background models are then
trained on the other 183 background speakers).

Protocols (``../shared/protocols``): LibriSpeech test-other full / short / noisy (16 kHz model directory) and FSDD
(8 kHz model directory whose background models are trained on the background speech resampled down to 8 kHz).

Usage: ``python bench/bench_systems.py [--shared ../shared] [--work-dir DIR] [--jobs 2] [--old-halves]``.
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
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _intervals import counts, fmt, groups_of  # noqa: E402
from _intervals import figures as interval_figures  # noqa: E402
from dev_protocol import OLD_HALVES  # noqa: E402
from dev_protocol import build as build_dev_protocol  # noqa: E402
from eval_shared import PROTOCOLS  # noqa: E402

from speakerid.data.manifests import read_manifest  # noqa: E402
from speakerid.evaluation.fusion import LinearFusion, fuse_score_files  # noqa: E402
from speakerid.exceptions import BandwidthWarning, DataLeakWarning  # noqa: E402
from speakerid.features import FeatureConfig  # noqa: E402
from speakerid.features.quality import file_energy_spread_db  # noqa: E402
from speakerid.scoring.batch import score_trials  # noqa: E402
from speakerid.verifier import SpeakerVerifier  # noqa: E402

EVAL = PROTOCOLS  # name: (enroll, trials, rate), the same protocols as bench/eval_shared.py
DEV = {16000: ("clean", "short", "noisy"), 8000: ("8k",)}
#: system name -> (model directory kind, backend, backend params, normalisation)
SYSTEMS = {
    "per-speaker GMM": ("clean", "gmm", {}, "none"),
    "GMM-UBM clean": ("clean", "gmm-ubm", {}, "none"),
    "GMM-UBM clean+Snorm": ("clean", "gmm-ubm", {}, "snorm"),
    "GMM-UBM clean+Snorm+enrolled": ("clean", "gmm-ubm", {}, "snorm+enrolled"),
    "GMM-UBM multi": ("multi", "gmm-ubm", {}, "none"),
    "GMM-UBM multi+Snorm": ("multi", "gmm-ubm", {}, "snorm"),
    "GMM-UBM multi, default": ("multi", "gmm-ubm", {}, "auto"),
    "i-vector cosine": ("clean", "ivector", {"scoring": "cosine"}, "none"),
    "i-vector cosine+enrolled": ("clean", "ivector", {"scoring": "cosine"}, "enrolled"),
    "i-vector PLDA": ("clean", "ivector", {"scoring": "plda"}, "none"),
    "i-vector PLDA+enrolled": ("clean", "ivector", {"scoring": "plda"}, "enrolled"),
    "Siamese": ("nn", "siamese", {}, "none"),
    "Siamese+enrolled": ("nn", "siamese", {}, "enrolled"),
}
#: fusion inputs: the cohort-normalised systems, and the same with the enrolled-speaker T-norm (the library default
#: for the GMM-UBM), chosen by the mean of the cross-validated dev EERs over the four dev conditions
FUSED_COHORT = ("GMM-UBM clean+Snorm", "GMM-UBM multi+Snorm", "i-vector cosine", "i-vector PLDA", "Siamese")
FUSED = ("GMM-UBM clean+Snorm+enrolled", "GMM-UBM multi, default", "i-vector cosine+enrolled",
         "i-vector PLDA+enrolled", "Siamese+enrolled")
FUSIONS = {"fusion, cohort norm only": FUSED_COHORT, "fusion": FUSED}
#: i-vector settings chosen on the dev protocol by bench/eval_ivector.py
IVECTOR = {"ubm_components": 32, "rank": 200, "segment_s": 1.5, "n_augment": 2, "lda_dim": 0}
TARGETS = {"test-other": 0.0, "test-other-short": 2.0, "test-other-noisy": 12.0, "fsdd": 5.0}


def _say(*parts) -> None:
    print(*parts, flush=True)


def figures(path) -> dict:
    """EER % and minDCF(0.01) of a score file with their speaker-bootstrap intervals and counts (unscored rows left
    out: ``n_trials`` counts the scored ones)."""
    frame = read_manifest(path, require_target=True, check_files=False)
    return interval_figures(frame["score"].to_numpy(float), frame["target"].to_numpy(), groups_of(frame))


def train_background(work: Path, rate: int, bg_train: Path, jobs: int) -> dict:
    """UBM (+ its cohort), i-vector extractor and back end, Siamese network, all on the ``bg-train`` speakers (the
    model directories are named by their count, so a work dir trained on another background set is not reused)."""
    from speakerid.backends.ivector import train_ivector
    from speakerid.backends.siamese import train_siamese

    tag = f"sr{rate}-bg{read_manifest(bg_train, check_files=False)['speaker'].nunique()}"
    dirs = {"clean": work / f"{tag}-clean", "multi": work / f"{tag}-multi", "nn": work / f"{tag}-nn"}
    timings = {}
    for kind, augment in (("clean", 0), ("multi", None)):
        if not (dirs[kind] / "ubm.npz").exists():
            start = time.perf_counter()
            verifier = SpeakerVerifier(dirs[kind], feature_config=FeatureConfig(sample_rate=rate), n_jobs=jobs)
            verifier.train(bg_train, **({} if augment is None else {"n_augment": augment}))
            timings[f"ubm_{kind}_s"] = round(time.perf_counter() - start, 1)
    if not (dirs["clean"] / "ivector.npz").exists():
        start = time.perf_counter()
        train_ivector(dirs["clean"], bg_train, n_jobs=jobs, **IVECTOR)
        timings["ivector_s"] = round(time.perf_counter() - start, 1)
    if not (dirs["nn"] / "siamese.npz").exists():
        start = time.perf_counter()
        from speakerid.models.clipvec import NEURAL_FEATURE_CONFIG
        config = FeatureConfig.from_dict({**NEURAL_FEATURE_CONFIG.to_dict(), "sample_rate": rate})
        train_siamese(dirs["nn"], bg_train, feature_config=config, n_jobs=jobs)
        timings["siamese_s"] = round(time.perf_counter() - start, 1)
    _say(f"# {rate} Hz background models trained: {timings or 'cached'}")
    return dirs


def score_all(dirs: dict, name: str, enroll: Path, trials: Path, out_dir: Path, jobs: int) -> dict:
    """Enroll ``enroll`` in every backend (replacing whoever was enrolled) and write one score file per system."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for kind, backend in {(k, b) for k, b, _, _ in SYSTEMS.values()}:
        verifier = SpeakerVerifier(dirs[kind], backend=backend, n_jobs=jobs)
        for speaker in verifier.speakers():
            verifier.remove(speaker)
        with warnings.catch_warnings():
            for category in (DataLeakWarning, BandwidthWarning):   # must not pass silently
                warnings.simplefilter("error", category)
            verifier.enroll_manifest(enroll)
    files = {}
    for system, (kind, backend, params, norm) in SYSTEMS.items():
        out = out_dir / f"{system.replace(', ', ' ').replace(' ', '_').replace('+', 'plus').lower()}.csv"
        score_trials(dirs[kind], trials, out, backend=backend, backend_params=params or None, norm=norm,
                     n_jobs=jobs, show_progress=False)
        files[system] = out
    return files


_QUALITY: dict = {}


def _quality(trials) -> np.ndarray:
    """Energy spread (dB) of every trial's test file, in trial order (the score files keep that order)."""
    paths = read_manifest(trials, check_files=False)["path"]
    for path in set(paths) - set(_QUALITY):
        _QUALITY[path] = file_energy_spread_db(path)
    return np.array([_QUALITY[p] for p in paths])


def _matrix(files: dict, systems=FUSED) -> np.ndarray:
    return np.column_stack([pd.read_csv(files[s])["score"].to_numpy(float) for s in systems])


def dev_cross_validated(dev_files: dict, systems) -> dict:
    """EER % / minDCF of the linear fusion of ``systems`` on each dev condition, cross-validated over speakers:
    the dev speakers are split in two halves (alternate ids); a fusion learned on the trials within one half
    (claimed and true speaker both in it) scores the trials within the other, and the other way round."""
    data = {}
    for condition, files in dev_files.items():
        frame = pd.read_csv(files[systems[0]], dtype={"speaker": str})
        truth = frame[frame["target"] == 1].drop_duplicates("path").set_index("path")["speaker"]
        data[condition] = (_matrix(files, systems), frame["target"].to_numpy(),
                           frame["speaker"].to_numpy(), frame["path"].map(truth).to_numpy(), groups_of(frame))
    speakers = sorted({s for _, _, claimed, _, _ in data.values() for s in claimed})
    halves = [set(speakers[0::2]), set(speakers[1::2])]
    within = {c: [np.isin(claimed, list(h)) & np.isin(true, list(h)) for h in halves]
              for c, (_, _, claimed, true, _) in data.items()}
    fused = {c: ([], [], []) for c in data}
    for learn, apply in ((0, 1), (1, 0)):
        X = np.vstack([x[within[c][learn]] for c, (x, _, _, _, _) in data.items()])
        y = np.concatenate([y[within[c][learn]] for c, (_, y, _, _, _) in data.items()])
        model = LinearFusion().fit(X, y)
        for c, (x, y, _, _, groups) in data.items():
            fused[c][0].append(model.transform(x[within[c][apply]]))
            fused[c][1].append(y[within[c][apply]])
            fused[c][2].append(groups[within[c][apply]])
    return {c: interval_figures(np.concatenate(scores), np.concatenate(labels), np.concatenate(groups))
            for c, (scores, labels, groups) in fused.items()}


def quality_fusion(dev: list, files: dict, trials, out: Path) -> Path:
    """Quality-aware fusion (see :mod:`speakerid.features.quality`): the systems' scores and each score times the
    standardised energy spread of the test file, fused by logistic regression learned on the dev trials only."""
    X = np.vstack([_matrix(f) for f, _ in dev])
    q = np.concatenate([_quality(t) for _, t in dev])
    labels = np.concatenate([pd.read_csv(f[FUSED[0]])["target"].to_numpy() for f, _ in dev])
    mean, std = q.mean(), q.std() or 1.0
    model = LinearFusion().fit(np.c_[X, X * ((q - mean) / std)[:, None]], labels)
    Xe, qe = _matrix(files), _quality(trials)
    frame = pd.read_csv(files[FUSED[0]])
    frame["score"] = model.transform(np.c_[Xe, Xe * ((qe - mean) / std)[:, None]])
    frame.to_csv(out, index=False)
    return out


def pooled(files: list[Path], out: Path) -> Path:
    pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in files]).to_csv(out, index=False)
    return out


def print_tables(results: dict, systems, columns) -> None:
    """The EER table, the minDCF table (value [95 % interval]) and the trials each column's figures rest on."""
    width = 26
    for key, title in (("eer_pct", "EER % [95 % CI]"), ("min_dcf", "minDCF(0.01) [95 % CI]")):
        _say("")
        _say(f"{title:<34}" + "".join(f"{c:>{width}}" for c in columns))
        for system in systems:
            cells = [results[c].get(system) for c in columns]
            _say(f"{system:<34}" + "".join(f"{'-' if x is None else fmt(x, key):>{width}}" for x in cells))
    _say(f"{'target EER %':<34}" + "".join(f"{TARGETS[c]:>{width}.1f}" if c in TARGETS else f"{'':>{width}}"
                                           for c in columns))
    _say("trials (every system of a column scores the same trials; the dev CV rows a part of them):")
    for c in columns:
        first = next(x for x in results[c].values())
        cv = next((x for s, x in results[c].items() if s.endswith("(dev CV)")), None)
        _say(f"  {c}: {counts(first)}" + (f"; dev CV rows: {counts(cv)}" if cv else ""))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    parser.add_argument("--work-dir", default=None, help="keep models, dev data and score files here")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--old-halves", action="store_true",
                        help="also score the former same-recording dev condition (optimistic; trains on 183 speakers)")
    args = parser.parse_args(argv)
    shared = Path(args.shared)
    protocols = shared / "protocols"
    if not protocols.is_dir():
        print(f"skipped: {protocols} not found")
        return 0
    start_all = time.perf_counter()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="speakerid-accuracy-"))
    dev = build_dev_protocol(work / "dev", shared, old_halves=args.old_halves, jobs=args.jobs)
    results, timings = {}, {}
    for rate, dev_conditions in DEV.items():
        start = time.perf_counter()
        dirs = train_background(work, rate, dev["bg-train"], args.jobs)
        timings[f"train_{rate}_s"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        dev_files = {c: score_all(dirs, f"dev-{c}", dev[f"dev-{c}-enroll"], dev[f"dev-{c}-trials"],
                                  work / "scores" / f"dev-{c}", args.jobs) for c in dev_conditions}
        for condition, files in dev_files.items():
            results[f"dev-{condition}"] = {system: figures(path) for system, path in files.items()}
        for fusion, systems in FUSIONS.items():
            for condition, figs in dev_cross_validated(dev_files, systems).items():
                results[f"dev-{condition}"][f"{fusion} (dev CV)"] = figs
        if args.old_halves and rate == 16000:   # reported only: nothing is learned on it
            files = score_all(dirs, f"dev-{OLD_HALVES}", dev[f"dev-{OLD_HALVES}-enroll"],
                              dev[f"dev-{OLD_HALVES}-trials"], work / "scores" / f"dev-{OLD_HALVES}", args.jobs)
            results[f"dev-{OLD_HALVES}"] = {system: figures(path) for system, path in files.items()}
        train = {fusion: [pooled([dev_files[c][s] for c in dev_conditions],
                                 work / "scores" / f"dev-{rate}-{fusion.replace(' ', '_').replace(',', '')}-{i}.csv")
                          for i, s in enumerate(systems)] for fusion, systems in FUSIONS.items()}
        for name, (enroll, trials, r) in EVAL.items():
            if r != rate:
                continue
            files = score_all(dirs, name, protocols / enroll, protocols / trials, work / "scores" / name, args.jobs)
            results[name] = {system: figures(path) for system, path in files.items()}
            for fusion, systems in FUSIONS.items():
                fused = work / "scores" / name / f"{fusion.replace(' ', '_').replace(',', '')}.csv"
                fuse_score_files([files[s] for s in systems], fused, train_paths=train[fusion], names=list(systems))
                results[name][fusion] = figures(fused)
            dev_sets = [(dev_files[c], dev[f"dev-{c}-trials"]) for c in dev_conditions]
            results[name]["quality fusion"] = figures(quality_fusion(
                dev_sets, files, protocols / trials, work / "scores" / name / "quality-fusion.csv"))
        timings[f"score_{rate}_s"] = round(time.perf_counter() - start, 1)

    systems = list(SYSTEMS) + [name for f in FUSIONS for name in (f, f"{f} (dev CV)")] + ["quality fusion"]
    columns = [n for n in list(EVAL) + [f"dev-{c}" for cs in DEV.values() for c in cs] + [f"dev-{OLD_HALVES}"]
               if n in results]
    print_tables(results, systems, columns)
    timings["total_s"] = round(time.perf_counter() - start_all, 1)
    _say(f"# work dir {work}; {timings}")
    print(json.dumps({"bench": "accuracy", "results": results, "targets_eer_pct": TARGETS, "timings": timings}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
