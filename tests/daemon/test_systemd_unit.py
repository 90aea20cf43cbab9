"""systemd/pve-cluster.service: systemd-analyze verify accepts it, and it says what the
original unit says (ordering, environment, kill mode) with Type=notify."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.require import require

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "pve-cluster.service"
INSTALLED_PYTHON = "/opt/pmxcfs/.venv/bin/python"
INSTALLED_MAIN = "/opt/pmxcfs/main.py"
VERIFY_TIMEOUT_S = 60.0


def settings(text: str) -> dict[str, list[str]]:
    """key -> every value it was given (keys repeat in unit files)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def render(tmp_path: Path, python: str = sys.executable) -> Path:
    """The shipped unit with this checkout's interpreter and main.py (verify checks that
    ExecStart's program exists); same file name, since verify takes the unit name from it."""
    text = UNIT.read_text()
    assert INSTALLED_PYTHON in text
    assert INSTALLED_MAIN in text
    rendered = tmp_path / UNIT.name
    rendered.write_text(text.replace(INSTALLED_PYTHON, python).replace(INSTALLED_MAIN, str(REPO / "main.py")))
    return rendered


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    require(
        [] if shutil.which("systemd-analyze") else ["systemd-analyze (package systemd)"], "unit file tests"
    )
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=VERIFY_TIMEOUT_S,
        check=False,
        cwd=unit.parent,
    )


def about_our_unit(stderr: str) -> list[str]:
    """Verify also loads the units ours names (corosync.service, ...): keep only our lines."""
    return [line for line in stderr.splitlines() if UNIT.name in line]


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    done = verify(render(tmp_path))
    assert done.returncode == 0, done.stderr
    # verify reports bad lines as warnings with exit status 0
    assert about_our_unit(done.stderr) == []


def test_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    unit = render(tmp_path, python=str(tmp_path / "no-such-python"))
    unit.write_text(unit.read_text().replace("KillMode=mixed", "KillMode=bogus"))
    done = verify(unit)
    assert done.returncode != 0
    problems = about_our_unit(done.stderr)
    assert any("kill mode" in line for line in problems), done.stderr
    assert any("no-such-python" in line for line in problems), done.stderr


def test_the_unit_says_what_the_original_says_with_type_notify() -> None:
    unit = settings(UNIT.read_text())
    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]
    exec_start = unit["ExecStart"][0].split()
    assert exec_start[:3] == [INSTALLED_PYTHON, INSTALLED_MAIN, "-f"]  # Type=notify: no fork
    assert exec_start[3:] == ["$DAEMON_OPTS"]
    assert unit["EnvironmentFile"] == ["-/etc/default/pve-cluster"]
    assert unit["ExecStartPost"] == ["-/usr/bin/pvecm updatecerts --silent"]
    assert unit["KillMode"] == ["mixed"]
    assert unit["TimeoutStopSec"] == ["10"]
    assert "Restart" not in unit  # the original does not restart on failure either
    before = " ".join(unit["Before"]).split()
    for name in ("corosync.service", "ceph.service", "cron.service", "shutdown.target"):
        assert name in before
    for name in ("pvedaemon.service", "pveproxy.service", "pvestatd.service", "pve-ha-lrm.service"):
        assert name in before
    after = " ".join(unit["After"]).split()
    assert set(after) == {
        "network.target",
        "sys-fs-fuse-connections.mount",
        "systemd-timesyncd.service",
        "rrdcached.service",
    }
    assert unit["Wants"] == ["corosync.service", "systemd-timesyncd.service", "rrdcached.service"]
    assert unit["DefaultDependencies"] == ["no"]
    assert unit["Conflicts"] == ["shutdown.target"]
    assert unit["WantedBy"] == ["multi-user.target"]
