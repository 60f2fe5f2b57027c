"""score-pairs: score a VoxCeleb, Kaldi or CSV pair trial list (file against file), streamed and parallel."""

from __future__ import annotations

import sys

from speakerid.cli import _common as common

#: Failed entries listed in the summary; the rest are counted.
MAX_ERRORS_SHOWN = 20


def register(sub) -> None:
    from speakerid.data.pair_trials import PAIR_FORMATS
    from speakerid.data.trials import DEFAULT_CHUNKSIZE
    from speakerid.evaluation.norm import NORM_METHODS

    p = sub.add_parser("score-pairs", help="score a pair trial list (VoxCeleb, Kaldi or CSV: file against file)",
                       description="Each enrollment file becomes a model once (GMM-UBM: MAP-adapted; i-vector, "
                                   "Siamese, MLP: its vector); each test file is scored against the models it is "
                                   "paired with. The list's format is detected from its first line: VoxCeleb "
                                   "'1 enroll.wav test.wav', Kaldi 'enroll-utt test-utt target' (with --data-dir), "
                                   "CSV 'enroll,test[,target]'.")
    common.add_model_dir(p)
    p.add_argument("--pairs", required=True, metavar="FILE", help="the pair trial list")
    p.add_argument("--out", required=True, metavar="FILE", help="score file to write")
    p.add_argument("--format", choices=PAIR_FORMATS, default=None, help="the list's format (default: detected)")
    common.add_out_format(p)
    p.add_argument("--audio-root", metavar="DIR", default=None,
                   help="folder the VoxCeleb/CSV paths are relative to (default: the list's folder)")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="Kaldi data directory giving each utterance's audio (Kaldi lists)")
    p.add_argument("--allow-commands", action="store_true",
                   help="run 'command |' entries of wav.scp (refused by default; see SECURITY.md)")
    p.add_argument("--symmetric", action="store_true",
                   help="average both directions: s(model(enroll), test) and s(model(test), enroll)")
    common.add_backend(p)
    common.add_workers(p)
    p.add_argument("--chunksize", type=int, default=DEFAULT_CHUNKSIZE, metavar="N",
                   help=f"pairs per chunk (default {DEFAULT_CHUNKSIZE})")
    p.add_argument("--strict", action="store_true", help="exit 9 when any pair could not be scored")
    group = p.add_argument_group("score normalisation")
    group.add_argument("--cohort", metavar="CSV", default=None,
                       help="speaker,path impostor cohort (default: the model directory's cohort.csv)")
    group.add_argument("--norm", choices=("auto", "none") + NORM_METHODS, default="auto", metavar="METHOD",
                       help="none, znorm, tnorm, ztnorm or snorm; auto (default) = snorm when there is a cohort")
    group.add_argument("--cohort-top", type=int, default=None, metavar="N", help="use the N best cohort scores")
    common.add_json(p, "the summary as one JSON object")
    p.set_defaults(handler=_score_pairs)


def _score_pairs(args):
    from speakerid.scoring.pairs import PartialPairScoringError, score_pairs

    try:
        result = score_pairs(args.model_dir, args.pairs, args.out, pair_format=args.format,
                             audio_root=args.audio_root, data_dir=args.data_dir, allow_commands=args.allow_commands,
                             backend=args.backend, n_jobs=args.jobs, scheduler=args.scheduler,
                             chunksize=args.chunksize, cache_dir=args.cache, norm=args.norm, cohort=args.cohort,
                             cohort_top=args.cohort_top, symmetric=args.symmetric, out_format=args.out_format,
                             strict=args.strict)
        status = common.ExitStatus.OK
    except PartialPairScoringError as exc:
        result, status = exc.result, common.ExitStatus.PARTIAL_FAILURE
    metrics = result.metrics
    summary = {"n_pairs": result.n_pairs, "n_scored": result.n_scored, "n_errors": result.n_errors,
               "n_models": result.n_models, "pair_format": result.pair_format, "out": str(result.out),
               "out_format": result.out_format, "symmetric": result.symmetric, "normalisation": result.normalization,
               "seconds": round(result.seconds, 3), "runner": result.runner, "metrics": metrics,
               "errors": [{"line": line, "entry": entry, "reason": reason} for line, entry, reason in result.errors]}
    if args.json:
        common.print_json(summary)
        return status
    print(f"scored {result.n_scored} of {result.n_pairs} {result.pair_format} pairs ({result.n_errors} error(s)), "
          f"{result.n_models} enrollment models, in {result.seconds:.1f} s [{result.runner}] -> {result.out} "
          f"({result.out_format})")
    print(f"score normalisation: {result.normalization}; symmetric: {'yes' if result.symmetric else 'no'}")
    if metrics:
        print(f"EER {100 * metrics['eer']:.2f} %, minDCF(p_target={metrics['p_target']:g}) {metrics['min_dcf']:.4f} "
              f"over {metrics['n_target']} target and {metrics['n_nontarget']} non-target scored pairs" + f" (no intervals here: 'speakerid evaluate --scores {result.out}' gives them, over the speakers)")
    for line, _entry, reason in result.errors[:MAX_ERRORS_SHOWN]:
        print(f"  error: line {line}: {reason}")
    if status == common.ExitStatus.PARTIAL_FAILURE:
        print(f"speakerid: error: {result.n_errors} of {result.n_pairs} pair(s) could not be scored",
              file=sys.stderr)
    return status

