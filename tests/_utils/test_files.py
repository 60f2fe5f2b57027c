"""Atomic writes: the old file survives a failed write; ordinary permissions."""

from __future__ import annotations

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

