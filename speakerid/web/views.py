"""Routes of the web page: four HTML pages and the JSON API, both calling the same few actions below."""

from __future__ import annotations

import math

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for

from speakerid._version import __version__
from speakerid.data.manifests import validate_speaker_id
from speakerid.exceptions import ParameterError, SpeakerIDError, UnknownSpeakerError
from speakerid.scoring.opening import open_verifier
from speakerid.verifier import SEGMENT_S
from speakerid.web.analysis import clip_image_data_uri
from speakerid.web.uploads import UploadScope

__all__ = ["blueprint", "render_error_page"]

blueprint = Blueprint("views", __name__)

_PAGES = {"views.speakers": "speakers", "views.remove_speaker": "speakers", "views.home": "identify", "views.enroll": "enroll",
          "views.verify": "verify", "views.identify": "identify"}
_TITLES = {"speakers": "Speakers", "enroll": "Enroll", "verify": "Verify", "identify": "Identify"}


# ----------------------------------------------------------------------------------------------- actions
def _verifier():
    """A fresh verifier per request (nothing mutable is shared between the server's threads): the fused LLR of a
    directory built by ``speakerid train``, else the directory's backend (as the CLI chooses)."""
    config = current_app.config
    return open_verifier(config["SPEAKERID_MODEL_DIR"], backend=config["SPEAKERID_BACKEND"])


def _uploads(verifier) -> UploadScope:
    return UploadScope(current_app.config["SPEAKERID_UPLOAD_DIR"], verifier.feature_config.sample_rate)


