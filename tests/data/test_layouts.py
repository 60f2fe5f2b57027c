"""speakerid.data.layouts and ``speakerid manifest``: seeded splits, no enroll/test overlap, relative paths that
resolve, background leaks, skipped speakers, bad input, and the real LibriSpeech folder."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from conftest import write_tone

from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.data.layouts import make_manifests, read_speaker_list, scan_speakers
from speakerid.data.manifests import read_manifest
from speakerid.exceptions import DataLeakWarning, ManifestError, ParameterError

SPEAKERS = {"alice": 5, "bob": 5, "carol": 6, "dave": 4}


@pytest.fixture(scope="module")
def folders_tree(tmp_path_factory):
    """``<root>/<speaker>/*.wav|flac`` tiny tones: alice 5, bob 5 (one in a sub-folder), carol 6, dave 4 files."""
    root = tmp_path_factory.mktemp("folders")
    for k, (speaker, n_files) in enumerate(SPEAKERS.items()):
        (root / speaker).mkdir()
        for i in range(n_files):
            folder = root / speaker / ("session2" if speaker == "bob" and i == 0 else "")
            folder.mkdir(exist_ok=True)
            suffix = ".flac" if i % 2 else ".wav"
            write_tone(folder / f"{speaker}_{i:02d}{suffix}", freq_hz=200 + 50 * k + 10 * i, seconds=0.05)
    (root / "alice" / "notes.txt").write_text("not audio")
    (root / ".hidden").mkdir()
    write_tone(root / ".hidden" / "x.wav", seconds=0.05)
    return root


def _read(result):
    return (read_manifest(result.enroll_csv), read_manifest(result.trials_csv, require_target=True))


def _speaker_of(path):
    return Path(path).parent.name if Path(path).parent.name != "session2" else Path(path).parent.parent.name


def test_split_trials_and_relative_paths(folders_tree, tmp_path):
    out = tmp_path / "out" / "sub" / "proto"
    result = make_manifests(folders_tree, layout="folders", enroll=2, out_prefix=out)
    assert result.enroll_csv == tmp_path / "out" / "sub" / "proto-enroll.csv"
    assert result.trials_csv == tmp_path / "out" / "sub" / "proto-trials.csv"
    assert result.speakers == ("alice", "bob", "carol", "dave") and result.skipped == result.excluded == ()
    enroll, trials = _read(result)  # read_manifest checks that every relative path resolves to a file

    raw = result.enroll_csv.read_text().splitlines()[1:] + result.trials_csv.read_text().splitlines()[1:]
    assert all(line.split(",")[1].startswith("../../../") for line in raw)  # relative to the CSV's folder
    all_files = {str(p.resolve()) for p in folders_tree.rglob("*") if p.suffix in (".wav", ".flac")
                 and ".hidden" not in p.parts}
    test_files = set(trials["path"])
    assert set(enroll["path"]).isdisjoint(test_files)
    assert set(enroll["path"]) | test_files == all_files
    assert enroll.groupby("speaker").size().to_dict() == {s: 2 for s in SPEAKERS}
    assert all(_speaker_of(p) == s for s, p in zip(enroll["speaker"], enroll["path"]))

    n_test = sum(SPEAKERS.values()) - 2 * len(SPEAKERS)
    assert (result.n_enroll_files, result.n_test_files) == (8, n_test)
    assert len(trials) == result.n_trials == n_test * len(SPEAKERS)
    assert trials["target"].sum() == result.n_target_trials == n_test
    truth = [int(_speaker_of(p) == s) for s, p in zip(trials["speaker"], trials["path"])]
    assert trials["target"].tolist() == truth
    assert not trials.duplicated(["speaker", "path"]).any()


def test_seeded_determinism(folders_tree, tmp_path):
    first = make_manifests(folders_tree, enroll=2, out_prefix=tmp_path / "a", seed=7)
    again = make_manifests(folders_tree, enroll=2, out_prefix=tmp_path / "b", seed=7)
    other = make_manifests(folders_tree, enroll=2, out_prefix=tmp_path / "c", seed=8)
    assert first.enroll_csv.read_bytes() == again.enroll_csv.read_bytes()
    assert first.trials_csv.read_bytes() == again.trials_csv.read_bytes()
    assert first.enroll_csv.read_bytes() != other.enroll_csv.read_bytes()


def test_a_speakers_split_does_not_depend_on_the_others(folders_tree, tmp_path):
    everyone = read_manifest(make_manifests(folders_tree, enroll=2, out_prefix=tmp_path / "a").enroll_csv)
    with pytest.warns(DataLeakWarning):
        fewer = read_manifest(make_manifests(folders_tree, enroll=2, out_prefix=tmp_path / "b",
                                             background=["dave"]).enroll_csv)
    for speaker in ("alice", "bob", "carol"):
        assert (everyone.loc[everyone["speaker"] == speaker, "path"].tolist()
                == fewer.loc[fewer["speaker"] == speaker, "path"].tolist())


def test_nontarget_per_test(folders_tree, tmp_path):
    result = make_manifests(folders_tree, enroll=2, out_prefix=tmp_path / "p", nontarget_per_test=2, seed=3)
    _, trials = _read(result)
    per_file = trials.groupby("path")["target"].agg(["sum", "count"])
    assert (per_file["sum"] == 1).all() and (per_file["count"] == 3).all()
    assert result.n_trials == 3 * result.n_test_files
    again = make_manifests(folders_tree, enroll=2, out_prefix=tmp_path / "q", nontarget_per_test=2, seed=3)
    assert again.trials_csv.read_bytes() == result.trials_csv.read_bytes()
    everyone = make_manifests(folders_tree, enroll=2, out_prefix=tmp_path / "r", nontarget_per_test=99)
    assert everyone.n_trials == everyone.n_test_files * len(SPEAKERS)
    none = make_manifests(folders_tree, enroll=2, out_prefix=tmp_path / "s", nontarget_per_test=0)
    assert none.n_trials == none.n_target_trials


def test_speakers_with_too_few_files_are_skipped(folders_tree, tmp_path):
    with pytest.warns(UserWarning, match=r"1 speaker\(s\) have no more than 4 file\(s\).*: dave"):
        result = make_manifests(folders_tree, enroll=4, out_prefix=tmp_path / "p")
    assert result.skipped == ("dave",) and result.speakers == ("alice", "bob", "carol")
    enroll, trials = _read(result)
    assert "dave" not in set(enroll["speaker"]) | set(trials["speaker"])
    with pytest.warns(UserWarning, match=r"alice, bob, dave"), pytest.raises(ParameterError, match="1 speaker"):
        make_manifests(folders_tree, enroll=5, out_prefix=tmp_path / "p")


def test_background_overlap_warns_and_excludes(folders_tree, tmp_path):
    listing = tmp_path / "bg.txt"
    listing.write_text("# background speakers\nbob\nzed  # not under root\n\n")
    manifest = tmp_path / "bg.csv"
    manifest.write_text("speaker,path\nbob,x.flac\ncarol,y.flac\n")
    for background, excluded in ((listing, ("bob",)), (manifest, ("bob", "carol")), (["dave"], ("dave",))):
        with pytest.warns(DataLeakWarning, match="excluded from evaluation: " + ", ".join(excluded)):
            result = make_manifests(folders_tree, enroll=2, out_prefix=tmp_path / "p", background=background)
        assert result.excluded == excluded
        enroll, trials = _read(result)
        assert not (set(enroll["speaker"]) | set(trials["speaker"])) & set(excluded)
        assert not {_speaker_of(p) for p in trials["path"]} & set(excluded)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert make_manifests(folders_tree, enroll=2, out_prefix=tmp_path / "p", background=["zed"]).excluded == ()


def test_librispeech_layout_nested_and_flat(tmp_path):
    nested, flat = tmp_path / "nested", tmp_path / "flat"
    for speaker in ("19", "26"):
        for chapter in ("198", "227"):
            for utt in range(2):
                name = f"{speaker}-{chapter}-{utt:04d}.flac"
                (nested / speaker / chapter).mkdir(parents=True, exist_ok=True)
                write_tone(nested / speaker / chapter / name, seconds=0.05)
                flat.mkdir(exist_ok=True)
                write_tone(flat / name, seconds=0.05)
    for root in (nested, flat):
        files = scan_speakers(root, "librispeech")
        assert list(files) == ["19", "26"] and all(len(v) == 4 for v in files.values())
    with pytest.warns(UserWarning, match=r"8 audio file\(s\) name no speaker"):
        with pytest.raises(ParameterError, match="no audio files"):
            scan_speakers(flat, "folders")
    assert read_speaker_list(nested, "librispeech") == {"19", "26"}
    result = make_manifests(nested, layout="librispeech", enroll=1, out_prefix=tmp_path / "ls")
    assert result.n_trials == 6 * 2 and result.n_target_trials == 6


@pytest.mark.parametrize("kwargs, error, message", [
    ({"layout": "kaldi"}, ParameterError, "layout must be one of"),
    ({"enroll": 0}, ParameterError, "enroll must be"),
    ({"enroll": 1.5}, ParameterError, "enroll must be"),
    ({"nontarget_per_test": -1}, ParameterError, "nontarget_per_test"),
    ({"background": "missing.txt"}, ManifestError, "no such background speaker list"),
])
def test_bad_arguments(folders_tree, tmp_path, kwargs, error, message):
    if "background" in kwargs:
        kwargs = {"background": tmp_path / kwargs["background"]}
    with pytest.raises(error, match=message):
        make_manifests(folders_tree, out_prefix=tmp_path / "p", **{"enroll": 2, **kwargs})


def test_bad_folders(folders_tree, tmp_path):
    with pytest.raises(ParameterError, match="no such folder"):
        make_manifests(tmp_path / "nowhere", out_prefix=tmp_path / "p")
    (tmp_path / "empty" / "spk").mkdir(parents=True)
    with pytest.raises(ParameterError, match="no audio files"):
        make_manifests(tmp_path / "empty", out_prefix=tmp_path / "p")
    with pytest.warns(DataLeakWarning), pytest.raises(ParameterError, match="1 speaker.*need at least 2"):
        make_manifests(folders_tree, enroll=2, out_prefix=tmp_path / "p", background=["alice", "bob", "carol"])
    bad_csv = tmp_path / "bg.csv"
    bad_csv.write_text("name,path\nx,y\n")
    with pytest.raises(ManifestError, match="'speaker' column"):
        make_manifests(folders_tree, enroll=2, out_prefix=tmp_path / "p", background=bad_csv)


def test_cli_manifest(folders_tree, tmp_path, capsys):
    status = main(["manifest", str(folders_tree), "--enroll", "2", "--out", str(tmp_path / "m"),
                   "--nontarget-per-test", "1", "--seed", "4"])
    out, err = capsys.readouterr()
    assert status == ExitStatus.OK, err
    assert f"wrote {tmp_path / 'm-enroll.csv'} (8 files, 4 speakers)" in out
    assert "m-trials.csv (24 trials, 12 target, 12 test files)" in out
    status = main(["manifest", str(folders_tree), "--enroll", "2", "--out", str(tmp_path / "j"), "--json",
                   "--background", str(tmp_path / "m-enroll.csv"), "--layout", "folders"])
    out, err = capsys.readouterr()
    assert status == ExitStatus.USAGE and "excluded from evaluation" in err and "need at least 2" in err
    status = main(["manifest", str(folders_tree), "--enroll", "3", "--out", str(tmp_path / "j"), "--json"])
    out, err = capsys.readouterr()
    parsed = json.loads(out)
    assert status == ExitStatus.OK and parsed["skipped"] == [] and parsed["n_enroll_files"] == 12
    status = main(["manifest", str(folders_tree), "--layout", "bogus", "--out", str(tmp_path / "j")])
    assert status == ExitStatus.USAGE


@pytest.mark.shared
def test_librispeech_test_other(shared_dir, tmp_path):
    root = shared_dir / "data" / "librispeech-test-other"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the background speakers are disjoint: no DataLeakWarning
        result = make_manifests(root, layout="librispeech", enroll=3, out_prefix=tmp_path / "ls",
                                background=shared_dir / "protocols" / "librispeech-background.csv")
    assert len(result.speakers) == 10 and result.skipped == result.excluded == ()
    assert (result.n_enroll_files, result.n_test_files, result.n_trials, result.n_target_trials) == (30, 70, 700, 70)
    enroll, trials = _read(result)
    assert set(enroll["path"]).isdisjoint(trials["path"])
    assert all(Path(p).name.startswith(f"{s}-") for s, p in zip(enroll["speaker"], enroll["path"]))
    assert trials["target"].tolist() == [int(Path(p).name.startswith(f"{s}-"))
                                         for s, p in zip(trials["speaker"], trials["path"])]
    folders = make_manifests(root, layout="folders", enroll=3, out_prefix=tmp_path / "fo")
    assert folders.enroll_csv.read_text() == result.enroll_csv.read_text()  # <speaker>/*.flac: same split
    with pytest.warns(DataLeakWarning, match="10 speaker"):
        with pytest.raises(ParameterError):
            make_manifests(root, layout="librispeech", enroll=3, out_prefix=tmp_path / "leak",
                           background=shared_dir / "protocols" / "librispeech-test-other-trials.csv")


def test_symlinked_data_folder_keeps_the_paths_as_given(tmp_path, monkeypatch):
    """`manifest ../shared/...` through a symlink writes `../shared/...`, not the link's target."""
    real = tmp_path / "elsewhere" / "deep" / "audio"
    for speaker in ("ann", "bob"):
        (real / speaker).mkdir(parents=True)
        for k in range(3):
            write_tone(real / speaker / f"{k}.wav", freq_hz=200 + 50 * k)
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (tmp_path / "shared").symlink_to(real, target_is_directory=True)
    monkeypatch.chdir(project)
    result = make_manifests("../shared", enroll=2, out_prefix="data/proto")
    lines = result.trials_csv.read_text().splitlines()[1:]
    assert lines and all(line.split(",")[1].startswith("../../shared/") for line in lines), lines[:2]
    trials = read_manifest(result.trials_csv, require_target=True)  # and they still lead to the files
    assert all(Path(p).is_file() for p in trials["path"])
    # a manifest folder reached through a symlink: a relative path would climb out of the link's target
    (tmp_path / "link_out").symlink_to(project / "data", target_is_directory=True)
    result = make_manifests(real, enroll=2, out_prefix=tmp_path / "link_out" / "p")
    assert all(Path(p).is_file() for p in read_manifest(result.enroll_csv)["path"])
