"""Generated bad input at every edge (hypothesis): audio, manifests, model files, speaker ids.

Every generated case must give the documented :class:`~speakerid.exceptions.SpeakerIDError` subclass through the
Python API, and (for a subset of each kind) one line on stderr with the documented exit code through the CLI run
in-process, never a traceback. The runs are derandomized (the same cases every time) and bounded. The number of
cases per kind is printed at the end of the module (``fuzz cases: ...``) and checked to reach 500.
"""

from __future__ import annotations

import collections
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import tiny_model_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.audio import load_audio
from speakerid.data.manifests import read_manifest, validate_speaker_id
from speakerid.exceptions import AudioError, ManifestError, ModelFormatError, ParameterError
from speakerid.store import FORMAT_VERSION, ModelStore, load_model_file, speaker_file_name

COUNTS: collections.Counter = collections.Counter()
MIN_TOTAL_CASES = 500


def fuzz_settings(max_examples: int):
    return settings(max_examples=max_examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    yield
    if COUNTS:
        summary = ", ".join(f"{kind} {n}" for kind, n in sorted(COUNTS.items()))
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        line = f"fuzz cases: {sum(COUNTS.values())} ({summary})"
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line("")
                reporter.write_line(line)
        if getattr(request.config, "cache", None) is not None:
            request.config.cache.set("speakerid/fuzz_counts", dict(COUNTS))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _case_dir(workdir: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=workdir))


