"""Options and printing shared by several sub-commands."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import warnings
from enum import IntEnum

from speakerid.features.config import FeatureConfig

#: Commands that use the speaker store over the shipped model when no ``--model-dir`` is given.
STORE_COMMANDS = ("enroll", "verify", "identify", "speakers", "remove", "score", "segments", "serve")


def add_model_dir(parser, required=True, *, store=False):
    if store:
        parser.add_argument("--model-dir", default=None, metavar="DIR",
                            help="model directory (default: your speaker store over the model shipped with speakerid; "
                                 "'speakerid model-card' says where it is)")
    else:
        parser.add_argument("--model-dir", required=required, metavar="DIR", help="model directory")


#: What each command that works on one system's model directory says when given a fused one (``speakerid train``).
_FUSED_ADVICE = {
    "score-pairs": "give --model-dir {dir}/systems/NAME for one system's own scores of the pairs (not "
                   "calibrated), or enroll the enrollment side and score a trial list with 'speakerid score' "
                   "for calibrated LLRs",
    "embed": "embeddings are one system's vectors: give --model-dir {dir}/systems/ivector (i-vectors) or "
             "{dir}/systems/gmm-ubm (GMM mean supervectors)",
    "retrain": "its systems are trained together by 'speakerid train --model-dir {dir} --force'; this command would "
               "write a background model that none of them uses (one system alone: --model-dir {dir}/systems/NAME)",
    "enroll --backend": "enroll without --backend (every system, the narrowband ones too), or give --model-dir "
              "{dir}/systems/NAME for one system alone",
}


def refuse_fused(args) -> None:
    """Refuse, with the right advice, a command that would use a fused directory as one system's directory."""
    command, model_dir = getattr(args, "command", None), getattr(args, "model_dir", None)
    key = ("retrain" if command in ("train-ubm", "train-ivector", "train-siamese", "train-mlp")
           else "enroll --backend" if command == "enroll" and getattr(args, "backend", None) else command)
    if key not in _FUSED_ADVICE or model_dir is None:
        return
    from speakerid.exceptions import ParameterError
    from speakerid.scoring.llr import has_fusion
    from speakerid.store import SYSTEMS_DIR

    if not has_fusion(model_dir):
        return
    what = f"enroll --backend {args.backend}" if key == "enroll --backend" else command
    systems = os.path.join(model_dir, SYSTEMS_DIR)
    names = ", ".join(sorted(os.listdir(systems))) if os.path.isdir(systems) else "none yet"
    raise ParameterError(f"{model_dir} holds the fused systems of 'speakerid train' ({names}), which {what} cannot "
                         f"use as a whole: {_FUSED_ADVICE[key].format(dir=model_dir)}")


def use_store(args) -> None:
    """Point a store command given no ``--model-dir`` at the speaker store (made on first use); refuse a claim
    on a speaker enrolled only under an older shipped model, and warn about such speakers when listing."""
    if getattr(args, "command", None) not in STORE_COMMANDS or getattr(args, "model_dir", "") is not None:
        return
    from speakerid import pretrained

    args.model_dir = str(pretrained.user_model_dir())
    if args.command == "verify":
        pretrained.check_speaker(args.model_dir, args.speaker)
    elif args.command in ("identify", "speakers"):
        pretrained.warn_older(args.model_dir)


def check_model_dir(path) -> None:
    """The one message of every command given a ``--model-dir`` that does not exist (ParameterError, exit 2)."""
    from speakerid.exceptions import ParameterError

    if not os.path.isdir(path):
        raise ParameterError(f"{path}: no such model directory (make one with 'speakerid train', or the expert "
                             "commands' 'speakerid train-ubm')")


def add_backend(parser):
    from speakerid.backends.base import available_backends

    parser.add_argument("--backend", choices=available_backends(), default=None,
                        help="speaker model kind (default: the directory's, else gmm-ubm)")


