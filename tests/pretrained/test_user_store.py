"""Commands and ``speakerid.Verifier`` without a model directory: the speaker store over the shipped model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import speakerid
from speakerid import pretrained
from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.audio import resample
from speakerid.data.synth import make_corpus
from speakerid.degrade import degrade
from speakerid.exceptions import ConfigMismatchError
from speakerid.store import load_model_file

pytestmark = pytest.mark.skipif(not (pretrained.SHIPPED_DIR / "fusion.json").is_file(),
                                reason="this checkout has no shipped model")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("store-corpus")
    return make_corpus(root, n_speakers=3, n_utterances=4, enroll_per_speaker=2, n_background=0,
                       duration_s=(2.5, 3.5), seed=3, show_progress=False)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.STORE_ENV, str(tmp_path / "home"))
    return tmp_path / "home"


def _files(corpus, speaker):
    table = pd.read_csv(corpus.enroll_csv, dtype={"speaker": str})
    enroll = [str(corpus.enroll_csv.parent / p) for p in table.loc[table["speaker"] == speaker, "path"]]
    trials = pd.read_csv(corpus.trials_csv, dtype={"speaker": str})
    tests = trials[(trials["speaker"] == speaker) & (trials["target"] == 1)]["path"]
    return enroll, str(corpus.trials_csv.parent / tests.iloc[0])


def _json(capsys, argv):
    capsys.readouterr()
    status = main(argv)
    captured = capsys.readouterr()
    json_out = "--json" in argv and captured.out.strip()
    return status, (json.loads(captured.out) if json_out else captured.out), captured.err


def test_commands_without_model_dir_use_the_store(home, corpus, capsys, tmp_path):
    enroll, test = _files(corpus, "spk001")
    assert main(["enroll", "--speaker", "alice", *enroll]) == ExitStatus.OK
    store = pretrained.store_model_dir()
    assert store.parent == home / "models" and (store / "fusion.json").is_file()
    assert not list(pretrained.SHIPPED_DIR.rglob("speakers"))          # the package itself is never written
    status, listing, _ = _json(capsys, ["speakers", "--json"])
    assert status == ExitStatus.OK and [s["speaker"] for s in listing["speakers"]] == ["alice"]
    status, claim, _ = _json(capsys, ["verify", "--speaker", "alice", test, "--json"])
    assert status == ExitStatus.OK and claim["scale"] == "llr" and claim["band"] == "wideband"
    assert 0.0 <= claim["posterior"] <= 1.0 and np.isfinite(claim["llr"])
    status, ranked, _ = _json(capsys, ["identify", test, "--json"])
    assert status == ExitStatus.OK and ranked["candidates"][0]["speaker"] == "alice"
    trials = tmp_path / "trials.csv"
    pd.DataFrame({"speaker": ["alice"], "path": [test]}).to_csv(trials, index=False)
    assert main(["score", "--trials", str(trials), "--out", str(tmp_path / "scores.csv")]) == ExitStatus.OK
    scored = pd.read_csv(tmp_path / "scores.csv")
    assert scored["score"].iloc[0] == pytest.approx(claim["llr"], abs=1e-6)
    assert main(["remove", "--speaker", "alice"]) == ExitStatus.OK
    assert _json(capsys, ["speakers", "--json"])[1]["speakers"] == []


def _telephone(path, out, rate_out):
    signal, rate = sf.read(path, dtype="float32")
    phone = degrade(signal, rate, "telephone", random_state=0)          # 300-3400 Hz, mu-law, 8 kHz
    data = phone.signal if rate_out == phone.sample_rate else resample(phone.signal, phone.sample_rate, rate_out)
    sf.write(out, data, rate_out, subtype="PCM_16")
    return str(out)


def test_the_band_is_chosen_from_the_signal(home, corpus, tmp_path, capsys):
    enroll, test = _files(corpus, "spk002")
    assert main(["enroll", "--speaker", "bob", *enroll]) == ExitStatus.OK
    bands = {}
    for name, path in {"wide": test, "8k-file": _telephone(test, tmp_path / "t8.wav", 8000),
                       "phone-in-16k-file": _telephone(test, tmp_path / "t16.wav", 16000)}.items():
        status, claim, _ = _json(capsys, ["verify", "--speaker", "bob", path, "--json"])
        assert status == ExitStatus.OK
        bands[name] = (claim["band"], claim["test_bandwidth_hz"])
    assert bands["wide"][0] == "wideband" and bands["wide"][1] > 4500
    for name in ("8k-file", "phone-in-16k-file"):
        assert bands[name][0] == "narrowband" and bands[name][1] < 4500, bands


def test_an_older_builds_speakers_are_refused_with_how_to_enroll_again(home, corpus, capsys):
    enroll, test = _files(corpus, "spk003")
    assert main(["enroll", "--speaker", "carol", *enroll]) == ExitStatus.OK
    current = pretrained.store_model_dir()
    old = current.with_name("speakerid-default-000000000000")          # as an earlier release left it
    shutil.copytree(current, old)
    assert main(["remove", "--speaker", "carol"]) == ExitStatus.OK
    status, _, err = _json(capsys, ["verify", "--speaker", "carol", test])
    assert status == ExitStatus.CONFIG_MISMATCH
    assert "enrolled with another build of the shipped model, speakerid-default-000000000000" in err
    assert "enroll again with 'speakerid enroll --speaker carol FILE...'" in err and err.count("\n") == 1
    with pytest.raises(ConfigMismatchError, match="enroll again"):
        speakerid.Verifier().verify("carol", test)
    status, _, err = _json(capsys, ["speakers"])
    assert status == ExitStatus.OK and "1 speaker(s) of your store were enrolled with another build of the shipped model" in err
    # enrolled again under this build: scored, and the old folder is left as it was
    assert main(["enroll", "--speaker", "carol", *enroll]) == ExitStatus.OK
    assert main(["verify", "--speaker", "carol", test]) == ExitStatus.OK
    assert (old / "fusion.json").is_file()


def test_the_python_facade_is_the_first_export_and_uses_the_store(home, corpus):
    assert speakerid.__all__[1] == "Verifier"
    enroll, test = _files(corpus, "spk001")
    verifier = speakerid.Verifier()
    verifier.enroll("dana", enroll)
    result = verifier.verify("dana", test)
    assert result["speaker"] == "dana" and result["band"] == "wideband"
    assert speakerid.Verifier(pretrained.store_model_dir()).verify("dana", test)["llr"] == pytest.approx(result["llr"])


def test_a_store_that_cannot_be_made_says_where_and_how(tmp_path, monkeypatch, capsys, corpus):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(pretrained.STORE_ENV, str(blocker))
    enroll, _ = _files(corpus, "spk001")
    for argv in (["enroll", "--speaker", "erin", *enroll], ["speakers"]):
        status, _, err = _json(capsys, argv)
        assert status == ExitStatus.USAGE and str(blocker) in err and err.count("\n") == 1
        assert f"set {pretrained.STORE_ENV} to a folder you can write" in err


def test_the_shipped_folder_itself_is_never_written(home, corpus, capsys):
    """--model-dir at the package's own model: refused (exit 2) before anything is written, in every folder."""
    enroll, test = _files(corpus, "spk001")
    before = sorted(p.relative_to(pretrained.SHIPPED_DIR) for p in pretrained.SHIPPED_DIR.rglob("*"))
    for folder in (pretrained.SHIPPED_DIR, pretrained.SHIPPED_DIR / "systems" / "gmm-ubm"):
        status, _, err = _json(capsys, ["enroll", "--model-dir", str(folder), "--speaker", "zz", *enroll])
        assert status == ExitStatus.USAGE and "the model shipped inside the speakerid package is never written" in err
    with pytest.raises(speakerid.SpeakerIDError, match="never written"):
        speakerid.Verifier(pretrained.SHIPPED_DIR).enroll("zz", enroll)
    assert sorted(p.relative_to(pretrained.SHIPPED_DIR) for p in pretrained.SHIPPED_DIR.rglob("*")) == before
    assert not list((home / "models").glob("*/SHIPPED.txt"))      # the store's copy is writable


