"""train-ubm, enroll, verify, identify, speakers, remove: the enrollment/verification workflow."""

from __future__ import annotations

from speakerid._utils.progress import report_stages, stage_lines
from speakerid.cli._common import (
    ExitStatus,
    add_backend,
    add_feature_options,
    add_model_dir,
    add_retrain_force,
    add_workers,
    check_model_dir,
    feature_config_from,
    finite_float,
    print_json,
    report_removed,
    seed_value,
    show_warnings,
)
from speakerid.exceptions import ParameterError


def register(sub) -> None:
    p = sub.add_parser("train-ubm", help="train the universal background model from a background manifest")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", metavar="CSV", help="speaker,path manifest of background audio")
    source.add_argument("--data-dir", metavar="DIR", help="Kaldi data directory of background audio")
    add_model_dir(p)
    p.add_argument("--components", type=int, default=256, help="Gaussians in the UBM (default 256)")
    p.add_argument("--iterations", type=int, default=10, help="EM iterations at most (default 10)")
    p.add_argument("--relevance-factor", type=float, default=16.0, help="MAP relevance factor r (default 16)")
    p.add_argument("--top-c", type=int, default=5, help="Gaussians per frame in scoring; 0 = exact (default 5)")
    p.add_argument("--seed", type=seed_value, default=0, help="random seed (default 0)")
    add_retrain_force(p)
    p.add_argument("--augment", type=int, default=None, metavar="N",
                   help="also train on N noisy copies of each file (white/pink/brown noise, 0-20 dB SNR); "
                        "enroll then does the same (default 1; 0 = clean training)")
    p.add_argument("--subsample", type=int, default=1, metavar="N",
                   help="EM on every N-th frame (Kaldi's --subsample; default 1 = all frames)")
    add_feature_options(p)
    add_workers(p, jobs=-1)
    p.set_defaults(handler=_train_ubm)

    p = sub.add_parser("enroll", help="enroll every speaker of a speaker,path manifest (or one speaker's files)")
    p.add_argument("--manifest", metavar="CSV", help="speaker,path manifest")
    p.add_argument("--data-dir", metavar="DIR", help="Kaldi data directory (its utt2spk speakers) instead")
    p.add_argument("--speaker", help="enroll this speaker from FILE arguments instead of a manifest")
    p.add_argument("files", nargs="*", metavar="FILE", help="audio files (with --speaker)")
    add_model_dir(p, store=True)
    add_backend(p)
    add_feature_options(p)
    add_workers(p, jobs=-1)
    p.add_argument("--augment", type=int, default=None, metavar="N",
                   help="also adapt on N noisy copies of each file (default: as many as the UBM was trained with)")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--replace", dest="mode", action="store_const", const="replace",
                          help="a speaker enrolled already gets a new model from these files only")
    existing.add_argument("--add", dest="mode", action="store_const", const="add",
                          help="add these files to an enrolled speaker's model (its statistics are summed with "
                               "theirs: the model of one enrollment of all the files)")
    p.add_argument("--allow-duplicate", action="store_true",
                   help="enroll --speaker even when the voice matches another enrolled speaker (by default "
                        "refused, naming that speaker: one person under two ids splits their acceptances)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_enroll, mode="new")

    p = sub.add_parser("verify", help="score a claim that FILE is SPEAKER; accept or reject")
    add_model_dir(p, store=True)
    p.add_argument("--speaker", required=True, help="the claimed speaker")
    p.add_argument("file", metavar="FILE", help="audio file")
    p.add_argument("--threshold", type=finite_float, default=None,
                   help="decision threshold on the score's scale (default: a fused directory's Bayes threshold "
                        "at --p-target; else the saved one, else the scale's default)")
    add_backend(p)
    p.add_argument("--exact", action="store_true", help="exact GMM-UBM scoring (no top-C selection)")
    _add_norm(p)
    _add_fused(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_verify)

    p = sub.add_parser("identify", help="rank the enrolled speakers for FILE (open set: no match below the threshold)")
    add_model_dir(p, store=True)
    p.add_argument("file", metavar="FILE", help="audio file")
    p.add_argument("--top", type=int, default=5, help="how many speakers to list (default 5)")
    p.add_argument("--threshold", type=finite_float, default=None,
                   help="below it no enrolled speaker matches (a fused directory: on the open-set LLR of 'one of "
                        "the N enrolled speakers' against 'nobody enrolled'; default its Bayes threshold)")
    add_backend(p)
    _add_norm(p)
    _add_fused(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_identify)

    p = sub.add_parser("speakers", help="list the enrolled speakers")
    add_model_dir(p, store=True)
    add_backend(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_speakers)

    p = sub.add_parser("remove", help="remove enrolled speakers (all or none)")
    add_model_dir(p, store=True)
    p.add_argument("--speaker", required=True, nargs="+", action="extend", metavar="ID",
                   help="speaker(s) to remove: --speaker a b, or --speaker a --speaker b")
    add_backend(p)
    p.set_defaults(handler=_remove)


def _add_norm(p) -> None:
    p.add_argument("--norm", default="auto", metavar="METHOD",
                   help="score normalisation, as for 'speakerid score' (default auto: S-norm with the directory's "
                        "cohort, + T-norm over the other enrolled speakers when 6 or more are enrolled; none = raw "
                        "scores). The same trial gets the same score as in 'score'; the threshold is on this scale")
    p.add_argument("--cohort", metavar="CSV", default=None, help="impostor cohort manifest (as for 'score')")


def _add_fused(p) -> None:
    p.add_argument("--system", metavar="NAME", default=None,
                   help="a directory built by 'speakerid train': score with this one system (e.g. gmm-ubm, "
                        "ivector-plda) on its own scale instead of the calibrated fused LLR")
    p.add_argument("--p-target", type=finite_float, default=None, metavar="P",
                   help="prior probability of a true claim, for the decision (Bayes threshold -logit(P) on the "
                        "LLR) and the posterior (default: stored with the fused model, 0.5 unless trained otherwise)")
    p.add_argument("--exit-code", action="store_true",
                   help="exit 0 on ACCEPT (a match) and 10 on REJECT (no match), for shell scripts")


def _verifier(args, must_exist: bool = True, **kwargs):
    from speakerid.scoring.opening import open_verifier  # on use: --help needs none of the scoring code

    show_warnings()
    # one message for every command, before any model file is looked for (enroll may make the directory: the
    # per-speaker GMM backend needs no background model)
    if must_exist:
        check_model_dir(args.model_dir)
    params = {"top_c": 0} if getattr(args, "exact", False) else None
    norm = {"norm": args.norm, "cohort": args.cohort} if hasattr(args, "norm") else {}
    return open_verifier(args.model_dir, system=getattr(args, "system", None), backend=getattr(args, "backend", None),
                         p_target=getattr(args, "p_target", None), feature_config=feature_config_from(args),
                         backend_params=params, n_jobs=getattr(args, "jobs", 1), **norm, **kwargs)


def _manifest(args):
    """``--manifest CSV`` as given, or ``--data-dir DIR`` read as a speaker,path manifest."""
    if not getattr(args, "data_dir", None):
        return args.manifest
    from speakerid.data.kaldi_manifests import data_dir_manifest

    return data_dir_manifest(args.data_dir)[["speaker", "path"]]


def _train_ubm(args):
    from speakerid.backends.base import get_backend

    show_warnings()
    params = {} if args.augment is None else {"n_augment": args.augment}
    with report_stages():
        result = get_backend("gmm-ubm").train(args.model_dir, _manifest(args),
                                              feature_config=feature_config_from(args), n_jobs=args.jobs,
                                              random_state=args.seed, n_components=args.components,
                                              max_iter=args.iterations, relevance_factor=args.relevance_factor,
                                              top_c=args.top_c, verbose=stage_lines, scheduler=args.scheduler,
                                              cache_dir=args.cache, subsample=args.subsample, force=args.force,
                                              **params)
    report_removed(result)
    reused = result["n_files"] - result["n_extracted"]
    print(f"trained a {result['n_components']}-component UBM on {result['n_features']}-dim features "
          f"({result['n_iter'] or '?'} EM iterations{f'; {reused} files read from the store' if reused else ''})"
          f" -> {result['model']}")


def _enroll(args):
    # only the per-speaker GMM backend (no background model) may start a directory here
    verifier = _verifier(args, must_exist=args.backend != "gmm", scheduler=args.scheduler, cache_dir=args.cache)
    if (args.manifest or args.data_dir) and (args.speaker or args.files) or (args.manifest and args.data_dir):
        raise ParameterError("give one of --manifest, --data-dir, or --speaker with FILE arguments")
    if not (args.manifest or args.data_dir or (args.speaker and args.files)):
        raise ParameterError("nothing to enroll: give --manifest CSV, or --speaker ID FILE...")
    with report_stages():
        if args.manifest or args.data_dir:
            results = verifier.enroll_manifest(_manifest(args), n_augment=args.augment, mode=args.mode)
        else:
            _check_identity(args, verifier)
            results = [verifier.enroll(args.speaker, args.files, n_augment=args.augment, mode=args.mode)]
    if args.json:
        print_json({"enrolled": results})
    else:
        for r in results:
            what = {"added": "added to", "replaced": "replaced"}.get(r.get("action"), "enrolled")
            print(f"{what} {r['speaker']}: {r['n_files']} file(s), {r['total_seconds']:.1f} s of audio, "
                  f"{r['n_frames']} frames ({r['backend']})")


def _check_identity(args, verifier) -> None:
    """One speaker's files: the voice is no other enrolled speaker's (unless --allow-duplicate), and they agree."""
    import warnings

    from speakerid.data.manifests import validate_speaker_id
    from speakerid.exceptions import AudioWarning
    from speakerid.scoring.enroll_checks import check_identity
    from speakerid.scoring.opening import open_verifier

    speaker = validate_speaker_id(args.speaker, for_enrollment=True)
    verifier.enrolled_already([speaker], args.mode)        # refused before any scoring
    if verifier.missing_background() is not None or not verifier.speakers() and len(args.files) < 2:
        return
    from speakerid._utils.progress import no_progress

    backend = None if getattr(verifier, "backend_name", None) == "fused" else verifier.backend_name
    with no_progress():
        check_identity(verifier, speaker, args.files, allow_duplicate=args.allow_duplicate,
                       reopen=lambda folder: open_verifier(folder, backend=backend, n_jobs=args.jobs),
                       warn=lambda text: warnings.warn(text, AudioWarning, stacklevel=2))


def _status(args, accepted: bool):
    return ExitStatus.REJECTED if args.exit_code and not accepted else ExitStatus.OK


def _verify(args):
    result = _verifier(args).verify(args.speaker, args.file, threshold=args.threshold)
    if args.json:
        print_json(result)
    elif result["scale"] == "llr":
        print(f"{'accepted' if result['accepted'] else 'rejected'}: {args.file} as {result['speaker']!r}: "
              f"LLR {result['llr']:.2f}, P(same speaker) = {result['posterior']:.2f} at prior "
              f"{result['p_target']:g} (threshold {result['threshold']:.2f}: {result['threshold_source']})")
    else:
        print(f"{result['decision'].upper()}: {args.file} as {result['speaker']!r} score {result['score']:.4f} "
              f"on the {result['scale']!r} scale, not a calibrated LLR (threshold {result['threshold']:.4f}: "
              f"{result['threshold_source']})")
    return _status(args, result["accepted"])


def _identify(args):
    result = _verifier(args).identify(args.file, top=args.top, threshold=args.threshold)
    if args.json:
        print_json(result)
        return _status(args, not result["rejected"])
    llr = result["scale"] == "llr"
    what = "LLR" if llr else f"{result['scale']!r} score (not a calibrated LLR)"
    digits = ".2f" if llr else ".4f"         # as verify prints each scale
    if llr and "p_nobody" in result:       # a fused system: open-set posteriors over N + 1 hypotheses
        verdict = ("no enrolled speaker matches" if result["rejected"] else f"best match {result['best']} "
                   f"(P = {result['posterior']:.2f})")
        print(f"{args.file}: {verdict}")
        print(f"  P(nobody enrolled) = {result['p_nobody']:.2f}: {result['n_enrolled']} enrolled speakers or nobody, "
              f"prior {result['p_target']:g} that the voice is enrolled; open-set LLR {result['open_llr']:.2f} "
              f"{'<' if result['rejected'] else '>='} threshold {result['threshold']:.2f} ({result['threshold_source']})")
    elif result["rejected"]:
        print(f"{args.file}: no enrolled speaker matches (every {what} is below the threshold "
              f"{result['threshold']:{digits}}: {result['threshold_source']})")
    else:
        print(f"{args.file}: best match {result['best']} (threshold {result['threshold']:{digits}}: "
              f"{result['threshold_source']})")
    for rank, c in enumerate(result["candidates"], 1):
        extra = f"  P = {c['posterior']:.2f}" if llr else ""
        print(f"  {rank:>2}. {c['speaker']:<24} {c['score']:9{digits}}{extra}")
    return _status(args, not result["rejected"])


def _speakers(args):
    verifier = _verifier(args)
    info = verifier.speaker_info()
    partial = verifier.partial_speakers() if hasattr(verifier, "partial_speakers") else {}
    if partial:
        import warnings

        shown = "; ".join(f"{s} (missing from {', '.join(where)})" for s, where in list(partial.items())[:5])
        warnings.warn(f"{len(partial)} speaker(s) are enrolled in some systems only and cannot be scored: {shown}"
                      f"{' ...' if len(partial) > 5 else ''}; enroll them again with 'speakerid enroll --replace "
                      "--speaker ID FILE...'", UserWarning, stacklevel=2)
    if args.json:
        print_json({"speakers": info})
        return
    if not info:
        print(f"no speaker is enrolled in {args.model_dir}")
    for s in info:
        print(f"{s['speaker']:<24} {s['n_files'] or 0:>4} file(s) {s['total_seconds'] or 0:8.1f} s  "
              f"enrolled {s['enrolled_at']}")


def _remove(args):
    _verifier(args).remove(*args.speaker)
    print(f"removed {', '.join(args.speaker)}")