def run_cli(capsys, *argv):
    """Run the CLI in-process; return (status, stderr) after checking stderr is one line, no traceback."""
    capsys.readouterr()
    status = main([str(a) for a in argv])
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("speakerid: warning:")]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert "unexpected error" not in err, err
    return status, lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model directory (4-component UBM, 3 enrolled speakers) and a corpus, built once (about 2 s)."""
    models, corpus = tiny_model_dir(tmp_path_factory.mktemp("fuzz-models"))
    assert main(["enroll", "--manifest", str(corpus.enroll_csv), "--model-dir", str(models)]) == ExitStatus.OK
    wav = str(read_manifest(corpus.trials_csv).iloc[0]["path"])
    return {"models": models, "corpus": corpus, "wav": wav}


# ============================================================================================== audio
RATES = (8000, 11025, 16000, 22050, 44100, 48000)
#: numpy-side names of the sample formats; int8 is unsigned 8-bit in WAV and signed 8-bit in FLAC.
SUBTYPES = {"int8-wav": ("PCM_U8", "wav"), "int8-flac": ("PCM_S8", "flac"), "int16": ("PCM_16", "wav"),
            "int24-flac": ("PCM_24", "flac"), "int32": ("PCM_32", "wav"), "float32": ("FLOAT", "wav"),
            "float64": ("DOUBLE", "wav")}


def _tone(n_frames, rate, channels, amplitude=0.3):
    t = np.arange(n_frames) / rate
    x = amplitude * np.sin(2 * np.pi * 300 * t)
    return np.tile(x[:, None], (1, channels)) * np.linspace(1.0, 0.5, channels)[None, :]


def _good_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, _tone(16000, 16000, 1), 16000, format=fmt, subtype="PCM_16")
    return buffer.getvalue()


GOOD_WAV = _good_bytes("WAV")
GOOD_FLAC = _good_bytes("FLAC")
#: Shorter than one 25 ms frame at 16 kHz (400 PCM_16 samples after the 44-byte header): never loads.
WAV_HEADER_AND_SHORT = 44 + 2 * 399


@st.composite
def bad_audio(draw):
    """(kind, writer) of an audio file that load_audio must refuse with AudioError."""
    kind = draw(st.sampled_from(["empty file", "zero samples", "short", "all zeros", "nan/inf", "random bytes",
                                 "truncated wav", "truncated flac", "riff garbage"]))
    rate = draw(st.sampled_from(RATES))
    channels = draw(st.integers(1, 8))
    subtype, _ = SUBTYPES[draw(st.sampled_from(["int16", "float32", "float64", "int32"]))]
    if kind == "empty file":
        return kind, lambda p: p.write_bytes(b"")
    if kind == "zero samples":
        return kind, lambda p: sf.write(str(p), np.zeros((0, channels)), rate, subtype=subtype, format="WAV")
    if kind == "short":  # 1 sample up to just under one 25 ms frame
        n = draw(st.integers(1, int(0.025 * rate) - 1))
        return kind, lambda p: sf.write(str(p), _tone(n, rate, channels), rate, subtype=subtype, format="WAV")
    if kind == "all zeros":
        n = draw(st.integers(int(0.03 * rate), rate))
        return kind, lambda p: sf.write(str(p), np.zeros((n, channels)), rate, subtype=subtype, format="WAV")
    if kind == "nan/inf":
        n = draw(st.integers(int(0.03 * rate), rate // 2))
        where = draw(st.integers(0, n - 1))
        value = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        float_subtype = draw(st.sampled_from(["FLOAT", "DOUBLE"]))

        def write(p):
            data = _tone(n, rate, channels)
            data[where, draw_channel % channels] = value
            sf.write(str(p), data, rate, subtype=float_subtype, format="WAV")
        draw_channel = draw(st.integers(0, 7))
        return kind, write
    if kind == "random bytes":
        data = draw(st.binary(min_size=0, max_size=3000))
        return kind, lambda p: p.write_bytes(data)
    if kind == "truncated wav":
        cut = draw(st.integers(0, WAV_HEADER_AND_SHORT))
        return kind, lambda p: p.write_bytes(GOOD_WAV[:cut])
    if kind == "truncated flac":
        cut = draw(st.integers(0, len(GOOD_FLAC) - 1))
        return kind, lambda p: p.write_bytes(GOOD_FLAC[:cut])
    tail = draw(st.binary(min_size=0, max_size=200))
    return kind, lambda p: p.write_bytes(b"RIFF" + tail)


@fuzz_settings(max_examples=160)
@given(case=bad_audio(), suffix=st.sampled_from([".wav", ".flac", ".WAV", ".ogg"]))
def test_bad_audio_raises_audio_error(workdir, case, suffix):
    kind, write = case
    path = _case_dir(workdir) / f"bad{suffix}"
    write(path)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    COUNTS[f"audio: {kind}"] += 1


@fuzz_settings(max_examples=60)
@given(rate=st.sampled_from(RATES), channels=st.integers(1, 8), fmt=st.sampled_from(sorted(SUBTYPES)),
       clipped=st.booleans(), target=st.sampled_from([None, 8000, 16000]))
def test_valid_rates_channels_and_sample_formats_load(workdir, rate, channels, fmt, clipped, target):
    subtype, ext = SUBTYPES[fmt]
    n = rate // 5
    data = np.clip(_tone(n, rate, channels, amplitude=3.0 if clipped else 0.3), -1, 1)
    path = _case_dir(workdir) / f"ok.{ext}"
    sf.write(str(path), data, rate, subtype=subtype)
    signal, got_rate = load_audio(path, sample_rate=target)
    assert signal.dtype == np.float32 and signal.ndim == 1 and np.all(np.isfinite(signal))
    assert got_rate == (target or rate)
    assert abs(len(signal) - n * got_rate / rate) <= 2
    if got_rate == rate:  # resampling a clipped wave overshoots full scale a little (Gibbs): as it should
        assert float(np.max(np.abs(signal))) <= 1.0 + 1e-6
    COUNTS["audio (valid): rate x channels x format"] += 1


def _fs_case(kind: str, folder: Path) -> Path:
    if kind == "directory":
        (folder / "dir.wav").mkdir()
        return folder / "dir.wav"
    if kind == "symlink loop":
        os.symlink(folder / "loop.wav", folder / "loop.wav")
        return folder / "loop.wav"
    if kind == "broken symlink":
        os.symlink(folder / "nowhere.wav", folder / "broken.wav")
        return folder / "broken.wav"
    if kind == "missing file":
        return folder / "missing.wav"
    if kind == "fifo":
        os.mkfifo(folder / "pipe.wav")
        return folder / "pipe.wav"
    if kind == "no read permission":
        path = folder / "locked.wav"
        path.write_bytes(GOOD_WAV)
        path.chmod(0)
        if os.access(path, os.R_OK):
            pytest.skip("this user reads files without read permission (root): chmod 000 cannot block reading")
        return path
    raise AssertionError(kind)


FS_KINDS = ["directory", "symlink loop", "broken symlink", "missing file", "fifo", "no read permission"]


@pytest.mark.parametrize("kind", FS_KINDS)
def test_file_system_edges_api_and_cli(tmp_path, capsys, trained, kind):
    path = _fs_case(kind, tmp_path)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert str(path) in str(info.value)
    if kind == "symlink loop":
        assert "no such file" not in str(info.value)
    status, line = run_cli(capsys, "verify", "--model-dir", trained["models"], "--speaker", "spk001", path)
    assert status == ExitStatus.AUDIO and str(path) in line
    COUNTS[f"audio: {kind}"] += 2


@fuzz_settings(max_examples=40)
@given(case=bad_audio())
def test_bad_audio_cli_one_line_exit_3(workdir, capsys, trained, case):
    kind, write = case
    path = _case_dir(workdir) / "bad.wav"
    write(path)
    command = ["verify", "--model-dir", trained["models"], "--speaker", "spk001", path]
    if len(kind) % 2:  # half the cases through enroll (a new speaker: the store must stay untouched)
        command = ["enroll", "--model-dir", trained["models"], "--speaker", "newcomer", path]
    status, line = run_cli(capsys, *command)
    assert status == ExitStatus.AUDIO and str(path) in line
    assert "newcomer" not in ModelStore(trained["models"]).speakers()
    COUNTS[f"audio (CLI): {kind}"] += 1


_RSS_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from speakerid.exceptions import AudioError
    from speakerid.data.audio import load_audio
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        signal, rate = load_audio(sys.argv[1])
        outcome = len(signal)
    except AudioError as exc:
        outcome = str(exc)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_kb": after - before, "outcome": outcome}))
""")


