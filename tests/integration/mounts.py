"""FUSE for the tests: skip without it on a developer box (fail under CI=true), and a daemon whose
mount other users can reach."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from lab.daemon import STOP_TIMEOUT_S, Daemon, is_mounted
from tests.integration.helpers import pid_alive, wait_pid_exit
from tests.require import require


def require_fuse() -> None:
    """Skip on a developer box without FUSE; under CI=true a missing piece fails."""
    missing = []
    if not os.path.exists("/dev/fuse"):
        missing.append("/dev/fuse")
    if shutil.which("fusermount") is None:
        missing.append("fusermount (package fuse)")
    if os.geteuid() != 0:
        missing.append("root")
    require(missing, "FUSE tests")


@contextlib.contextmanager
def public_daemon(make: Callable[[Path], Daemon], prefix: str = "pmxcfs-it-") -> Iterator[Daemon]:
    """A started daemon whose mount other users can reach.

    pytest's tmp_path lies below a 0700 folder, so this one lives in a 0755 folder in /tmp;
    the folder is removed afterwards once nothing is mounted in it.
    """
    require_fuse()
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o755)
    (base / "d").mkdir(mode=0o755)
    (base / "d").chmod(0o755)
    daemon = make(base / "d")
    try:
        yield daemon.start()
    finally:
        daemon.cleanup()
        if not is_mounted(daemon.mount):
            shutil.rmtree(base, ignore_errors=True)


def kill_leftover(pid: int | None, mount: Path, script: str) -> None:
    """End a background daemon we started (by its pid, else by our unique mount path and its script)."""
    pids = [pid] if pid else []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                if os.fsencode(mount) in cmdline and os.fsencode(script) in cmdline:
                    pids.append(int(entry.name))
    for each in pids:
        if pid_alive(each):
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGKILL)
            wait_pid_exit(each, STOP_TIMEOUT_S)
