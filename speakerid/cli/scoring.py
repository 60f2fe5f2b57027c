"""score: batch-score a trial list (streamed, parallel on joblib or Dask), optionally cohort-normalised."""

from __future__ import annotations

import sys

from speakerid._utils.progress import report_stages
from speakerid.cli._common import (
    ExitStatus,
    add_backend,
    add_json,
    add_model_dir,
    add_out_format,
    add_workers,
    print_json,
)

#: Failed files listed in the summary; the rest are counted.
MAX_ERRORS_SHOWN = 20


def register(sub) -> None:
    from speakerid.data.trials import DEFAULT_CHUNKSIZE
    from speakerid.evaluation.norm import AUTO_ENROLLED_MIN, ENROLLED, NORM_METHODS

    p = sub.add_parser("score", help="score a speaker,path[,target] trial list into a CSV with a score column",
                       description="Stream TRIALS.csv in chunks and write the same rows plus 'score' and 'error' "
                                   "to SCORES.csv (atomically). Unreadable audio gives an empty score and an "
                                   "error; the run goes on (exit 9 with --strict).")
    add_model_dir(p, store=True)
    p.add_argument("--trials", required=True, metavar="CSV", help="speaker,path[,target] trial list (or a Kaldi "
                   "'<speaker> <utt> target|nontarget' list with --data-dir)")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="Kaldi data directory of the test utterances named by a Kaldi trial list")
    p.add_argument("--out", required=True, metavar="FILE", help="scores to write")
    add_out_format(p)
    add_backend(p)
    add_workers(p, jobs=-1)     # threads by default; the scores are the same with any count (tests/scoring)
    p.add_argument("--processes", action="store_true",
                   help="local workers (--jobs) are processes (joblib) instead of threads of this process")
    p.add_argument("--chunksize", type=int, default=DEFAULT_CHUNKSIZE, metavar="N",
                   help=f"trial rows per chunk (default {DEFAULT_CHUNKSIZE})")
    p.add_argument("--strict", action="store_true", help="exit 9 when any trial could not be scored")
    p.add_argument("--exact", action="store_true", help="exact GMM-UBM scoring (no top-C selection)")
    group = p.add_argument_group("score normalisation")
    group.add_argument("--cohort", metavar="CSV", default=None,
                       help="speaker,path manifest of the impostor cohort (default: the model directory's "
                            "cohort.csv, drawn from the UBM's background speakers by train-ubm)")
    group.add_argument("--norm", choices=("auto", "none", ENROLLED) + NORM_METHODS
                       + tuple(f"{m}+{ENROLLED}" for m in NORM_METHODS), default="auto", metavar="METHOD",
                       help="none; znorm, tnorm, ztnorm or snorm with the cohort; 'enrolled' = T-norm over the "
                            "other enrolled speakers, alone or after a method (e.g. snorm+enrolled); auto "
                            f"(default) = snorm when there is a cohort, +enrolled when >= {AUTO_ENROLLED_MIN} "
                            "speakers are enrolled")
    group.add_argument("--cohort-top", type=int, default=None, metavar="N",
                       help="adaptive: use the N highest cohort scores only (e.g. AS-norm with snorm)")
    p.add_argument("--system", metavar="NAME", default=None,
                   help="a directory built by 'speakerid train': scores of this one system on its own scale "
                        "(default: the calibrated fused LLR, with each system's score in a score_<system> column)")
    add_json(p, "the summary as one JSON object")
    p.set_defaults(handler=_score)


