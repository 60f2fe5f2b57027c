"""serve: the web page (enroll, verify, identify from a browser, and a JSON API) over a model directory."""

from __future__ import annotations

import ipaddress
import sys

from speakerid.cli._common import add_backend, add_model_dir, check_model_dir
from speakerid.exceptions import ParameterError, SpeakerIDError


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve the web page (speakers, enroll, verify, identify) and its JSON API")
    add_model_dir(p, store=True)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; the page has no login)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    add_backend(p)
    p.add_argument("--max-upload-mb", type=float, default=20.0, metavar="MB",
                   help="largest request accepted, in MB; bigger uploads get HTTP 413 (default 20)")
    p.add_argument("--threads", type=int, default=4, help="request threads of the waitress server (default 4)")
    p.set_defaults(handler=_serve)


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine.

    Examples
    --------
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, True, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: only localhost is known to be local
        return False


def _serve(args):

    if not 0 < args.port < 65536:
        raise ParameterError(f"--port must be between 1 and 65535, got {args.port}")
    if args.threads < 1:
        raise ParameterError(f"--threads must be >= 1, got {args.threads}")
    check_model_dir(args.model_dir)
    try:
        import flask  # noqa: F401
    except ModuleNotFoundError:
        raise SpeakerIDError("the web page needs Flask: pip install 'speakerid[web]'") from None
    from speakerid.web import create_app

    app = create_app(args.model_dir, backend=args.backend, max_upload_mb=args.max_upload_mb)
    import logging

    from flask.logging import default_handler

    app.logger.setLevel(logging.INFO)      # one line per request on stderr (speakerid.web.security._log),
    if default_handler not in app.logger.handlers:       # printed by Flask's own handler only: waitress
        app.logger.addHandler(default_handler)            # configures a root handler that would print it again
    app.logger.propagate = False
    if not is_loopback(args.host):
        print(f"speakerid: warning: listening on {args.host}, reachable from other machines; the page has no "
              "login and anyone who can reach it can enroll and remove voices", file=sys.stderr)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"speakerid: serving {args.model_dir} at http://{shown}:{args.port}/ (Ctrl-C stops)", file=sys.stderr)
    try:
        import waitress
    except ModuleNotFoundError:
        waitress = None
    try:
        if waitress is not None:
            waitress.serve(app, host=args.host, port=args.port, threads=args.threads)
        else:
            print("speakerid: warning: waitress is not installed, using Flask's development server "
                  "(pip install waitress)", file=sys.stderr)
            app.run(host=args.host, port=args.port, threaded=True, debug=False, use_reloader=False)
    except OSError as exc:  # port in use, address not available
        raise ParameterError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        print("speakerid: stopped", file=sys.stderr)
