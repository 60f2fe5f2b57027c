"""The development suite: cross-utterance protocols in real conditions, scored for any model directory, every
figure with its speaker-bootstrap confidence interval.

Why: the shared evaluation protocols hold 70 target trials each (one trial = 1.4 EER points) and the old
development protocol of ``speakerid train`` cut both sides of a target trial from ONE recording. Here every target
trial pairs an enrollment and a test from *different recordings* of the speaker (``speakerid.evaluation.protocols``),
tests are degraded with real noise, music, babble, rooms and telephone channels (``speakerid.degrade``), and
every figure travels with its 95 % interval from a bootstrap over speakers (``speakerid.evaluation.bootstrap``).

The split (fixed, seed 0; see :func:`split`). Nothing here uses LibriSpeech test-other: it is evaluation only.

- speechocean762-dev, 80 speakers: 40 development speakers (10 of each group: girls, boys, women, men), 40 left
  for training (``split-train-speechocean762.csv``);
- Speech Commands, 155 speakers: 78 development speakers, 77 left for training (``split-train-speechcommands.csv``);
- LibriSpeech background, 223 speakers (one recording each: no cross-recording target trial is possible): training
  only, and the babble talkers of the suite;
- FSDD, 6 speakers: development only (the 8 kHz digits condition; six speakers is all the corpus has, so its
  intervals are wide).

Conditions (enrollment clean unless said; speechocean762 models: 3 utterances, 4 enrollment sets per speaker):

=================  ===============================================================================================
clean              speechocean762, full-length tests (median 3.5 s) from the speaker's other utterances
test-2s            the same, tests cropped to 2 s
noise-0/5/10       full-length tests + real noise (MUSAN, Speech Commands background) at 0 / 5 / 10 dB SNR
music-5            + real music at 5 dB;  ``babble-5``: + 3-7 talkers summed at 5 dB
reverb             tests convolved with the five real room responses; ``reverb-sim``: simulated shoebox rooms
telephone-16k      tests band-limited to 300-3400 Hz through mu-law at 8 kHz and written back at 16 kHz
telephone-8k       both sides through the telephone channel at 8 kHz
cross-impostors    the clean targets, and as non-targets only Speech Commands speakers (another corpus and
                   condition): the share of impostors with LLR >= 0 is the figure to read
test-1s            Speech Commands, 5 one-second words to enroll, 1-s words of the speaker as tests
digits-8k          FSDD (8 kHz): 20 digits to enroll (2 sets), tests from the other takes
=================  ===============================================================================================

Usage::

    python bench/dev_suite.py --model-dir M [--model-dir M2 ...] [--name N ...] [--work DIR] [--jobs 2]
                              [--conditions clean,test-2s,...] [--n-boot 1000] [--shared ../shared] [--norm snorm]

Protocols and degraded audio are built once into ``--work`` (kept; the same seed rebuilds them byte for byte).
For each model directory, every enrollment group is enrolled into a copy of it (the directory itself is not
touched) with ``speakerid enroll`` and every condition scored with ``speakerid score``, as a user would. A model
directory made by ``speakerid train`` gives calibrated LLRs (actDCF, Cllr and the impostor-acceptance share are
read from them); for any other directory only EER, minDCF and minCllr mean something, and the table says so.
Prints one table per model directory and ends with one JSON line of every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SEED = 0
N_SPEECHOCEAN_DEV_PER_GROUP = 10
SPEECHCOMMANDS_DEV_SHARE = 0.5


@dataclass(frozen=True)
class Condition:
    """One development condition: the corpus, the protocol builder's keyword arguments, the enrollment group."""

    name: str
    corpus: str                       # speechocean762 | speechcommands | fsdd
    group: str                        # conditions of one group share one enrollment (one copy of the model dir)
    build: dict = field(default_factory=dict)
    impostors_only: bool = False      # keep the impostor non-targets only (cross-condition)


