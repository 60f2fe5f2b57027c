"""The ``speakerid`` command line: parse, call the Python API, print. No logic of its own.

``main(argv)`` returns an :class:`ExitStatus` instead of exiting, so the CLI is testable in-process. Errors are one
line on stderr (``speakerid: error: ...``) and a documented exit code; ``--traceback`` shows the stack instead.
Warnings are one line each on stderr (``speakerid: warning: ...``, also those raised in worker processes), so
``--json`` output on stdout stays one valid JSON object.

Exit codes
----------
0 OK; 1 other error (including out of memory and operating-system errors such as permission denied or a full
disk, shown as ``file: reason``); 2 usage / bad parameter; 3 audio error; 4 manifest error; 5 model file error;
6 configuration mismatch; 7 model not fitted / nothing enrolled; 8 unknown speaker; 9 finished, but some rows
failed (``score --strict``); 130 interrupted (Ctrl-C). Whatever the input, the command prints one line on
stderr, never a bare traceback (an unexpected exception is reported as such, exit 1).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from speakerid._version import __version__
from speakerid.cli._common import ExitStatus, one_line_warnings, refuse_fused, use_store
from speakerid.exceptions import SpeakerIDError

__all__ = ["ExitStatus", "main", "run", "build_parser"]


class _UsageError(Exception):
    """Raised by the parser instead of printing usage and calling ``sys.exit``."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump, no SystemExit
        raise _UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


# Each command module of speakerid/cli registers its sub-commands here, in the order shown by --help.
_COMMAND_MODULES = ("demo", "synth", "degrade", "protocol", "features", "pretrained", "train", "models", "scoring",
                    "pairs", "embed", "segments", "thresholds", "calibration", "fusion", "evaluation", "neural", "ivector", "serve")


def build_parser() -> argparse.ArgumentParser:
    codes = ", ".join(f"{int(code)} {code.name.lower().replace('_', ' ')}" for code in ExitStatus)
    parser = _Parser(prog="speakerid", description="Classical-ML speaker verification toolkit. Commands given no "
                     "--model-dir use your speaker store over the model shipped with speakerid ('speakerid "
                     "model-card').", epilog=f"exit codes: {codes}")
    parser.add_argument("--version", action="version", version=f"speakerid {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show the full stack trace on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    import importlib

    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"speakerid.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"speakerid.cli.{name}":
                continue  # that area is not built yet
            raise
        module.register(sub)
    parser.commands = sub.choices      # name -> sub-command parser (their errors point to their own --help)
    return parser


def main(argv=None) -> ExitStatus:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in argv
    try:
        with one_line_warnings():
            parser = build_parser()
            args, extra = parser.parse_known_args(argv)
            if extra:    # "speakerid score --bogus": see 'speakerid score --help', not the top-level one
                parser.commands.get(getattr(args, "command", None), parser).error(
                    f"unrecognized arguments: {' '.join(extra)}")
            if not getattr(args, "handler", None):
                parser.print_help(sys.stderr)
                return ExitStatus.USAGE
            args.argv = argv           # the command as typed (e.g. named by a training left unfinished)
            use_store(args)
            refuse_fused(args)
            status = args.handler(args)
        return ExitStatus(status if status is not None else ExitStatus.OK)
    except SystemExit as exc:  # --help / --version
        return ExitStatus(exc.code or 0) if isinstance(exc.code, int) else ExitStatus.OK
    except _UsageError as exc:
        print(f"{exc}", file=sys.stderr)
        return ExitStatus.USAGE
    except BrokenPipeError:  # output piped into `head` and the like: not an error of ours
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter quiet at exit
        except OSError:
            pass
        return ExitStatus.OK
    except KeyboardInterrupt:
        from speakerid._utils.parallel import stop_workers

        stop_workers()           # no worker process outlives the interrupted command
        print("speakerid: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except SpeakerIDError as exc:
        if show_traceback:
            traceback.print_exc()
        else:
            print(f"speakerid: error: {_one_line(exc)}", file=sys.stderr)
        return ExitStatus(exc.exit_code)
    except MemoryError:
        if show_traceback:
            traceback.print_exc()
        else:
            print("speakerid: error: out of memory (use smaller inputs or fewer --jobs)", file=sys.stderr)
        return ExitStatus.ERROR
    except OSError as exc:  # the system refused: permission denied, disk full, too many open files, ...
        if show_traceback:
            traceback.print_exc()
        else:
            print(f"speakerid: error: {_os_error(exc)}", file=sys.stderr)
        return ExitStatus.ERROR
    except Exception as exc:  # a bug: still one line unless asked, but say it is unexpected
        if show_traceback:
            traceback.print_exc()
        else:
            print(f"speakerid: unexpected error: {type(exc).__name__}: {_one_line(exc)} "
                  "(rerun with --traceback and report it)", file=sys.stderr)
        return ExitStatus.ERROR


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _os_error(exc: OSError) -> str:
    """``file: reason`` of an OSError, on one line (``[Errno 13]`` and the like left out)."""
    reason = exc.strerror or _one_line(exc)
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    text = f"{' -> '.join(names)}: {reason}" if names else reason
    return " ".join(text.split())


def run() -> None:  # console-script entry point
    sys.exit(int(main()))
