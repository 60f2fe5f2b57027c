"""Options and printing shared by several sub-commands."""

from __future__ import annotations

import json
import sys
import warnings

from ..features.config import FeatureConfig


def add_model_dir(parser, required=True):
    parser.add_argument("--model-dir", required=required, metavar="DIR", help="model directory")


def add_backend(parser):
    from ..backends import available_backends

    parser.add_argument("--backend", choices=available_backends(), default=None,
                        help="speaker model kind (default: the directory's, else gmm-ubm)")


def add_jobs(parser):
    parser.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                        help="parallel feature extraction processes (default 1; -1 = all cores)")


def add_feature_options(parser):
    group = parser.add_argument_group("features (only when the model directory is new)")
    group.add_argument("--sample-rate", type=int, default=None, help="analysis rate in Hz (default 16000)")
    group.add_argument("--n-ceps", type=int, default=None, help="cepstral coefficients (default 20)")
    group.add_argument("--feature-config", metavar="JSON", default=None,
                       help="a FeatureConfig as a JSON file (overrides the two options above)")


def feature_config_from(args):
    """The FeatureConfig asked for on the command line, or None when nothing was asked."""
    if getattr(args, "feature_config", None):
        from pathlib import Path

        from ..exceptions import ParameterError

        path = Path(args.feature_config)
        if not path.is_file():
            raise ParameterError(f"{path}: no such feature configuration file")
        return FeatureConfig.from_json(path.read_text(encoding="utf-8"))
    changes = {}
    if getattr(args, "sample_rate", None):
        changes["sample_rate"] = args.sample_rate
    if getattr(args, "n_ceps", None):
        changes["n_ceps"] = args.n_ceps
    return FeatureConfig(**changes) if changes else None


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, sort_keys=False)
    sys.stdout.write("\n")


def show_warnings() -> None:
    """Print warnings as one line each on stderr (``speakerid: warning: ...``), each text once."""
    seen = set()

    def _show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        if text not in seen:
            seen.add(text)
            print(f"speakerid: warning: {text}", file=sys.stderr)

    warnings.showwarning = _show
    warnings.simplefilter("default")