def _write_long(path: Path, seconds: int, rate: int, channels: int) -> None:
    block = (0.3 * _tone(rate, rate, channels)).astype(np.float32)
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=channels, subtype="PCM_16") as out:
        for _ in range(seconds):
            out.write(block)


def _peak_rss_growth_mb(path: Path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(path)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["growth_kb"] / 1024, result["outcome"]


@pytest.mark.slow
def test_an_hour_of_audio_is_refused_before_reading_and_long_files_stream(tmp_path):
    hour = tmp_path / "hour.wav"
    _write_long(hour, 3601, 8000, 1)  # 57.6 MB of 16-bit PCM, just over the default one-hour limit
    growth_mb, outcome = _peak_rss_growth_mb(hour)
    assert "over the 3600 s limit" in outcome
    assert growth_mb < 20, f"peak RSS grew by {growth_mb:.0f} MB refusing a 58 MB file"
    # 10 minutes of 8-channel audio: decoded whole it would take 154 MB of float32; streamed and mixed down
    # block by block it takes the 19 MB mono result plus one block.
    long = tmp_path / "long8ch.wav"
    _write_long(long, 600, 8000, 8)
    growth_mb, outcome = _peak_rss_growth_mb(long)
    mono_mb = 600 * 8000 * 4 / 2**20
    assert outcome == 600 * 8000
    assert growth_mb < 2 * mono_mb + 16, f"peak RSS grew by {growth_mb:.0f} MB for a {mono_mb:.0f} MB result"
    COUNTS["audio: an hour / long multi-channel"] += 2


# ============================================================================================== manifests
@st.composite
def speaker_ids_invalid(draw):
    kind = draw(st.sampled_from(["path", "dot", "control", "long", "blank edges", "empty", "surrogate"]))
    word = draw(st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=8))
    if kind == "path":
        sep = draw(st.sampled_from(["/", "\\", "../", "..\\"]))
        return kind, draw(st.sampled_from([f"{sep}{word}", f"{word}{sep}{word}", f"{word}{sep}"]))
    if kind == "dot":
        return kind, draw(st.sampled_from([".", "..", f".{word}"]))
    if kind == "control":
        ch = draw(st.sampled_from([chr(c) for c in [*range(0, 9), *range(11, 32), 0x7F, 0x85, 0x9B]]))
        pos = draw(st.integers(0, len(word)))
        return kind, word[:pos] + ch + word[pos:]
    if kind == "long":
        return kind, word * (129 // len(word) + 1)
    if kind == "blank edges":
        return kind, draw(st.sampled_from([f" {word}", f"{word} ", f"\u3000{word}", f"{word}\u00a0"]))
    if kind == "surrogate":
        return kind, word + "\ud800"
    return kind, ""


@st.composite
def bad_manifest(draw):
    """(kind, text or bytes) of a manifest read_manifest must refuse, given a folder holding ``a.wav``."""
    kind = draw(st.sampled_from(["missing columns", "other delimiter", "empty speaker", "empty path",
                                 "bad target", "duplicate rows", "invalid speaker id", "missing file",
                                 "header only", "undecodable", "unclosed quote", "empty file"]))
    speaker = draw(st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=10))
    rows = [(speaker, "a.wav", "1")]
    header = ["speaker", "path", "target"]
    if kind == "missing columns":
        header = draw(st.sampled_from([["speaker"], ["path"], ["spkr", "path"], ["speaker", "file"], ["x"]]))
        body = [",".join(header)] + [",".join([speaker, "a.wav"][: len(header)])]
        return kind, "\n".join(body) + "\n", False
    if kind == "other delimiter":
        sep = draw(st.sampled_from([";", "\t", "|", " "]))
        return kind, f"speaker{sep}path\n{speaker}{sep}a.wav\n", False
    if kind == "empty speaker":
        rows.append((draw(st.sampled_from(["", " ", "  "])), "a.wav", "0"))
    elif kind == "empty path":
        rows.append((speaker, draw(st.sampled_from(["", " "])), "0"))
    elif kind == "bad target":
        value = draw(st.one_of(st.sampled_from(["2", "-1", "yes", "no", "nan", "0.5", "11", "t", "++1"]),
                               st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=4)))
        if value.strip().lower() in {"1", "0", "1.0", "0.0", "true", "false", "target", "nontarget"}:
            value = "2"
        rows.append((speaker, "a.wav", value))
    elif kind == "duplicate rows":
        rows = rows * draw(st.integers(2, 4))
        rows = [(s, draw(st.sampled_from(["a.wav", "./a.wav", "sub/../a.wav"])), t) for s, _, t in rows]
    elif kind == "invalid speaker id":
        _, bad = draw(speaker_ids_invalid())
        if not bad or bad != bad.strip() or any(c in bad for c in ',"\n\r\ud800'):
            bad = "../" + speaker  # what a CSV cell can hold and the reader does not strip
        rows.append((bad, "a.wav", "0"))
    elif kind == "missing file":
        rows.append((speaker, draw(st.sampled_from(["nope.wav", "../nope.wav", "sub/none.flac"])), "0"))
    elif kind == "header only":
        return kind, draw(st.sampled_from(["speaker,path\n", "speaker,path,target\n", "speaker,path\n\n ,\n"])), True
    elif kind == "undecodable":
        encoding = draw(st.sampled_from(["latin-1", "utf-16", "cp1252"]))
        text = f"speaker,path\nZoë{speaker},a.wav\n"
        return kind, text.encode(encoding, errors="replace"), False
    elif kind == "unclosed quote":
        return kind, f'speaker,path\n"{speaker},a.wav\n', False
    elif kind == "empty file":
        return kind, draw(st.sampled_from(["", "\n", "\n\n"])), False
    lines = [",".join(header)] + [",".join(row) for row in rows]
    return kind, "\n".join(lines) + "\n", True


