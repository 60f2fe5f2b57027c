"""Atomic file writes (temp file + ``os.replace``) with the user's umask: plumbing for every writer."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from speakerid.exceptions import ParameterError


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    A reader never sees a half-written file, and a crash leaves the old file in place (plus at most a hidden
    ``.*.tmp`` file, which :mod:`speakerid.store` ignores).

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> with atomic_write(os.path.join(d, "a.txt"), "w") as fh:
    ...     _ = fh.write("hello")
    >>> open(os.path.join(d, "a.txt")).read()
    'hello'
    """
    path = Path(path)
    if path.is_dir():
        raise ParameterError(f"{path}: is a directory; give a file name to write")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the permissions open() would
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _test_hold_before_rename(path)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        # a write that failed (disk full, quota, I/O error) names the file it was writing, not its temp file
        if isinstance(exc, OSError) and exc.errno is not None and (
                exc.filename is None or Path(str(exc.filename)).name.startswith(f".{path.name}.")):
            raise OSError(exc.errno, f"{exc.strerror or exc} (nothing was written)", str(path)) from exc
        raise


#: errno values of a folder we may not write: a cache there is kept in memory instead, never an error.
READ_ONLY_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def is_read_only(exc: OSError) -> bool:
    """Whether ``exc`` says the folder is read-only (as opposed to full, or failing)."""
    return exc.errno in READ_ONLY_ERRNOS


@contextlib.contextmanager
def unless_read_only():
    """Ignore the error of writing into a read-only folder (a cache kept in memory instead); raise any other
    (a full disk, an I/O error), so that no command reports success after a failed write."""
    try:
        yield
    except OSError as exc:
        if not is_read_only(exc):
            raise



#: Crash-safety tests set this to a marker file name: a write then creates the marker and stops between writing
#: its temp file and renaming it, so a test can kill the process exactly mid-write. Unset in normal use.
_HOLD_ENV = "SPEAKERID_TEST_HOLD_BEFORE_RENAME"



def _test_hold_before_rename(path: Path) -> None:
    marker = os.environ.get(_HOLD_ENV)
    if marker and path.suffix == ".npz":
        import time

        Path(marker).write_text(str(path), encoding="utf-8")
        time.sleep(3600)



def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask



_UMASK = _current_umask()



def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)



#: The training lock of a model directory and the note naming its holder.
TRAIN_LOCK, TRAIN_NOTE = ".train.lock", ".train.json"


@contextlib.contextmanager
def training_lock(folder, what: str):
    """Hold ``folder``'s training lock while a training writes into it.

    A second training of the same folder is refused at once (:class:`ParameterError`) naming the process that
    trains it, instead of both overwriting each other's files for minutes. The lock is :class:`filelock.FileLock`
    on ``folder/.train.lock``: the operating system releases it when its process ends, even by ``kill -9``.
    Enrollment and scoring take the directory's own lock (:meth:`speakerid.store.ModelStore.lock`), not this one.
    """
    import datetime
    import json
    import socket

    from filelock import FileLock, Timeout

    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ParameterError(f"{folder}: cannot be a model directory (it, or a folder above it, is a file)") from None
    lock, note = FileLock(str(folder / TRAIN_LOCK)), folder / TRAIN_NOTE
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            holder = json.loads(note.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            holder = {}
        raise ParameterError(
            f"{folder}: another training is writing into it ({holder.get('what', 'a training')}, process "
            f"{holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('started', '?')}): wait for "
            "it to end or stop it; two trainings of one directory would overwrite each other's files") from None
    done = False
    try:
        with contextlib.suppress(OSError):
            note.write_text(json.dumps({"what": what, "pid": os.getpid(), "host": socket.gethostname(),
                                        "started": datetime.datetime.now().isoformat(timespec="seconds")}),
                            encoding="utf-8")
        yield
        done = True
    finally:
        with contextlib.suppress(OSError):
            note.unlink()
        lock.release()
        if created and not done:     # refused or failed before writing anything: leave no folder behind
            with contextlib.suppress(OSError):
                if [p.name for p in folder.iterdir()] == [TRAIN_LOCK]:
                    (folder / TRAIN_LOCK).unlink()
                    folder.rmdir()


def training_lock_held(folder) -> bool:
    """Whether a training holds ``folder``'s :func:`training_lock` now (without waiting for it)."""
    from filelock import FileLock, Timeout

    if not (Path(folder) / TRAIN_LOCK).exists():
        return False
    lock = FileLock(str(Path(folder) / TRAIN_LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:
        return False
    lock.release()
    return False


def trains_into(position: int, what: str):
    """Decorate a training function whose model directory is its argument ``model_dir`` (or positional argument
    ``position``): it runs under :func:`training_lock`."""
    import functools

    def wrap(func):
        @functools.wraps(func)
        def run(*args, **kwargs):
            folder = kwargs["model_dir"] if "model_dir" in kwargs else args[position]
            with training_lock(folder, what):
                return func(*args, **kwargs)
        return run
    return wrap
