"""Atomic file writes (temp file + ``os.replace``) with the user's umask: plumbing for every writer."""

from __future__ import annotations

import contextlib
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the permissions open() would
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _test_hold_before_rename(path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
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

