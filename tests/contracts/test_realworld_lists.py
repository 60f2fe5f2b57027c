"""Real-world kinds 8-10 of issue 14 (trustworthy answers), each a generated family of inputs:

- kind 8, trial-list integrity: a trial listed twice, or as both a target and a non-target, in a trial list or a
  score file, is refused (ManifestError, exit 4) naming both rows, wherever chunk boundaries fall;
- kind 9, speaker ids: an id is the same speaker in any Unicode normal form that composes to the same NFC text;
  the id ``unknown`` cannot be enrolled; a rejection of ``identify`` is a separate field, never a name;
- kind 10, warnings and false statements: every warning a command prints is one ``speakerid: warning:`` line
  (also from worker processes) and ``--json`` stdout stays valid JSON; summaries and plots say what is true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import unicodedata

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import tiny_model_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.audio import load_audio
from speakerid.data.manifests import read_manifest
from speakerid.data.trials import read_score_file, scan_trials
from speakerid.exceptions import ManifestError
from speakerid.verifier import SpeakerVerifier

WARNING = "speakerid: warning: "
NAMES = ("Zoë", "José", "Dvořák", "Nguyễn Thị Ánh")   # ids whose NFC and NFD forms differ


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def _nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny UBM directory with the corpus speakers enrolled, plus every name of :data:`NAMES` enrolled in its
    decomposed (NFD) form from a corpus speaker's files; returns ``(model_dir, corpus)``."""
    root = tmp_path_factory.mktemp("realworld-lists")
    model_dir, corpus = tiny_model_dir(root)
    verifier = SpeakerVerifier(model_dir)
    verifier.enroll_manifest(corpus.enroll_csv)
    enroll = read_manifest(corpus.enroll_csv)
    first = enroll[enroll["speaker"] == corpus.speakers[0]]["path"].tolist()
    for name in NAMES:
        verifier.enroll(_nfd(name), first)
    return model_dir, corpus


def _test_file(corpus) -> str:
    trials = read_manifest(corpus.trials_csv, require_target=True)
    return trials[trials["speaker"] == corpus.speakers[0]]["path"].iloc[0]


# ------------------------------------------------------------------------------------------------------------
# kind 8: trial-list integrity
# ------------------------------------------------------------------------------------------------------------

def _variant(speaker: str, path: str, how: str) -> tuple[str, str]:
    """Another spelling of the same trial key."""
    folder, name = os.path.split(path)
    return {"same": (speaker, path), "dot path": (speaker, os.path.join(folder, ".", name)),
            "blanks": (f" {speaker}", f"{path} "), "nfd speaker": (_nfd(speaker), path),
            "sub/.. path": (speaker, os.path.join(folder, "sub", "..", name))}[how]


@st.composite
def _bad_list(draw):
    """``(rows, first_line, second_line, kind)``: a unique trial list with row ``b`` re-listing row ``a``'s trial,
    with the same target (a repeat) or the other one (a contradiction), spelt in any equivalent way."""
    n = draw(st.integers(2, 14))
    speakers = ["Zoë", "spk1", "spk2"]
    rows = [(speakers[i % 3], f"f{i}.wav", draw(st.sampled_from(["0", "1"]))) for i in range(n)]
    a = draw(st.integers(0, n - 1))
    b = draw(st.integers(a + 1, n))
    kind = draw(st.sampled_from(["repeat", "contradiction"]))
    speaker, path = _variant(rows[a][0], rows[a][1], draw(st.sampled_from(
        ["same", "dot path", "blanks", "nfd speaker", "sub/.. path"])))
    target = rows[a][2] if kind == "repeat" else str(1 - int(rows[a][2]))
    target = draw(st.sampled_from({"1": ["1", "true", "1.0", "target"], "0": ["0", "false", "0.0"]}[target]))
    rows.insert(b, (speaker, path, target))
    return rows, a + 2, b + 2, kind   # CSV lines: the header is line 1


def _csv(path, rows, header="speaker,path,target"):
    path.write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_bad_list(), chunksize=st.integers(1, 6))
def test_scan_refuses_repeated_and_contradictory_trials_across_chunks(tmp_path, case, chunksize):
    rows, first, second, kind = case
    path = _csv(tmp_path / "trials.csv", rows)
    with pytest.raises(ManifestError) as info:
        scan_trials(path, chunksize)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    if kind == "repeat":
        assert f"line {second} repeats line {first}" in message and "1 repeated trial row(s)" in message
    else:
        assert "1 trial(s) listed as both target and non-target" in message
        assert re.search(rf"line {first}\b", message) and re.search(rf"line {second}\b", message)


