"""fuse: learn a linear fusion (and calibration) of several systems on dev score files, apply it to test scores."""

from __future__ import annotations

from speakerid.cli._common import add_json, print_json
from speakerid.evaluation.fusion import fuse_score_files
from speakerid.exceptions import ParameterError


def register(sub) -> None:
    p = sub.add_parser(
        "fuse", help="fuse several systems' score files into one calibrated LLR (logistic regression)",
        description="Learn a linear fusion of several systems on development score files (--train, one per "
                    "system, same order as --scores; they need a target column), or load one (--fusion), and "
                    "write the fused scores of the --scores files. Files are lined up trial by trial on "
                    "(speaker, path). With one system this is calibration.")
    p.add_argument("--scores", action="append", required=True, metavar="CSV",
                   help="a system's score file to fuse (repeat once per system)")
    p.add_argument("--train", action="append", default=None, metavar="CSV",
                   help="the same system's score file on development trials (repeat, same order as --scores)")
    p.add_argument("--fusion", metavar="JSON", default=None, help="apply this saved fusion instead of learning one")
    p.add_argument("--save-fusion", metavar="JSON", default=None, help="save the learned fusion here")
    p.add_argument("--name", action="append", default=None, metavar="NAME",
                   help="a system's name for the score_<name> columns (repeat; default the file names)")
    p.add_argument("--out", required=True, metavar="CSV", help="fused score file to write")
    p.add_argument("--p-target", type=float, default=0.5, help="effective target prior of the fit (default 0.5)")
    add_json(p)
    p.set_defaults(handler=_fuse)


def _fuse(args):
    if args.train and args.fusion:
        raise ParameterError("give either --train (learn a fusion) or --fusion (apply a saved one), not both")
    if not args.train and not args.fusion:
        raise ParameterError("give --train DEV.csv once per --scores file (or --fusion JSON to apply a saved one)")
    if args.name is not None and len(args.name) != len(args.scores):
        raise ParameterError(f"{len(args.name)} --name for {len(args.scores)} --scores: give one name per system")
    result = fuse_score_files(args.scores, args.out, train_paths=args.train, fusion=args.fusion,
                              fusion_out=args.save_fusion, p_target=args.p_target, names=args.name)
    if args.json:
        print_json(result)
        return
    terms = " + ".join(f"{w:.4g}·{n}" for w, n in zip(result["weights"], result["systems"]))
    print(f"llr = {terms} {result['bias']:+.4g}")
    for part, title in (("train", "development"), ("eval", "scored")):
        if part in result:
            print(f"{title} trials: " + "; ".join(
                f"{name} EER {100 * fig['eer']:.2f} % minDCF {fig['min_dcf']:.3f} Cllr {fig['cllr']:.3f}"
                for name, fig in result[part].items()))
    skipped = f" ({result['n_skipped']} row(s) lacked a score)" if result["n_skipped"] else ""
    print(f"fused {result['n_fused']} trial(s){skipped} -> {result['out']}")
