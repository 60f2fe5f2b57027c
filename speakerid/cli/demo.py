"""``speakerid demo``: the whole pipeline on a generated synthetic corpus (what ``make demo`` runs)."""

from __future__ import annotations

from speakerid.cli._common import show_warnings

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the pipeline end to end on a synthetic corpus (make demo)",
                       description="Generate (or reuse) a synthetic corpus, extract features, train a UBM, enroll, "
                                   "verify, identify and score every trial, printing each step.")
    p.add_argument("--data-dir", default="data/synth", metavar="DIR", help="corpus folder (default data/synth)")
    p.add_argument("--model-dir", default="data/models", metavar="DIR", help="model folder (default data/models)")
    p.add_argument("--report-dir", default="data/report", metavar="DIR",
                   help="scores and evaluation report (default data/report)")
    p.add_argument("--speakers", type=int, default=30, help="evaluated speakers (default 30)")
    p.add_argument("--utterances", type=int, default=10, help="utterances per speaker (default 10)")
    p.add_argument("--components", type=int, default=64, help="UBM components (default 64)")
    p.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    p.add_argument("--force", action="store_true", help="regenerate the corpus even when it is up to date")
    p.add_argument("--shared", default="../shared", metavar="DIR",
                   help="shared data folder: when it is there, the shipped model's step enrolls real speakers from "
                        "it (default ../shared)")
    p.set_defaults(handler=_demo)


def _demo(args):
    from speakerid.demo import run_demo

    show_warnings()
    run_demo(args.data_dir, args.model_dir, args.report_dir, n_speakers=args.speakers, n_utterances=args.utterances,
             n_components=args.components, random_state=args.seed, force=args.force, shared=args.shared)
