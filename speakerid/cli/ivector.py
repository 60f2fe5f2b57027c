"""train-ivector: train the i-vector extractor and its PLDA back end (then enroll/score with --backend ivector)."""

from __future__ import annotations

import sys

from speakerid.cli._common import (
    add_model_dir,
    add_retrain_force,
    add_workers,
    non_negative_int,
    non_negative_seconds,
    positive_int,
    print_json,
    report_removed,
    seed_value,
    show_warnings,
)


def register(sub) -> None:
    p = sub.add_parser("train-ivector", help="train the i-vector extractor + LDA/WCCN/PLDA on a background "
                                             "manifest (needs the directory's UBM)")
    p.add_argument("--manifest", required=True, metavar="CSV", help="speaker,path manifest of background audio")
    add_model_dir(p)
    p.add_argument("--rank", type=positive_int, default=200, help="i-vector dimension (default 200)")
    p.add_argument("--lda-dim", type=non_negative_int, default=0,
                   help="LDA dimension, < the number of background speakers; 0 = no LDA (default 0)")
    p.add_argument("--segment-s", type=non_negative_seconds, default=1.5, metavar="S",
                   help="cut every recording into S-second segments, the 'sessions' of its speaker; 0 = whole "
                        "files (default 1.5)")
    p.add_argument("--augment", type=non_negative_int, default=2, metavar="N",
                   help="add N noisy copies (white/pink/brown noise, 0-20 dB SNR) of every file (default 2)")
    p.add_argument("--iterations", type=positive_int, default=10, help="T-matrix EM iterations (default 10)")
    p.add_argument("--top-c", type=non_negative_int, default=0, metavar="C",
                   help="statistics from each frame's C most likely UBM components; 0 = all (default 0)")
    p.add_argument("--scoring", choices=("cosine", "plda"), default="cosine",
                   help="default trial score (default cosine)")
    p.add_argument("--enroll", choices=("pool", "average"), default="pool",
                   help="several enrollment files: pool their statistics into one i-vector (default) or "
                        "average one i-vector per file")
    p.add_argument("--no-wccn", action="store_true", help="skip WCCN after LDA")
    p.add_argument("--ubm-components", type=non_negative_int, default=32, metavar="K",
                   help="train the system's own K-component UBM on the manifest's recordings (default 32, chosen "
                        "on dev); 0 uses the directory's ubm.npz")
    p.add_argument("--seed", type=seed_value, default=0, help="random seed (default 0)")
    add_retrain_force(p)
    add_workers(p, jobs=-1)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_train_ivector)


def _train_ivector(args):
    from speakerid.backends.base import get_backend

    show_warnings()
    result = get_backend("ivector").train(
        args.model_dir, args.manifest, n_jobs=args.jobs, random_state=args.seed, verbose=not args.json,
        rank=args.rank, lda_dim=args.lda_dim, segment_s=args.segment_s, n_augment=args.augment,
        max_iter=args.iterations, top_c=args.top_c or None, scoring=args.scoring, enroll=args.enroll,
        wccn=not args.no_wccn, ubm_components=args.ubm_components or None, scheduler=args.scheduler,
        cache_dir=args.cache, force=args.force)
    report_removed(result)
    if args.json:
        print_json(result)
        return
    history = result["log_likelihood_history"]
    print(f"trained an i-vector extractor (rank {result['rank']}, back end {result['dim']} dims) on "
          f"{result['n_segments']} segments of {result['n_files']} files ({result['n_speakers']} speakers) "
          f"in {result['seconds']} s; T log-likelihood {history[0]:.1f} -> {history[-1]:.1f}", file=sys.stdout)
    eers = ", ".join(f"{k} {100 * v:.2f} %" for k, v in result["train_eer"].items())
    print(f"EER on training segment pairs (optimistic): {eers}")
    print(f"-> {result['model']}")
