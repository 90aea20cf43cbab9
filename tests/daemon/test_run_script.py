"""scripts/run.sh: local mode (-l) unless --cluster is given, which is not passed on.

The script installs packages before it runs pmxcfs: its argument handling is run sourced (it
then defines its functions and runs nothing), and the whole script in a copy with stubs.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "run.sh"


def main_args(*args: str) -> list[str]:
    """main.py's arguments as run.sh computes them for ``args``."""
    shell = 'set -euo pipefail; . "$1"; shift; main_args "$@"; printf "%s\\0" "${MAIN_ARGS[@]}"'
    done = subprocess.run(
        ["bash", "-c", shell, "test", str(SCRIPT), *args], capture_output=True, check=True, timeout=10
    )
    assert done.stderr == b""
    return done.stdout.decode().split("\0")[:-1]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ["-f", "-l"]),
        (("-d",), ["-f", "-l", "-d"]),
        (("--cluster",), ["-f"]),
        (("-d", "--cluster", "--mount", "/tmp/a b"), ["-f", "-d", "--mount", "/tmp/a b"]),
        (("--db", ""), ["-f", "-l", "--db", ""]),
    ],
)
def test_local_mode_unless_cluster_is_asked_for(args: tuple[str, ...], expected: list[str]) -> None:
    assert main_args(*args) == expected


def test_run_installs_then_runs_main_py_with_those_arguments(tmp_path: Path) -> None:
    """The script run as a user does, in a copy of the tree whose installer and python are stubs."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(SCRIPT, tmp_path / "scripts" / "run.sh")
    (tmp_path / "scripts" / "install.sh").write_text('echo installed > "$(dirname "$0")/../installed"\n')
    python = tmp_path / ".venv" / "bin" / "python"
    python.write_text('#!/bin/sh\nprintf "%s\\0" "$@"\n')
    python.chmod(0o755)
    for args, expected in (
        (["-d"], ["main.py", "-f", "-l", "-d"]),
        (["--cluster", "-d"], ["main.py", "-f", "-d"]),
    ):
        done = subprocess.run(
            ["bash", str(tmp_path / "scripts" / "run.sh"), *args],
            cwd="/",
            capture_output=True,
            check=True,
            timeout=10,
        )
        assert done.stdout.decode().split("\0")[:-1] == expected
        (tmp_path / "installed").unlink()  # the installer ran first
