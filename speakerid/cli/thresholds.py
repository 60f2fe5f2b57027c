"""set-threshold: choose the decision threshold on development scores and store it, with how, in the model dir."""

from __future__ import annotations

from speakerid.cli._common import ExitStatus, add_backend, add_json, add_model_dir, print_json


def register(sub) -> None:
    from speakerid.data.score_formats import SCORE_FORMATS

    p = sub.add_parser("set-threshold", help="choose the decision threshold on dev scores (eer, far=, min-dcf)",
                       description="Read a dev score file (csv with a target column, or kaldi/voxceleb/nist with "
                                   "--key), choose the threshold by CRITERION and store it, with the criterion, "
                                   "the rates it gives and the file, in the model directory; verify, identify and "
                                   "segments then use it and say so.")
    add_model_dir(p)
    p.add_argument("--scores", required=True, metavar="FILE",
                   help="dev score file from the same backend and normalisation as verify will use ('score' and "
                        "'verify' give a trial the same score with the same --norm)")
    p.add_argument("--norm", default="auto", metavar="METHOD",
                   help="the score normalisation of the dev scores, recorded with the threshold (default auto, as "
                        "'score' and 'verify'); verify refuses a threshold of another normalisation")
    p.add_argument("--criterion", default="eer", metavar="CRITERION",
                   help="eer (default), far=<rate> (e.g. far=0.01: the lowest threshold with at most 1 %% false "
                        "acceptances), or min-dcf[:<p_target>] (default p_target 0.01)")
    p.add_argument("--format", choices=SCORE_FORMATS, default=None, help="score file format (default: detected)")
    p.add_argument("--key", metavar="FILE", default=None,
                   help="trial list with the labels, for score files without them")
    add_backend(p)
    p.add_argument("--system", metavar="NAME", default=None,
                   help="a directory built by 'speakerid train': store the threshold of this one system (the fused "
                        "LLR is decided at the Bayes threshold of --p-target instead)")
    add_json(p, "the choice as one JSON object")
    p.set_defaults(handler=_set_threshold)


def _set_threshold(args):
    from pathlib import Path

    from speakerid.data.score_formats import read_score_table
    from speakerid.evaluation.operating_points import choose_threshold, parse_criterion
    from speakerid.exceptions import ManifestError, ParameterError
    from speakerid.scoring.fused import FusedVerifier
    from speakerid.scoring.opening import open_verifier

    parse_criterion(args.criterion)  # a bad criterion fails before anything is read
    verifier = open_verifier(args.model_dir, system=args.system, backend=args.backend, norm=args.norm)
    if isinstance(verifier, FusedVerifier):
        raise ParameterError(f"{args.model_dir} is a fused system: its calibrated LLR is accepted at the Bayes "
                             "threshold of the target prior (verify --p-target P); to store one system's threshold "
                             "give --system NAME")
    frame = read_score_table(args.scores, args.format, key=args.key)
    if args.system is not None:
        frame = _system_scores(args.scores, frame, args.system)
    if "target" not in frame.columns:
        raise ManifestError("the score file holds no labels: give the trial list with --key", args.scores)
    frame = frame[frame["score"].notna()]
    choice = choose_threshold(frame["score"].to_numpy(), frame["target"].to_numpy(), args.criterion)
    how = {**choice.as_dict(), "scores": str(Path(args.scores).resolve())}
    verifier.set_threshold(choice.threshold, how=how)
    if args.json:
        print_json({**how, "backend": verifier.backend_name, "model_dir": str(verifier.model_dir)})
        return ExitStatus.OK
    print(f"threshold {choice.threshold:.6g} ({choice.criterion} on {args.scores}: FAR {100 * choice.far:.2f} %, "
          f"FRR {100 * choice.frr:.2f} % over {choice.n_target} target and {choice.n_nontarget} non-target trials) "
          f"stored for the {verifier.backend_name} backend in {verifier.model_dir}")
    return ExitStatus.OK


def _system_scores(path, frame, system: str):
    """The ``score_<input>`` column of a fused directory's score file for ``--system`` (its ``score`` column is
    the fused LLR); a file without per-system columns (``score --system NAME``, another format) as it is."""
    import pandas as pd

    from speakerid.exceptions import ManifestError
    from speakerid.scoring.fused import input_name

    try:
        columns = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except (ValueError, OSError, UnicodeDecodeError):  # not a CSV: one score per trial, the system's own
        return frame
    per_system = [c for c in columns if c.startswith("score_")]
    if not per_system:
        return frame
    column = f"score_{input_name(system)}"
    if column not in per_system:
        raise ManifestError(f"no {column} column for --system {system} (the file has {', '.join(per_system)})",
                            path)
    values = pd.to_numeric(pd.read_csv(path, usecols=[column])[column], errors="coerce").to_numpy(float)
    if len(values) != len(frame):
        raise ManifestError(f"{column} has {len(values)} rows, the scores {len(frame)}", path)
    return frame.assign(score=values)
