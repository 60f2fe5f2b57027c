"""train-siamese, train-mlp: train the neural backends from a manifest (then enroll/verify with --backend)."""

from __future__ import annotations

import math
import sys

from speakerid.cli._common import (
    add_jobs,
    add_model_dir,
    add_retrain_force,
    print_json,
    read_feature_config,
    report_removed,
    seed_value,
    show_warnings,
)
from speakerid.exceptions import ParameterError


def register(sub) -> None:
    p = sub.add_parser("train-siamese",
                       help="train the Siamese MLP (contrastive loss) on a speaker,path manifest")
    _add_common(p, hidden="128,64", epochs=50)
    p.add_argument("--margin", type=float, default=1.0, help="contrastive margin (default 1.0)")
    p.add_argument("--weight-decay", type=float, default=1e-2, help="decoupled weight decay (default 1e-2)")
    p.add_argument("--hard-negatives", type=float, default=0.5, metavar="SHARE",
                   help="share of impostor pairs picked as the nearest of 10 candidates (default 0.5)")
    p.add_argument("--scoring", choices=("distance", "cosine"), default="distance",
                   help="trial score: -Euclidean distance (default) or cosine of the embeddings")
    p.add_argument("--no-l2-normalize", action="store_true", help="do not L2-normalise the embeddings")
    p.set_defaults(handler=_train_siamese)

    p = sub.add_parser("train-mlp", help="train the MLP speaker classifier (embeddings for --backend mlp)")
    _add_common(p, hidden="256,128", epochs=100)
    p.add_argument("--alpha", type=float, default=1e-3, help="L2 penalty (default 1e-3)")
    p.set_defaults(handler=_train_mlp)


def _add_common(p, hidden: str, epochs: int) -> None:
    p.add_argument("--manifest", required=True, metavar="CSV", help="speaker,path manifest of training audio")
    add_model_dir(p)
    p.add_argument("--epochs", type=int, default=epochs, help=f"epochs at most (default {epochs})")
    p.add_argument("--patience", type=int, default=10, help="early-stopping patience in epochs (default 10)")
    p.add_argument("--hidden", default=hidden, metavar="N,N", help=f"hidden layer widths (default {hidden})")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default 64)")
    p.add_argument("--segment-s", type=float, default=2.0, metavar="S",
                   help="cut recordings into S-second segments, one example each; 0 = whole files "
                        "(default 2)")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share held out for validation (default 0.2)")
    add_retrain_force(p)
    p.add_argument("--seed", type=seed_value, default=0, help="random seed (default 0)")
    p.add_argument("--features", default=None, metavar="NAMES",
                   help="for a new model directory: comma-separated frame features, e.g. "
                        "mfcc,logmel,zcr,rolloff,flux,chroma (default mfcc: 20 MFCC + delta, energy VAD, "
                        "no CMVN)")
    p.add_argument("--feature-config", metavar="JSON", default=None,
                   help="for a new model directory: a FeatureConfig JSON file")
    add_jobs(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (epoch lines go to stderr)")


def _hidden(text: str) -> tuple:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ParameterError(f"--hidden must be comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise ParameterError(f"--hidden must list positive layer widths, got {text!r}")
    return sizes


def _feature_config(args):
    from speakerid.models.clipvec import NEURAL_FEATURE_CONFIG

    if args.feature_config:
        return read_feature_config(args.feature_config)
    if args.features:
        return NEURAL_FEATURE_CONFIG.replace(features=tuple(n.strip() for n in args.features.split(",")))
    return None


def _epoch_printer(args):
    out = sys.stderr if args.json else sys.stdout

    def show(record):
        parts = [f"epoch {record['epoch']:>3}", f"loss {record['train_loss']:.4f}"]
        if math.isfinite(record.get("val_loss", math.nan)):
            parts.append(f"val loss {record['val_loss']:.4f}")
        parts.append(f"acc {record['train_accuracy']:.3f}")
        if math.isfinite(record.get("val_accuracy", math.nan)):
            parts.append(f"val acc {record['val_accuracy']:.3f}")
        if math.isfinite(record.get("val_eer", math.nan)):
            parts.append(f"val EER {100 * record['val_eer']:.2f} %")
        print("  ".join(parts) + f"  ({record['seconds']:.1f} s)", file=out, flush=True)

    return show


def _train(args, backend: str, **params) -> dict | None:
    """Train ``backend`` through its plug-in hook with the common options; ``None`` once printed as JSON."""
    from speakerid.backends.base import get_backend

    show_warnings()
    result = get_backend(backend).train(
        args.model_dir, args.manifest, feature_config=_feature_config(args), n_jobs=args.jobs,
        random_state=args.seed, hidden_sizes=_hidden(args.hidden), learning_rate=args.lr,
        batch_size=args.batch_size, max_epochs=args.epochs, patience=args.patience, segment_s=args.segment_s,
        val_fraction=args.val_fraction, on_epoch=_epoch_printer(args), force=args.force, **params)
    report_removed(result)
    if not args.json:
        return result
    print_json({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in result.items() if k != "best"})
    return None


#: Per backend: the summary line, the validation figure that may be missing, and the validation line.
_SUMMARIES = {
    "siamese": ("trained a Siamese MLP on {n_examples} segments of {n_files} files ({n_train_speakers} training / "
                "{n_val_speakers} validation speakers); best epoch {best_epoch} of {epochs_run}", "val_eer",
                "validation EER {val_eer_pct:.2f} %, pair accuracy at the EER threshold {val_pair_accuracy_pct:.1f} %"),
    "mlp": ("trained an MLP speaker classifier on {n_examples} segments of {n_files} files ({n_speakers} speakers); "
            "best epoch {best_epoch} of {epochs_run}", "val_accuracy",
            "validation (held-out segments) top-1 accuracy {val_accuracy_pct:.1f} %, top-5 "
            "{val_top5_accuracy_pct:.1f} %"),
}


def _print_summary(backend: str, result: dict) -> None:
    summary, figure, validation = _SUMMARIES[backend]
    shown = {**result, **{f"{k}_pct": 100 * v for k, v in result.items() if isinstance(v, float)}}
    print(summary.format(**shown))
    if math.isfinite(result[figure]):
        print(validation.format(**shown))
    print(f"-> {result['model']} (curves: {result['plot']}, {result['history']})")


def _train_siamese(args):
    result = _train(args, "siamese", margin=args.margin, weight_decay=args.weight_decay,
                    hard_negatives=args.hard_negatives, scoring=args.scoring,
                    l2_normalize=not args.no_l2_normalize)
    if result is not None:
        _print_summary("siamese", result)


def _train_mlp(args):
    result = _train(args, "mlp", alpha=args.alpha)
    if result is not None:
        _print_summary("mlp", result)