_SO = {"enroll_utts": 3, "n_enroll_sets": 4, "nontarget_per_test": 40}
CONDITIONS = (
    Condition("clean", "speechocean762", "so", _SO),
    Condition("test-2s", "speechocean762", "so", {**_SO, "test_duration_s": 2.0}),
    Condition("noise-0", "speechocean762", "so", {**_SO, "test_condition": "noise@0"}),
    Condition("noise-5", "speechocean762", "so", {**_SO, "test_condition": "noise@5"}),
    Condition("noise-10", "speechocean762", "so", {**_SO, "test_condition": "noise@10"}),
    Condition("music-5", "speechocean762", "so", {**_SO, "test_condition": "music@5"}),
    Condition("babble-5", "speechocean762", "so", {**_SO, "test_condition": "babble@5"}),
    Condition("reverb", "speechocean762", "so", {**_SO, "test_condition": "reverb"}),
    Condition("reverb-sim", "speechocean762", "so", {**_SO, "test_condition": "reverb-sim"}),
    Condition("telephone-16k", "speechocean762", "so", {**_SO, "test_condition": "telephone-16k"}),
    Condition("telephone-8k", "speechocean762", "so-8k",
              {**_SO, "enroll_condition": "telephone", "test_condition": "telephone"}),
    Condition("cross-impostors", "speechocean762", "so",
              {**_SO, "nontarget_per_test": 0, "impostors": "speechcommands", "impostors_per_test": 20},
              impostors_only=True),
    Condition("test-1s", "speechcommands", "sc", {"enroll_utts": 5, "n_enroll_sets": 1, "tests_per_speaker": 25,
                                                  "nontarget_per_test": 40}),
    Condition("digits-8k", "fsdd", "fsdd", {"enroll_utts": 20, "n_enroll_sets": 2, "tests_per_speaker": 60}),
)
BY_NAME = {c.name: c for c in CONDITIONS}


# ------------------------------------------------------------------------------------------------ the split

def _manifest(shared: Path, name: str) -> pd.DataFrame:
    """A shared manifest with absolute paths."""
    csv = shared / "protocols" / name
    frame = pd.read_csv(csv, dtype=str)
    frame["path"] = [str((csv.parent / p).resolve()) for p in frame["path"]]
    return frame


def _fsdd(shared: Path) -> pd.DataFrame:
    files = sorted((shared / "data" / "fsdd").glob("*.wav"))
    return pd.DataFrame({"speaker": [f.stem.split("_")[1] for f in files], "path": [str(f) for f in files]})


def split(shared: Path) -> dict:
    """``{corpus: (dev manifest, train manifest)}``: which speakers the suite evaluates on and which are left for
    training. Seeded (:data:`SEED`) and independent of anything but the shared manifests."""
    rng = np.random.default_rng(SEED)
    so = _manifest(shared, "speechocean762-dev.csv")
    groups = pd.read_csv(shared / "protocols" / "speechocean762-dev-speakers.csv", dtype=str)
    groups["kind"] = groups["gender"] + "-" + groups["group"]
    so_dev = []
    for _, rows in sorted(groups.groupby("kind")):
        so_dev += rng.choice(sorted(rows["speaker"]), N_SPEECHOCEAN_DEV_PER_GROUP, replace=False).tolist()
    sc = _manifest(shared, "speechcommands.csv")
    sc_speakers = sorted(sc["speaker"].unique())
    sc_dev = rng.choice(sc_speakers, int(round(SPEECHCOMMANDS_DEV_SHARE * len(sc_speakers))), replace=False)
    fsdd = _fsdd(shared)
    out = {}
    for corpus, frame, dev in (("speechocean762", so, set(so_dev)), ("speechcommands", sc, set(sc_dev)),
                               ("fsdd", fsdd, set(fsdd["speaker"]))):
        is_dev = frame["speaker"].isin(dev)
        out[corpus] = (frame[is_dev].reset_index(drop=True), frame[~is_dev].reset_index(drop=True))
    return out


# ------------------------------------------------------------------------------------------------ building

