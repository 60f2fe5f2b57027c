"""The web page and its JSON API through Flask's test client; the ``serve`` command with a stand-in server."""

from __future__ import annotations

import base64
import html as html_lib
import io
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("flask")

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.audio import load_audio
from speakerid.verifier import SpeakerVerifier  # noqa: E402
from speakerid.web import create_app  # noqa: E402

API = {"X-Requested-With": "pytest"}
# spk003's test clip: its own model scores it far above the threshold, spk004's far below (seeded corpus).
CLIP_SPEAKER, OTHER_SPEAKER, CLIP_NAME = "spk003", "spk004", "spk003_05.wav"


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ubm_dir(synth_corpus, tmp_path_factory):
    """A model directory holding only a small UBM (16 Gaussians, 5 EM iterations)."""
    folder = tmp_path_factory.mktemp("web-ubm")
    SpeakerVerifier(folder).train(synth_corpus.background_csv, n_components=16, max_iter=5)
    return folder


@pytest.fixture(scope="module")
def enrolled_dir(synth_corpus, ubm_dir, tmp_path_factory):
    """The UBM plus every evaluated speaker of the corpus enrolled (tests must not change it)."""
    folder = tmp_path_factory.mktemp("web-enrolled") / "models"
    shutil.copytree(ubm_dir, folder)
    SpeakerVerifier(folder).enroll_manifest(synth_corpus.enroll_csv)
    return folder


@pytest.fixture
def fresh_dir(ubm_dir, tmp_path):
    """A private copy of the UBM-only directory, for tests that enroll."""
    folder = tmp_path / "models"
    shutil.copytree(ubm_dir, folder)
    return folder


