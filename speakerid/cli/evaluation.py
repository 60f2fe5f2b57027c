"""evaluate, compare, manifest: score files to a metrics table with confidence intervals (speakers resampled) and
a report; two systems' score files of the same trials to their paired differences; audio folders to
enroll/trials manifests."""

from __future__ import annotations

from speakerid.cli._common import add_json, finite_float, non_negative_int, positive_int, print_json

# how each bootstrap metric is printed: label, scale, format
_SHOWN = {"eer": ("EER %", 100.0, ".2f"), "min_dcf": ("minDCF", 1.0, ".4f"), "act_dcf": ("actDCF", 1.0, ".4f"),
          "cllr": ("Cllr", 1.0, ".4f"), "min_cllr": ("minCllr", 1.0, ".4f"),
          "nontarget_accept": ("non-target LLR>=0 %", 100.0, ".2f")}


def register(sub) -> None:

    p = sub.add_parser("evaluate", help="metrics (EER, minDCF/actDCF at each p_target, Cllr); with --out-dir also "
                                        "DET/ROC plots and an HTML report")
    p.add_argument("--scores", required=True, action="append", metavar="FILE",
                   help="score file (repeat for several systems): a csv with score,target, or a kaldi, voxceleb "
                        "(also SpeechBrain's 'enroll test label score') or nist file")
    p.add_argument("--out-dir", default=None, metavar="DIR", help="report folder (plots, metrics.json, report.html)")
    _add_score_options(p, "repeat for several operating points (default 0.01)")
    _add_bootstrap(p, minimum=0)
    add_json(p, "the metrics and their intervals as one JSON object")
    p.set_defaults(handler=_evaluate)

    p = sub.add_parser("compare", help="paired comparison of two systems scored on the same trials: B - A of each "
                                       "metric with a bootstrap interval that resamples speakers",
                       description="Join two score files on their trials (speaker, path) and report, for each "
                                   "metric, A, B and B - A with confidence intervals from the same bootstrap "
                                   "resamples of the speakers, and whether B is better, worse or not "
                                   "significantly different. The files must list the same trials with the same "
                                   "targets.")
    p.add_argument("--scores", required=True, action="append", metavar="FILE",
                   help="score file of system A, then (repeat) of system B")
    _add_score_options(p, "repeat for several (default 0.01 and 0.1)")
    p.add_argument("--raw-scores", action="store_true",
                   help="the scores are not calibrated LLRs (e.g. an expert train-ubm directory): compare only "
                        "EER, minDCF and minCllr")
    _add_bootstrap(p, minimum=1)
    add_json(p, "the comparison as one JSON object")
    p.set_defaults(handler=_compare)

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


def _add_bootstrap(p, minimum: int) -> None:
    p.add_argument("--bootstrap", type=non_negative_int if minimum == 0 else positive_int, default=1000,
                   metavar="N", help="bootstrap resamples of the confidence intervals (default 1000"
                                     f"{'; 0: no intervals' if minimum == 0 else ''})")
    p.add_argument("--confidence", type=finite_float, default=0.95, metavar="C",
                   help="coverage of the confidence intervals, in (0, 1) (default 0.95)")
    p.add_argument("--group-by", default=None, metavar="COLUMN",
                   help="score-file column of the speakers to resample (default: enroll_speaker if the file "
                        "has it, else speaker; without either, trials are resampled)")


def _with_interval(value, interval, scale: float, spec: str) -> str:
    """``2.10 [1.60, 2.70]``; just the value without an interval."""
    text = format(scale * value, spec)
    if interval:
        text += f" [{format(scale * interval['low'], spec)}, {format(scale * interval['high'], spec)}]"
    return text


