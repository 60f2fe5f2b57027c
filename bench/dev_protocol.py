"""The development protocol of the expert benches (``bench_systems``, ``eval_ivector``, ``frontend_ablation``):
cross-recording conditions on development speakers that no background model is trained on.

The shared protocols (LibriSpeech test-other full/short/noisy, FSDD) are *evaluation* sets: model choice, option
choice, calibration and fusion weights must not look at them. The background models are trained on all 223
LibriSpeech background speakers (``bg-train``); the development speakers come from other corpora, the fixed split of
``bench/dev_suite.py`` (:func:`dev_suite.split`, seed 0). Every target trial pairs an enrollment and a test from
*different recordings* of the speaker (:func:`speakerid.evaluation.protocols.build_protocol`, seed 0; one enrollment
model per speaker; every test tried against every other dev speaker's model):

``clean``  speechocean762, its 40 development speakers (10 girls, 10 boys, 10 women, 10 men): enroll on 3
           utterances, the speaker's 7 other utterances are the tests (full length, median 3.5 s);
``short``  the same enrollment, each test cropped to 2 s (a seeded offset with speech in it);
``noisy``  the ``short`` crops mixed with a *real* noise recording at 5 dB SNR measured on the speech frames
           (``noise@5``: MUSAN free-sound / sound-bible and Speech Commands background noises from
           ``../shared/protocols/noise.csv``), not the evaluation's synthetic pink noise (which is also the noise of
           the training augmentation): tuning on exactly the evaluation's noise would flatter it;
``8k``     FSDD (8 kHz digits, ~0.5 s), its 6 speakers: enroll on 20 digits, 60 test digits per speaker; the files
           of the FSDD evaluation protocol (``fsdd-enroll.csv``, ``fsdd-trials.csv``) are left out.

Limits, said plainly: speechocean762 is read English by Mandarin-L1 speakers, half of them children (a different
population from LibriSpeech); 40 speakers x 7 tests give 280 target trials per 16 kHz condition, so differences
of a few target trials are noise (every bench reports the speaker-bootstrap interval, ``bench/_intervals.py``).
FSDD has six speakers and no other: the ``8k`` dev speakers are the FSDD *evaluation* speakers (other takes), so
an FSDD figure of a system whose settings or fusion were chosen on ``8k`` is not speaker-independent; its
interval (six speakers) is wide.

``--old-halves`` (``build(..., old_halves=True)``) adds the former protocol as one extra condition, ``halves``:
40 LibriSpeech background speakers held out (seed 20261123), enrolled on the first half of their one ~12-s
recording and tested on the second half. Same session on both sides: **optimistic**, for comparison with earlier
figures only, never for choosing. Those 40 speakers then leave ``bg-train`` (183 speakers, as before), so a run
with the option trains on other data than one without.

Usage: ``python bench/dev_protocol.py --out DIR [--shared ../shared] [--old-halves] [--jobs 1]``. Files are written
once (kept while ``dev-protocol.json`` says the same version and options). Import :func:`build` to get the
manifest paths.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dev_suite import refused_files, split  # noqa: E402

#: The cross-recording development conditions (what the benches choose on), in order.
CONDITIONS = ("clean", "short", "noisy", "8k")
#: The optimistic former condition, only with ``old_halves``.
OLD_HALVES = "halves"
#: The test degradation of ``noisy`` (:mod:`speakerid.degrade`).
NOISY_CONDITION = "noise@5"
SEED = 0
HALVES_SEED = 20261123     # the former 183 / 40 split of the background speakers
N_HALVES_SPEAKERS = 40
VERSION = 2
_SPEECHOCEAN = {"enroll_utts": 3}
#: condition -> (corpus of dev_suite.split, build_protocol keyword arguments)
BUILD = {
    "clean": ("speechocean762", _SPEECHOCEAN),
    "short": ("speechocean762", {**_SPEECHOCEAN, "test_duration_s": 2.0}),
    "noisy": ("speechocean762", {**_SPEECHOCEAN, "test_duration_s": 2.0, "test_condition": NOISY_CONDITION}),
    "8k": ("fsdd", {"enroll_utts": 20, "tests_per_speaker": 60, "sample_rate": 8000}),
}
RATES = {"speechocean762": 16000, "fsdd": 8000}


def conditions(old_halves: bool = False) -> tuple:
    """The development conditions built: :data:`CONDITIONS`, and ``halves`` with ``old_halves``."""
    return CONDITIONS + ((OLD_HALVES,) if old_halves else ())


def built_conditions(out) -> tuple:
    """The conditions of the protocol written under ``out`` (read from its ``dev-protocol.json``)."""
    return tuple(json.loads((Path(out) / "dev-protocol.json").read_text())["conditions"])


def _rel(path, folder: Path) -> str:
    return os.path.relpath(path, folder)


def _absolute(shared: Path, csv: str) -> pd.DataFrame:
    frame = pd.read_csv(shared / "protocols" / csv, dtype=str)
    frame["path"] = [str((shared / "protocols" / p).resolve()) for p in frame["path"]]
    return frame


def _dev_manifests(shared: Path, out: Path, jobs: int, say) -> dict:
    """``{corpus: dev speakers' files}``: dev_suite's split, without the files the front end refuses (an enrollment
    holding one would fail) and, for FSDD, without the files of the FSDD evaluation protocol."""
    parts = split(shared)
    used = set(_absolute(shared, "fsdd-enroll.csv")["path"]) | set(_absolute(shared, "fsdd-trials.csv")["path"])
    frames = {"speechocean762": parts["speechocean762"][0],
              "fsdd": parts["fsdd"][0][~parts["fsdd"][0]["path"].isin(used)].reset_index(drop=True)}
    for corpus, frame in frames.items():
        refused = refused_files(frame, out / f"refused-{corpus}.csv", RATES[corpus], jobs, say)
        frames[corpus] = frame[~frame["path"].isin(refused)].reset_index(drop=True)
    return frames


def _old_halves(background: pd.DataFrame, speakers, out: Path) -> None:
    """The former ``clean`` condition: first half of each speaker's one recording to enroll, second half to test."""
    import soundfile as sf

    from speakerid.data.audio import load_audio

    enroll, tests = [], []
    for speaker, path in background[background["speaker"].isin(speakers)].sort_values("speaker")[
            ["speaker", "path"]].itertuples(index=False):
        signal, rate = load_audio(path, 16000)
        half = signal.size // 2
        base = out / f"dev-{OLD_HALVES}-audio" / speaker
        base.mkdir(parents=True, exist_ok=True)
        for part, piece in (("enroll", signal[:half]), ("test", signal[half:])):
            sf.write(base / f"{part}.wav", piece, rate, subtype="PCM_16")
        enroll.append((speaker, _rel(base / "enroll.wav", out)))
        tests.append((speaker, _rel(base / "test.wav", out)))
    pd.DataFrame(enroll, columns=["speaker", "path"]).to_csv(out / f"dev-{OLD_HALVES}-enroll.csv", index=False)
    rows = [(claim, path, int(claim == true)) for true, path in tests for claim in sorted(speakers)]
    pd.DataFrame(rows, columns=["speaker", "path", "target"]).to_csv(out / f"dev-{OLD_HALVES}-trials.csv",
                                                                      index=False)


def build(out, shared="../shared", old_halves: bool = False, jobs: int = 1, say=None) -> dict:
    """Write (once) the development audio and manifests under ``out``; return ``{name: manifest path}``.

    Names: ``bg-train`` (the background speakers to train on: all 223, or 183 with ``old_halves``) and
    ``dev-<condition>-enroll`` / ``dev-<condition>-trials`` for each condition of :func:`conditions`. The trial
    lists have ``build_protocol``'s columns (``speaker`` = the model = ``enroll_speaker``, ``test_speaker``,
    ``condition``, ...; the ``halves`` list only ``speaker,path,target``).
    """
    from speakerid.data.manifests import read_manifest

    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    out, shared = Path(out).resolve(), Path(shared).resolve()
    wanted = conditions(old_halves)
    names = ["bg-train"] + [f"dev-{c}-{k}" for c in wanted for k in ("enroll", "trials")]
    paths = {n: out / f"{n}.csv" for n in names}
    stamp = out / "dev-protocol.json"
    options = {"version": VERSION, "old_halves": bool(old_halves)}
    if stamp.exists() and {k: json.loads(stamp.read_text()).get(k) for k in options} == options:
        return paths
    from speakerid.degrade import NoiseBank
    from speakerid.evaluation.protocols import build_protocol

    out.mkdir(parents=True, exist_ok=True)
    background = read_manifest(shared / "protocols" / "librispeech-background.csv")
    speakers = sorted(background["speaker"].unique())
    held_out = sorted(np.random.default_rng(HALVES_SEED).choice(speakers, size=N_HALVES_SPEAKERS,
                                                                 replace=False).tolist()) if old_halves else []
    train = background[~background["speaker"].isin(held_out)]
    pd.DataFrame({"speaker": train["speaker"], "path": [_rel(p, out) for p in train["path"]]}).to_csv(
        paths["bg-train"], index=False)

    dev = _dev_manifests(shared, out, jobs, say)
    bank = NoiseBank.from_csv(shared / "protocols" / "noise.csv")
    built = {}
    for condition in CONDITIONS:
        corpus, kwargs = BUILD[condition]
        say(f"building dev-{condition} ({corpus}) ...")
        proto = build_protocol(dev[corpus], out, name=f"dev-{condition}", bank=bank, seed=SEED, n_jobs=jobs,
                               **kwargs)
        built[condition] = {"corpus": corpus, **{k: v for k, v in kwargs.items()}, "n_speakers": proto.n_speakers,
                            "n_target": proto.n_target, "n_nontarget": proto.n_nontarget,
                            "skipped_speakers": {r: len(s) for r, s in proto.skipped.items()},
                            "skipped_files": {r: len(k) for r, k in proto.skipped_files.items()}}
    if old_halves:
        _old_halves(background, held_out, out)
        n = len(held_out)
        built[OLD_HALVES] = {"corpus": "librispeech-background (same recording both sides: optimistic)",
                             "n_speakers": n, "n_target": n, "n_nontarget": n * (n - 1)}
    stamp.write_text(json.dumps({**options, "seed": SEED, "conditions": list(wanted), "built": built,
                                 "dev_speakers": {c: sorted(f["speaker"].unique()) for c, f in dev.items()},
                                 "halves_speakers": held_out, "n_train_speakers": int(train["speaker"].nunique())},
                                indent=1))
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the dev audio and manifests")
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    parser.add_argument("--old-halves", action="store_true",
                        help="also the former same-recording 'halves' condition (optimistic; bg-train is then 183)")
    parser.add_argument("--jobs", type=int, default=1, help="workers writing the audio")
    args = parser.parse_args(argv)
    if not (Path(args.shared) / "protocols" / "speechocean762-dev.csv").exists():
        print(f"no shared data at {args.shared}; nothing to do", file=sys.stderr)
        return 0
    paths = build(args.out, args.shared, old_halves=args.old_halves, jobs=args.jobs)
    for name, path in paths.items():
        frame = pd.read_csv(path, dtype=str)
        what = (f"{frame['target'].astype(int).sum():5d} target, {frame['speaker'].nunique():3d} models"
                if "target" in frame else f"{frame['speaker'].nunique():3d} speakers")
        print(f"{name:20s} {len(frame):6d} rows  {what}  {path}")
    info = json.loads((Path(args.out) / "dev-protocol.json").read_text())
    print(json.dumps({"bench": "dev_protocol", "version": info["version"], "old_halves": info["old_halves"],
                      "n_train_speakers": info["n_train_speakers"], "conditions": info["built"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