def test_a_damaged_store_is_repaired_and_keeps_its_speakers(home, corpus, capsys):
    enroll, test = _files(corpus, "spk002")
    assert main(["enroll", "--speaker", "fay", *enroll]) == ExitStatus.OK
    store = pretrained.store_model_dir()
    lost = ["fusion.json", "narrowband/fusion.json", "systems/ivector/ivector.npz",
            "narrowband/systems/gmm-ubm/cohort-gmm-ubm.npz"]
    for name in lost:
        (store / name).unlink()
    status, listing, err = _json(capsys, ["speakers", "--json"])
    assert status == ExitStatus.OK and [s["speaker"] for s in listing["speakers"]] == ["fay"]
    assert f"lacked {len(lost)} file(s) of the shipped model" in err
    assert all((store / name).is_file() for name in lost) and not list(store.parent.glob("*.partial"))
    status, claim, _ = _json(capsys, ["verify", "--speaker", "fay", _telephone(test, store.parent / "t.wav", 8000),
                                      "--json"])
    assert status == ExitStatus.OK and claim["band"] == "narrowband"          # the narrowband branch is back


def test_two_enrollments_of_one_id_wait_for_each_other(home, corpus, tmp_path):
    """Both processes wait while the store's lock is held, and the speaker's files in every system then come
    from one of the two runs, never a mix."""
    import os
    import subprocess
    import sys
    import time

    from speakerid.store import ModelStore

    store = pretrained.user_model_dir()
    voices = [_files(corpus, s)[0] for s in ("spk001", "spk003")]
    env = {**os.environ, pretrained.STORE_ENV: str(home)}
    with ModelStore(store).lock():
        runs = [subprocess.Popen([sys.executable, "-m", "speakerid", "enroll", "--speaker", "gus", "--replace", *files], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for files in voices]
        time.sleep(3.0)
        assert all(run.poll() is None for run in runs)                   # waiting for the lock
        assert not list(store.rglob("gus-*.npz"))
    assert [run.wait(timeout=300) for run in runs] == [0, 0], [run.stderr.read() for run in runs]
    files = {tuple(load_model_file(p)[0]["files"]) for p in store.rglob("gus-*.npz")}
    assert len(list(store.rglob("gus-*.npz"))) == 4 and len(files) == 1


def test_one_path_is_enrolled_as_one_file(home, corpus, tmp_path):
    """``enroll("x", "file.wav")``: the file, not the characters of its name (the band is measured from it)."""
    enroll, _ = _files(corpus, "spk001")
    phone = _telephone(enroll[0], tmp_path / "phone.wav", 8000)
    verifier = speakerid.Verifier()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # routed to the narrowband systems: no warning
        result = verifier.enroll("hal", phone)
    assert result["n_files"] == 1 and result["narrowband"] and result["bandwidth_hz"] < 4500


def test_scoring_claims_of_unknown_speakers_names_the_trial_list(home, corpus, tmp_path, capsys):
    enroll, test = _files(corpus, "spk001")
    assert main(["enroll", "--speaker", "ivy", *enroll]) == ExitStatus.OK
    trials = tmp_path / "my-trials.csv"
    pd.DataFrame({"speaker": ["ivy", "ghost"], "path": [test, test]}).to_csv(trials, index=False)
    status, _, err = _json(capsys, ["score", "--trials", str(trials), "--out", str(tmp_path / "s.csv")])
    assert status == ExitStatus.UNKNOWN_SPEAKER
    assert err.startswith(f"speakerid: error: {trials}: 1 claimed speaker(s) not enrolled: ghost; enrolled: ivy")


def test_an_empty_store_says_to_enroll(home, corpus, capsys):
    _, test = _files(corpus, "spk001")
    status, _, err = _json(capsys, ["identify", test])
    assert status == ExitStatus.NOT_FITTED and "enroll with 'speakerid enroll --speaker ID FILE...'" in err


def test_store_root_defaults_to_the_user_data_folder(monkeypatch):
    monkeypatch.delenv(pretrained.STORE_ENV, raising=False)
    import platformdirs

    assert pretrained.store_root() == platformdirs.user_data_path("speakerid", appauthor=False)
    monkeypatch.setenv(pretrained.STORE_ENV, "  ")
    assert pretrained.store_root() == platformdirs.user_data_path("speakerid", appauthor=False)