def _write_manifest(folder: Path, content) -> Path:
    path = folder / "m.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@fuzz_settings(max_examples=150)
@given(case=bad_manifest())
def test_bad_manifest_raises_manifest_error(workdir, case):
    kind, content, with_target = case
    folder = _case_dir(workdir)
    sf.write(str(folder / "a.wav"), _tone(8000, 16000, 1), 16000)
    path = _write_manifest(folder, content)
    with pytest.raises(ManifestError) as info:
        read_manifest(path, require_target=with_target)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    COUNTS[f"manifest: {kind}"] += 1


@st.composite
def odd_but_valid_manifest(draw):
    """(kind, text, expected speakers) of manifests that are unusual but valid."""
    kind = draw(st.sampled_from(["bom", "extra columns", "quoted commas", "empty rows", "unicode ids",
                                 "escaping path", "crlf", "padded cells"]))
    speaker = draw(st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=10))
    path = "a.wav"
    if kind == "bom":
        return kind, f"\ufeffspeaker,path\n{speaker},{path}\n", [speaker]
    if kind == "extra columns":
        extra = draw(st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=6))
        return kind, f"speaker,note,path,x_{extra}\n{speaker},hello,{path},1\n", [speaker]
    if kind == "quoted commas":
        return kind, f'speaker,path,note\n"{speaker}, jr",{path},"a, b"\n', [f"{speaker}, jr"]
    if kind == "empty rows":
        return kind, f"speaker,path\n\n,\n{speaker},{path}\n \n", [speaker]
    if kind == "unicode ids":
        ident = draw(st.sampled_from(["Zoë", "话者", "Ørjan", "Дарья", "أحمد", "O'Brien", "spk 01", "🙂x"]))
        return kind, f"speaker,path\n{ident},{path}\n", [ident]
    if kind == "escaping path":
        return kind, f"speaker,path\n{speaker},../{{folder}}/{path}\n", [speaker]
    if kind == "crlf":
        return kind, f"speaker,path\r\n{speaker},{path}\r\n", [speaker]
    return kind, f"speaker , path\n  {speaker} ,  {path}  \n", [speaker]