def _score(args):
    from speakerid.scoring.batch import PartialScoringError, score_trials

    trials = args.trials
    if args.data_dir:
        from speakerid.data.kaldi_manifests import kaldi_trials_manifest

        trials = kaldi_trials_manifest(args.trials, args.data_dir)
    options = {"n_jobs": args.jobs, "scheduler": args.scheduler, "chunksize": args.chunksize,
               "cache_dir": args.cache, "strict": args.strict, "out_format": args.out_format,
               "processes": args.processes}
    norm = {"top_c": 0 if args.exact else None, "norm": args.norm, "cohort": args.cohort,
            "cohort_top": args.cohort_top}
    try:
        with report_stages():
            result = _run(args, trials, options, norm, score_trials)
        status = ExitStatus.OK
    except PartialScoringError as exc:
        result, status = exc.result, ExitStatus.PARTIAL_FAILURE
    metrics = result.metrics
    if args.json:
        print_json({"n_trials": result.n_trials, "n_scored": result.n_scored, "n_errors": result.n_errors,
                    "seconds": round(result.seconds, 3), "trials_per_s": round(result.trials_per_s, 1),
                    "out": str(result.out), "runner": result.runner, "metrics": metrics,
                    "normalisation": result.normalization,
                    "errors": [{"line": e.line, "file": e.file, "reason": e.reason} for e in result.errors]})
        return status
    print(f"scored {result.n_scored} of {result.n_trials} trials ({result.n_errors} error(s)) in "
          f"{result.seconds:.1f} s, {result.trials_per_s:.0f} trials/s [{result.runner}] -> {result.out}")
    print(f"score normalisation: {result.normalization}")
    if metrics:
        print(f"EER {100 * metrics['eer']:.2f} %, minDCF(p_target={metrics['p_target']:g}) "
              f"{metrics['min_dcf']:.4f}" + (f", actDCF {metrics['act_dcf']:.4f} (Bayes threshold), Cllr "
                                           f"{metrics['cllr']:.4f} (min {metrics['min_cllr']:.4f})"
                                           if "cllr" in metrics else "")
              + f" over {metrics['n_target']} target and {metrics['n_nontarget']} non-target scored trials" + f" (no intervals here: 'speakerid evaluate --scores {result.out}' gives them, over the speakers)")
    _print_errors(result)
    if status == ExitStatus.PARTIAL_FAILURE:  # the one error line of a failed command, on stderr
        print(f"speakerid: error: {result.n_errors} of {result.n_trials} trial(s) could not be scored (see the "
              f"'error' column of {result.out})", file=sys.stderr)
    return status


def _run(args, trials, options, norm, score_trials):
    """The fused LLR of a directory built by 'train' (or one --system of it), else the plain backend's scores."""
    from speakerid.scoring.fused import FusedVerifier, has_fusion
    from speakerid.scoring.opening import open_verifier

    if args.backend is None and has_fusion(args.model_dir):
        verifier = open_verifier(args.model_dir, system=args.system, n_jobs=args.jobs, cache_dir=args.cache,
                                 **({} if args.system else {k: v for k, v in norm.items() if k != "top_c"}))
        if isinstance(verifier, FusedVerifier):
            if args.exact:
                from speakerid.exceptions import ParameterError
                raise ParameterError("--exact applies to one system of a fused directory: add --system NAME")
            return verifier.score_trials(trials, args.out, **options)
        params = {**verifier.backend.params, **({"top_c": 0} if args.exact else {})}
        return score_trials(verifier.model_dir, trials, args.out, backend=verifier.backend_name,
                            backend_params=params or None, **options, **{k: v for k, v in norm.items()
                                                                       if k != "top_c"})
    if args.system:
        open_verifier(args.model_dir, system=args.system, backend=args.backend)   # says why --system is refused
    return score_trials(args.model_dir, trials, args.out, backend=args.backend, **options, **norm)


def _print_errors(result) -> None:
    failed = {}
    for error in result.errors:
        failed.setdefault(error.file, error.reason)
    for file, reason in list(failed.items())[:MAX_ERRORS_SHOWN]:
        print(f"  error: {file}: {reason}")
    hidden = len(failed) - MAX_ERRORS_SHOWN
    if hidden > 0 or len(result.errors) < result.n_errors:
        print(f"  ... and more failed files ({result.n_errors} failed trial(s) in all; see the 'error' column)")
