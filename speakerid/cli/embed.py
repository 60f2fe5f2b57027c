"""embed: export each utterance's fixed-length representation (i-vector, embedding, GMM supervector) per id."""

from __future__ import annotations

import sys

from speakerid.cli import _common as common


def register(sub) -> None:
    from speakerid.data.embedding_io import EMBEDDING_FORMATS

    p = sub.add_parser("embed", help="export utterance vectors (i-vector, Siamese/MLP embedding, GMM supervector)",
                       description="Embed every utterance of a speaker,path manifest or a Kaldi data directory "
                                   "and write the vectors by utterance id: Kaldi ark/scp (FILE.ark + FILE.scp, "
                                   "readable by kaldiio and Kaldi's ivector tools), .npz (ids, vectors) or CSV.")
    common.add_model_dir(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", metavar="CSV", help="speaker,path manifest (ids: <speaker>-<file stem>)")
    source.add_argument("--data-dir", metavar="DIR", help="Kaldi data directory (its utterance ids; segments ok)")
    p.add_argument("--out", required=True, metavar="FILE", help="x.ark, x.npz or x.csv")
    p.add_argument("--format", choices=EMBEDDING_FORMATS, default=None, help="default: from FILE's extension")
    p.add_argument("--allow-commands", action="store_true",
                   help="run 'command |' entries of wav.scp (refused by default; see SECURITY.md)")
    common.add_backend(p)
    common.add_workers(p)
    p.add_argument("--strict", action="store_true", help="exit 9 when any utterance could not be embedded")
    common.add_json(p, "the summary as one JSON object")
    p.set_defaults(handler=_embed)


def _embed(args):
    from speakerid.scoring.embed import PartialExportError, export_embeddings

    try:
        result = export_embeddings(args.model_dir, args.out, manifest=args.manifest, data_dir=args.data_dir,
                                   fmt=args.format, backend=args.backend, allow_commands=args.allow_commands,
                                   n_jobs=args.jobs, scheduler=args.scheduler, cache_dir=args.cache,
                                   strict=args.strict)
        status = common.ExitStatus.OK
    except PartialExportError as exc:
        result, status = exc.result, common.ExitStatus.PARTIAL_FAILURE
    if args.json:
        common.print_json({"n_utterances": result.n_utterances, "n_written": result.n_written, "dim": result.dim,
                    "out": str(result.out), "format": result.format, "backend": result.backend,
                    "seconds": round(result.seconds, 3), "runner": result.runner,
                    "errors": [{"utterance": u, "reason": r} for u, r in result.errors]})
        return status
    scp = f" + {result.out.with_suffix('.scp')}" if result.format == "ark" else ""
    print(f"embedded {result.n_written} of {result.n_utterances} utterances ({result.backend}, dimension "
          f"{result.dim}) in {result.seconds:.1f} s [{result.runner}] -> {result.out}{scp}")
    for utt, reason in result.errors[:20]:
        print(f"  error: {utt}: {reason}")
    if status == common.ExitStatus.PARTIAL_FAILURE:
        print(f"speakerid: error: {len(result.errors)} utterance(s) could not be embedded", file=sys.stderr)
    return status
