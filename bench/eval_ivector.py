"""i-vector systems on the development protocol (choice of settings) and then on the shared evaluation protocols.

1. Development (``bench/dev_protocol.py``: cross-recording trials of speakers of other corpora -- speechocean762
   in clean / short (2-s tests) / noisy (2-s tests + real noise at 5 dB), FSDD in 8k; nothing here looks at the
   LibriSpeech evaluation speakers, but the FSDD dev speakers are the FSDD evaluation speakers, other files):
   everything is trained on the 223 ``bg-train`` background speakers, at 16 kHz and at 8 kHz (the background
   resampled down, as ``eval_shared.py`` does for FSDD): the i-vector system's own UBM on the clean recordings, T,
   LDA, WCCN and PLDA on segments of the recordings plus noisy copies. Extractor settings are varied one at a time
   around a base (:data:`BASE`: K = 32, rank 100, 1.5-s segments, 2 noisy copies): UBM size 16 / 64 / 256, rank
   200, 3-s segments, 0 or 4 noisy copies; for each extractor the back end: LDA 50 or none (WCCN always), cosine
   or PLDA, pooled or averaged enrollment. EER % and minDCF(P=0.01) on dev clean / short / noisy / 8k for every
   setting, each with its 95 % interval from a bootstrap over the claimed speakers (``bench/_intervals.py``; the
   trial and speaker counts of each condition are printed once, every setting scores the same trials); the
   chosen setting has the lowest mean dev EER over the four conditions (a selection criterion, without an
   interval). ``--old-halves`` adds the former same-recording condition (``halves``, optimistic) as a reported
   column, left out of the mean; the dev background is then the other 183 speakers.
2. Evaluation, for the record: the chosen setting trained through the product path
   (:func:`speakerid.backends.ivector.train_ivector`, ``enroll``, ``score_frames``) on the whole LibriSpeech
   background (223 speakers), on test-other / short / noisy (16 kHz) and FSDD (8 kHz), cosine and PLDA, with
   intervals and counts as above.

The front end is pinned (:data:`PINNED_FEATURES`: the defaults of the day this was written: MFCC 20 + delta +
delta-delta, energy VAD, utterance CMVN) so the comparisons do not move when the library's defaults change.
Usage: ``python bench/eval_ivector.py [--shared ../shared] [--dev-dir DIR] [--quick] [--skip-eval]
[--old-halves]``. Ends with one JSON line (``eer_pct``, ``min_dcf`` as before; ``*_ci`` and the counts beside them).
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
from joblib import Parallel, delayed

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _intervals import count_trials, counts, fmt, groups_of  # noqa: E402
from _intervals import figures as interval_figures  # noqa: E402
from dev_protocol import OLD_HALVES  # noqa: E402
from dev_protocol import build as build_dev  # noqa: E402

from speakerid.backends.ivector import segment_sessions, train_ivector  # noqa: E402
from speakerid.data.manifests import read_manifest  # noqa: E402
from speakerid.features import FeatureConfig  # noqa: E402
from speakerid.features.pipeline import file_sessions  # noqa: E402
from speakerid.models.clipvec import frames_per_segment  # noqa: E402
from speakerid.models.gmm_ubm import GMMUBM  # noqa: E402
from speakerid.models.ivector_system import IVectorSystem  # noqa: E402
from speakerid.scoring.batch import score_trials  # noqa: E402
from speakerid.verifier import SpeakerVerifier  # noqa: E402

PINNED_FEATURES = dict(frame_length_ms=25.0, frame_shift_ms=10.0, n_fft=512, n_mels=26, n_ceps=20,
                       low_freq_hz=0.0, high_freq_hz=None, preemphasis=0.97, window="hamming", lifter=22.0,
                       use_energy=True, features=("mfcc",), delta_order=2, delta_window=2, vad="energy",
                       vad_threshold_db=30.0, vad_min_frames=20, cmvn="utterance", cmvn_window_frames=301,
                       cmvn_variance=True, psf_compat=False, dither=0.0)
CONDITIONS = {"clean": 16000, "short": 16000, "noisy": 16000, "8k": 8000}
EVAL = {"test-other": ("librispeech-test-other-enroll.csv", "librispeech-test-other-trials.csv", 16000),
        "test-other-short": ("librispeech-test-other-short-enroll.csv",
                             "librispeech-test-other-short-trials.csv", 16000),
        "test-other-noisy": ("librispeech-test-other-noisy-enroll.csv",
                             "librispeech-test-other-noisy-trials.csv", 16000),
        "fsdd": ("fsdd-enroll.csv", "fsdd-trials.csv", 8000)}
BASE = {"components": 32, "rank": 100, "segment_s": 1.5, "augment": 2}


def config_at(rate: int) -> FeatureConfig:
    return FeatureConfig(sample_rate=rate, **PINNED_FEATURES)


def figures(scores, labels, groups) -> dict:
    """EER % and minDCF(0.01) with their speaker-bootstrap intervals (``*_ci``) and counts."""
    return interval_figures(scores, labels, groups)


def _cells(row: dict) -> str:
    return f"{fmt(row):>24}{fmt(row, 'min_dcf'):>22}"


def _features(paths, config, jobs):
    from speakerid.features.pipeline import file_features

    out = Parallel(n_jobs=jobs)(delayed(file_features)(p, config) for p in paths)
    return {p: f for p, (f, _) in zip(paths, out)}


class DevData:
    """Background sessions (clean + noisy copies) and dev enrollment/test frames at one sample rate."""

    def __init__(self, dev_dir: Path, rate: int, conditions, max_augment: int, jobs: int):
        self.config = config_at(rate)
        bg = read_manifest(dev_dir / "bg-train.csv")
        self.speakers = bg["speaker"].astype(str).tolist()
        # the seeding rule of features.pipeline.many_features: file i gets [random_state, i]
        self.per_file = [sessions for sessions, _ in Parallel(n_jobs=jobs)(
            delayed(file_sessions)(p, self.config, max_augment, [0, i]) for i, p in enumerate(bg["path"]))]
        self.conditions = {}
        for cond in conditions:
            enroll = read_manifest(dev_dir / f"dev-{cond}-enroll.csv")
            trials = read_manifest(dev_dir / f"dev-{cond}-trials.csv", require_target=True)
            paths = sorted(set(enroll["path"]) | set(trials["path"]))
            self.conditions[cond] = (enroll, trials, _features(paths, self.config, jobs))

    def sessions(self, segment_s: float, augment: int):
        files = [arrays[:1 + augment] for arrays in self.per_file]
        return segment_sessions(files, self.speakers, frames_per_segment(segment_s, self.config))


def dev_eval(system: IVectorSystem, data: DevData, backends: list[dict]) -> dict:
    """Figures of every back-end variant on every condition of ``data`` (raw i-vectors extracted once)."""
    results = {}
    raw = {}
    for cond, (enroll, trials, feats) in data.conditions.items():
        paths = list(feats)
        ivec = dict(zip(paths, system.ivectors([feats[p] for p in paths])))
        groups = enroll.groupby("speaker", sort=True)["path"]
        speakers = [s for s, _ in groups]
        pooled = system.ivectors([np.concatenate([feats[p] for p in ps]) for _, ps in groups])
        raw[cond] = (trials, ivec, speakers, pooled, [list(ps) for _, ps in groups])
    for variant in backends:
        system.set_params(lda_dim=variant["lda_dim"], wccn=variant.get("wccn", True))
        system.fit_backend(system.train_ivectors_, system.train_labels_)
        for cond, (trials, ivec, speakers, pooled, files) in raw.items():
            tests = sorted(set(trials["path"]))
            test_vec = system.embed_ivectors(np.stack([ivec[p] for p in tests]))
            if variant["enroll"] == "pool":
                models, counts = system.embed_ivectors(pooled), np.ones(len(speakers))
            else:
                models = np.stack([system.embed_ivectors(np.stack([ivec[p] for p in ps])).mean(axis=0)
                                   for ps in files])
                counts = np.array([len(ps) for ps in files])
            matrix = system.score_vectors(models, test_vec, counts, scoring=variant["scoring"])
            row = {s: i for i, s in enumerate(speakers)}
            col = {p: j for j, p in enumerate(tests)}
            scores = matrix[[row[s] for s in trials["speaker"]], [col[p] for p in trials["path"]]]
            results.setdefault(_key(variant), {})[cond] = figures(scores, trials["target"].to_numpy(),
                                                                  groups_of(trials))
    return results


def _key(variant: dict) -> str:
    return f"lda{variant['lda_dim']}-{variant['scoring']}-{variant['enroll']}"


def backend_variants(quick: bool) -> list[dict]:
    ldas = [0] if quick else [0, 50]
    return [{"lda_dim": lda, "scoring": scoring, "enroll": enroll} for lda in ldas
            for scoring in ("cosine", "plda") for enroll in ("pool", "average")]


def _name(ext: dict) -> str:
    return f"K{ext['components']}-r{ext['rank']}-seg{ext['segment_s']:g}-aug{ext['augment']}"


def extractor_grid(quick: bool) -> list[dict]:
    """The base extractor and, unless ``quick``, one factor changed at a time."""
    grid = [dict(BASE)]
    if not quick:
        grid += [{**BASE, "components": k} for k in (16, 64, 256)]
        grid += [{**BASE, "rank": 200}]
        grid += [{**BASE, "segment_s": 3.0}]
        grid += [{**BASE, "augment": a} for a in (0, 4)]
    return grid


def run_dev(args, dev_dir: Path) -> tuple[dict, dict]:
    """Every extractor setting x back-end variant on the dev conditions; returns (results, chosen)."""
    extractors = extractor_grid(args.quick)
    max_aug = max(e["augment"] for e in extractors)
    shown = {**CONDITIONS, **({OLD_HALVES: 16000} if args.old_halves else {})}   # the mean: CONDITIONS only
    data = {}
    for rate in (16000, 8000):
        tic = time.perf_counter()
        data[rate] = DevData(dev_dir, rate, [c for c, r in shown.items() if r == rate], max_aug, args.jobs)
        print(f"# dev features at {rate} Hz: {time.perf_counter() - tic:.1f} s", flush=True)
    ubms = {}
    results = {}
    print("# EER % and minDCF(0.01) [95 % interval, bootstrap over the claimed speakers]; trials: "
          + "; ".join(f"{c} {counts(count_trials(t['target'], groups_of(t)))}"
                      for d in data.values() for c, (_, t, _) in d.conditions.items()), flush=True)
    print(f"{'extractor':<24}{'back end':<24}" + "".join(f"{c + ' EER':>24}{'minDCF':>22}" for c in shown)
          + f"{'mean EER':>10}")
    for ext in extractors:
        name = _name(ext)
        per_rate = {}
        for rate, d in data.items():
            key = (rate, ext["components"])
            if key not in ubms:          # on the clean recordings, as train_ivector(ubm_components=K) does
                tic = time.perf_counter()
                frames = [arrays[0] for arrays in d.per_file]
                ubms[key] = GMMUBM(n_components=ext["components"], random_state=0).fit(frames).ubm_
                print(f"# dev UBM {key}: {time.perf_counter() - tic:.1f} s", flush=True)
            tic = time.perf_counter()
            segments, labels = d.sessions(ext["segment_s"], ext["augment"])
            system = IVectorSystem(rank=ext["rank"], max_iter=args.iterations, lda_dim=0, random_state=0)
            system.fit(ubms[key], segments, labels)
            system.train_labels_ = labels
            train_s = time.perf_counter() - tic
            per_rate[rate] = dev_eval(system, d, [v for v in backend_variants(args.quick)
                                                  if v["lda_dim"] < ext["rank"]])
            print(f"# {name} at {rate} Hz: {len(segments)} segments, T + back end {train_s:.1f} s, "
                  f"dev scoring {time.perf_counter() - tic - train_s:.1f} s", flush=True)
        for variant in per_rate[16000]:
            row = {**per_rate[16000][variant], **per_rate[8000][variant]}
            row["mean_eer_pct"] = round(float(np.mean([row[c]["eer_pct"] for c in CONDITIONS])), 2)
            results[f"{name}/{variant}"] = row
            print(f"{name:<24}{variant:<24}" + "".join(_cells(row[c]) for c in shown)
                  + f"{row['mean_eer_pct']:>10.2f}")
        sys.stdout.flush()
    best = min(results, key=lambda k: (results[k]["mean_eer_pct"], k))
    ext_name, variant = best.split("/")
    ext = next(e for e in extractors if _name(e) == ext_name)
    lda, scoring, enroll = variant.split("-")
    chosen = {**ext, "lda_dim": int(lda[3:]), "scoring": scoring, "enroll": enroll}
    print(f"# chosen on dev (lowest mean EER {results[best]['mean_eer_pct']} %): {json.dumps(chosen)}")
    return results, chosen


def _trained_as(model_dir: Path, chosen: dict, iterations: int) -> bool:
    """Whether ``model_dir`` already holds an i-vector system trained with exactly this setting."""
    from speakerid.store import load_model_file

    try:
        header, arrays = load_model_file(model_dir / "ivector.npz")
    except Exception:
        return False
    params = header.get("params", {})
    return (header.get("own_ubm") and header.get("noisy_copies") == chosen["augment"]
            and header.get("segment_s") == chosen["segment_s"] and params.get("max_iter") == iterations
            and params.get("rank") == chosen["rank"] and params.get("lda_dim") == chosen["lda_dim"]
            and len(arrays["ubm_weights"]) == chosen["components"])


def run_eval(args, chosen: dict, work: Path) -> dict:
    """The chosen setting through the product path, trained on the whole background, on the shared protocols."""
    protocols = Path(args.shared) / "protocols"
    background = protocols / "librispeech-background.csv"
    results = {}
    # train every model directory first: joblib's process pool can be left unusable by a scoring run
    for rate in sorted({rate for _, _, rate in EVAL.values()}, reverse=True):
        tic = time.perf_counter()
        if _trained_as(work / f"sr{rate}", chosen, args.iterations):
            print(f"# i-vector system at {rate} Hz: kept from an earlier run with the same setting")
            continue
        train_ivector(work / f"sr{rate}", background, feature_config=config_at(rate), rank=chosen["rank"],
                      lda_dim=chosen["lda_dim"], segment_s=chosen["segment_s"], n_augment=chosen["augment"],
                      max_iter=args.iterations, scoring=chosen["scoring"], enroll=chosen["enroll"],
                      n_jobs=args.jobs, ubm_components=chosen["components"])
        print(f"# i-vector system at {rate} Hz on the whole background: {time.perf_counter() - tic:.1f} s",
              flush=True)
    print(f"{'protocol':<18}{'system':<34}{'EER % [95 % CI]':>24}{'minDCF [95 % CI]':>22}   trials")
    for name, (enroll_csv, trials_csv, rate) in EVAL.items():
        model_dir = work / f"sr{rate}"
        trials = read_manifest(protocols / trials_csv, require_target=True)
        labels, groups = trials["target"].to_numpy(), groups_of(trials)
        results[name] = {}
        for scoring in ("cosine", "plda"):
            verifier = SpeakerVerifier(model_dir, backend="ivector", backend_params={"scoring": scoring})
            for speaker in verifier.speakers():
                verifier.remove(speaker)
            with warnings.catch_warnings():
                warnings.simplefilter("error")   # a data leak or bandwidth problem must not pass silently
                verifier.enroll_manifest(protocols / enroll_csv)
            scores = np.empty(len(trials))
            for path, rows in trials.groupby("path", sort=False):
                scores[trials.index.get_indexer(rows.index)] = verifier.score_frames(list(rows["speaker"]),
                                                                                     verifier.features(path))
            system = f"ivector {scoring}" + (" (chosen)" if scoring == chosen["scoring"] else "")
            row = figures(scores, labels, groups)
            results[name][system] = row
            print(f"{name:<18}{system:<34}{_cells(row)}   {counts(row)}", flush=True)
        # the batch scorer (speakerid score) with S-norm, the cohort being the background speakers
        out = work / name / "scores-snorm.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the cohort speakers trained T and PLDA: expected, not a test leak
            score_trials(model_dir, protocols / trials_csv, out, backend="ivector", norm="snorm", cohort=background,
                         backend_params={"scoring": chosen["scoring"]}, n_jobs=args.jobs)
        scored = read_manifest(out, require_target=True, check_files=False)
        system = f"ivector {chosen['scoring']} + s-norm"
        row = results[name][system] = figures(scored["score"].to_numpy(), scored["target"].to_numpy(),
                                              groups_of(scored))
        print(f"{name:<18}{system:<34}{_cells(row)}   {counts(row)}", flush=True)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    parser.add_argument("--dev-dir", default=None, help="dev protocol folder (built there when missing)")
    parser.add_argument("--components", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=10, help="T-matrix EM iterations")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="the base extractor and LDA 150 only")
    parser.add_argument("--skip-eval", action="store_true", help="development protocol only")
    parser.add_argument("--old-halves", action="store_true",
                        help="also the former same-recording dev condition (optimistic, not in the mean)")
    parser.add_argument("--work-dir", default=None, help="keep the evaluation model directories here")
    parser.add_argument("--chosen", default=None, metavar="JSON",
                        help="skip the dev runs and evaluate this setting (the '# chosen on dev' JSON)")
    args = parser.parse_args(argv)
    if not (Path(args.shared) / "protocols").is_dir():
        print(f"skipped: {args.shared}/protocols not found")
        return 0
    dev_dir = Path(args.dev_dir or Path(tempfile.gettempdir()) / "speakerid-devproto")
    build_dev(dev_dir, args.shared, old_halves=args.old_halves, jobs=args.jobs)
    tic = time.perf_counter()
    if args.chosen:
        dev, chosen = {}, json.loads(args.chosen)
    else:
        dev, chosen = run_dev(args, dev_dir)
    dev_s = time.perf_counter() - tic
    evaluation = {}
    if not args.skip_eval:
        work = Path(args.work_dir or tempfile.mkdtemp(prefix="speakerid-ivector-"))
        evaluation = run_eval(args, chosen, work)
    print(json.dumps({"bench": "eval_ivector", "components": args.components, "iterations": args.iterations,
                      "features": PINNED_FEATURES, "dev_seconds": round(dev_s, 1), "dev": dev, "chosen": chosen,
                      "eval": evaluation}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
