"""Run the real daemon (main.py, or PMXCFS_DAEMON) on a real FUSE mount."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAEMON_ENV = "PMXCFS_DAEMON"
"""If set, the daemon command to test instead of this tree's main.py (shell words), e.g.
``/usr/bin/pmxcfs`` for the installed package (scripts/test-package.sh)."""
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


def is_mounted(path: Path) -> bool:
    """True if ``path`` is a mount point in this namespace (dead FUSE mounts included)."""
    target = os.path.realpath(path)
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


@dataclass
class Daemon:
    """One pmxcfs process with its own mount, database, run dir and pid file."""

    base: Path
    nodename: str = "node1"
    extra_args: tuple[str, ...] = ()
    inject: str = ""
    """Failures to inject into actor handlers (faulty_main.py's SPEC); empty: the plain daemon."""
    wrapper: tuple[str, ...] = ()
    """A script and its arguments that run main.py in its place (bench/counting_main.py)."""
    db: Path = field(init=False)
    mount: Path = field(init=False)
    proc: subprocess.Popen[str] | None = field(default=None, init=False)
    lines: list[str] = field(default_factory=list, init=False)
    _ready: threading.Event = field(default_factory=threading.Event, init=False)
    _new_line: threading.Condition = field(default_factory=threading.Condition, init=False)
    _reader: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.db = self.base / "db" / "config.db"
        self.mount = self.base / "mnt"

    def entry(self) -> list[str]:
        """The interpreter and script: main.py, or main.py behind the fault injector or a wrapper.

        With PMXCFS_DAEMON set, that command instead; a test that needs main.py itself (a fault
        injector or a wrapper) then fails rather than test this tree's code in its place.
        """
        installed = os.environ.get(DAEMON_ENV)
        if installed:
            if self.wrapper or self.inject:
                raise RuntimeError(f"{DAEMON_ENV} is set, but this test needs this tree's main.py")
            return shlex.split(installed)
        if self.wrapper:
            return [sys.executable, *self.wrapper]
        if self.inject:
            return [sys.executable, str(REPO / "tests" / "integration" / "faulty_main.py"), self.inject]
        return [sys.executable, str(REPO / "main.py")]

    def base_args(self, pidfile: str) -> list[str]:
        """Foreground, every path below ``base``, RRD files written with librrd (no rrdcached)."""
        return [
            "-f",
            "--mount",
            str(self.mount),
            "--db",
            str(self.db),
            "--rundir",
            str(self.base / "run"),
            "--pidfile",
            str(self.base / pidfile),
            "--nodename",
            self.nodename,
            "--rrd-dir",
            str(self.base / "rrd"),
            "--rrdcached",
            "",
        ]

    def command(self) -> list[str]:
        return [
            *self.entry(),
            *self.base_args("pmxcfs.pid"),
            "--lock-wait",
            "1",
            # Like a host without corosync: a new database imports no corosync.conf, so the
            # daemon runs in local mode unless the database already holds one.
            "--corosync-conf",
            str(self.base / "host-corosync.conf"),
            *self.extra_args,
        ]

    def start(self, *, wait: bool = True) -> Daemon:
        self._ready.clear()
        self.lines = []
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        self._reader = threading.Thread(target=self._read_stderr, args=(self.proc,), daemon=True)
        self._reader.start()
        if wait:
            self.wait_ready()
        return self

    def _read_stderr(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        with proc.stderr:
            for line in proc.stderr:
                with self._new_line:
                    self.lines.append(line.rstrip("\n"))
                    self._new_line.notify_all()
                if "] info: mounted " in line:
                    self._ready.set()
        self._ready.set()  # the process ended: wake any waiter

    def wait_ready(self) -> None:
        assert self._ready.wait(READY_TIMEOUT_S), f"daemon not ready: {self.lines}"
        assert self.proc is not None
        assert self.proc.poll() is None, f"daemon exited with {self.proc.returncode}: {self.lines}"
        assert is_mounted(self.mount), f"ready but not mounted: {self.lines}"

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float = READY_TIMEOUT_S) -> str:
        """Wait until a stderr line satisfies ``predicate`` (woken by the reader thread)."""
        with self._new_line:
            found = self._new_line.wait_for(
                lambda: next((ln for ln in self.lines if predicate(ln)), None), timeout
            )
        assert found is not None, f"no matching line within {timeout} s: {self.lines[-20:]}"
        return found

    def wait_exit(self, timeout: float = STOP_TIMEOUT_S) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)
        return code

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the daemon and wait for it; returns its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait_exit()

    def cleanup(self) -> None:
        """Whatever happened: end our process, remove our mount."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        if self._reader is not None:
            self._reader.join(STOP_TIMEOUT_S)
        if is_mounted(self.mount):
            with contextlib.suppress(subprocess.CalledProcessError):
                subprocess.run(["fusermount", "-u", "-z", str(self.mount)], check=True)

    def path(self, rel: str) -> Path:
        return self.mount / rel
