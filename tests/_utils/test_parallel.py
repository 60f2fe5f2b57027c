"""imap_ordered (speakerid._utils.parallel): results in task order, windows submitted ahead, errors raised."""

from __future__ import annotations

import pytest

from speakerid._utils.parallel import TaskRunner, imap_ordered


def _square_or_fail(offset, batch):
    if any(x < 0 for x in batch):
        raise ValueError(f"negative task in {batch}")
    return [offset + x * x for x in batch]


@pytest.mark.parametrize("jobs", [1, 2])
def test_results_come_in_task_order_whatever_the_window(jobs):
    tasks = list(range(23))
    with TaskRunner(n_jobs=jobs) as runner:
        for window in (1, 3, 8, 100):
            assert list(imap_ordered(runner, _square_or_fail, 5, tasks, window)) == [5 + x * x for x in tasks]
    assert list(imap_ordered(None, _square_or_fail, 0, [3, 1])) == [9, 1]
    assert list(imap_ordered(None, _square_or_fail, 0, [])) == []


def test_a_failing_task_raises_in_the_caller():
    with TaskRunner(n_jobs=2) as runner, pytest.raises(ValueError, match="negative"):
        list(imap_ordered(runner, _square_or_fail, 0, [1, 2, -3, 4, 5, 6], window=2))


def test_large_arrays_leave_no_temporary_files_at_exit(tmp_path):
    """Worker processes get large arrays without memory-mapped /dev/shm files: the reused pool kept those past
    the runner and loky's resource tracker printed 'leaked file objects' on stderr when the command exited."""
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(
        "import numpy as np\n"
        "from speakerid._utils.parallel import TaskRunner\n"
        "def total(shared, batch):\n"
        "    return [float(shared.sum()) + t for t in batch]\n"
        "if __name__ == '__main__':\n"
        "    with TaskRunner(2) as runner:\n"
        "        print(runner.map(total, np.ones(2_000_000), list(range(8))))\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([2_000_000.0 + t for t in range(8)])
    assert "leaked" not in done.stderr and done.stderr.strip() == ""


_WORKER_SCRIPT = """
import os, signal, sys, tempfile, threading, time
from pathlib import Path
from speakerid._utils.parallel import TaskRunner

def write(folder, batch):
    out = []
    for i in batch:
        if i == 0 and MODE == "error":
            raise ValueError("task 0 failed")
        sub = Path(folder) / str(i)            # files keep coming, as a feature store's entries do
        sub.mkdir()
        for j in range(300):
            (sub / f"{j}.npy").write_bytes(b"x" * 1000)
            time.sleep(0.001)
        out.append(i)
    return out

MODE = sys.argv[1]
if __name__ == "__main__":
    # Ctrl-C as in a terminal, however pytest was started: a job a shell starts in the background ('&', no job
    # control) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if MODE == "interrupt":
        threading.Timer(0.8, os.killpg, (os.getpgid(0), signal.SIGINT)).start()   # as a terminal's Ctrl-C
    try:
        with tempfile.TemporaryDirectory() as folder, TaskRunner(2) as runner:
            runner.map(write, folder, list(range(16)))
    except (KeyboardInterrupt, ValueError) as exc:
        print(type(exc).__name__, str(exc))
"""


@pytest.mark.parametrize("mode,expected", [("error", "ValueError task 0 failed"), ("interrupt", "KeyboardInterrupt")])
def test_a_failed_or_interrupted_run_stops_its_workers_before_its_folder_goes(tmp_path, mode, expected):
    """The error (or Ctrl-C) reaches the caller as itself, not as the folder's 'Directory not empty' from workers
    still writing into it; Ctrl-C is the command's (workers print no traceback of their own) and no worker
    process outlives the run."""
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(_WORKER_SCRIPT)
    done = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=120,
                          start_new_session=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
    assert done.stderr.strip() == ""