@pytest.mark.parametrize("layout", ["adjacent", "far apart", "one per chunk", "three copies", "frame"])
def test_scan_layouts_name_every_row(tmp_path, layout):
    base = [("a", f"x{i}.wav", str(i % 2)) for i in range(9)]
    rows = {"adjacent": base[:4] + [base[3]] + base[4:],
            "far apart": base + [base[0]],
            "one per chunk": base[:2] + [base[1]] + base[2:],
            "three copies": base + [base[5], base[5]],
            "frame": base + [base[2]]}[layout]
    if layout == "frame":
        frame = pd.DataFrame(rows, columns=["speaker", "path", "target"])
        with pytest.raises(ManifestError, match=r"trials DataFrame: 1 repeated .*: row 9 repeats row 2"):
            scan_trials(frame, 4)
        return
    expected = {"adjacent": ["line 6 repeats line 5"], "far apart": ["line 11 repeats line 2"],
                "one per chunk": ["line 4 repeats line 3"],
                "three copies": ["2 repeated", "line 11 repeats line 7", "line 12 repeats line 7"]}[layout]
    with pytest.raises(ManifestError) as info:
        scan_trials(_csv(tmp_path / "t.csv", rows), 2)
    assert all(e in str(info.value) for e in expected), str(info.value)


def test_scan_contradictions_come_first_and_are_counted(tmp_path):
    rows = [(f"s{i}", "x.wav", "1") for i in range(8)] + [(f"s{i}", "x.wav", "0") for i in range(8)]
    rows += [("s0", "y.wav", "1"), ("s0", "y.wav", "1")]
    with pytest.raises(ManifestError) as info:
        scan_trials(_csv(tmp_path / "t.csv", rows), 3)
    message = str(info.value)
    assert message.count("is a target on line") == 5 and "8 trial(s) listed as both" in message
    assert "and 3 more" in message and "speaker 's0' with 'x.wav' is a target on line 2 and a non-target on " \
                                      "line 10" in message


def test_a_claim_per_speaker_and_distinct_files_are_fine(tmp_path):
    rows = [(s, f"{f}.wav", "1" if s == f else "0") for s in "abc" for f in "abc"]
    rows.append(("Zoë", "./a.wav", "0"))            # another speaker, an equivalent path: another trial
    assert scan_trials(_csv(tmp_path / "t.csv", rows), 2) == (10, ["Zoë", "a", "b", "c"], True)
    no_target = [(s, p) for s, p, _ in rows]
    assert scan_trials(_csv(tmp_path / "n.csv", no_target, "speaker,path"), 4)[2] is False
    with pytest.raises(ManifestError, match="line 12 repeats line 2"):
        scan_trials(_csv(tmp_path / "n.csv", no_target + [("a", "a.wav")], "speaker,path"), 4)


@pytest.mark.parametrize("how", ["same", "dot path", "blanks"])
@pytest.mark.parametrize("kind", ["repeat", "contradiction"])
def test_score_command_refuses_before_scoring(models, tmp_path, capsys, how, kind):
    model_dir, corpus = models
    trials = read_manifest(corpus.trials_csv, require_target=True)
    rows = [(s, p, str(t)) for s, p, t in zip(trials["speaker"], trials["path"], trials["target"])]
    speaker, path = _variant(rows[1][0], rows[1][1], how)
    target = rows[1][2] if kind == "repeat" else str(1 - int(rows[1][2]))
    rows.insert(4, (speaker, path, target))
    out = tmp_path / "scores.csv"
    status, text, err = _run(capsys, "score", "--model-dir", model_dir, "--trials", _csv(tmp_path / "t.csv", rows),
                             "--out", out, "--chunksize", 2, "--norm", "none")
    assert status == ExitStatus.MANIFEST, err
    assert err.count("\n") == 1 and "line 3" in err and "line 6" in err and not out.exists() and not text


