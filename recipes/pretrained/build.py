"""Rebuild the model shipped in ``speakerid/pretrained/`` from ``../shared``: train, pack, measure, install.

Stages (``--stage N`` starts at stage N; each stage's output stays in ``--work``, so a run resumes):

1. manifest: every shared training file (LibriSpeech background + the development suite's training speakers of
   speechocean762 and Speech Commands: ``bench/bench_train_all.py``'s list; test-other, FSDD and the suite's
   development speakers are never used) -> ``WORK/all-shared.csv``;
2. train: ``speakerid train`` with the options of ``recipe.json`` -> ``WORK/model`` (about 12 minutes on 2 cores);
3. pack: :func:`speakerid.pretrained.pack.pack_model` -> ``WORK/packed``, its ``fusion.json`` given a
   ``pretrained`` block: the model's name, the SHA-256 of ``recipe.json``, the package version, the build hash;
4. measure: ``bench/dev_suite.py`` on ``WORK/packed`` (about 13 minutes); its figures go into the ``pretrained``
   block and the card's figures table;
5. install: ``WORK/packed`` replaces ``speakerid/pretrained/default`` and the card is rewritten.

Usage::

    python recipes/pretrained/build.py [--shared ../shared] [--work data/pretrained-build] [--stage N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from speakerid.pretrained import HERE as PACKAGE_DIR  # noqa: E402
from speakerid.pretrained.card import card_with_figures  # noqa: E402
from speakerid.pretrained.pack import build_hash, pack_model  # noqa: E402

RECIPE = HERE / "recipe.json"
_KEEP = ("eer", "min_dcf@0.01", "min_dcf@0.1", "act_dcf@0.01", "act_dcf@0.1", "cllr", "min_cllr", "nontarget_accept")


def recipe_hash() -> str:
    """SHA-256 of ``recipe.json`` (stored in the shipped model's header; a test compares them)."""
    return hashlib.sha256(RECIPE.read_bytes()).hexdigest()


def _say(text: str) -> None:
    print(f"build: {text}", flush=True)


def stage_manifest(shared: Path, work: Path) -> None:
    from bench_train_all import all_shared_background

    background = all_shared_background(shared)
    background.to_csv(work / "all-shared.csv", index=False)
    _say(f"1 manifest: {len(background)} files, {background['speaker'].nunique()} speakers")


def stage_train(shared: Path, work: Path, recipe: dict) -> None:
    command = list(recipe["train"]["command"])
    noise = command.index("--noise-csv") + 1
    command[noise] = str(shared / command[noise])
    if not recipe["train"]["narrowband"]:
        command.append("--no-narrowband")
    command += ["--manifest", str(work / "all-shared.csv"), "--model-dir", str(work / "model"), "--force"]
    _say(f"2 train: speakerid {' '.join(command)}")
    subprocess.run([sys.executable, "-m", "speakerid", *command], check=True)


def _write_info(model_dir: Path, info: dict) -> None:
    path = model_dir / "fusion.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["pretrained"] = info
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def stage_pack(shared: Path, work: Path, recipe: dict) -> None:
    from speakerid import __version__

    shutil.rmtree(work / "packed", ignore_errors=True)
    sizes = pack_model(work / "model", work / "packed", max_frames=recipe["pack"]["max_frames"], data_root=shared)
    info = {"name": recipe["name"], "recipe_sha256": recipe_hash(), "speakerid_version": __version__,
            "build": build_hash(work / "packed")}
    _write_info(work / "packed", info)
    _say(f"3 pack: {sum(sizes.values()) / 1e6:.1f} MB in {len(sizes)} files, build {info['build'][:12]}")


def stage_measure(shared: Path, work: Path, recipe: dict, suite_log=None) -> None:
    suite = recipe["dev_suite"]
    info = json.loads((work / "packed" / "fusion.json").read_text(encoding="utf-8"))["pretrained"]
    if suite_log is None:
        command = [sys.executable, str(REPO / "bench" / "dev_suite.py"), "--model-dir", str(work / "packed"),
                   "--name", recipe["name"], "--shared", str(shared), "--jobs", str(suite["jobs"]),
                   "--n-boot", str(suite["n_boot"])]
        _say(f"4 measure: {' '.join(command[1:])}")
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"build: 4 measure failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        out = done.stdout
        (work / "dev-suite.log").write_text(out, encoding="utf-8")
        result = json.loads(out.strip().splitlines()[-1])
    else:                  # a run already made on a directory of the same content
        result = json.loads(Path(suite_log).read_text(encoding="utf-8").strip().splitlines()[-1])
        (name, system), = result["systems"].items()
        if build_hash(system["model_dir"]) != info["build"]:
            raise SystemExit(f"{suite_log} measured {system['model_dir']}, whose content is not this build's")
        result["systems"] = {recipe["name"]: system}
        _say(f"4 measure: the figures of {suite_log} (the same build, measured as {name!r})")
    figures = dev_suite_figures(result, recipe["name"])
    _write_info(work / "packed", {**info, "dev_suite": figures})
    _say(f"4 measure: {len(figures['conditions'])} conditions")


def dev_suite_figures(result: dict, name: str) -> dict:
    """The figures of one system of ``bench/dev_suite.py``'s JSON line, as kept in the shipped header."""
    system = result["systems"][name]
    conditions = {}
    for cond, f in system["conditions"].items():
        kept = {k: {"value": f[k]["value"], "low": f[k]["low"], "high": f[k]["high"]} for k in _KEEP if k in f}
        kept.update({k: f[k] for k in ("n_groups", "n_target", "n_nontarget", "n_unscored")})
        conditions[cond] = kept
    method = next(iter(system["conditions"].values()))["method"]
    return {"conditions": conditions, "interval": method, "seed": result["seed"], "cpus": result["cpus"],
            "command": "python bench/dev_suite.py --model-dir MODEL --jobs 2"}


def stage_install(work: Path) -> None:
    target = PACKAGE_DIR / "default"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(work / "packed", target)
    info = json.loads((target / "fusion.json").read_text(encoding="utf-8"))["pretrained"]
    card = PACKAGE_DIR / "MODEL_CARD.md"
    card.write_text(card_with_figures(card.read_text(encoding="utf-8"), info), encoding="utf-8")
    _say(f"5 install: {target} and {card}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--work", type=Path, default=REPO / "data" / "pretrained-build")
    parser.add_argument("--stage", type=int, default=1, choices=range(1, 6), help="first stage to run (default 1)")
    parser.add_argument("--last-stage", type=int, default=5, choices=range(1, 6), help="last stage (default 5)")
    parser.add_argument("--suite-log", type=Path, default=None,
                        help="stage 4: take the figures of this bench/dev_suite.py output (its last line), made on "
                             "a directory with the same build hash, instead of running the suite again")
    args = parser.parse_args(argv)
    shared, work = args.shared.resolve(), args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    recipe = json.loads(RECIPE.read_text(encoding="utf-8"))
    stages = {1: lambda: stage_manifest(shared, work), 2: lambda: stage_train(shared, work, recipe),
              3: lambda: stage_pack(shared, work, recipe), 4: lambda: stage_measure(shared, work, recipe, args.suite_log),
              5: lambda: stage_install(work)}
    for number in range(args.stage, args.last_stage + 1):
        stages[number]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
