"""Atomic writes: the old file survives a failed write, which names its file; ordinary permissions."""

from __future__ import annotations

import errno

import pytest

from speakerid._utils.files import atomic_write


def test_atomic_write_leaves_old_file_on_error(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as fh:
            fh.write("new")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]



def test_atomic_write_gives_ordinary_permissions(tmp_path):
    import os
    import stat

    from speakerid._utils.files import atomic_write

    with atomic_write(tmp_path / "out.txt", "w") as fh:
        fh.write("x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o666 & ~mask



# ------------------------------------------------------------------ a write that fails names its file
_FAILURES = {"disk full": errno.ENOSPC, "quota": errno.EDQUOT, "I/O error": errno.EIO, "too big": errno.EFBIG}


@pytest.mark.parametrize("where", ["mkstemp", "write", "fsync", "replace"])
@pytest.mark.parametrize("kind", sorted(_FAILURES))
def test_a_failed_write_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch, where, kind):
    import os
    import tempfile

    from speakerid._utils import files

    code = _FAILURES[kind]

    def fail(*args, **kwargs):
        if where == "mkstemp":        # as tempfile does: the temporary file's name, which means nothing to a user
            raise OSError(code, os.strerror(code), str(tmp_path / ".scores.csv.abc123.tmp"))
        raise OSError(code, os.strerror(code))

    target = tmp_path / "scores.csv"
    target.write_text("old")
    if where in ("mkstemp",):
        monkeypatch.setattr(tempfile, "mkstemp", fail)
    elif where in ("fsync", "replace"):
        monkeypatch.setattr(files.os, where, fail)
    with pytest.raises(OSError) as info:
        with atomic_write(target, "w") as fh:
            if where == "write":
                fail()
            fh.write("new")
    assert info.value.errno == code and info.value.filename == str(target)
    assert os.strerror(code) in str(info.value) and "nothing was written" in str(info.value)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


def test_a_read_only_error_is_ignored_only_where_a_cache_is_written():
    from speakerid._utils.files import unless_read_only

    for code in (errno.EACCES, errno.EPERM, errno.EROFS):
        with unless_read_only():
            raise OSError(code, "read-only")
    for code in _FAILURES.values():
        with pytest.raises(OSError), unless_read_only():
            raise OSError(code, "failed")


@pytest.mark.parametrize("failing", ["ubm.npz", "cohort-gmm-ubm.npz"])
def test_train_ubm_fails_and_names_the_file_when_a_model_file_cannot_be_written(tmp_path, monkeypatch, capsys,
                                                                               failing):
    """On a full disk no command reports success: the cohort is not silently skipped (exit 1, one line)."""
    import os

    from speakerid import store
    from speakerid.cli._common import ExitStatus
    from speakerid.cli.main import main
    from speakerid.data.synth import make_corpus

    corpus = make_corpus(tmp_path / "corpus", n_speakers=2, n_utterances=2, enroll_per_speaker=1, n_background=4,
                         n_background_utterances=2, duration_s=(1.0, 1.5), seed=0, show_progress=False)
    real = store.atomic_write_bytes

    def full_disk(path, data):
        if os.path.basename(path) == failing:
            raise OSError(errno.ENOSPC, "No space left on device (nothing was written)", str(path))
        return real(path, data)

    monkeypatch.setattr(store, "atomic_write_bytes", full_disk)
    models = tmp_path / "models"
    status = main(["train-ubm", "--manifest", str(corpus.background_csv), "--model-dir", str(models),
                   "--components", "4", "--iterations", "2"])
    captured = capsys.readouterr()
    assert status == ExitStatus.ERROR
    assert captured.err.strip().endswith(f"{models / failing}: No space left on device (nothing was written)")
    assert captured.err.count("\n") == 1 and "trained" not in captured.out


# ------------------------------------------------------------------ one training per directory
def test_a_second_training_of_a_directory_is_refused_naming_the_first(tmp_path):
    import os

    from speakerid._utils.files import TRAIN_NOTE, training_lock
    from speakerid.exceptions import ParameterError

    with training_lock(tmp_path, "speakerid train"):
        assert f'"pid": {os.getpid()}' in (tmp_path / TRAIN_NOTE).read_text()
        with pytest.raises(ParameterError, match=rf"another training is writing into it \(speakerid train, process "
                                                 rf"{os.getpid()} on .*wait for it to end or stop it"):
            with training_lock(tmp_path, "speakerid train-ubm"):
                pass
    assert not (tmp_path / TRAIN_NOTE).exists()
    with training_lock(tmp_path, "again"):               # released: the next training goes on
        pass


@pytest.mark.parametrize("command", ["train-ubm", "train-ivector", "train"])
def test_training_commands_refuse_a_directory_another_process_trains(tmp_path, capsys, command):
    """The other training is a real process (it holds the lock as 'speakerid train' would); nothing is written."""
    import subprocess
    import sys

    from speakerid.cli._common import ExitStatus
    from speakerid.cli.main import main
    from speakerid.data.synth import make_corpus

    corpus = make_corpus(tmp_path / "corpus", n_speakers=2, n_utterances=2, enroll_per_speaker=1, n_background=4,
                         n_background_utterances=2, duration_s=(1.0, 1.5), seed=0, show_progress=False)
    models = tmp_path / "models"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from speakerid._utils.files import "
                               "training_lock\nwith training_lock(sys.argv[1], 'speakerid train'):\n"
                               "    print('held', flush=True); time.sleep(120)", str(models)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        status = main([command, "--manifest", str(corpus.background_csv), "--model-dir", str(models)])
        err = capsys.readouterr().err
        assert status == ExitStatus.USAGE and f"process {holder.pid} on" in err and err.count("\n") == 1
        assert sorted(p.name for p in models.iterdir()) == [".train.json", ".train.lock"]
    finally:
        holder.kill()
        holder.wait()