@fuzz_settings(max_examples=50)
@given(case=odd_but_valid_manifest())
def test_odd_but_valid_manifests_load(workdir, case):
    kind, content, speakers = case
    folder = _case_dir(workdir)
    sf.write(str(folder / "a.wav"), _tone(8000, 16000, 1), 16000)
    path = _write_manifest(folder, content.replace("{folder}", folder.name))
    frame = read_manifest(path)
    assert list(frame["speaker"]) == speakers
    assert [Path(p) for p in frame["path"]] == [folder / "a.wav"]
    COUNTS[f"manifest (valid): {kind}"] += 1


@fuzz_settings(max_examples=30)
@given(case=bad_manifest())
def test_bad_manifest_cli_one_line_exit_4(workdir, capsys, trained, case):
    kind, content, _ = case
    folder = _case_dir(workdir)
    sf.write(str(folder / "a.wav"), _tone(8000, 16000, 1), 16000)
    path = _write_manifest(folder, content)
    before = sorted(p.name for p in ModelStore(trained["models"]).speaker_files())
    status, line = run_cli(capsys, "enroll", "--manifest", path, "--model-dir", trained["models"])
    assert status == ExitStatus.MANIFEST and str(path) in line
    assert sorted(p.name for p in ModelStore(trained["models"]).speaker_files()) == before
    COUNTS[f"manifest (CLI): {kind}"] += 1


def test_paths_escaping_the_manifest_folder_are_allowed(tmp_path):
    """Documented policy (README, SECURITY.md): manifests are trusted local input; ``../`` paths are followed."""
    (tmp_path / "data").mkdir()
    (tmp_path / "lists").mkdir()
    sf.write(str(tmp_path / "data" / "a.wav"), _tone(8000, 16000, 1), 16000)
    (tmp_path / "lists" / "m.csv").write_text("speaker,path\nann,../data/a.wav\n")
    frame = read_manifest(tmp_path / "lists" / "m.csv")
    assert Path(frame.iloc[0]["path"]) == tmp_path / "data" / "a.wav"
    load_audio(frame.iloc[0]["path"])


# ============================================================================================== model files
# A pickle stream (protocol 4) of the dict {"means": 0}, written out by hand: never produced by, nor given to,
# the pickle module. np.load must refuse it without unpickling.
PICKLE_BYTES = b"\x80\x04\x95\x0d\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x05means\x94K\x00s."


