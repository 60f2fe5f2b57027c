"""Errors to HTTP: one-line messages (JSON under ``/api/``, the page with a message otherwise), never a stack trace.

======================================  ======  ==================================================
error                                   status  meaning
======================================  ======  ==================================================
ParameterError, AudioError              400     bad form field, speaker id or audio (message says which)
UnknownSpeakerError                     404     the claimed speaker is not enrolled
NotFittedError                          409     no UBM yet (run ``speakerid train-ubm``) or nobody enrolled
upload over ``--max-upload-mb``         413     request body too large
ModelFormatError, ConfigMismatchError   500     the model directory itself is broken or inconsistent
anything else                           500     a bug: logged with its stack, one generic line shown
======================================  ======  ==================================================
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from speakerid.exceptions import (
    AudioError,
    ManifestError,
    NotFittedError,
    ParameterError,
    SpeakerIDError,
    UnknownSpeakerError,
)

__all__ = ["init_app", "status_of"]


def status_of(exc: SpeakerIDError) -> int:
    """The HTTP status of a speakerid error.

    Examples
    --------
    >>> status_of(UnknownSpeakerError("x")), status_of(AudioError("bad")), status_of(NotFittedError("no UBM"))
    (404, 400, 409)
    """
    if isinstance(exc, UnknownSpeakerError):
        return 404
    if isinstance(exc, NotFittedError):
        return 409
    if isinstance(exc, (ParameterError, AudioError, ManifestError)):
        return 400
    return 500


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _respond(message: str, status: int, kind: str):
    if request.path.startswith("/api/"):
        response = jsonify({"error": message, "status": status, "kind": kind})
        response.status_code = status
        return response
    from speakerid.web.views import render_error_page

    return render_error_page(message, status)


def _hide_server_paths(message: str) -> str:
    """Replace the server's model directory in a message by words: visitors need not learn where it lives."""
    folder = current_app.config.get("SPEAKERID_MODEL_DIR")
    if folder:
        for form in {str(folder), str(Path(folder).resolve())}:
            message = message.replace(form + "/", "").replace(form, "the model directory")
    return message


def _speakerid_error(exc: SpeakerIDError):
    message = _hide_server_paths(_one_line(exc) or type(exc).__name__)
    if isinstance(exc, NotFittedError) and "train-ubm" not in message and "enrolled" in message:
        message += " (enroll a speaker first)"
    if status_of(exc) >= 500:
        current_app.logger.error("model directory problem: %s", message)
        message = f"model directory problem: {message}"
    return _respond(message, status_of(exc), type(exc).__name__)


def _too_large(exc):
    limit = current_app.config["SPEAKERID_MAX_UPLOAD_MB"]
    return _respond(f"upload too large: the limit is {limit:g} MB per request "
                    "(the server's --max-upload-mb option)", 413, "RequestEntityTooLarge")


def _http_error(exc: HTTPException):
    return _respond(_one_line(exc.description or exc.name), exc.code or 500, type(exc).__name__)


def _unexpected(exc: Exception):
    current_app.logger.exception("unexpected error on %s %s", request.method, request.path)
    return _respond("internal error: the request failed unexpectedly (details are in the server log)", 500,
                    "InternalServerError")


def init_app(app) -> None:
    app.register_error_handler(SpeakerIDError, _speakerid_error)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