def _threshold(text):
    if text is None or str(text).strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(f"threshold must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ParameterError(f"threshold must be finite, got {text!r}")
    return value


def _top(text):
    if text is None or str(text).strip() == "":
        return current_app.config["SPEAKERID_TOP"]
    try:
        value = int(text)
    except ValueError:
        raise ParameterError(f"top must be a whole number, got {text!r}") from None
    if not 1 <= value <= 100:
        raise ParameterError(f"top must be between 1 and 100, got {value}")
    return value


def _enroll(form, files) -> dict:
    verifier = _verifier()
    speaker = validate_speaker_id(form.get("speaker", ""))
    storages = files.getlist("files") + files.getlist("file")
    with _uploads(verifier) as uploads:
        clips = uploads.save_all(storages)
        warnings = _identity_warnings(verifier, speaker, clips)
        with verifier.store.lock():  # one writer at a time; every enrollment lands in its own file
            result = verifier.enroll(speaker, [clip.path for clip in clips], names=[clip.name for clip in clips])
    return {"result": result, "clips": [clip.info() for clip in clips], "warnings": warnings}


def _identity_warnings(verifier, speaker: str, clips) -> list[str]:
    """What ``speakerid enroll --speaker`` checks (:mod:`speakerid.scoring.enroll_checks`), said as warnings: the
    page enrolls all the same (its form says that an existing id is replaced)."""
    from speakerid._utils.progress import no_progress
    from speakerid.scoring.enroll_checks import disagreeing_files, duplicate_voices

    if verifier.missing_background() is not None:
        return []
    paths, names = [c.path for c in clips], {str(c.path): c.name for c in clips}
    backend = current_app.config["SPEAKERID_BACKEND"]
    with no_progress():
        same = duplicate_voices(verifier, speaker, paths)
        odd = disagreeing_files(verifier, paths, reopen=lambda folder: open_verifier(folder, backend=backend))
    said = [f"The voice matches the enrolled speaker {d['speaker']!r} ({d['n_accepted']} of {d['n_files']} "
            f"recording(s) accepted, median score {d['score']:.2f}): one person under two ids splits their "
            "acceptances between them." for d in same[:3]]
    return said + [f"{names.get(b['file'], b['file'])} does not match the other recordings of {speaker!r} (score "
                   f"{b['score']:.2f} against a model of the others, threshold {b['threshold']:.2f}): two people, or "
                   "a bad recording?" for b in odd]


def _verify(form, files, image=False) -> dict:
    verifier = _verifier()
    speaker = validate_speaker_id(form.get("speaker", ""))
    threshold = _threshold(form.get("threshold"))
    if speaker not in verifier.speakers():                                # unknown speaker: 404 before any work
        raise UnknownSpeakerError(f"speaker {speaker!r} is not enrolled in {verifier.model_dir} "
                                  f"(backend {verifier.backend_name})")
    with _uploads(verifier) as uploads:
        clip = uploads.save(files.get("file"))
        result = verifier.verify(speaker, clip.path, threshold=threshold)
        result["file"] = clip.name
        picture = clip_image_data_uri(clip.signal, clip.sample_rate, clip.name) if image else None
    return {"result": result, "clip": clip.info(), "image": picture}


def _identify(form, files, image=False, segments=True) -> dict:
    verifier = _verifier()
    threshold = _threshold(form.get("threshold"))
    top = _top(form.get("top"))
    with _uploads(verifier) as uploads:
        clip = uploads.save(files.get("file"))
        result = verifier.identify(clip.path, top=top, threshold=threshold)
        result["file"] = clip.name
        # the page's table shows every consecutive window (a short last turn is not absorbed by its neighbour)
        rows = (verifier.speaker_turns(signal=clip.signal, window_s=SEGMENT_S, hop_s=SEGMENT_S,
                                       threshold=result["threshold"], min_duration_s=0).rows()
                if segments else None)
        picture = clip_image_data_uri(clip.signal, clip.sample_rate, clip.name) if image else None
    return {"result": result, "clip": clip.info(), "segments": rows, "image": picture}


# ----------------------------------------------------------------------------------------------- pages
def _page(page: str, status: int = 200, **context):
    verifier = _verifier()
    try:
        speakers = verifier.speaker_info()
    except SpeakerIDError as exc:  # a broken directory still gets a page that says so
        speakers, context["error"] = [], context.get("error") or " ".join(str(exc).split())
    try:
        not_ready = verifier.missing_background()
    except SpeakerIDError:  # a broken background model: the error above (or the action) says so
        not_ready = None
    body = render_template(f"{page}.html", page=page, title=_TITLES[page], speakers=speakers, not_ready=not_ready,
                           backend=verifier.backend_name, model_dir=current_app.config["SPEAKERID_MODEL_DIR"],
                           max_upload_mb=current_app.config["SPEAKERID_MAX_UPLOAD_MB"], segment_s=SEGMENT_S,
                           version=__version__, form=_form_values(), **context)
    return body, status


def _form_values() -> dict:
    """The text fields of the submitted form, to refill it (empty when the body was refused, e.g. too large)."""
    if request.method != "POST":
        return {}
    try:
        return {key: value for key, value in request.form.items() if key in ("speaker", "threshold")}
    except Exception:  # the body could not be parsed (too large, malformed): refill nothing
        return {}


def render_error_page(message: str, status: int):
    """The page the failed request was on, with ``message`` shown at the top (a plain page for other URLs)."""
    page = _PAGES.get(request.endpoint or "")
    if page is not None:
        try:
            return _page(page, status, error=message)
        except Exception:  # noqa: BLE001 - the page itself failed; fall through to the plain one
            current_app.logger.exception("could not render the %s page with an error", page)
    return render_template("error.html", page="", title=f"Error {status}", error=message, status=status,
                           version=__version__), status


@blueprint.get("/")
def home():  # the seed's home page: record or upload a voice and see who it resembles
    return redirect(url_for("views.identify"))


@blueprint.get("/speakers")
def speakers():
    return _page("speakers")


@blueprint.post("/speakers/remove")
def remove_speaker():
    verifier = _verifier()
    speaker = validate_speaker_id(request.form.get("speaker", ""))
    with verifier.store.lock():
        verifier.remove(speaker)
    return _page("speakers", removed=speaker)


@blueprint.route("/enroll", methods=["GET", "POST"])
def enroll():
    if request.method == "GET":
        return _page("enroll")
    return _page("enroll", enrolled=_enroll(request.form, request.files))


@blueprint.route("/verify", methods=["GET", "POST"])
def verify():
    if request.method == "GET":
        return _page("verify")
    return _page("verify", outcome=_verify(request.form, request.files, image=True))


@blueprint.route("/identify", methods=["GET", "POST"])
def identify():
    if request.method == "GET":
        return _page("identify")
    return _page("identify", outcome=_identify(request.form, request.files, image=True))


# ----------------------------------------------------------------------------------------------- JSON API
@blueprint.get("/api/speakers")
def api_speakers():
    return jsonify({"speakers": _verifier().speaker_info()})


@blueprint.post("/api/enroll")
def api_enroll():
    done = _enroll(request.form, request.files)
    return jsonify({"enrolled": [done["result"]], "warnings": done["warnings"]})


@blueprint.post("/api/verify")
def api_verify():
    return jsonify(_verify(request.form, request.files)["result"])


@blueprint.post("/api/identify")
def api_identify():
    want_segments = request.form.get("segments", "").lower() in ("1", "true", "yes")
    outcome = _identify(request.form, request.files, segments=want_segments)
    result = outcome["result"]
    if want_segments:
        result["segments"] = outcome["segments"]
    return jsonify(result)
