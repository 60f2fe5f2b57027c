"""evaluate, manifest: score files to a metrics table and report; audio folders to enroll/trials manifests."""

from __future__ import annotations

from speakerid.cli._common import add_json, print_json


def register(sub) -> None:
    from speakerid.data.score_formats import SCORE_FORMATS

    p = sub.add_parser("evaluate", help="metrics (EER, minDCF/actDCF at each p_target, Cllr); with --out-dir also "
                                        "DET/ROC plots and an HTML report")
    p.add_argument("--scores", required=True, action="append", metavar="FILE",
                   help="score file (repeat for several systems): a csv with score,target, or a kaldi, voxceleb "
                        "(also SpeechBrain's 'enroll test label score') or nist file")
    p.add_argument("--name", action="append", default=None, metavar="NAME",
                   help="system name, one per --scores in the same order (default: file names)")
    p.add_argument("--out-dir", default=None, metavar="DIR", help="report folder (plots, metrics.json, report.html)")
    p.add_argument("--p-target", type=float, action="append", default=None, metavar="P",
                   help="target prior of minDCF/actDCF; repeat for several operating points (default 0.01)")
    p.add_argument("--format", choices=SCORE_FORMATS, default=None, help="score file format (default: detected)")
    p.add_argument("--key", metavar="FILE", default=None,
                   help="trial list with the labels, for score files without them (kaldi, voxceleb, nist)")
    add_json(p, "the metrics as one JSON object")
    p.set_defaults(handler=_evaluate)

    from speakerid.data.layouts import LAYOUTS

    p = sub.add_parser("manifest", help="write enroll/trials manifests from a folder with one folder per speaker",
                       description="Split DIR's speakers into PREFIX-enroll.csv and PREFIX-trials.csv; with "
                                   "--to-kaldi KDIR also write them as Kaldi data directories (KDIR/enroll, "
                                   "KDIR/test) and a Kaldi trial list (KDIR/trials). --from-csv converts existing "
                                   "manifests to Kaldi instead of scanning a folder.")
    p.add_argument("root", metavar="DIR", nargs="?", default=None, help="audio folder (not with --from-csv)")
    p.add_argument("--to-kaldi", metavar="KDIR", default=None,
                   help="also write Kaldi data directories and trials (sorted as utils/validate_data_dir.sh wants)")
    p.add_argument("--from-csv", metavar="CSV", action="append", default=None,
                   help="with --to-kaldi: convert this enroll manifest (and a second --from-csv trial list)")
    p.add_argument("--layout", choices=LAYOUTS, default="folders",
                   help="folders: DIR/<speaker>/*.wav|flac|ogg; librispeech: <speaker>-<chapter>-<utt>.flac "
                        "names (default folders)")
    p.add_argument("--enroll", type=int, default=3, metavar="N", help="enrollment files per speaker (default 3)")
    p.add_argument("--out", metavar="PREFIX", default=None, help="writes PREFIX-enroll.csv and PREFIX-trials.csv")
    p.add_argument("--background", metavar="LIST", default=None,
                   help="background speakers (CSV with a speaker column, text list, or audio folder); "
                        "they are excluded from evaluation")
    p.add_argument("--seed", type=int, default=0, help="random seed of the split (default 0)")
    p.add_argument("--nontarget-per-test", type=int, default=None, metavar="K",
                   help="impostor claims per test file (default: every other speaker)")
    add_json(p)
    p.set_defaults(handler=_manifest)


