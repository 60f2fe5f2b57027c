"""``speakerid degrade``: write degraded copies of a manifest's audio (real noise, music, babble, reverberation,
telephone codecs, gain, clipping) and the manifest of the copies, seeded, every choice recorded."""

from __future__ import annotations

import argparse
import sys
import time

from speakerid.cli._common import add_json, jobs_count, print_json, seed_value
from speakerid.exceptions import ParameterError

__all__ = ["register"]

_DESCRIPTION = """\
Write a degraded copy of every file of --manifest (speaker,path CSV) to --out-dir as 16-bit WAV, and
DIR/manifest.csv (speaker,path,source,condition,record; record is the JSON of every random choice). The same
--seed writes the same bytes, whatever the row order or --jobs.

--condition: steps joined by '+', applied left to right (e.g. noise@5+reverb, reverb-sim+telephone-16k:gsm):
  clean                   nothing
  noise@SNR, music@SNR    a random segment of a random noise / music recording of --noise-csv (SNR in dB,
                          measured on the speech frames)
  babble@SNR              3-7 talkers from the speech recordings of --noise-csv and --babble-manifest
  reverb                  a real room impulse response (rir recordings of --noise-csv)
  reverb-sim              a simulated shoebox room (RT60 0.2-0.8 s)
  telephone[:CODEC]       300-3400 Hz, 8 kHz, codec ulaw (default), alaw or gsm; written at 8 kHz
  telephone-16k[:CODEC]   the same, written at 16 kHz
  gain@DB                 scale by DB decibels
  clip@LEVEL              hard clipping at LEVEL x the peak (0 < LEVEL <= 1)
"""


def register(sub) -> None:
    p = sub.add_parser("degrade", help="write degraded copies of a manifest's audio (noise, reverb, telephone, ...)",
                       description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True, metavar="CSV", help="speaker,path manifest of the audio to degrade")
    p.add_argument("--condition", required=True, metavar="SPEC", help="the degradation, e.g. noise@5+reverb (above)")
    p.add_argument("--out-dir", required=True, metavar="DIR", help="folder of the degraded WAVs and manifest.csv")
    add_bank_options(p)
    p.add_argument("--skip-errors", action="store_true",
                   help="leave out files that cannot be read or degraded (silent, too short, unreadable) and list "
                        "them in DIR/skipped.csv, instead of stopping at the first one")
    p.add_argument("--seed", type=seed_value, default=0, help="random seed (default 0)")
    p.add_argument("--jobs", "-j", type=jobs_count, default=-1, metavar="N",
                   help="parallel worker threads (default -1 = all cores; the output does not depend on it)")
    add_json(p, "a JSON summary (files, seconds, condition, out_dir, manifest)")
    p.set_defaults(handler=_degrade)


def add_bank_options(p) -> None:
    """--noise-csv and --babble-manifest: where the degradations' recordings come from (degrade, protocol)."""
    p.add_argument("--noise-csv", default=None, metavar="CSV",
                   help="kind,path,licence list of noise, music, speech (babble) and rir recordings, e.g. "
                        "../shared/protocols/noise.csv")
    p.add_argument("--babble-manifest", default=None, metavar="CSV",
                   help="speaker,path manifest of more babble talkers (e.g. speakers of another corpus): babble "
                        "draws 3-7 talkers from the speech recordings, so give several speakers")


def bank_from_options(args, needed: tuple, text: str):
    """The NoiseBank of --noise-csv and --babble-manifest (None when the condition needs none); a ParameterError
    when the condition needs recordings they do not give."""
    from speakerid.degrade.noise_bank import NoiseBank

    if not needed and not args.noise_csv and not args.babble_manifest:
        return None
    babble_given = ("speech",) if args.babble_manifest else ()
    if any(kind not in babble_given for kind in needed) and not args.noise_csv:
        raise ParameterError(f"{text} needs {' and '.join(needed)} recordings: give --noise-csv "
                             "noise.csv (a kind,path,licence list)")
    bank = NoiseBank.from_csv(args.noise_csv) if args.noise_csv else NoiseBank()
    if args.babble_manifest:
        from speakerid.data.manifests import read_manifest

        bank = bank.with_babble_sources(read_manifest(args.babble_manifest)["path"])
    empty = [kind for kind in needed if not bank.kinds[kind]]
    if empty:
        hint = " (or give --babble-manifest for babble talkers)" if "speech" in empty else ""
        raise ParameterError(f"{text} needs {' and '.join(empty)} recordings and --noise-csv "
                             f"{args.noise_csv} lists none{hint}")
    return bank


def _degrade(args):
    import csv
    import json

    from speakerid._utils.progress import report_stages
    from speakerid.degrade import condition_text, degrade_manifest, needed_kinds, parse_condition
    from speakerid.degrade.conditions import SKIPPED_FILE

    steps = parse_condition(args.condition)
    text = condition_text(steps)
    bank = bank_from_options(args, needed_kinds(steps), f"--condition {text}")
    start = time.perf_counter()
    with report_stages():
        target = degrade_manifest(args.manifest, args.out_dir, steps, bank=bank, seed=args.seed, n_jobs=args.jobs,
                                  skip_errors=args.skip_errors)
    with open(target, newline="", encoding="utf-8") as handle:
        records = [json.loads(row["record"]) for row in csv.DictReader(handle)]
    seconds = sum(record["n_samples"] / record["sample_rate"] for record in records)
    skipped_csv = target.parent / SKIPPED_FILE
    skipped = []
    if skipped_csv.exists():
        with open(skipped_csv, newline="", encoding="utf-8") as handle:
            skipped = list(csv.DictReader(handle))
    if skipped:
        print(f"speakerid: warning: {len(skipped)} file(s) left out (listed in {skipped_csv}), e.g. "
              f"{skipped[0]['path']}: {skipped[0]['error']}", file=sys.stderr)
    if args.json:
        print_json({"files": len(records), "seconds": round(seconds, 3), "condition": text, "seed": args.seed,
                    "out_dir": str(args.out_dir), "manifest": str(target), "skipped": len(skipped),
                    "skipped_csv": str(skipped_csv) if skipped else None})
    else:
        print(f"wrote {len(records)} degraded file(s), {seconds:.1f} s of audio ({text}, seed {args.seed}) to "
              f"{args.out_dir} in {time.perf_counter() - start:.1f} s; manifest: {target}")
    return 0