def _archive(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _with_header(arrays: dict, change) -> bytes:
    header = json.loads(bytes(arrays["__header__"]).decode("utf-8"))
    change(header)
    out = dict(arrays)
    out["__header__"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **out)
    return buffer.getvalue()


def _savez_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@st.composite
def model_corruption(draw):
    """(kind, function of the original file bytes and arrays -> new bytes)."""
    kind = draw(st.sampled_from(["truncated", "bit-flipped", "wrong format version", "newer version",
                                 "pickle renamed .npz", "wrong shape", "wrong dtype", "random bytes", "no header",
                                 "header not json", "header not an object", "not a speakerid header",
                                 "non-finite array", "extra array"]))
    if kind == "truncated":
        fraction = draw(st.floats(0.0, 0.999))
        return kind, lambda raw, arrays: raw[: int(len(raw) * fraction)]
    if kind == "bit-flipped":
        flips = draw(st.lists(st.tuples(st.floats(0.0, 0.9999), st.integers(0, 7)), min_size=1, max_size=8))

        def flip(raw, arrays):
            data = bytearray(raw)
            for where, bit in flips:
                data[int(where * len(data))] ^= 1 << bit
            return bytes(data)
        return kind, flip
    if kind == "wrong format version":
        version = draw(st.sampled_from([0, -1, "1", 1.5, None, [1]]))
        return kind, lambda raw, arrays: _with_header(arrays, lambda h: h.update(format_version=version))
    if kind == "newer version":
        version = FORMAT_VERSION + draw(st.integers(1, 1000))
        return kind, lambda raw, arrays: _with_header(arrays, lambda h: h.update(format_version=version))
    if kind == "pickle renamed .npz":
        return kind, lambda raw, arrays: PICKLE_BYTES
    if kind in ("wrong shape", "wrong dtype", "non-finite array"):
        pick = draw(st.integers(0, 10))
        dtype = draw(st.sampled_from([np.float64, np.int32, np.uint8, np.bool_, np.float16]))
        value = draw(st.sampled_from([np.nan, np.inf, -np.inf]))

        def change(raw, arrays):
            names = sorted(n for n in arrays if n != "__header__")
            name = names[pick % len(names)]
            out = dict(arrays)
            if kind == "wrong shape":
                out[name] = np.resize(arrays[name], (arrays[name].size + 1,))
            elif kind == "wrong dtype":
                out[name] = arrays[name].astype(dtype)
                if out[name].dtype == arrays[name].dtype:
                    out[name] = arrays[name].astype(np.int64)
            else:
                out[name] = arrays[name].copy()
                out[name].flat[pick % out[name].size] = value
            return _savez_bytes(out)
        return kind, change
    if kind == "random bytes":
        data = draw(st.binary(min_size=0, max_size=2000))
        return kind, lambda raw, arrays: data
    if kind == "no header":
        return kind, lambda raw, arrays: _savez_bytes({k: v for k, v in arrays.items() if k != "__header__"})
    if kind == "header not json":
        junk = draw(st.binary(min_size=0, max_size=50))
        return kind, lambda raw, arrays: _savez_bytes({**arrays, "__header__": np.frombuffer(b"{" + junk,
                                                                                             np.uint8)})
    if kind == "header not an object":
        value = draw(st.sampled_from(["[]", "1", '"speakerid-model"', "null"]))
        return kind, lambda raw, arrays: _savez_bytes({**arrays, "__header__": np.frombuffer(value.encode(),
                                                                                             np.uint8)})
    if kind == "not a speakerid header":
        return kind, lambda raw, arrays: _with_header(arrays, lambda h: h.update(format="other-model"))
    return kind, lambda raw, arrays: _savez_bytes({**arrays, "extra": np.zeros(3, np.float32)})


def _assert_same_or_model_format_error(path: Path, original: dict):
    """A mutated file is refused with ModelFormatError, or (a flip in ignorable zip metadata) reads identically."""
    try:
        _, arrays = load_model_file(path)
    except ModelFormatError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return "refused"
    assert set(arrays) == set(original) - {"__header__"}
    for name, value in arrays.items():
        np.testing.assert_array_equal(value, original[name])
    return "identical"


@fuzz_settings(max_examples=160)
@given(case=model_corruption(), which=st.sampled_from(["ubm", "speaker"]))
def test_corrupt_model_files_raise_model_format_error(workdir, trained, case, which):
    kind, corrupt = case
    store = ModelStore(trained["models"])
    source = store.path("ubm.npz") if which == "ubm" else store.speaker_path("spk001")
    raw = source.read_bytes()
    arrays = _archive(source)
    path = _case_dir(workdir) / source.name
    path.write_bytes(corrupt(raw, arrays))
    outcome = _assert_same_or_model_format_error(path, arrays)
    if kind != "bit-flipped":
        assert outcome == "refused", kind
    COUNTS[f"model file: {kind}"] += 1


@fuzz_settings(max_examples=40)
@given(case=model_corruption(), which=st.sampled_from(["ubm", "speaker"]))
def test_corrupt_model_files_cli_one_line(workdir, capsys, trained, case, which):
    kind, corrupt = case
    models = _case_dir(workdir) / "models"
    shutil.copytree(trained["models"], models)
    store = ModelStore(models)
    target = store.path("ubm.npz") if which == "ubm" else store.speaker_path("spk001")
    arrays = _archive(target)
    target.write_bytes(corrupt(target.read_bytes(), arrays))
    capsys.readouterr()
    status = main(["verify", "--model-dir", str(models), "--speaker", "spk001", trained["wav"]])
    _, err = capsys.readouterr()
    assert "Traceback" not in err and "unexpected error" not in err, err
    if status != ExitStatus.OK:  # a flip in ignorable zip metadata leaves a working model
        assert status in (ExitStatus.MODEL_FORMAT, ExitStatus.CONFIG_MISMATCH), err
        assert len(err.strip().splitlines()) == 1 and str(models) in err
    else:
        assert kind == "bit-flipped"
    COUNTS[f"model file (CLI): {kind}"] += 1


def test_model_file_checks_never_modify_the_file(tmp_path, trained):
    path = tmp_path / "ubm.npz"
    path.write_bytes(PICKLE_BYTES)
    with pytest.raises(ModelFormatError, match="not a speakerid model|pickle|corrupt"):
        load_model_file(path)
    assert path.read_bytes() == PICKLE_BYTES
    text = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"  # an .npy of one object: pickled data
    header = (text + " " * (63 - (10 + len(text)) % 64) + "\n").encode("ascii")
    with zipfile.ZipFile(tmp_path / "obj.npz", "w") as archive:
        archive.writestr("__header__.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
                         + PICKLE_BYTES)
    with pytest.raises(ModelFormatError, match="pickle"):
        load_model_file(tmp_path / "obj.npz")
    COUNTS["model file: pickle object array"] += 2


# ============================================================================================== speaker ids
@fuzz_settings(max_examples=120)
@given(case=speaker_ids_invalid())
def test_invalid_speaker_ids_raise_parameter_error(tmp_path_factory, case):
    kind, speaker = case
    with pytest.raises(ParameterError, match="invalid speaker id"):
        validate_speaker_id(speaker)
    store = ModelStore(tmp_path_factory.getbasetemp() / "ids-store")
    with pytest.raises(ParameterError):
        store.save_speaker(speaker, {"means": np.zeros((2, 2), np.float32)}, {"model_class": "Toy"})
    assert not store.model_dir.exists() or not any(store.model_dir.rglob("*.npz"))
    COUNTS[f"speaker id: {kind}"] += 1


@fuzz_settings(max_examples=40)
@given(case=speaker_ids_invalid(), command=st.sampled_from(["verify", "enroll", "remove"]))
def test_invalid_speaker_ids_cli_one_line_exit_2(capsys, trained, case, command):
    kind, speaker = case
    argv = {"verify": ["verify", "--model-dir", trained["models"], "--speaker", speaker, trained["wav"]],
            "enroll": ["enroll", "--model-dir", trained["models"], "--speaker", speaker, trained["wav"]],
            "remove": ["remove", "--model-dir", trained["models"], "--speaker", speaker]}[command]
    status, line = run_cli(capsys, *argv)
    assert status == ExitStatus.USAGE
    assert "invalid speaker id" in line or (speaker == "" and "nothing to enroll" in line)
    assert ModelStore(trained["models"]).speakers() == ["spk001", "spk002", "spk003"]
    COUNTS[f"speaker id (CLI): {kind}"] += 1


@fuzz_settings(max_examples=40)
@given(word=st.text(st.characters(whitelist_categories=("Lu", "Ll")), min_size=1, max_size=12))
def test_ids_differing_only_by_case_never_collide(tmp_path_factory, word):
    # ids are kept in NFC form (the Ohm sign U+2126 is the letter Omega): compare the forms that are stored
    variants = sorted({validate_speaker_id(v) for v in (word, word.lower(), word.upper(), word.swapcase())})
    names = [speaker_file_name(v) for v in variants]
    # distinct even where the file system folds case (macOS, Windows): the names are compared case-folded
    assert len({n.casefold() for n in names}) == len(variants)
    store = ModelStore(Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp())))
    for k, speaker in enumerate(variants):
        store.save_speaker(speaker, {"means": np.full((2, 2), k, np.float32)}, {"model_class": "Toy"})
    assert store.speakers() == sorted(variants)
    for k, speaker in enumerate(variants):
        header, arrays = store.load_speaker(speaker)
        assert header["speaker"] == speaker and float(arrays["means"][0, 0]) == k
    COUNTS["speaker id (valid): differing only by case"] += 1


