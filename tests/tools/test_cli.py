"""The command line: subcommands, usage errors, progress lines, ``python -m tools``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.clock import Clock
from tests.require import require
from tests.tools.helpers import run
from tests.vectors import REPO
from tools.cli import COMMANDS
from tools.progress import Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "--help")
    assert result.code == 0
    first_words = {line.split()[0] for line in result.out.splitlines() if line.strip()}
    assert {"create-db", "check", "export", "import", "backup", "health"} <= first_words
    assert (
        "exit status: 0 done (check: no errors), 1 check found errors, 255 usage error or failure"
        in result.out
    )
    assert set(COMMANDS) == {"create-db", "check", "export", "import", "backup", "health"}


@pytest.mark.parametrize(
    "argv", [[], ["nope"], ["check"], ["check", "a", "b"], ["export", "x"], ["health", "x"]]
)
def test_usage_errors_exit_255(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    result = run(capsys, *argv)
    assert result.code == 255
    assert result.out == ""
    assert result.err.startswith("usage: pmxcfs-tool")
    assert "error: " in result.err


def test_health_without_a_daemon_fails_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "health", "--ipc-name", f"pve2-none-{os.getpid()}")
    assert result.code == 255
    assert result.out == ""
    assert result.err.startswith("pmxcfs-tool health: ")
    assert "Connection refused" in result.err
    assert len(result.err.splitlines()) == 1


def test_progress_lines_when_not_a_terminal() -> None:
    out, clock = io.StringIO(), Clock(0.0)
    progress = Progress(enabled=True, stream=out, clock=clock)
    progress.start("export", 3, "entries")
    progress.advance()  # within MIN_INTERVAL_S of the last line: not shown
    clock.now = 1.0
    progress.advance()
    progress.advance()
    progress.finish()
    assert out.getvalue().splitlines() == [
        "export: 0/3 entries",
        "export: 2/3 entries",
        "export: 3/3 entries",
    ]


def test_progress_redraws_one_line_on_a_terminal() -> None:
    out, clock = Tty(), Clock(0.0)
    progress = Progress(enabled=True, stream=out, clock=clock)
    progress.start("backup", None, "pages")
    clock.now = 1.0
    progress.update(5, 10)
    progress.finish()
    assert out.getvalue() == "\rbackup: 0 pages\rbackup: 5/10 pages\rbackup: 5/10 pages\n"


def test_progress_disabled_writes_nothing() -> None:
    out = Tty()
    progress = Progress(enabled=False, stream=out)
    progress.start("x", 2)
    progress.advance()
    progress.finish()
    assert out.getvalue() == ""


def test_progress_phases_of_check(capsys: pytest.CaptureFixture[str], sample_db: Path) -> None:
    result = run(capsys, "check", "--progress", sample_db)
    assert result.code == 0
    assert result.err.splitlines() == ["check: sqlite integrity_check", "check: load checks on 16 rows"]


def test_progress_flag_on_a_command(capsys: pytest.CaptureFixture[str], sample_db: Path) -> None:
    result = run(capsys, "export", "--progress", sample_db, sample_db.parent / "out.tar")
    assert result.code == 0
    lines = result.err.splitlines()
    assert lines[0] == "export: 0/15 entries"
    assert lines[-1] == "export: 15/15 entries"
    quiet = run(capsys, "export", sample_db, sample_db.parent / "out2.tar")
    assert quiet.err == ""  # stderr is not a terminal under pytest


def test_python_dash_m_tools(sample_db: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools", "check", str(sample_db)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{sample_db}: OK (16 rows, version 23)\n", "")


def test_wrapper_script_from_another_folder(sample_db: Path) -> None:
    venv = REPO / ".venv" / "bin" / "python"
    require([] if venv.exists() else [f"{venv} (scripts/install.sh makes it)"], "the wrapper script")
    done = subprocess.run(
        [str(REPO / "scripts" / "pmxcfs-tool"), "check", sample_db.name],
        cwd=sample_db.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert (done.returncode, done.stdout) == (0, f"{sample_db.name}: OK (16 rows, version 23)\n")
