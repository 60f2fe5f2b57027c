"""segments: who spoke when among the enrolled speakers of a long recording; writes RTTM and CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from speakerid.cli._common import ExitStatus, add_backend, add_json, add_model_dir, finite_float, print_json


def _seconds(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def register(sub) -> None:
    p = sub.add_parser("segments", help="who spoke when: name the enrolled speaker of each stretch (RTTM + CSV)",
                       description="Slide a WINDOW-second window by HOP seconds over FILE, score each window "
                                   "against every enrolled speaker, label it with the best one ('unknown' below "
                                   "the threshold), merge neighbours with the same label, and write OUT.rttm "
                                   "(NIST RTTM SPEAKER lines) and OUT.csv (start_s,end_s,duration_s,speaker,score).")
    add_model_dir(p, store=True)
    p.add_argument("file", metavar="FILE", help="the recording")
    p.add_argument("--window", type=_seconds, default=2.0, metavar="S", help="window length, seconds (default 2)")
    p.add_argument("--hop", type=_seconds, default=1.0, metavar="S", help="hop between windows, seconds (default 1)")
    p.add_argument("--threshold", type=finite_float, default=None,
                   help="below it a stretch is 'unknown' (default: the model directory's threshold)")
    p.add_argument("--out", metavar="PREFIX", default=None,
                   help="write PREFIX.rttm and PREFIX.csv (default: FILE's name without extension, here)")
    add_backend(p)
    add_json(p, "the stretches as JSON")
    p.set_defaults(handler=_segments)


def _segments(args):
    from speakerid.data.rttm import write_rttm
    from speakerid.evaluation.turns import stretches_frame
    from speakerid.scoring.opening import open_verifier

    verifier = open_verifier(args.model_dir, backend=args.backend)   # a trained directory: windows as fused LLRs
    turns = verifier.speaker_turns(args.file, window_s=args.window, hop_s=args.hop, threshold=args.threshold)
    prefix = Path(args.out) if args.out else Path(Path(args.file).stem)
    rttm = write_rttm(prefix.with_name(prefix.name + ".rttm"), Path(args.file).stem,
                      [(s.start_s, s.end_s, s.speaker) for s in turns.stretches])
    table = stretches_frame(turns.stretches)
    csv_path = prefix.with_name(prefix.name + ".csv")
    from speakerid._utils.files import atomic_write

    with atomic_write(csv_path, "w") as fh:
        table.to_csv(fh, index=False, lineterminator="\n", float_format="%.3f")
    if args.json:
        print_json({"file": str(args.file), "threshold": turns.threshold, "window_s": turns.window_s,
                    "hop_s": turns.hop_s, "rttm": str(rttm), "csv": str(csv_path),
                    "stretches": table.to_dict(orient="records")})
        return ExitStatus.OK
    source = "given" if args.threshold is not None else verifier.threshold_source
    print(f"{args.file}: {turns.duration_s:.1f} s, {len(turns.stretches)} stretch(es); windows {turns.window_s:g} s "
          f"every {turns.hop_s:g} s; 'unknown' below threshold {turns.threshold:g} ({source})")
    for s in turns.stretches:
        print(f"  {s.start_s:8.2f} - {s.end_s:8.2f} s  {s.speaker}  (score {s.score:.3f})")
    print(f"-> {rttm}, {csv_path}")
    return ExitStatus.OK