def test_renamed_speaker_file_is_not_listed(tmp_path):
    """A file copied by hand under another id's name would be listed but could never be loaded: skip it."""
    store = ModelStore(tmp_path)
    store.save_speaker("Bob", {"means": np.zeros((2, 2), np.float32)}, {"model_class": "Toy"})
    shutil.copy(store.speaker_path("Bob"), store.speaker_dir() / speaker_file_name("bob"))
    assert store.speakers() == ["Bob"]


# ============================================================================================== CLI options
@pytest.mark.parametrize("argv, needle", [
    (["train-ubm", "--manifest", "{bg}", "--model-dir", "{tmp}/m", "--jobs", "0"], "--jobs"),
    (["train-ubm", "--manifest", "{bg}", "--model-dir", "{tmp}/m", "--seed", "-1"], "--seed"),
    (["train-ubm", "--manifest", "{bg}", "--model-dir", "{tmp}/m", "--seed", str(2**40)], "--seed"),
    (["verify", "--model-dir", "{models}", "--speaker", "spk001", "{wav}", "--threshold", "nan"], "--threshold"),
    (["identify", "--model-dir", "{models}", "{wav}", "--threshold", "inf"], "--threshold"),
    (["score", "--model-dir", "{models}", "--trials", "{trials}", "--out", "{tmp}", "--jobs", "1"], "directory"),
    (["train-ubm", "--manifest", "{bg}", "--model-dir", "{file}", "--components", "2"], "is a file"),
    (["train-ubm", "--manifest", "{bg}", "--model-dir", "{tmp}/m2", "--feature-config", "{binary}"], "UTF-8"),
    (["train-ubm", "--manifest", "{bg}", "--model-dir", "{tmp}/m3", "--feature-config", "{badjson}"], "badjson"),
])
def test_bad_options_are_one_line_usage_errors(capsys, tmp_path, trained, argv, needle):
    (tmp_path / "file").write_text("x")
    (tmp_path / "binary.json").write_bytes(bytes(range(256)))
    (tmp_path / "badjson.json").write_text("{nope")
    fields = {"bg": trained["corpus"].background_csv, "tmp": tmp_path, "models": trained["models"],
              "wav": trained["wav"], "trials": trained["corpus"].trials_csv, "file": tmp_path / "file",
              "binary": tmp_path / "binary.json", "badjson": tmp_path / "badjson.json"}
    status, line = run_cli(capsys, *[a.format(**fields) for a in argv])
    assert status == ExitStatus.USAGE and needle in line


