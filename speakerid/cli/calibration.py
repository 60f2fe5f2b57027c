"""calibrate: fit a linear score calibration on a development score file, or apply one to a score file."""

from __future__ import annotations

from speakerid.cli._common import add_json, print_json
from speakerid.evaluation.calibration import apply_score_file, fit_score_file
from speakerid.exceptions import ParameterError


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="fit a score -> LLR calibration on dev scores, or apply one (--apply)")
    p.add_argument("--scores", required=True, metavar="CSV",
                   help="score file as written by 'speakerid score' (speaker,path,target,score[,error])")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="the calibration JSON to write (fit), or the calibrated CSV to write (with --apply)")
    p.add_argument("--apply", metavar="JSON", default=None,
                   help="apply this calibration: write the rows with score = LLR and the raw score in raw_score")
    p.add_argument("--p-target", type=float, default=None,
                   help="effective target prior the fit optimises for (default 0.5; fitting only)")
    add_json(p)
    p.set_defaults(handler=_calibrate)


def _calibrate(args):
    if args.apply:
        if args.p_target is not None:
            raise ParameterError("--p-target only applies when fitting; the calibration in --apply is fixed")
        result = apply_score_file(args.apply, args.scores, args.out)
        if args.json:
            print_json(result)
        else:
            print(f"calibrated {result['n_calibrated']} score(s) with {args.apply} -> {result['out']}"
                  + _skipped(result["n_skipped"]))
        return
    result = fit_score_file(args.scores, args.out, p_target=0.5 if args.p_target is None else args.p_target)
    if args.json:
        print_json(result)
        return
    print(f"llr = a * score + b with a = {result['a']:.6g}, b = {result['b']:.6g} (p_target {result['p_target']:g}; "
          f"{result['n_target']} target, {result['n_nontarget']} non-target trials{_skipped(result['n_skipped'])})")
    print(f"Cllr before {result['cllr_before']:.4f} bits, after {result['cllr_after']:.4f} bits, "
          f"min Cllr {result['min_cllr']:.4f} bits")
    print(f"-> {result['out']}")


def _skipped(n_skipped: int) -> str:
    return f"; skipped {n_skipped} row(s) without a score" if n_skipped else ""
