"""Front-end ablation of the GMM-UBM on the development protocol, then the chosen front end on the evaluation sets.

Every row is a front-end configuration (feature warping, sliding CMVN, RASTA, the two-Gaussian VAD, spectral
subtraction / Wiener denoising, noise-augmented UBM training and enrollment) changed from the baseline (the
front end of the issue-9 measurements: energy VAD, per-utterance CMVN). Each is measured on the *development*
protocol of ``bench/dev_protocol.py`` -- UBM on its 223 ``bg-train`` LibriSpeech background speakers;
cross-recording trials (enrollment and test from different recordings) of speakers of other corpora in four
conditions: speechocean762 clean, short (2-s tests), noisy (2-s tests + real noise at 5 dB) and FSDD 8k -- as EER %
and minDCF(P_target=0.01), each with its 95 % interval from a bootstrap over the claimed speakers
(``bench/_intervals.py``); the trial and speaker counts of each condition are printed once (every row scores the
same trials). A dev folder built with ``--old-halves`` also has the former same-recording condition (``halves``,
optimistic): it is shown as a column and left out of every mean.

The best combination is then chosen **on dev only** by forward selection: starting from the baseline, each step
measures every remaining option added to the current set (one option per group: normalisation, denoising,
augmentation, ...) and
keeps the best if it lowers the mean dev EER over the four conditions (ties: mean minDCF; the means are selection
criteria, without intervals); at most
``MAX_STEPS`` steps. Finally the baseline and the chosen front end run on the shared evaluation
protocols (test-other full/short/noisy, FSDD) through :class:`speakerid.SpeakerVerifier` with the full
LibriSpeech background, as ``bench/eval_shared.py`` does -- for the record, never for choosing (the FSDD
evaluation speakers are the dev 8k speakers, other files: FSDD is not speaker-independent of the choice).

GMM-UBM settings are the toolkit defaults (K=256, MAP r=16 on means, top-5 scoring, 10 EM iterations, seed 0).
Development features are cached in memory per (configuration, file, noise copy) for the run.

Usage: ``python bench/frontend_ablation.py --dev DEVDIR [--shared ../shared] [--components 256] [--skip-eval]``
(``DEVDIR`` from ``python bench/dev_protocol.py --out DEVDIR``). Ends with one JSON line of all figures (``eer``,
``dcf`` as before; ``eer_ci``, ``dcf_ci`` and the counts beside them).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _intervals import count_trials, counts, fmt, groups_of  # noqa: E402
from _intervals import figures as interval_figures  # noqa: E402
from dev_protocol import OLD_HALVES  # noqa: E402
from dev_protocol import VERSION as DEV_VERSION  # noqa: E402

from speakerid.data.manifests import read_manifest  # noqa: E402
from speakerid.features import FeatureConfig, extract_file  # noqa: E402
from speakerid.features.pipeline import file_sessions  # noqa: E402
from speakerid.models.gmm_ubm import GMMUBM  # noqa: E402
from speakerid.verifier import SpeakerVerifier  # noqa: E402

DEV_CONDITIONS = ("clean", "short", "noisy", "8k")
EVAL_PROTOCOLS = {
    "test-other": ("librispeech-test-other-enroll.csv", "librispeech-test-other-trials.csv", 16000),
    "short": ("librispeech-test-other-short-enroll.csv", "librispeech-test-other-short-trials.csv", 16000),
    "noisy": ("librispeech-test-other-noisy-enroll.csv", "librispeech-test-other-noisy-trials.csv", 16000),
    "fsdd": ("fsdd-enroll.csv", "fsdd-trials.csv", 8000),
}
#: The front end measured in issue 9 (energy VAD, per-utterance CMVN, nothing else).
BASELINE = {"vad": "energy", "cmvn": "utterance", "rasta": False, "denoise": "none"}
#: Single changes from the baseline: (row name, group, feature changes, UBM noisy copies, enrollment noisy
#: copies). A combination takes at most one option per group.
OPTIONS = [
    ("+warping", "cmvn", {"cmvn": "warp"}, 0, 0),
    ("+sliding CMVN", "cmvn", {"cmvn": "sliding"}, 0, 0),
    ("+RASTA", "rasta", {"rasta": True}, 0, 0),
    ("+VAD gmm", "vad", {"vad": "gmm"}, 0, 0),
    ("+specsub", "denoise", {"denoise": "specsub"}, 0, 0),
    ("+wiener", "denoise", {"denoise": "wiener"}, 0, 0),
    ("+aug UBM x2", "augment", {}, 2, 0),
    ("+aug enroll x2", "augment", {}, 0, 2),
    ("+aug UBM & enroll x1", "augment", {}, 1, 1),
    ("+aug UBM & enroll x2", "augment", {}, 2, 2),
    ("+aug UBM & enroll x4", "augment", {}, 4, 4),
]
#: Forward-selection steps at most (each step measures every remaining option added to the current set).
MAX_STEPS = 3

_CACHE: dict = {}


def _features(path, config, n_augment=0, random_state=0, cache=True) -> list:
    """Frames of a file (and of its noisy copies), cached per configuration and noise seed when ``cache``."""
    key = (config.hash(), str(path), n_augment, tuple(np.atleast_1d(random_state).tolist()) if n_augment else None)
    if key in _CACHE:
        return _CACHE[key]
    frames = (file_sessions(path, config, n_augment, random_state)[0] if n_augment
              else [extract_file(path, config)])
    if cache:
        _CACHE[key] = frames
    return frames


def _figures(scores, labels, groups) -> dict:
    """EER % (``eer``) and minDCF(0.01) (``dcf``) with their speaker-bootstrap intervals and counts."""
    f = interval_figures(scores, labels, groups)
    return {"eer": f["eer_pct"], "eer_ci": f["eer_pct_ci"], "dcf": f["min_dcf"], "dcf_ci": f["min_dcf_ci"],
            **{k: f[k] for k in ("n_speakers", "n_target", "n_nontarget")}}


def _dev_conditions(dev) -> tuple:
    """The dev folder's conditions: :data:`DEV_CONDITIONS` and, when it was built with ``--old-halves``, ``halves``
    (reported, never in a mean)."""
    return DEV_CONDITIONS + ((OLD_HALVES,) if (Path(dev) / f"dev-{OLD_HALVES}-trials.csv").is_file() else ())


def _dev_condition(ubm, config, dev, condition, enroll_copies) -> dict:
    enroll = read_manifest(dev / f"dev-{condition}-enroll.csv")
    trials = read_manifest(dev / f"dev-{condition}-trials.csv", require_target=True)
    models = {}
    for speaker, paths in enroll.groupby("speaker", sort=True)["path"]:
        seed = zlib.crc32(str(speaker).encode("utf-8"))  # as SpeakerVerifier.enroll seeds it
        frames = [f for i, p in enumerate(paths) for f in _features(p, config, enroll_copies, [seed, i])]
        models[speaker] = ubm.enroll(frames)
    scores = np.empty(len(trials))
    for path, rows in trials.groupby("path", sort=False):
        frames = _features(path, config)[0]
        scores[trials.index.get_indexer(rows.index)] = ubm.score([models[s] for s in rows["speaker"]], frames)
    return _figures(scores, trials["target"].to_numpy(), groups_of(trials))


def run_dev(changes, ubm_copies, enroll_copies, dev, components) -> dict:
    """Dev EER/minDCF of one front end in every condition (a 16 kHz and an 8 kHz UBM on bg-train)."""
    background = list(read_manifest(dev / "bg-train.csv")["path"])
    config16 = FeatureConfig(**{**BASELINE, **changes})
    out, ubms = {}, {}
    for condition in _dev_conditions(dev):
        config = config16.replace(sample_rate=8000) if condition == "8k" else config16
        if config.sample_rate not in ubms:
            frames = [f for i, p in enumerate(background)  # not cached: ~40-120 MB per front end
                      for f in _features(p, config, ubm_copies, [0, i], cache=False)]
            ubms[config.sample_rate] = GMMUBM(n_components=components, random_state=0).fit(frames)
        out[condition] = _dev_condition(ubms[config.sample_rate], config, dev, condition, enroll_copies)
    out["mean_eer"] = round(float(np.mean([out[c]["eer"] for c in DEV_CONDITIONS])), 3)
    out["mean_dcf"] = round(float(np.mean([out[c]["dcf"] for c in DEV_CONDITIONS])), 4)
    return out


def _print_row(name, row) -> None:
    cells = "".join(f"{fmt(f, 'eer', 2):>24}{fmt(f, 'dcf', 3):>22}" for f in row.values() if isinstance(f, dict))
    mean = f"{row['mean_eer']:>10.2f}" if "mean_eer" in row else ""
    print(f"{name:<44}{cells}{mean}", flush=True)


def _print_header(title, names) -> None:
    print(f"{title:<44}" + "".join(f"{c + ' EER':>24}{'minDCF':>22}" for c in names)
          + (f"{'mean EER':>10}" if title == "configuration" else ""), flush=True)


def choose(rows, dev, components) -> tuple:
    """Forward selection on dev; returns (feature changes, UBM copies, enrollment copies, option names)."""
    options = {name: (changes, u, e) for name, _, changes, u, e in OPTIONS}
    groups = {name: group for name, group, *_ in OPTIONS}
    current, best = [], rows["baseline"]
    for _ in range(MAX_STEPS):
        candidates = {}
        for name in options:
            if groups[name] in {groups[c] for c in current}:
                continue  # one option per group
            label = " ".join(current + [name])
            if label not in rows:
                rows[label] = run_dev(*_combine([options[c] for c in current + [name]]), dev, components)
                _print_row(label, rows[label])
            candidates[name] = rows[label]
        if not candidates:
            break
        name = min(candidates, key=lambda n: _key(candidates[n]))
        if _key(candidates[name]) >= _key(best):
            break
        current, best = current + [name], candidates[name]
    return (*_combine([options[c] for c in current]), current)


def _combine(settings) -> tuple:
    changes, ubm_copies, enroll_copies = {}, 0, 0
    for extra, u, e in settings:
        changes, ubm_copies, enroll_copies = {**changes, **extra}, max(ubm_copies, u), max(enroll_copies, e)
    return changes, ubm_copies, enroll_copies


def _key(row) -> tuple:
    return (row["mean_eer"], row["mean_dcf"])


def run_eval(changes, ubm_copies, enroll_copies, shared, components, work) -> dict:
    """EER/minDCF on the shared evaluation protocols through SpeakerVerifier (full LibriSpeech background)."""
    protocols = Path(shared) / "protocols"
    background = protocols / "librispeech-background.csv"
    out = {}
    for name, (enroll_csv, trials_csv, rate) in EVAL_PROTOCOLS.items():
        model_dir = Path(work) / f"sr{rate}"
        verifier = SpeakerVerifier(model_dir, feature_config=FeatureConfig(**{**BASELINE, **changes},
                                                                           sample_rate=rate))
        if not (model_dir / "ubm.npz").is_file():
            verifier.train(background, n_components=components, n_augment=ubm_copies)
        for speaker in verifier.speakers():
            verifier.remove(speaker)
        enroll = read_manifest(protocols / enroll_csv)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a data leak or bandwidth problem must not pass silently
            for speaker, paths in enroll.groupby("speaker", sort=True)["path"]:
                verifier.enroll(speaker, list(paths), n_augment=enroll_copies)
        trials = read_manifest(protocols / trials_csv, require_target=True)
        scores = np.empty(len(trials))
        for path, rows in trials.groupby("path", sort=False):
            scores[trials.index.get_indexer(rows.index)] = verifier.score_frames(list(rows["speaker"]),
                                                                                 verifier.features(path))
        out[name] = _figures(scores, trials["target"].to_numpy(), groups_of(trials))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", required=True, help="folder written by bench/dev_protocol.py --out")
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    parser.add_argument("--components", type=int, default=256)
    parser.add_argument("--skip-eval", action="store_true", help="dev only")
    args = parser.parse_args(argv)
    dev = Path(args.dev)
    if not (dev / "bg-train.csv").is_file():
        print(f"skipped: {dev}/bg-train.csv not found (run bench/dev_protocol.py --out {dev})")
        return 0
    stamp = dev / "dev-protocol.json"
    if not stamp.is_file() or json.loads(stamp.read_text()).get("version") != DEV_VERSION:
        raise SystemExit(f"{dev} holds the former same-recording dev protocol: rebuild it with "
                         f"python bench/dev_protocol.py --out {dev}")
    start = time.perf_counter()
    print(f"# dev protocol {dev}, GMM-UBM K={args.components}; EER % and minDCF(0.01) [95 % interval, bootstrap "
          "over the claimed speakers]; mean = mean dev EER over " + ", ".join(DEV_CONDITIONS))
    for condition in _dev_conditions(dev):
        trials = read_manifest(dev / f"dev-{condition}-trials.csv", require_target=True, check_files=False)
        print(f"# dev {condition}: {counts(count_trials(trials['target'], groups_of(trials)))}")
    _print_header("configuration", _dev_conditions(dev))
    rows = {"baseline": run_dev({}, 0, 0, dev, args.components)}
    _print_row("baseline", rows["baseline"])
    for name, _, changes, ubm_copies, enroll_copies in OPTIONS:
        rows[name] = run_dev(changes, ubm_copies, enroll_copies, dev, args.components)
        _print_row(name, rows[name])
    print("# forward selection (rows: the options added to the baseline, in order)")
    changes, ubm_copies, enroll_copies, picked = choose(rows, dev, args.components)
    chosen = {"features": changes, "ubm_augment": ubm_copies, "enroll_augment": enroll_copies, "options": picked}
    print(f"# chosen on dev: {' '.join(picked) or 'baseline'} -> {json.dumps(chosen)}")
    evaluation = {}
    if not args.skip_eval and (Path(args.shared) / "protocols").is_dir():
        _print_header("evaluation (shared protocols)", EVAL_PROTOCOLS)
        for label, setting in (("baseline", ({}, 0, 0)), ("chosen", (changes, ubm_copies, enroll_copies))):
            with tempfile.TemporaryDirectory(prefix="speakerid-ablation-") as work:
                evaluation[label] = run_eval(*setting, args.shared, args.components, work)
            _print_row(label, evaluation[label])
        first = evaluation["baseline"]
        print("# evaluation trials: " + "; ".join(f"{p} {counts(first[p])}" for p in EVAL_PROTOCOLS))
    print(json.dumps({"bench": "frontend_ablation", "components": args.components, "dev": rows, "chosen": chosen,
                      "evaluation": evaluation, "seconds": round(time.perf_counter() - start, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