def _score_rows(n=12, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3 == 0
    scores = np.where(labels, 1.0, -1.0) + rng.normal(0, 1.5, n)
    return [(f"spk{i % 4}", f"t{i}.wav", str(int(t)), repr(float(s))) for i, (t, s) in enumerate(zip(labels, scores))]


@pytest.mark.parametrize("command", ["evaluate", "calibrate", "fuse"])
@pytest.mark.parametrize("how, kind", [("same", "exact duplicate"), ("same", "contradiction"),
                                       ("nfd speaker", "contradiction"), ("dot path", "repeat")])
def test_evaluation_refuses_contradictory_and_duplicate_score_rows(tmp_path, capsys, command, how, kind):
    rows = _score_rows()
    rows[0] = ("Zoë", rows[0][1], rows[0][2], rows[0][3])
    speaker, path = _variant(rows[0][0], rows[0][1], how)
    target = rows[0][2] if kind != "contradiction" else str(1 - int(rows[0][2]))
    score = rows[0][3] if kind == "exact duplicate" else "0.25"
    rows.append((speaker, path, target, score))
    scores = _csv(tmp_path / "scores.csv", rows, "speaker,path,target,score")
    argv = {"evaluate": ["evaluate", "--scores", scores, "--out-dir", tmp_path / "report"],
            "calibrate": ["calibrate", "--scores", scores, "--out", tmp_path / "cal.json"],
            "fuse": ["fuse", "--scores", scores, "--train", scores, "--out", tmp_path / "fused.csv"]}[command]
    status, out, err = _run(capsys, *argv)
    assert status == ExitStatus.MANIFEST, err
    assert err.count("\n") == 1 and str(scores) in err and "line 2" in err and f"line {len(rows) + 1}" in err
    word = "both target and non-target" if kind == "contradiction" else "repeated trial row"
    assert word in err and not out
    assert not (tmp_path / "report" / "metrics.json").exists() and not (tmp_path / "fused.csv").exists()


def test_score_files_without_trial_columns_and_frames(tmp_path):
    rows = _score_rows()
    only = _csv(tmp_path / "s.csv", [(t, s) for _, _, t, s in rows + rows[:1]], "target,score")
    assert len(read_score_file(only).scores) == len(rows) + 1      # nothing to tell trials apart by
    frame = pd.DataFrame(rows + rows[:1], columns=["speaker", "path", "target", "score"])
    with pytest.raises(ManifestError, match=r"system 'x': 1 repeated .*row 12 repeats row 0"):
        read_score_file(frame, name="system 'x'")


# ------------------------------------------------------------------------------------------------------------
# kind 9: speaker ids
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_an_id_enrolled_in_nfd_is_found_in_nfc(models, capsys, name):
    model_dir, corpus = models
    wav = _test_file(corpus)
    assert unicodedata.normalize("NFC", name) != _nfd(name)
    results = []
    for form in (unicodedata.normalize("NFC", name), _nfd(name)):
        status, out, err = _run(capsys, "verify", "--model-dir", model_dir, "--speaker", form, wav, "--json")
        assert status == ExitStatus.OK, err
        results.append(json.loads(out))
    assert results[0]["score"] == results[1]["score"]
    assert results[0]["speaker"] == results[1]["speaker"] == unicodedata.normalize("NFC", name)
    status, out, _ = _run(capsys, "speakers", "--model-dir", model_dir, "--json")
    listed = [s["speaker"] for s in json.loads(out)["speakers"]]
    assert listed.count(unicodedata.normalize("NFC", name)) == 1 and _nfd(name) not in listed


@pytest.mark.parametrize("variant", ["Ｚoë", "ZOË", "Zoe", "Ｊosé"])
def test_compatibility_and_case_variants_are_other_ids(models, capsys, variant):
    """NFKC folds full-width letters (and case is kept): these are other ids, said to be not enrolled."""
    model_dir, corpus = models
    status, _, err = _run(capsys, "verify", "--model-dir", model_dir, "--speaker", variant, _test_file(corpus))
    assert status == ExitStatus.UNKNOWN_SPEAKER and err.count("\n") == 1
    assert repr(unicodedata.normalize("NFC", variant)) in err


def test_trial_lists_in_any_normal_form_score_the_same(models, tmp_path, capsys):
    model_dir, corpus = models
    wav = _test_file(corpus)
    rows = [(form, wav, "1" if i == 0 else "0") for i, form in enumerate(
        [_nfd("Zoë"), "José", _nfd("Dvořák"), corpus.speakers[1]])]
    out = tmp_path / "scores.csv"
    status, _, err = _run(capsys, "score", "--model-dir", model_dir, "--trials", _csv(tmp_path / "t.csv", rows),
                          "--out", out, "--norm", "none", "--json")
    assert status == ExitStatus.OK, err
    scored = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(scored["speaker"]) == [r[0] for r in rows]       # written back as given
    verifier = SpeakerVerifier(model_dir, norm="none")      # the same settings as the score run
    expected = [verifier.verify(unicodedata.normalize("NFC", s), wav)["score"] for s, _, _ in rows]
    np.testing.assert_allclose(scored["score"].astype(float), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("reserved", ["unknown", "Unknown", "UNKNOWN", "unKnown"])
def test_the_reserved_id_cannot_be_enrolled(models, tmp_path, capsys, reserved):
    model_dir, corpus = models
    private = tmp_path / "m"
    shutil.copytree(model_dir, private)
    wav = _test_file(corpus)
    status, _, err = _run(capsys, "enroll", "--model-dir", private, "--speaker", reserved, wav)
    assert status == ExitStatus.USAGE and "reserved" in err and repr(reserved) in err and err.count("\n") == 1
    manifest = _csv(tmp_path / "enroll.csv", [("spk009", wav), (reserved, wav)], "speaker,path")
    status, _, err = _run(capsys, "enroll", "--model-dir", private, "--manifest", manifest)
    assert status == ExitStatus.MANIFEST and "line(s) 3" in err and "reserved" in err
    assert "spk009" not in SpeakerVerifier(private).speakers()      # refused before anyone was enrolled
    status, _, err = _run(capsys, "verify", "--model-dir", private, "--speaker", reserved, wav)
    assert status == ExitStatus.UNKNOWN_SPEAKER


@pytest.mark.parametrize("threshold, rejected", [(1e9, True), (-1e9, False), (1e3, True)])
def test_identify_reports_a_rejection_as_its_own_field(models, capsys, threshold, rejected):
    model_dir, corpus = models
    wav = _test_file(corpus)
    status, out, err = _run(capsys, "identify", "--model-dir", model_dir, wav, "--threshold", threshold, "--json")
    assert status == ExitStatus.OK, err
    result = json.loads(out)
    assert result["rejected"] is rejected and result["candidates"]
    assert result["best"] == (None if rejected else result["candidates"][0]["speaker"])
    status, text, _ = _run(capsys, "identify", "--model-dir", model_dir, wav, "--threshold", threshold)
    first = text.splitlines()[0]
    if rejected:
        assert "no enrolled speaker matches" in first and "best match" not in first
    else:
        assert f"best match {result['best']} " in first


def test_web_identify_shows_a_rejection_in_words(models, tmp_path):
    pytest.importorskip("flask")
    import io

    from speakerid.web import create_app

    model_dir, corpus = models
    app = create_app(model_dir, upload_dir=tmp_path)
    app.testing = True
    client = app.test_client()
    wav = _test_file(corpus)

    def upload():
        return io.BytesIO(open(wav, "rb").read()), "clip.wav"

    response = client.post("/api/identify", headers={"X-Requested-With": "pytest"}, content_type="multipart/form-data",
                           data={"file": upload(), "threshold": "1e9"})
    assert response.status_code == 200 and response.get_json()["best"] is None
    assert response.get_json()["rejected"] is True
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/identify").get_data(as_text=True)).group(1)
    page = client.post("/identify", content_type="multipart/form-data",
                       data={"csrf_token": token, "file": upload(), "threshold": "1e9"}).get_data(as_text=True)
    assert 'id="rejected"' in page and "No match" in page and 'id="best"' not in page


# ------------------------------------------------------------------------------------------------------------
# kind 10: warnings are one line each, JSON stays JSON, summaries say what is true
# ------------------------------------------------------------------------------------------------------------

def _warning_lines(err: str) -> list[str]:
    lines = err.splitlines()
    assert all(line.startswith(WARNING) for line in lines), err     # no raw 'UserWarning' / source lines
    return lines


def _separable(tmp_path, name="dev.csv"):
    rows = [(f"s{i % 3}", f"t{i}.wav", str(i % 2), repr(float(i % 2 * 10 + i / 100))) for i in range(40)]
    return _csv(tmp_path / name, rows, "speaker,path,target,score")


@pytest.mark.parametrize("json_out", [False, True])
@pytest.mark.parametrize("source", ["fuse", "calibrate", "enroll a background speaker", "manifest with loose files",
                                    "score an 8 kHz file", "score an 8 kHz file on 2 workers"])
def test_every_warning_is_one_line(models, tmp_path, capsys, source, json_out):
    model_dir, corpus = models
    json_flag = ["--json"] if json_out else []
    expected = 1
    if source == "fuse":
        dev = _separable(tmp_path)
        argv = ["fuse", "--scores", dev, "--train", dev, "--out", tmp_path / "fused.csv"]
    elif source == "calibrate":
        argv = ["calibrate", "--scores", _separable(tmp_path), "--out", tmp_path / "cal.json"]
    elif source == "enroll a background speaker":
        private = tmp_path / "m"
        shutil.copytree(model_dir, private)
        background = read_manifest(corpus.background_csv)
        argv = ["enroll", "--model-dir", private, "--speaker", background["speaker"].iloc[0],
                "--allow-duplicate", background["path"].iloc[0]]
    elif source == "manifest with loose files":
        folder = tmp_path / "audio"
        for speaker in ("a", "b"):
            (folder / speaker).mkdir(parents=True)
            for i in range(3):
                shutil.copy(_test_file(corpus), folder / speaker / f"{i}.wav")
        shutil.copy(_test_file(corpus), folder / "loose.wav")
        argv = ["manifest", folder, "--enroll", 1, "--out", tmp_path / "lists"]
    else:
        signal, rate = load_audio(_test_file(corpus), sample_rate=16000)
        rows = []
        for i in range(2):
            low = tmp_path / f"low{i}.wav"
            sf.write(low, signal[::2], rate // 2)
            rows += [(corpus.speakers[0], low.name, "1"), (corpus.speakers[1], low.name, "0")]
        argv = ["score", "--model-dir", model_dir, "--trials", _csv(tmp_path / "t.csv", rows), "--out",
                tmp_path / "o.csv", "--norm", "none"] + (["--jobs", 2] if "workers" in source else [])
        expected = 2    # one per 8 kHz file
    status, out, err = _run(capsys, *argv, *json_flag)
    assert status == ExitStatus.OK, err
    lines = _warning_lines(err)
    assert len(lines) == expected, err
    if json_out:
        assert isinstance(json.loads(out), dict)


def test_json_output_has_no_infinity_or_nan(tmp_path, capsys):
    # a system that ranks everything backwards: its minDCF threshold is "reject everything" (+inf)
    rows = [(f"s{i % 3}", f"t{i}.wav", str(i % 2), repr(float(-(i % 2) * 5 + i / 100))) for i in range(20)]
    scores = _csv(tmp_path / "inverted.csv", rows, "speaker,path,target,score")
    status, out, err = _run(capsys, "evaluate", "--scores", scores, "--out-dir", tmp_path / "r", "--json")
    assert status == ExitStatus.OK, err
    parsed = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert parsed["systems"][0]["min_dcf_threshold"] == "inf"
    status, out, _ = _run(capsys, "fuse", "--scores", scores, "--train", _separable(tmp_path), "--out",
                          tmp_path / "f.csv", "--json")
    json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


@pytest.mark.parametrize("norm, expected", [("enrolled", "per trial, the claimed one left out")])
def test_enrolled_tnorm_summary_counts_the_cohort_it_uses(models, tmp_path, capsys, norm, expected):
    model_dir, corpus = models
    n_enrolled = len(SpeakerVerifier(model_dir).speakers())
    rows = [(corpus.speakers[0], _test_file(corpus), "1"), (corpus.speakers[1], _test_file(corpus), "0")]
    status, out, err = _run(capsys, "score", "--model-dir", model_dir, "--trials", _csv(tmp_path / "t.csv", rows),
                            "--out", tmp_path / "o.csv", "--norm", norm)
    assert status == ExitStatus.OK, err
    assert f"({n_enrolled - 1} {expected})" in out and f"{n_enrolled} in the cohort" not in out


@pytest.mark.parametrize("eers", [[0.5, 0.25, 0.125], [0.3, float("nan"), 0.1]])
def test_training_plot_draws_the_eer_in_percent_on_its_own_axis(tmp_path, eers):
    from speakerid.backends._training import plot_history

    history = [{"epoch": i + 1, "train_loss": 1.0 / (i + 1), "val_loss": 1.2 / (i + 1), "train_accuracy": 0.6 + i / 10,
                "val_accuracy": 0.55 + i / 10, "val_eer": e} for i, e in enumerate(eers)]
    figure = plot_history(tmp_path / "training.png", history, best_epoch=2)
    assert (tmp_path / "training.png").read_bytes().startswith(b"\x89PNG")
    eer_axes = [ax for ax in figure.axes if "EER" in ax.get_ylabel()]
    assert len(eer_axes) == 1 and "%" in eer_axes[0].get_ylabel()
    (line,) = [ln for ln in eer_axes[0].lines if "EER" in str(ln.get_label())]
    np.testing.assert_allclose(line.get_ydata(), 100 * np.array(eers))
    others = [ln for ax in figure.axes if ax is not eer_axes[0] for ln in ax.lines]
    assert not [ln for ln in others if "EER" in str(ln.get_label())]