def jobs_count(text: str) -> int:
    """argparse type of ``--jobs``: a whole number other than 0 (negative counts from the number of cores)."""
    value = _whole_number(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must not be 0 (1 = serial, -1 = all cores)")
    return value


def seed_value(text: str) -> int:
    """argparse type of ``--seed``: a whole number in [0, 2**32 - 1], what numpy's generators accept."""
    value = _whole_number(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 0 and {2**32 - 1}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    return _at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0."""
    return _at_least(text, 0)


def _at_least(text: str, minimum: int) -> int:
    value = _whole_number(text)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def non_negative_seconds(text: str) -> float:
    """argparse type: a finite number of seconds >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """argparse type of thresholds and other real numbers that must be finite (no nan, no inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def read_feature_config(path) -> FeatureConfig:
    """A FeatureConfig from a JSON file named on the command line; any problem is a ParameterError naming it."""
    from pathlib import Path

    from speakerid.exceptions import ParameterError

    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"{path}: no such feature configuration file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ParameterError(f"{path}: not a UTF-8 JSON feature configuration ({exc.reason})") from None
    except OSError as exc:
        raise ParameterError(f"{path}: cannot read the feature configuration ({exc.strerror})") from None
    try:
        return FeatureConfig.from_json(text)
    except ParameterError as exc:
        raise ParameterError(f"{path}: {exc}") from None


def add_retrain_force(parser) -> None:
    """``--force`` of the expert training commands (see :meth:`speakerid.backends.base.Backend.train`)."""
    parser.add_argument("--force", action="store_true",
                        help="retrain a directory with speakers enrolled against the model this replaces, removing "
                             "those enrollments (they could no longer be scored)")


def report_removed(result: dict) -> None:
    """One line on stderr per backend whose enrollments a forced retraining removed."""
    for backend, speakers in (result.get("removed_enrollments") or {}).items():
        print(f"speakerid: removed {len(speakers)} enrollment(s) of backend {backend} made against the replaced "
              f"model: {', '.join(speakers)}; enroll them again", file=sys.stderr)


def add_jobs(parser):
    """``--jobs`` of the neural training commands (train-siamese, train-mlp; the map-reduce ones take
    :func:`add_workers`): feature extraction on every core unless told otherwise (the model does not depend on it:
    each file's noisy copies are seeded by its position in the manifest)."""
    parser.add_argument("--jobs", "-j", type=jobs_count, default=-1, metavar="N",
                        help="parallel feature extraction workers (default -1 = all cores; 1 = serial)")


def add_workers(parser, jobs: int = 1):
    """``--jobs``, ``--scheduler`` and ``--cache`` of the streamed commands (score, score-pairs, embed) and of the
    map-reduce training ones (train-ubm, train-ivector, enroll, train). ``jobs=-1`` (every core by default) where
    the result does not depend on the worker count: the trainers' models and ``score``'s scores."""
    default = "default -1 = all cores; 1 = serial" if jobs == -1 else f"default {jobs}; -1 = all cores"
    parser.add_argument("--jobs", "-j", type=jobs_count, default=jobs, metavar="N",
                        help=f"parallel workers ({default}); Dask workers with --scheduler local")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="run on Dask: 'local' starts a LocalCluster, tcp://host:port joins a running one")
    parser.add_argument("--cache", metavar="DIR", default=None,
                        help="on-disk feature cache folder (a second run, or one resumed after a stop, reads no audio)")


def add_out_format(parser):
    """``--out-format`` of the commands that write score files (:mod:`speakerid.data.score_formats`)."""
    from speakerid.data.score_formats import SCORE_FORMATS

    parser.add_argument("--out-format", choices=SCORE_FORMATS, default="csv",
                        help="csv (the trial rows + score, error; default), kaldi (enroll test score), voxceleb "
                             "(score enroll test, as VoxSRC submissions) or nist (modelid segmentid side LLR)")


def add_feature_options(parser):
    group = parser.add_argument_group("features (only when the model directory is new)")
    group.add_argument("--sample-rate", type=int, default=None, help="analysis rate in Hz (default 16000)")
    group.add_argument("--n-ceps", type=int, default=None, help="cepstral coefficients (default 20)")
    group.add_argument("--feature-config", metavar="JSON", default=None,
                       help="a FeatureConfig as a JSON file (overrides the options above and below)")
    group.add_argument("--min-speech", type=non_negative_seconds, default=None, metavar="SECONDS",
                       help="refuse files with less detected speech than this (default 0.1 s; 0 disables)")


def feature_config_from(args):
    """The FeatureConfig asked for on the command line, or None when nothing was asked."""
    if getattr(args, "feature_config", None):
        return read_feature_config(args.feature_config)
    changes = {}
    if getattr(args, "sample_rate", None):
        changes["sample_rate"] = args.sample_rate
    if getattr(args, "n_ceps", None):
        changes["n_ceps"] = args.n_ceps
    if getattr(args, "min_speech", None) is not None:
        changes["min_speech_s"] = args.min_speech
    return FeatureConfig(**changes) if changes else None


def add_json(parser, what: str = "one JSON object") -> None:
    """The ``--json`` switch: print ``what`` (valid JSON, on stdout) instead of text."""
    parser.add_argument("--json", action="store_true", help=f"print {what}")


def print_json(obj) -> None:
    """Print ``obj`` as one line of standard JSON on stdout (infinities as "inf"/"-inf", NaN as null)."""
    from speakerid._utils.jsontext import json_safe

    json.dump(json_safe(obj), sys.stdout, ensure_ascii=False, sort_keys=False, allow_nan=False)
    sys.stdout.write("\n")


_SHOWN_WARNINGS: set = set()
#: Per-file warnings ("FILE: text") already printed once: text -> files with it not printed.
_REPEATED_WARNINGS: dict = {}


def _file_warning(text: str) -> str | None:
    """The text of a per-file warning (``"FILE: text"`` where FILE exists), else ``None``."""
    name, sep, rest = text.partition(": ")
    return rest if sep and rest and os.path.exists(name) else None


def _show_warning(message, category, filename, lineno, file=None, line=None):
    text = " ".join(str(message).split())
    if text in _SHOWN_WARNINGS:
        return
    _SHOWN_WARNINGS.add(text)
    per_file = _file_warning(text)
    if per_file is not None and per_file in _REPEATED_WARNINGS:   # the same for another file: counted
        _REPEATED_WARNINGS[per_file] += 1
        return
    if per_file is not None:
        _REPEATED_WARNINGS[per_file] = 0
    print(f"speakerid: warning: {text}", file=sys.stderr)


def _show_repeats() -> None:
    for text, more in _REPEATED_WARNINGS.items():
        if more:
            print(f"speakerid: warning: {more} more file(s) with the same warning: {text}", file=sys.stderr)
    _REPEATED_WARNINGS.clear()


def show_warnings() -> None:
    """Print warnings as one line each on stderr (``speakerid: warning: ...``), each text once per command; a
    per-file warning (``FILE: text``) is printed for its first file, and once more at the end of the command
    (:func:`one_line_warnings`) with the count of the other files that had it.

    :func:`speakerid.cli.main.main` installs this around every command (see :func:`one_line_warnings`);
    stdout stays free for the command's output (e.g. ``--json``).
    """
    warnings.showwarning = _show_warning
    warnings.simplefilter("default")


@contextlib.contextmanager
def one_line_warnings():
    """Within the block, warnings print as :func:`show_warnings` prints them; the previous handling is restored
    after it (so in-process callers of ``main`` keep their own), after the count of repeated per-file warnings."""
    with warnings.catch_warnings():
        _SHOWN_WARNINGS.clear()
        _REPEATED_WARNINGS.clear()
        show_warnings()
        try:
            yield
        finally:
            _show_repeats()


class ExitStatus(IntEnum):
    """Process exit codes of the ``speakerid`` command."""

    OK = 0
    ERROR = 1
    USAGE = 2
    AUDIO = 3
    MANIFEST = 4
    MODEL_FORMAT = 5
    CONFIG_MISMATCH = 6
    NOT_FITTED = 7
    UNKNOWN_SPEAKER = 8
    PARTIAL_FAILURE = 9
    REJECTED = 10          # verify/identify --exit-code: the claim was rejected (no match)
    INTERRUPTED = 130