def _evaluate(args):
    from pathlib import Path

    from speakerid.evaluation.report import evaluate

    result = evaluate(args.scores, args.out_dir, p_target=args.p_target or [0.01], names=args.name,
                      score_format=args.format, key=args.key)
    report = str(Path(result["out_dir"]) / result["files"]["report"]) if result["out_dir"] else None
    if args.json:
        print_json({**result, "report": report})
        return
    width = max(12, *(len(s["name"]) for s in result["systems"]))
    header = (f"{'system':<{width}} {'trials tar/non':>16} {'EER %':>7} {'minDCF':>7} {'actDCF':>7} {'Cllr':>7} "
              f"{'minCllr':>7}")
    print(header)
    print("-" * len(header))
    for s in result["systems"]:
        trials = f"{s['n_target']}/{s['n_nontarget']}"
        print(f"{s['name']:<{width}} {trials:>16} {s['eer_percent']:7.2f} {s['min_dcf']:7.4f} {s['act_dcf']:7.4f} "
              f"{s['cllr']:7.4f} {s['min_cllr']:7.4f}")
    print(f"minDCF/actDCF at p_target={result['p_target']:g} (normalised, C_miss = C_fa = 1, as in the NIST SRE "
          f"plans); actDCF and Cllr read the scores as calibrated LLRs (Bayes threshold "
          f"{result['systems'][0]['act_dcf_threshold']:.3f})")
    if len(result["p_targets"]) > 1:
        print(f"{'system':<{width}} {'p_target':>9} {'minDCF':>7} {'actDCF':>7}")
        for s in result["systems"]:
            for o in s["operating_points"]:
                print(f"{s['name']:<{width}} {o['p_target']:9g} {o['min_dcf']:7.4f} {o['act_dcf']:7.4f}")
    for s in result["systems"]:
        if s["n_skipped"]:
            why = f": {'; '.join(s['skipped_errors'])}" if s["skipped_errors"] else ""
            print(f"{s['name']}: {s['n_skipped']} trial(s) without a score skipped{why}")
    if report:
        print(f"report: {report}")


def _manifest(args):
    from speakerid.data.kaldi_manifests import manifests_to_kaldi
    from speakerid.data.layouts import make_manifests
    from speakerid.exceptions import ParameterError

    if args.from_csv:
        if args.root or args.out or not args.to_kaldi or len(args.from_csv) > 2:
            raise ParameterError("--from-csv ENROLL.csv [--from-csv TRIALS.csv] converts manifests: give --to-kaldi "
                                 "and no DIR or --out")
        kaldi = manifests_to_kaldi(args.from_csv[0], args.to_kaldi, *args.from_csv[1:])
        if args.json:
            print_json(kaldi)
        else:
            _print_kaldi(kaldi)
        return
    if not args.root or not args.out:
        raise ParameterError("give the audio folder DIR and --out PREFIX (or --from-csv with --to-kaldi)")
    result = make_manifests(args.root, layout=args.layout, enroll=args.enroll, out_prefix=args.out,
                            seed=args.seed, background=args.background,
                            nontarget_per_test=args.nontarget_per_test)
    kaldi = manifests_to_kaldi(result.enroll_csv, args.to_kaldi, result.trials_csv) if args.to_kaldi else None
    if args.json:
        print_json({"enroll_csv": str(result.enroll_csv), "trials_csv": str(result.trials_csv),
                    "speakers": list(result.speakers), "skipped": list(result.skipped),
                    "excluded": list(result.excluded), "n_enroll_files": result.n_enroll_files,
                    "n_test_files": result.n_test_files, "n_trials": result.n_trials,
                    "n_target_trials": result.n_target_trials, "kaldi": kaldi})
        return
    print(f"wrote {result.enroll_csv} ({result.n_enroll_files} files, {len(result.speakers)} speakers)")
    print(f"wrote {result.trials_csv} ({result.n_trials} trials, {result.n_target_trials} target, "
          f"{result.n_test_files} test files)")
    if kaldi:
        _print_kaldi(kaldi)


def _print_kaldi(kaldi: dict) -> None:
    print(f"wrote Kaldi data directory {kaldi['enroll']} ({kaldi['n_enroll']} utterances)")
    if kaldi["trials"]:
        print(f"wrote Kaldi data directory {kaldi['test']} ({kaldi['n_test']} utterances) and {kaldi['trials']} "
              f"({kaldi['n_trials']} trials)")
