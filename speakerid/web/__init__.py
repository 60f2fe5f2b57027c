"""The web page: enroll, verify and identify voices from a browser, plus a JSON API (Flask app factory).

A thin shell over :class:`speakerid.SpeakerVerifier`, like the CLI: it parses the request, calls the Python API
and renders the result. ``speakerid serve --model-dir DIR`` runs it (see :mod:`speakerid.cli.serve`).

Pages: ``/speakers`` (the enrolled speakers), ``/enroll``, ``/verify``, ``/identify`` (``/`` shows identify).
API: ``GET /api/speakers``, ``POST /api/enroll``, ``POST /api/verify``, ``POST /api/identify``, returning the
objects the CLI prints with ``--json`` (``file`` is the uploaded file's name).

Decisions
---------
Uploads
    Each request's uploads go to a fresh private temporary folder (mode 0700) under random names
    (24 hex digits plus the extension when it is one of a fixed list of audio extensions) and the folder is deleted when the request
    ends; the name the browser sent is only ever displayed (escaped), never used as a path. Audio is validated
    by :func:`speakerid.data.audio.load_audio`, whose :class:`~speakerid.exceptions.AudioError` message is shown with
    the temporary path replaced by the uploaded name.
Size limit
    ``MAX_CONTENT_LENGTH`` = ``max_upload_mb``; a bigger request gets 413 and a one-line message (JSON under
    ``/api/``, an HTML page elsewhere).
CSRF
    Every HTML form carries a per-session random token (hidden field ``csrf_token``, compared in constant time
    with the one in the signed session cookie, ``SameSite=Lax``) checked on every form POST. The JSON API takes
    no token: a POST must be ``multipart/form-data`` *and* carry an ``X-Requested-With`` header (any value).
    Browsers cannot add that header to a cross-site form post, and a cross-site ``fetch`` that adds it needs a
    CORS pre-flight this app never grants; ``curl -H 'X-Requested-With: curl'`` works.
Errors
    ParameterError / AudioError -> 400, UnknownSpeakerError -> 404, NotFittedError (no UBM, nobody enrolled)
    -> 409 with what to do, too large -> 413, anything unexpected -> 500 with one line (details in the log).
Threads
    A :class:`SpeakerVerifier` is created per request (it caches models, it is not shared); enrollment writes
    run under the model directory's lock (:meth:`speakerid.store.ModelStore.lock`), so concurrent enrollments
    all land, from threads or processes.
Segments
    The identify page's table is who spoke when, the same code as ``speakerid segments``
    (:meth:`speakerid.verifier.SpeakerVerifier.speaker_turns`): the clip (at the model's rate, before any voice
    activity detection) is cut into consecutive 2-s windows, the last one ending at the end of the clip; each goes
    through the feature front end on its own (its own VAD and CMVN) and is labelled with its best enrolled
    speaker, or ``unknown`` below the threshold; neighbours with the same label are merged into one row.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

from speakerid.exceptions import ParameterError

__all__ = ["create_app"]


def create_app(model_dir, backend=None, max_upload_mb: float = 20, secret_key=None, upload_dir=None,
               top: int = 5):
    """Build the Flask application serving ``model_dir``.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The model directory (``ubm.npz``, ``speakers/``), as for the CLI's ``--model-dir``.
    backend : str, optional
        Speaker model kind (``"gmm-ubm"``, ``"gmm"``, ...); ``None`` picks as :class:`SpeakerVerifier` does.
    max_upload_mb : float
        Largest request accepted, in megabytes (10**6 bytes); bigger ones get 413.
    secret_key : bytes or str, optional
        Signs the session cookie (which holds the CSRF token). Default: random per process, so forms opened
        before a restart must be reloaded.
    upload_dir : str or os.PathLike, optional
        Where the per-request private temporary folders are made (default: the system's temporary folder).
    top : int
        How many speakers the identify page and API list.

    Returns
    -------
    flask.Flask

    Examples
    --------
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     app = create_app(folder, max_upload_mb=1)
    ...     print(app.config["MAX_CONTENT_LENGTH"], app.test_client().get("/api/speakers").get_json())
    1000000 {'speakers': []}
    """
    try:
        from flask import Flask
    except ModuleNotFoundError:  # pragma: no cover - the web extra is not installed
        raise ParameterError("the web page needs Flask: pip install 'speakerid[web]'") from None
    from speakerid.backends.base import get_backend
    from speakerid.web import errors, security, views

    try:
        max_upload_mb = float(max_upload_mb)
    except (TypeError, ValueError):
        raise ParameterError(f"max_upload_mb must be a number, got {max_upload_mb!r}") from None
    if not max_upload_mb > 0:
        raise ParameterError(f"max_upload_mb must be positive, got {max_upload_mb}")
    if int(top) < 1:
        raise ParameterError(f"top must be >= 1, got {top}")
    if backend is not None:
        get_backend(backend)  # an unknown name fails now, not on the first request
    if upload_dir is not None and not Path(upload_dir).is_dir():
        raise ParameterError(f"{upload_dir}: upload folder does not exist")

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_bytes(32),
        MAX_CONTENT_LENGTH=int(max_upload_mb * 1_000_000),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SPEAKERID_MODEL_DIR=str(model_dir),
        SPEAKERID_BACKEND=backend,
        SPEAKERID_MAX_UPLOAD_MB=max_upload_mb,
        SPEAKERID_UPLOAD_DIR=str(tempfile.gettempdir() if upload_dir is None else upload_dir),
        SPEAKERID_TOP=int(top),
    )
    app.json.sort_keys = False  # the API's objects keep the key order of the CLI's --json
    app.register_blueprint(views.blueprint)
    security.init_app(app)
    errors.init_app(app)
    return app