def _table(header: list, rows: list) -> None:
    """Print a table: the first column left-aligned, the others right-aligned, each as wide as it needs."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = " ".join(f"{header[0]:<{widths[0]}}" if i == 0 else f"{h:>{widths[i]}}" for i, h in enumerate(header))
    print(line)
    print("-" * len(line))
    for r in rows:
        print(" ".join(f"{c:<{widths[0]}}" if i == 0 else f"{c:>{widths[i]}}" for i, c in enumerate(r)))


def _add_score_options(p, p_target_default: str) -> None:
    """--name, --p-target, --format and --key: how evaluate and compare read and name score files."""
    from speakerid.data.score_formats import SCORE_FORMATS

    p.add_argument("--name", action="append", default=None, metavar="NAME",
                   help="system name, one per --scores in the same order (default: file names)")
    p.add_argument("--p-target", type=float, action="append", default=None, metavar="P",
                   help=f"target prior of minDCF/actDCF; {p_target_default}")
    p.add_argument("--format", choices=SCORE_FORMATS, default=None, help="score file format (default: detected)")
    p.add_argument("--key", metavar="FILE", default=None,
                   help="trial list with the labels, for score files without them (kaldi, voxceleb, nist)")


def _evaluate(args):
    from pathlib import Path

    from speakerid.evaluation.report import evaluate

    result = evaluate(args.scores, args.out_dir, p_target=args.p_target or [0.01], names=args.name,
                      score_format=args.format, key=args.key, n_boot=args.bootstrap, confidence=args.confidence,
                      group_column=args.group_by)
    report = str(Path(result["out_dir"]) / result["files"]["report"]) if result["out_dir"] else None
    if args.json:
        print_json({**result, "report": report})
        return
    p = f"{result['p_target']:g}"
    rows = []
    for s in result["systems"]:
        iv = s["intervals"] or {}
        rows.append([s["name"], f"{s['n_target']}/{s['n_nontarget']}",
                     _with_interval(s["eer"], iv.get("eer"), 100.0, ".2f"),
                     *(_with_interval(s[k], iv.get(f"{k}@{p}"), 1.0, ".4f") for k in ("min_dcf", "act_dcf")),
                     *(_with_interval(s[k], iv.get(k), 1.0, ".4f") for k in ("cllr", "min_cllr"))])
    _table(["system", "trials tar/non", "EER %", "minDCF", "actDCF", "Cllr", "minCllr"], rows)
    print(f"minDCF/actDCF at p_target={result['p_target']:g} (normalised, C_miss = C_fa = 1, as in the NIST SRE "
          f"plans); actDCF and Cllr read the scores as calibrated LLRs (Bayes threshold "
          f"{result['systems'][0]['act_dcf_threshold']:.3f})")
    if len(result["p_targets"]) > 1:
        rows = []
        for s in result["systems"]:
            iv = s["intervals"] or {}
            for o in s["operating_points"]:
                at = f"{o['p_target']:g}"
                rows.append([s["name"], at, _with_interval(o["min_dcf"], iv.get(f"min_dcf@{at}"), 1.0, ".4f"),
                             _with_interval(o["act_dcf"], iv.get(f"act_dcf@{at}"), 1.0, ".4f")])
        _table(["system", "p_target", "minDCF", "actDCF"], rows)
    for s in result["systems"]:
        print(f"{s['name']}: {_speakers(s)}, {s['n_target']} target / {s['n_nontarget']} non-target trials"
              + (f" ({s['intervals_note']})" if s["intervals_note"] else ""))
    print(f"intervals: {result['intervals']}")
    for s in result["systems"]:
        if s["n_skipped"]:
            why = f": {'; '.join(s['skipped_errors'])}" if s["skipped_errors"] else ""
            print(f"{s['name']}: {s['n_skipped']} trial(s) without a score skipped{why}")
    if report:
        print(f"report: {report}")


def _speakers(result: dict) -> str:
    if result["n_speakers"] is None:
        return "speakers unknown (no speaker column)"
    column = result["group_column"]
    return f"{result['n_speakers']} speakers" + (f" (column {column})" if column else "")


def _compare(args):
    from speakerid.evaluation.comparison import compare
    from speakerid.exceptions import ParameterError

    if len(args.scores) != 2:
        raise ParameterError(f"compare takes exactly two --scores files (A, then B), got {len(args.scores)}")
    result = compare(args.scores[0], args.scores[1], names=args.name, p_target=args.p_target or [0.01, 0.1],
                     n_boot=args.bootstrap, confidence=args.confidence, group_column=args.group_by,
                     score_format=args.format, key=args.key, llr=not args.raw_scores)
    if args.json:
        print_json(result)
        return
    name_a, name_b = result["names"]
    print(f"A = {name_a} ({result['sources'][0]}), B = {name_b} ({result['sources'][1]})")
    rows = []
    for metric, figures in result.items():
        if not isinstance(figures, dict) or "difference" not in figures:
            continue
        kind, _, at = metric.partition("@")
        label, scale, spec = _SHOWN[kind]
        verdict = {"b": "B better", "a": "B worse", None: "no significant difference"}[figures["better"]]
        rows.append([f"{label} {at}".strip(), *(_with_interval(figures[k]["value"], figures[k], scale, spec)
                                                 for k in ("a", "b", "difference")), verdict])
    _table(["metric", "A", "B", "B - A", "verdict"], rows)
    skipped = f"; {result['n_skipped']} trial(s) not scored in both skipped" if result["n_skipped"] else ""
    print(f"{_speakers(result)}, {result['n_target']} target / {result['n_nontarget']} non-target trials"
          f"{skipped}" + (f" ({result['intervals_note']})" if result["intervals_note"] else ""))
    print(f"intervals: {result['method']}; B - A is significant when its interval excludes 0 (every metric is an "
          "error rate or a cost: lower is better)")
    print("minDCF/actDCF normalised, C_miss = C_fa = 1; " + ("scores not read as LLRs (--raw-scores): no actDCF, "
          "Cllr or LLR >= 0 share" if args.raw_scores else result["note"]))


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
