"""speakerid.store: npz + JSON model files, safe speaker ids, atomic and concurrent writes."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

from speakerid.data.manifests import validate_speaker_id
from speakerid.exceptions import ModelFormatError, ParameterError, UnknownSpeakerError
from speakerid.store import FORMAT_VERSION, ModelStore, load_model_file, save_model_file, speaker_file_name

# A pickle stream of {"means": 0}, written out by hand: the store must refuse it without ever unpickling.
PICKLED_DICT = b"\x80\x02}q\x00X\x05\x00\x00\x00meansq\x01K\x00s."


def _arrays(rng):
    return {"means": rng.normal(size=(4, 3)).astype(np.float32), "weights": np.full(4, 0.25, np.float32)}


def test_round_trip_and_header(tmp_path, rng):
    arrays = _arrays(rng)
    save_model_file(tmp_path / "m.npz", arrays, {"model_class": "Toy", "params": {"k": 4}})
    header, loaded = load_model_file(tmp_path / "m.npz", expected_class="Toy")
    assert header["format_version"] == FORMAT_VERSION and header["params"] == {"k": 4}
    assert "speakerid_version" in header and "created_at" in header
    for name in arrays:
        np.testing.assert_array_equal(loaded[name], arrays[name])
    with pytest.raises(ModelFormatError, match="'Toy' model, expected 'Other'"):
        load_model_file(tmp_path / "m.npz", expected_class="Other")


def _corrupt(path, how):
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "bitflip":
        for i in range(200, len(data) - 200, 97):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "pickle":
        path.write_bytes(PICKLED_DICT)
    elif how == "object-array":
        np.savez(path, __header__=np.array([{"a": 1}], dtype=object))


@pytest.mark.parametrize("how", ["truncated", "bitflip", "empty", "pickle", "object-array"])
def test_corrupt_files_raise_model_format_error_and_touch_nothing(tmp_path, rng, how):
    path = tmp_path / "m.npz"
    save_model_file(path, _arrays(rng), {"model_class": "Toy"})
    _corrupt(path, how)
    before = path.read_bytes()
    with pytest.raises(ModelFormatError) as info:
        load_model_file(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


def test_newer_format_version_refused(tmp_path, rng):
    path = tmp_path / "m.npz"
    save_model_file(path, _arrays(rng), {"model_class": "Toy", "format_version": FORMAT_VERSION + 1})
    with pytest.raises(ModelFormatError, match="newer speakerid"):
        load_model_file(path)


def test_header_and_arrays_must_agree(tmp_path, rng):
    path = tmp_path / "m.npz"
    save_model_file(path, _arrays(rng), {"model_class": "Toy"})
    with np.load(path, allow_pickle=False) as archive:
        content = {k: archive[k] for k in archive.files}
    content["means"] = content["means"].astype(np.float64)  # wrong dtype behind the header's back
    np.savez(path, **content)
    with pytest.raises(ModelFormatError, match="'means'"):
        load_model_file(path)


def test_object_arrays_are_never_written(tmp_path):
    with pytest.raises(ParameterError, match="pickle"):
        save_model_file(tmp_path / "m.npz", {"x": np.array([{}], dtype=object)}, {"model_class": "Toy"})


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "a\\b", ".", "..", ".hidden", "tab\there", "nul\x00",
                                 " padded", "x" * 129, "\ud800"])
def test_hostile_speaker_ids_rejected(bad):
    with pytest.raises(ParameterError, match="invalid speaker id"):
        validate_speaker_id(bad)


def test_unicode_ids_and_case_distinct_file_names():
    for good in ("Zoë", "话者-1", "O'Brien", "spk 01"):
        assert validate_speaker_id(good) == good
        name = speaker_file_name(good)
        assert "/" not in name and name.endswith(".npz") and name.isascii()
    names = {speaker_file_name(s) for s in ("bob", "Bob", "BOB")}
    assert len({n.lower() for n in names}) == 3  # distinct even on a case-insensitive file system


def test_store_speakers_list_remove(tmp_path, rng):
    store = ModelStore(tmp_path / "models")
    assert store.speakers() == []
    for spk in ("alice", "Bob", "Zoë"):
        store.save_speaker(spk, _arrays(rng), {"model_class": "Toy"})
    assert store.speakers() == sorted(["alice", "Bob", "Zoë"])
    header, _ = store.load_speaker("Zoë")
    assert header["speaker"] == "Zoë"
    store.remove_speaker("Bob")
    assert store.speakers() == sorted(["alice", "Zoë"])
    with pytest.raises(UnknownSpeakerError, match="'Bob' is not enrolled"):
        store.load_speaker("Bob")
    with pytest.raises(UnknownSpeakerError):
        store.remove_speaker("Bob")


def test_crash_leftovers_are_not_models(tmp_path, rng):
    store = ModelStore(tmp_path)
    store.save_speaker("a", _arrays(rng), {"model_class": "Toy"})
    leftover = store.speaker_path("a").parent / ".b-123.npz.tmp"
    leftover.write_bytes(b"half a model")
    assert store.speakers() == ["a"]
    assert store.clean_temp_files() == 1 and not leftover.exists()


def _writer(model_dir, speaker, n):
    store = ModelStore(model_dir)
    rng = np.random.default_rng(len(speaker))
    for _ in range(n):
        with store.lock():
            store.save_speaker(speaker, {"means": rng.normal(size=(64, 20)).astype(np.float32)},
                               {"model_class": "Toy"})


def test_concurrent_writers_from_two_processes_both_land(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), spk, 20)) for spk in ("one", "two")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = ModelStore(tmp_path)
    assert store.speakers() == ["one", "two"]
    for spk in ("one", "two"):
        store.load_speaker(spk)
    assert not list(tmp_path.rglob(".*.tmp"))


def test_backends_keep_separate_speaker_folders(tmp_path, rng):
    store = ModelStore(tmp_path)
    store.save_speaker("a", _arrays(rng), {"model_class": "Toy"}, backend="gmm-ubm")
    store.save_speaker("b", _arrays(rng), {"model_class": "Toy"}, backend="siamese")
    assert store.speakers("gmm-ubm") == ["a"] and store.speakers("siamese") == ["b"]
    assert store.backends() == ["gmm-ubm", "siamese"]
    with pytest.raises(ParameterError, match="backend"):
        store.speakers("../x")


def test_lock_is_filelock_reentrant_and_exclusive(tmp_path):
    from filelock import FileLock, Timeout

    from speakerid.store import ModelStore

    store = ModelStore(tmp_path / "m")
    with store.lock(), store.lock():   # nested writes of one store do not wait for themselves
        with pytest.raises(Timeout):
            FileLock(str(tmp_path / "m" / ".lock")).acquire(timeout=0)   # another holder must wait
    FileLock(str(tmp_path / "m" / ".lock")).acquire(timeout=0)