def test_corrupt_features_json_is_a_model_format_error(capsys, tmp_path, trained):
    models = tmp_path / "models"
    shutil.copytree(trained["models"], models)
    for content in (bytes(range(256)), b"{nope", b"[1, 2]"):
        (models / "features.json").write_bytes(content)
        status, line = run_cli(capsys, "verify", "--model-dir", models, "--speaker", "spk001", trained["wav"])
        assert status == ExitStatus.MODEL_FORMAT and "features.json" in line


@pytest.mark.parametrize("error, needle", [
    (PermissionError(13, "Permission denied", "/some/where.npz"), "/some/where.npz: Permission denied"),
    (OSError(28, "No space left on device"), "No space left on device"),
    (IsADirectoryError(21, "Is a directory", "/tmp/x"), "/tmp/x: Is a directory"),
    (MemoryError(), "out of memory"),
])
def test_system_errors_are_one_line_exit_1(capsys, monkeypatch, error, needle):
    from speakerid.cli import models as model_commands

    def boom(args):
        raise error
    monkeypatch.setattr(model_commands, "_speakers", boom)
    status, line = run_cli(capsys, "speakers", "--model-dir", "anything")
    assert status == ExitStatus.ERROR and needle in line and "Errno" not in line


def test_keyboard_interrupt_exits_130(capsys, monkeypatch):
    from speakerid.cli import models as model_commands

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(model_commands, "_speakers", interrupted)
    status, line = run_cli(capsys, "speakers", "--model-dir", "anything")
    assert status == ExitStatus.INTERRUPTED and line == "speakerid: interrupted"


def test_partial_scoring_failure_says_so_on_stderr(capsys, tmp_path, trained):
    trials = tmp_path / "trials.csv"
    trials.write_text(f"speaker,path,target\nspk001,{trained['wav']},1\nspk002,missing.wav,0\n")
    status, line = run_cli(capsys, "score", "--model-dir", trained["models"], "--trials", trials, "--out",
                           tmp_path / "scores.csv", "--strict")
    assert status == ExitStatus.PARTIAL_FAILURE and "1 of 2 trial(s) could not be scored" in line


# ============================================================================================== the total
def test_at_least_500_generated_cases():
    """Runs last in this module: when the whole module ran, the generated cases add up to at least 500."""
    if len(COUNTS) < 40:
        pytest.skip("only part of the module ran (-k / -x): the total is checked on full runs")
    assert sum(COUNTS.values()) >= MIN_TOTAL_CASES, dict(COUNTS)
