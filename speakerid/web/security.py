"""CSRF protection and response headers of the web page.

Forms: a random token is kept in the (signed) session cookie and repeated in a hidden ``csrf_token`` field of
every form; each form POST must carry the same token. API: every ``POST /api/...`` must be
``multipart/form-data`` and carry an ``X-Requested-With`` header (any value). A cross-site HTML form cannot set a
custom header, and a cross-site script cannot send one without a CORS preflight, which this app never grants.
"""

from __future__ import annotations

import secrets

from flask import abort, current_app, request, session

__all__ = ["init_app", "csrf_token", "API_HEADER", "CSRF_FIELD"]

CSRF_FIELD = "csrf_token"
API_HEADER = "X-Requested-With"
_SESSION_KEY = "csrf"

# Only same-origin scripts, styles and form targets; images also from data: URIs (the inlined clip picture),
# media also from blob: URLs (the recording's preview).
_CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; script-src 'self'; style-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def csrf_token() -> str:
    """This session's CSRF token (created on first use)."""
    token = session.get(_SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[_SESSION_KEY] = token
    return token


def _check_post() -> None:
    if request.method != "POST":
        return
    if request.path.startswith("/api/"):
        if request.mimetype != "multipart/form-data":
            abort(415, description=f"API requests must be multipart/form-data (got {request.mimetype or 'none'}); "
                                   "e.g. curl -F file=@clip.wav")
        if not request.headers.get(API_HEADER):
            abort(400, description=f"API POST requests need an '{API_HEADER}' header (any value, e.g. "
                                   f"'{API_HEADER}: curl'; protection against cross-site requests)")
        return
    expected = session.get(_SESSION_KEY)
    given = request.form.get(CSRF_FIELD, "")
    if not expected or not isinstance(given, str) or not secrets.compare_digest(given, expected):
        abort(400, description="the form is missing its security token or it has expired "
                               "(CSRF check failed): reload the page and submit it again")


def _log(response):
    """One line per request in the server log: client, method, path, status, size."""
    current_app.logger.info("%s %s %s %s %s", request.remote_addr or "-", request.method, request.path,
                            response.status_code, response.content_length or 0)
    return response


def _headers(response):
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.method == "POST":
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app) -> None:
    app.before_request(_check_post)
    app.after_request(_headers)
    app.after_request(_log)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["CSRF_FIELD"] = CSRF_FIELD
