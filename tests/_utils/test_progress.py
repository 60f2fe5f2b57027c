"""Progress reports (speakerid._utils.progress): silent by default, one line per stage in a long command's log."""

from __future__ import annotations

from speakerid._utils import progress as progress_module
from speakerid._utils.progress import progress, report_stages, stage_lines


def test_silent_unless_a_long_command_asks_for_stage_lines(capsys, monkeypatch):
    assert list(progress(range(3), desc="work")) == [0, 1, 2]
    assert capsys.readouterr().err == "" and not stage_lines()
    with report_stages():                     # a command, but not running long yet: its one-line error stays alone
        assert list(progress([1, 2], desc="files", unit="file")) == [1, 2]
        assert not stage_lines()
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(progress_module, "ALIVE_AFTER_S", 0.0)
    with report_stages():
        assert stage_lines()                          # stderr is captured: not a terminal
        assert list(progress([1, 2], desc="files", unit="file")) == [1, 2]
        with progress(total=10, desc="score", unit="trial") as bar:
            bar.update(4)
            bar.update(6)
        assert list(progress(range(2), desc="quiet", enabled=False)) == [0, 1]
    assert not stage_lines()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "speakerid: files: 0 of 2 file(s), 0.0 s" and lines[1].startswith("speakerid: files: done, 2")
    assert lines[2].startswith("speakerid: score: 4 of 10 trial(s)") and lines[-1].startswith(
        "speakerid: score: done, 10 trial(s)")
    assert not any("quiet" in line for line in lines)


def test_train_ubm_reports_stages_and_em_iterations(capsys, tmp_path, monkeypatch):
    from conftest import tiny_model_dir

    monkeypatch.setattr(progress_module, "ALIVE_AFTER_S", 0.0)
    tiny_model_dir(tmp_path)
    err = capsys.readouterr().err
    assert "speakerid: UBM features: 0 of 6 file(s)" in err and "speakerid: UBM features: done, 6 file(s)" in err
    assert err.count("EM iteration") == 2


def test_a_report_that_shows_nothing_does_not_load_tqdm():
    """Off a terminal a silent report is a plain pass-through: tqdm (30-50 ms of imports) stays unloaded."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from speakerid._utils.progress import progress\n"
            "assert list(progress(range(3), desc='files')) == [0, 1, 2]\n"
            "with progress(total=5, desc='score') as bar:\n"
            "    bar.update(2); bar.update(3)\n"
            "assert bar.n == 5\n"
            "print('tqdm' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False" and done.stderr == ""


def test_em_bar_on_a_terminal_only_and_not_beside_verbose_lines(monkeypatch, capsys):
    import sys

    from speakerid._utils.progress import _Silent, em_bar

    assert isinstance(em_bar(10, "UBM EM"), _Silent)                     # a log or a pipe: the EM lines report
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert isinstance(em_bar(10, "UBM EM", verbose=True), _Silent)       # verbose lines instead
    with em_bar(10, "UBM EM") as bar:                                     # a terminal: a bar
        assert not isinstance(bar, _Silent) and bar.total == 10
        bar.update(3)
    assert "UBM EM" in capsys.readouterr().err