@pytest.fixture
def upload_dir(tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


def _client(model_dir, upload_dir, **kwargs):
    app = create_app(model_dir, upload_dir=upload_dir, **kwargs)
    app.testing = True
    return app.test_client()


@pytest.fixture
def client(enrolled_dir, upload_dir):
    return _client(enrolled_dir, upload_dir)


def _wav(synth_corpus, name=CLIP_NAME):
    speaker = name.split("_")[0]
    return synth_corpus.folder / "wav" / speaker / name


def _upload(path, name=None):
    return (io.BytesIO(path.read_bytes()), name or path.name)


def _token(client, page="/identify"):
    html = client.get(page).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form has no CSRF field"
    return match.group(1)


def _post_form(client, page, data):
    return client.post(page, data={"csrf_token": _token(client, page), **data}, content_type="multipart/form-data")


def _error_text(response) -> str:
    if response.is_json:
        return response.get_json()["error"]
    match = re.search(r'<p class="message error"[^>]*>(.*?)</p>', response.get_data(as_text=True), re.S)
    assert match, "the page shows no error message"
    return html_lib.unescape(match.group(1))


# ---------------------------------------------------------------------------------------------- pages
@pytest.mark.parametrize("page", ["/speakers", "/enroll", "/verify", "/identify"])
def test_pages_render_with_nav_csrf_and_headers(client, page):
    response = client.get(page)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for name in ("speakers", "enroll", "verify", "identify"):
        assert f'id="nav-{name}"' in html
    if page != "/speakers":
        assert 'name="csrf_token"' in html and 'class="recorder"' in html
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "http://" not in html and "https://" not in html  # no CDN: every asset comes from the package
    assert client.get("/").headers["Location"].endswith("/identify")


def test_static_files_are_served(client):
    for name in ("style.css", "recorder.js", "recorder-worklet.js"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and len(response.data) > 500, name


def test_speakers_page_and_api_list_the_gallery(client, enrolled_dir, synth_corpus):
    expected = SpeakerVerifier(enrolled_dir).speaker_info()
    assert client.get("/api/speakers").get_json() == {"speakers": expected}
    html = client.get("/speakers").get_data(as_text=True)
    rows = re.findall(r'<td class="id">([^<]+)</td><td class="num">(\d+)</td>', html)
    assert rows == [(s, "3") for s in sorted(synth_corpus.speakers)]


def test_missing_ubm_is_announced_and_enroll_is_409(tmp_path, upload_dir, synth_corpus):
    client = _client(tmp_path / "empty", upload_dir)
    assert 'id="no-ubm"' in client.get("/enroll").get_data(as_text=True)
    response = client.post("/api/enroll", headers=API, data={"speaker": "alice", "files": _upload(
        _wav(synth_corpus))}, content_type="multipart/form-data")
    assert response.status_code == 409 and "train-ubm" in response.get_json()["error"]


def test_identify_with_nobody_enrolled_is_409(fresh_dir, upload_dir, synth_corpus):
    client = _client(fresh_dir, upload_dir)
    response = client.post("/api/identify", headers=API, data={"file": _upload(_wav(synth_corpus))},
                           content_type="multipart/form-data")
    assert response.status_code == 409 and "enroll" in response.get_json()["error"]


# ---------------------------------------------------------------------------------------------- enroll
def test_enroll_form_then_speaker_is_listed(fresh_dir, upload_dir, synth_corpus):
    client = _client(fresh_dir, upload_dir)
    files = [_upload(_wav(synth_corpus, f"spk001_0{i}.wav")) for i in (1, 2)]
    response = _post_form(client, "/enroll", {"speaker": "Zoë <b>", "files": files})
    assert response.status_code == 200, _error_text(response)
    html = response.get_data(as_text=True)
    assert 'id="enrolled"' in html and "Zoë &lt;b&gt;" in html and "Zoë <b>" not in html  # escaped
    (info,) = client.get("/api/speakers").get_json()["speakers"]
    assert info["speaker"] == "Zoë <b>" and info["n_files"] == 2 and info["total_seconds"] > 4
    assert list(upload_dir.iterdir()) == []  # uploads are deleted after the request
    header, _ = SpeakerVerifier(fresh_dir).store.load_speaker("Zoë <b>")
    assert header["files"] == ["spk001_01.wav", "spk001_02.wav"]   # the names uploaded, not the random ones


def test_api_enroll_returns_the_cli_object(fresh_dir, upload_dir, synth_corpus):
    client = _client(fresh_dir, upload_dir)
    response = client.post("/api/enroll", headers=API, content_type="multipart/form-data",
                           data={"speaker": "bob", "files": [_upload(_wav(synth_corpus, "spk002_01.wav"))]})
    assert response.status_code == 200
    (result,) = response.get_json()["enrolled"]
    assert list(result) == ["speaker", "backend", "n_files", "total_seconds", "n_frames", "action"]
    assert result["speaker"] == "bob" and result["n_files"] == 1 and result["n_frames"] > 100


def test_enrolling_a_voice_under_a_second_id_is_warned_about(fresh_dir, upload_dir, synth_corpus):
    """The page enrolls (its form says an existing id is replaced) but says what the CLI would refuse: the same
    recordings under a second id match the first; the API returns the warnings beside the result."""
    client = _client(fresh_dir, upload_dir)
    files = ["spk002_01.wav", "spk002_02.wav"]
    response = client.post("/api/enroll", headers=API, content_type="multipart/form-data",
                           data={"speaker": "bob", "files": [_upload(_wav(synth_corpus, f)) for f in files]})
    assert response.status_code == 200 and response.get_json()["enrolled"][0]["action"] == "enrolled"
    response = _post_form(client, "/enroll", {"speaker": "robert",
                                              "files": [_upload(_wav(synth_corpus, f)) for f in files]})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="enrolled"' in html
    assert "The voice matches the enrolled speaker &#39;bob&#39; (2 of 2 recording(s) accepted" in html
    response = client.post("/api/enroll", headers=API, content_type="multipart/form-data",
                           data={"speaker": "bob", "files": [_upload(_wav(synth_corpus, files[0]))]})
    body = response.get_json()
    assert body["enrolled"][0]["action"] == "replaced"
    assert [w for w in body["warnings"] if "'robert'" in w]        # bob's voice is robert's too now
    assert list(upload_dir.iterdir()) == []


def test_concurrent_enrollments_both_land(fresh_dir, upload_dir, synth_corpus):
    app = create_app(fresh_dir, upload_dir=upload_dir)
    start = threading.Barrier(2)
    statuses = {}

    def enroll(speaker, name):
        client = app.test_client()
        data = {"speaker": speaker, "files": [_upload(_wav(synth_corpus, name))]}
        start.wait(timeout=30)
        statuses[speaker] = client.post("/api/enroll", headers=API, data=data,
                                        content_type="multipart/form-data").status_code

    threads = [threading.Thread(target=enroll, args=args, daemon=True) for args in (("alice", "spk001_01.wav"),
                                                                      ("bob", "spk002_01.wav"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == {"alice": 200, "bob": 200}
    assert SpeakerVerifier(fresh_dir).speakers() == ["alice", "bob"]


# ---------------------------------------------------------------------------------------------- verify
def test_verify_form_accepts_the_true_claim_and_rejects_the_false(client, enrolled_dir, synth_corpus):
    path = _wav(synth_corpus)
    verifier = SpeakerVerifier(enrolled_dir)
    for claim, word in ((CLIP_SPEAKER, "ACCEPTED"), (OTHER_SPEAKER, "REJECTED")):
        expected = verifier.verify(claim, path)
        assert expected["accepted"] == (word == "ACCEPTED")
        response = _post_form(client, "/verify", {"speaker": claim, "file": _upload(path)})
        assert response.status_code == 200, _error_text(response)
        html = response.get_data(as_text=True)
        assert f'id="decision">{word}<' in html
        assert f'id="score">{expected["score"]:.4f}<' in html
        assert 'src="data:image/png;base64,' in html


def test_api_verify_returns_the_cli_object(client, enrolled_dir, synth_corpus):
    path = _wav(synth_corpus)
    response = client.post("/api/verify", headers=API, content_type="multipart/form-data",
                           data={"speaker": OTHER_SPEAKER, "file": _upload(path), "threshold": "-100"})
    assert response.status_code == 200
    expected = SpeakerVerifier(enrolled_dir).verify(OTHER_SPEAKER, path, threshold=-100)
    assert response.get_json() == {**expected, "file": CLIP_NAME}
    assert list(response.get_json()) == list(expected)


# ---------------------------------------------------------------------------------------------- identify
def test_identify_page_ranks_and_tables_segments(client, enrolled_dir, synth_corpus):
    response = _post_form(client, "/identify", {"file": _upload(_wav(synth_corpus))})
    assert response.status_code == 200, _error_text(response)
    html = response.get_data(as_text=True)
    # the API's decision: the verification threshold raised for the 6 enrolled speakers, said on the page
    expected = SpeakerVerifier(enrolled_dir).identify(_wav(synth_corpus))
    assert (f'id="best">{CLIP_SPEAKER}<' in html) == (expected["best"] == CLIP_SPEAKER)
    assert ('id="rejected"' in html) == expected["rejected"]
    assert "the verification threshold raised for the 6 enrolled speakers" in html
    candidates = re.findall(r'<td class="id">([^<]+)</td>', html.split('id="candidates"')[1].split("</table>")[0])
    assert len(candidates) == 5 and candidates[0] == CLIP_SPEAKER
    image = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(image).startswith(b"\x89PNG")
    assert 'id="segments"' in html


def test_api_identify_returns_the_cli_object_and_segments(client, enrolled_dir, synth_corpus, tmp_path, rng):
    path = _wav(synth_corpus)
    response = client.post("/api/identify", headers=API, data={"file": _upload(path)},
                           content_type="multipart/form-data")
    expected = SpeakerVerifier(enrolled_dir).identify(path, top=5)
    assert response.status_code == 200 and response.get_json() == {**expected, "file": CLIP_NAME}

    # Three clips in a row (spk003, silence, spk005): one row per 2-s segment, each with its own best speaker.
    pieces = [load_audio(_wav(synth_corpus, name), sample_rate=16000)[0][:32000]
              for name in (CLIP_NAME, "spk005_04.wav")]
    long_clip = np.concatenate([pieces[0], np.zeros(32000, np.float32), pieces[1]])
    sf.write(tmp_path / "three.wav", long_clip, 16000, subtype="PCM_16")
    response = client.post("/api/identify", headers=API, content_type="multipart/form-data",
                           data={"file": _upload(tmp_path / "three.wav"), "segments": "1", "threshold": "0"})
    segments = response.get_json()["segments"]
    assert [(s["start_s"], s["end_s"]) for s in segments] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    assert segments[0]["best"] == CLIP_SPEAKER and segments[2]["best"] == "spk005"
    assert segments[1]["score"] is None and segments[1]["note"] == "silent" and segments[1]["best"] == "unknown"
    response = client.post("/api/identify", headers=API, content_type="multipart/form-data",
                           data={"file": _upload(tmp_path / "three.wav"), "segments": "1", "threshold": "1e9"})
    assert {s["best"] for s in response.get_json()["segments"]} == {"unknown"}


# ---------------------------------------------------------------------------------------------- bad input
def _api_and_page(client, endpoint, data):
    """POST the same fields (files as ``(bytes, name)``) to the API and to the form page; return both."""
    def fields():  # fresh file objects for each request (the client closes them)
        return {k: (io.BytesIO(v[0]), v[1]) if isinstance(v, tuple) else v for k, v in data.items()}

    api = client.post(f"/api/{endpoint}", headers=API, data=fields(), content_type="multipart/form-data")
    return api, _post_form(client, f"/{endpoint}", fields())


@pytest.mark.parametrize("endpoint,fields,status,needle", [
    ("identify", {"file": (b"speaker,path\nalice,a.wav\n", "notes.wav")}, 400,
     "notes.wav: not a readable audio file"),
    ("identify", {"file": (b"", "empty.wav")}, 400, "empty.wav: the uploaded file is empty"),
    ("identify", {}, 400, "no audio file was chosen or recorded"),
    ("verify", {"speaker": "nobody", "file": "CLIP"}, 404, "speaker 'nobody' is not enrolled"),
    ("verify", {"speaker": "../x", "file": "CLIP"}, 400, "invalid speaker id '../x'"),
    ("enroll", {"speaker": " alice", "files": "CLIP"}, 400, "must not start or end with blanks"),
    ("identify", {"file": "CLIP", "top": "zero"}, 400, "top must be a whole number"),
    ("verify", {"speaker": CLIP_SPEAKER, "file": "CLIP", "threshold": "nan"}, 400, "threshold must be finite"),
])
def test_bad_requests_get_4xx_and_one_message(client, synth_corpus, upload_dir, endpoint, fields, status, needle):
    clip = (_wav(synth_corpus).read_bytes(), CLIP_NAME)
    data = {k: clip if v == "CLIP" else v for k, v in fields.items()}
    for response in _api_and_page(client, endpoint, data):
        assert response.status_code == status
        message = _error_text(response)
        assert needle in message and "Traceback" not in message and str(upload_dir) not in message
        model_dir = client.application.config["SPEAKERID_MODEL_DIR"]
        assert model_dir not in message and str(Path(model_dir).resolve()) not in message
    assert list(upload_dir.iterdir()) == []


def test_uploads_too_large_get_413(enrolled_dir, upload_dir, synth_corpus):
    client = _client(enrolled_dir, upload_dir, max_upload_mb=0.1)
    big = {"file": (b"\0" * 150_000, "big.wav")}
    api, page = _api_and_page(client, "identify", big)
    assert api.status_code == page.status_code == 413
    assert "limit is 0.1 MB" in api.get_json()["error"]
    assert "limit is 0.1 MB" in _error_text(page)
    small = client.post("/api/identify", headers=API, data={"file": _upload(_wav(synth_corpus))},
                        content_type="multipart/form-data")
    assert small.status_code == 200  # a 2-s clip (69 kB) is under the same limit


def test_form_posts_need_the_session_csrf_token(client, synth_corpus):
    data = {"file": _upload(_wav(synth_corpus))}
    response = client.post("/identify", data=data, content_type="multipart/form-data")
    assert response.status_code == 400 and "CSRF" in _error_text(response)
    _token(client)  # the session now has a token, but the form sends another one
    response = client.post("/identify", data={"csrf_token": "forged", "file": _upload(_wav(synth_corpus))},
                           content_type="multipart/form-data")
    assert response.status_code == 400 and "CSRF" in _error_text(response)
    other = create_app(client.application.config["SPEAKERID_MODEL_DIR"]).test_client()  # another session
    response = other.post("/identify", data={"csrf_token": _token(client), "file": _upload(_wav(synth_corpus))},
                          content_type="multipart/form-data")
    assert response.status_code == 400


def test_api_posts_need_multipart_and_the_header(client, synth_corpus):
    response = client.post("/api/identify", data={"file": _upload(_wav(synth_corpus))},
                           content_type="multipart/form-data")
    assert response.status_code == 400 and "X-Requested-With" in response.get_json()["error"]
    assert "any value" in response.get_json()["error"]                 # as the README says
    response = client.post("/api/verify", headers=API, json={"speaker": CLIP_SPEAKER})
    assert response.status_code == 415 and "multipart/form-data" in response.get_json()["error"]
    assert client.get("/api/nothing").status_code == 404 and client.get("/api/nothing").is_json


def test_upload_names_are_shown_never_used(client, synth_corpus, upload_dir, tmp_path):
    response = client.post("/api/identify", headers=API, content_type="multipart/form-data",
                           data={"file": _upload(_wav(synth_corpus), "../../escape.wav")})
    assert response.status_code == 200 and response.get_json()["file"] == "escape.wav"
    assert not any(p.name == "escape.wav" for p in tmp_path.rglob("*")) and list(upload_dir.iterdir()) == []


def test_unexpected_errors_are_500_with_one_line_and_logged(client, synth_corpus, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(SpeakerVerifier, "identify", broken)
    for response in _api_and_page(client, "identify", {"file": (_wav(synth_corpus).read_bytes(), "a.wav")}):
        assert response.status_code == 500
        message = _error_text(response)
        assert "internal error" in message and "secret" not in message
        assert "Traceback" not in response.get_data(as_text=True)
    assert "secret internals" in caplog.text


# ---------------------------------------------------------------------------------------------- serve
@pytest.fixture
def fake_waitress(monkeypatch):
    waitress = pytest.importorskip("waitress")
    calls = []
    monkeypatch.setattr(waitress, "serve", lambda app, **kwargs: calls.append((app, kwargs)))
    return calls


def test_serve_starts_waitress_on_loopback(fake_waitress, enrolled_dir, capsys):
    status = main(["serve", "--model-dir", str(enrolled_dir), "--port", "8123", "--max-upload-mb", "5"])
    err = capsys.readouterr().err
    assert status == ExitStatus.OK and "warning" not in err and "http://127.0.0.1:8123/" in err
    ((app, kwargs),) = fake_waitress
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 8123
    assert app.config["MAX_CONTENT_LENGTH"] == 5_000_000
    # one line per request: Flask's handler prints it, the root logger (waitress configures one) does not again
    assert app.logger.handlers and app.logger.propagate is False


def test_serve_warns_on_a_public_address(fake_waitress, enrolled_dir, capsys):
    assert main(["serve", "--model-dir", str(enrolled_dir), "--host", "0.0.0.0"]) == ExitStatus.OK
    assert "warning: listening on 0.0.0.0, reachable from other machines" in capsys.readouterr().err


def test_serve_falls_back_to_flask_with_a_warning(monkeypatch, enrolled_dir, capsys):
    import flask

    calls = []
    monkeypatch.setitem(__import__("sys").modules, "waitress", None)  # as if it were not installed
    monkeypatch.setattr(flask.Flask, "run", lambda self, **kwargs: calls.append(kwargs))
    assert main(["serve", "--model-dir", str(enrolled_dir)]) == ExitStatus.OK
    assert "waitress is not installed" in capsys.readouterr().err
    assert calls and calls[0]["host"] == "127.0.0.1" and calls[0]["port"] == 8000


@pytest.mark.parametrize("argv,needle", [
    (["--model-dir", "MISSING"], "no such model directory"),
    (["--port", "70000"], "--port must be between 1 and 65535"),
    (["--max-upload-mb", "0"], "max_upload_mb must be positive"),
])
def test_serve_bad_options_are_one_line_usage_errors(fake_waitress, enrolled_dir, tmp_path, capsys, argv, needle):
    argv = [str(tmp_path / a) if a == "MISSING" else a for a in argv]
    if "--model-dir" not in argv:
        argv += ["--model-dir", str(enrolled_dir)]
    assert main(["serve", *argv]) == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and not fake_waitress


def test_one_log_line_per_request(client, caplog):
    import logging

    with caplog.at_level(logging.INFO):
        client.get("/api/speakers")
        client.get("/speakers")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(lines) == 2 and lines[0].split()[1:4] == ["GET", "/api/speakers", "200"]
    assert lines[1].split()[1:4] == ["GET", "/speakers", "200"]