def build(shared: Path, work: Path, conditions, jobs: int = 1, say=print) -> dict:
    """Build (or reuse) every condition's protocol under ``work/protocols``; ``{name: (enroll_csv, trials_csv,
    info)}``."""
    from speakerid.degrade import NoiseBank
    from speakerid.evaluation.protocols import build_protocol

    parts = split(shared)
    work.mkdir(parents=True, exist_ok=True)
    for corpus, (dev, train) in parts.items():
        dev.to_csv(work / f"split-dev-{corpus}.csv", index=False)
        train.to_csv(work / f"split-train-{corpus}.csv", index=False)
    used = {c.corpus for c in conditions} | {c.build["impostors"] for c in conditions if "impostors" in c.build}
    for corpus in sorted(used):
        dev, train = parts[corpus]
        refused = refused_files(dev, work / f"refused-{corpus}.csv", 8000 if corpus == "fsdd" else 16000, jobs, say)
        parts[corpus] = (dev[~dev["path"].isin(refused)].reset_index(drop=True), train)
    babble = _manifest(shared, "librispeech-background.csv")["path"].tolist()
    bank = NoiseBank.from_csv(shared / "protocols" / "noise.csv").with_babble_sources(babble)
    built = {}
    for cond in conditions:
        out = work / "protocols" / cond.name
        done = out / "built.json"
        kwargs = dict(cond.build)
        if isinstance(kwargs.get("impostors"), str):
            kwargs["impostors"] = parts[kwargs["impostors"]][0]
        key = {k: (f"<{len(v)} files>" if isinstance(v, pd.DataFrame) else v) for k, v in kwargs.items()}
        if done.is_file() and json.loads(done.read_text()).get("build") == key:
            info = json.loads(done.read_text())
        else:
            start = time.perf_counter()
            say(f"building {cond.name} ...")
            if cond.corpus == "fsdd":
                kwargs.setdefault("sample_rate", 8000)
            proto = build_protocol(parts[cond.corpus][0], out, name=cond.name, bank=bank, seed=SEED, n_jobs=jobs,
                                   **kwargs)
            if cond.impostors_only:
                _keep_impostor_nontargets(proto.trials_csv)
            info = {"build": key, "seconds": round(time.perf_counter() - start, 1),
                    "enroll_csv": proto.enroll_csv.name, "trials_csv": proto.trials_csv.name}
            done.write_text(json.dumps(info, indent=1))
        built[cond.name] = (out / info["enroll_csv"], out / info["trials_csv"], info)
    return built


def refused_files(frame: pd.DataFrame, cache: Path, rate: int, jobs: int, say) -> set:
    """The files speakerid's own file -> frames path refuses (no speech, a tone, too little speech: what every
    command would refuse), cached in ``cache`` with the reason. They are left out of the protocols: an enrollment
    holding one would fail as a whole. How many were left out is part of the suite's output."""
    from concurrent.futures import ThreadPoolExecutor

    from speakerid.exceptions import AudioError
    from speakerid.features import FeatureConfig
    from speakerid.features.pipeline import file_features

    if cache.is_file():
        return set(pd.read_csv(cache, dtype=str)["path"])
    config = FeatureConfig(sample_rate=rate)

    def reason(path):
        try:
            file_features(path, config)
        except AudioError as exc:
            return " ".join(str(exc).split())
        return None

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        reasons = list(pool.map(reason, frame["path"]))
    refused = pd.DataFrame({"path": frame["path"], "reason": reasons}).dropna()
    refused.to_csv(cache, index=False)
    say(f"{cache.stem}: {len(refused)} of {len(frame)} files refused by the front end, left out")
    return set(refused["path"])


def _keep_impostor_nontargets(trials_csv: Path) -> None:
    trials = pd.read_csv(trials_csv, dtype=str, keep_default_na=False)
    enrolled = set(trials["enroll_speaker"])
    keep = (trials["target"] == "1") | ~trials["test_speaker"].isin(enrolled)
    trials[keep].to_csv(trials_csv, index=False)


# ------------------------------------------------------------------------------------------------ scoring

