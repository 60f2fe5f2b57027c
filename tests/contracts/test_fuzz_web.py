"""Generated bad requests against the web JSON API: always a 4xx with one JSON line, never a 500 or a trace."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("flask")

from speakerid.verifier import SpeakerVerifier  # noqa: E402
from speakerid.web import create_app  # noqa: E402

API = {"X-Requested-With": "pytest"}
FUZZ = settings(max_examples=120, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _wav_bytes(seconds: float, rate: int = 16000, amplitude: float = 0.3, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    n = max(int(seconds * rate), 0)
    t = np.arange(n) / rate
    signal = amplitude * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    signal = signal + 0.01 * rng.standard_normal(n)
    buffer = io.BytesIO()
    sf.write(buffer, signal.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


GOOD = _wav_bytes(1.5)
SILENT = _wav_bytes(1.0, amplitude=0.0)


@pytest.fixture(scope="module")
def app_and_dirs(synth_corpus, tmp_path_factory):
    models = tmp_path_factory.mktemp("web-fuzz") / "models"
    verifier = SpeakerVerifier(models)
    verifier.train(synth_corpus.background_csv, n_components=8, max_iter=3)
    verifier.enroll("known", sorted((synth_corpus.folder / "wav" / "spk001").glob("*.wav"))[:2])
    uploads = tmp_path_factory.mktemp("web-fuzz-uploads")
    app = create_app(models, upload_dir=uploads, max_upload_mb=0.2)
    app.testing = True
    return app, models, uploads


speaker_ids = st.one_of(
    st.sampled_from(["known", "nobody", "", " x", "../x", "a/b", "a\\b", ".", "..", "x" * 300, "con\x00trol",
                     "tab\there", "new\nline", "Known", "ünïcødé", "😀"]),
    st.text(max_size=40))
payloads = st.one_of(
    st.sampled_from([("good", GOOD), ("silent", SILENT), ("empty", b""), ("header only", GOOD[:44]),
                     ("truncated", GOOD[:300]), ("too large", b"RIFF" + b"\0" * 250_000)]),
    st.binary(max_size=2000).map(lambda b: ("random bytes", b)))
file_names = st.one_of(st.sampled_from(["clip.wav", "../../etc/passwd", "a/b.wav", "", ".wav", "x" * 300 + ".wav",
                                        "nul\x00.wav", "спикер.flac"]),
                       st.text(max_size=30))
numbers = st.one_of(st.none(), st.sampled_from(["nan", "inf", "-inf", "0", "-1", "1e309", "abc", "", "3", "2.5"]),
                    st.text(max_size=10))


@FUZZ
@given(endpoint=st.sampled_from(["verify", "identify", "enroll"]), speaker=speaker_ids, payload=payloads,
       name=file_names, threshold=numbers, top=numbers, n_files=st.integers(0, 2), header=st.booleans())
def test_api_answers_every_request_with_a_status_and_one_line(app_and_dirs, endpoint, speaker, payload, name,
                                                              threshold, top, n_files, header):
    app, models, uploads = app_and_dirs
    client = app.test_client()
    kind, data = payload
    field = "files" if endpoint == "enroll" else "file"
    form = {"speaker": speaker}
    if threshold is not None:
        form["threshold"] = threshold
    if top is not None:
        form["top"] = top
    if n_files:
        form[field] = [(io.BytesIO(data), name) for _ in range(n_files)]
    response = client.post(f"/api/{endpoint}", data=form, content_type="multipart/form-data",
                           headers=API if header else {})
    assert response.status_code in (200, 400, 404, 409, 413, 415), (response.status_code, response.data[:300])
    assert response.is_json
    body = response.get_json()
    if response.status_code != 200:
        message = body["error"]
        assert message and "\n" not in message and "Traceback" not in message
        assert str(uploads) not in message and str(models) not in message
    else:   # only a real clip, a valid request, can succeed
        assert kind == "good" and header and n_files
    assert list(uploads.iterdir()) == []      # every upload is deleted, whatever happened


def test_models_survive_the_fuzzing(app_and_dirs, tmp_path):
    _, models, _ = app_and_dirs
    clip = tmp_path / "clip.wav"
    clip.write_bytes(GOOD)
    verifier = SpeakerVerifier(models)
    speakers = verifier.speakers()
    assert "known" in speakers
    scores = verifier.score_frames(speakers, verifier.features(clip))   # whatever was enrolled loads and scores
    assert scores.shape == (len(speakers),) and np.isfinite(scores).all()