def _speakerid(*args) -> None:
    cmd = [sys.executable, "-m", "speakerid", *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")


def _copy_model_dir(model_dir: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(model_dir, target, ignore=shutil.ignore_patterns("audio", "*.lock", ".lock"))


def is_calibrated(model_dir: Path) -> bool:
    """Whether the directory's scores are calibrated LLRs (made by ``speakerid train``)."""
    return (model_dir / "fusion.json").is_file()


def check_disjoint(model_dir: Path, work: Path) -> int:
    """Refuse a model directory whose background saw a development speaker's recording.

    What a model directory keeps of its training data is its S-norm cohort (``cohort.csv``: up to 100 of the
    background speakers' files, in every system folder); a background that shares a recording with the
    development speakers shows there in all but unlucky draws. Returns the number of cohort files checked."""
    dev = set()
    for split_csv in work.glob("split-dev-*.csv"):
        dev |= {str(Path(p).resolve()) for p in pd.read_csv(split_csv, dtype=str)["path"]}
    checked = 0
    for cohort in sorted(model_dir.rglob("cohort.csv")):
        paths = {str(Path(p).resolve()) for p in pd.read_csv(cohort, dtype=str)["path"]}
        checked += len(paths)
        seen = sorted(paths & dev)
        if seen:
            raise SystemExit(f"{model_dir}: its background ({cohort.relative_to(model_dir)}) holds {len(seen)} "
                             f"recording(s) of the suite's development speakers, e.g. {seen[0]}: train on the "
                             f"split-train-*.csv manifests of {work}, not on the development speakers")
    return checked


def run(model_dir: Path, name: str, built: dict, work: Path, jobs: int, n_boot: int, say=print,
        norm: str | None = None) -> dict:
    """Enroll and score every condition for one model directory; ``{condition: figures}``."""
    from speakerid.evaluation.bootstrap import bootstrap_metrics

    if not check_disjoint(model_dir, work):
        say(f"{name}: warning: no cohort.csv in {model_dir}: cannot check that it was trained on other speakers")
    llr = is_calibrated(model_dir)
    base = work / "runs" / name
    base.mkdir(parents=True, exist_ok=True)
    enrolled = {}
    results = {}
    for cond_name, (enroll_csv, trials_csv, _) in built.items():
        cond = BY_NAME[cond_name]
        model = base / f"model-{cond.group}"
        if cond.group not in enrolled:
            start = time.perf_counter()
            _copy_model_dir(model_dir, model)
            _speakerid("enroll", "--manifest", enroll_csv, "--model-dir", model, "--jobs", jobs)
            enrolled[cond.group] = (enroll_csv.read_bytes(), time.perf_counter() - start)
            say(f"{name}: enrolled group {cond.group} in {enrolled[cond.group][1]:.1f} s")
        elif enrolled[cond.group][0] != enroll_csv.read_bytes():
            raise SystemExit(f"{cond_name}: its enrollment differs from the other conditions of group {cond.group}")
        start = time.perf_counter()
        scores_csv = base / f"{cond_name}-scores.csv"
        _speakerid("score", "--model-dir", model, "--trials", trials_csv, "--out", scores_csv, "--jobs", jobs,
                   *(("--norm", norm) if norm else ()))
        seconds = time.perf_counter() - start
        table = pd.read_csv(scores_csv, dtype={"speaker": str, "enroll_speaker": str}, keep_default_na=False)
        ok = pd.to_numeric(table["score"], errors="coerce").notna().to_numpy() & (table["error"] == "").to_numpy()
        figures = bootstrap_metrics(table.loc[ok, "score"].astype(float).to_numpy(),
                                    table.loc[ok, "target"].astype(int).to_numpy(),
                                    table.loc[ok, "enroll_speaker"].to_numpy(), p_targets=(0.01, 0.1),
                                    n_boot=n_boot, random_state=SEED, llr=llr)
        figures["n_unscored"] = int((~ok).sum())
        figures["score_seconds"] = round(seconds, 1)
        results[cond_name] = figures
        say(f"{name}: {cond_name}: " + _row(figures, llr))
    return {"model_dir": str(model_dir), "calibrated": llr, "conditions": results,
            "enroll_seconds": {g: round(s, 1) for g, (_, s) in enrolled.items()}}


# ------------------------------------------------------------------------------------------------ reporting

def _ci(fig: dict, scale: float = 1.0, digits: int = 2) -> str:
    return f"{fig['value'] * scale:.{digits}f} [{fig['low'] * scale:.{digits}f}, {fig['high'] * scale:.{digits}f}]"


def _row(f: dict, llr: bool) -> str:
    text = (f"EER {_ci(f['eer'], 100)} %, minDCF0.01 {_ci(f['min_dcf@0.01'], digits=3)}, "
            f"{f['n_groups']} spk, {f['n_target']} tar / {f['n_nontarget']} non")
    if llr:
        text += (f", actDCF0.01 {_ci(f['act_dcf@0.01'], digits=3)}, Cllr {_ci(f['cllr'], digits=3)}, "
                 f"non-targets LLR>=0 {_ci(f['nontarget_accept'], 100)} %")
    return text


def table(result: dict) -> str:
    """A Markdown table of one model directory's figures (value [95 % interval])."""
    llr = result["calibrated"]
    cols = ["condition", "spk", "tar / non", "EER %", "minDCF 0.01", "minDCF 0.1", "minCllr"]
    if llr:
        cols += ["actDCF 0.01", "actDCF 0.1", "Cllr", "non-tar LLR>=0 %"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for cond, f in result["conditions"].items():
        cells = [cond, str(f["n_groups"]), f"{f['n_target']} / {f['n_nontarget']}", _ci(f["eer"], 100),
                 _ci(f["min_dcf@0.01"], digits=3), _ci(f["min_dcf@0.1"], digits=3), _ci(f["min_cllr"], digits=3)]
        if llr:
            cells += [_ci(f["act_dcf@0.01"], digits=3), _ci(f["act_dcf@0.1"], digits=3), _ci(f["cllr"], digits=3),
                      _ci(f["nontarget_accept"], 100)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", action="append", required=True, type=Path,
                        help="model directory to evaluate (repeat for several; it is copied, never changed)")
    parser.add_argument("--name", action="append", default=None,
                        help="name of each model directory in the tables (default: its folder name)")
    parser.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared",
                        help="the shared data folder (default: ../shared beside the repository)")
    parser.add_argument("--work", type=Path, default=HERE.parent / "data" / "dev-suite",
                        help="where protocols, degraded audio, copies and scores go (kept; default data/dev-suite)")
    parser.add_argument("--conditions", default=",".join(c.name for c in CONDITIONS),
                        help=f"comma-separated conditions (default all: {', '.join(BY_NAME)})")
    parser.add_argument("--jobs", type=int, default=2, help="workers of building, enroll and score (default 2)")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the intervals (default 1000)")
    parser.add_argument("--build-only", action="store_true", help="build the protocols and stop")
    parser.add_argument("--norm", default=None,
                        help="score normalisation passed to 'speakerid score' (expert directories; default: its own)")
    args = parser.parse_args(argv)
    if not (args.shared / "protocols" / "speechocean762-dev.csv").is_file():
        print(f"skipped: {args.shared}/protocols/speechocean762-dev.csv not found (give --shared)")
        return 0
    wanted = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in BY_NAME]
    if unknown:
        parser.error(f"unknown condition(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    names = args.name or [d.name for d in args.model_dir]
    if len(names) != len(args.model_dir):
        parser.error("give one --name per --model-dir")
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    start = time.perf_counter()
    built = build(args.shared, args.work, [BY_NAME[c] for c in wanted], args.jobs, say)
    build_s = time.perf_counter() - start
    refused = {p.stem.removeprefix("refused-"): len(pd.read_csv(p)) for p in sorted(args.work.glob("refused-*.csv"))}
    out = {"suite": "speakerid dev suite", "seed": SEED, "build_seconds": round(build_s, 1), "refused_files": refused,
           "load": os.getloadavg(), "cpus": os.cpu_count(), "systems": {}}
    if not args.build_only:
        for model_dir, name in zip(args.model_dir, names):
            start = time.perf_counter()
            result = run(model_dir.resolve(), name, built, args.work, args.jobs, args.n_boot, say, norm=args.norm)
            result["seconds"] = round(time.perf_counter() - start, 1)
            out["systems"][name] = result
            print(f"\n## {name} ({'calibrated LLRs' if result['calibrated'] else 'raw scores'}; "
                  f"{result['seconds']:.0f} s)\n")
            print(table(result))
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
