"""Running as a service: sd_notify readiness and stopping, syslog lines, .debug at run time,
background mode under Type=notify (local.md 5.5-5.7)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.logs import SYSLOG_SOCKET_ENV
from lab.daemon import READY_TIMEOUT_S, REPO, STOP_TIMEOUT_S, Daemon, is_mounted
from tests.integration.helpers import copy_vector_db, wait_pid_exit
from tests.integration.mounts import kill_leftover
from tests.vectors import VECTORS

pytestmark = pytest.mark.fuse

MakeDaemon = Callable[..., Daemon]


class Datagrams:
    """A bound unix datagram socket (a stand-in for systemd's notify socket or /dev/log) that
    collects what arrives, on a thread; tests wait for a datagram with a deadline."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.received: list[bytes] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._new = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                return
            if not data:  # shutdown() wakes the reader with an empty read
                return
            with self._new:
                self.received.append(data)
                self._new.notify_all()

    def wait_for(self, predicate: Callable[[bytes], bool], timeout: float = READY_TIMEOUT_S) -> bytes:
        with self._new:
            found = self._new.wait_for(
                lambda: next((d for d in self.received if predicate(d)), None), timeout
            )
        assert found is not None, f"no matching datagram within {timeout} s: {self.received[-20:]}"
        return found

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._reader.join(STOP_TIMEOUT_S)


@pytest.fixture
def datagrams(tmp_path: Path) -> Iterator[Callable[[str], Datagrams]]:
    made: list[Datagrams] = []

    def make(name: str) -> Datagrams:
        made.append(Datagrams(tmp_path / name))
        return made[-1]

    yield make
    for each in made:
        each.close()


# ----- sd_notify -------------------------------------------------------------------------


def test_ready_is_sent_once_the_mount_works_and_stopping_on_sigterm(
    make_daemon: MakeDaemon, datagrams: Callable[[str], Datagrams], monkeypatch: pytest.MonkeyPatch
) -> None:
    notify = datagrams("notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
    pve = make_daemon().start(wait=False)
    notify.wait_for(lambda d: d == b"READY=1")
    # at this moment the mount answers
    assert is_mounted(pve.mount)
    assert os.stat(pve.path(".version")).st_size > 0
    assert pve.path(".members").read_text().startswith('{\n"nodename": "node1"')
    pve.path("f").write_text("ready\n")
    assert notify.received == [b"READY=1"]
    assert pve.stop(signal.SIGTERM) == 0
    notify.wait_for(lambda d: d == b"STOPPING=1")
    assert notify.received == [b"READY=1", b"STOPPING=1"]
    assert not is_mounted(pve.mount)


def test_an_abstract_notify_socket(make_daemon: MakeDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"pmxcfs-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(READY_TIMEOUT_S)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        pve = make_daemon().start(wait=False)
        assert sock.recv(4096) == b"READY=1"
        assert is_mounted(pve.mount)
        assert pve.stop() == 0


def test_a_failed_start_sends_no_ready(
    make_daemon: MakeDaemon, datagrams: Callable[[str], Datagrams], monkeypatch: pytest.MonkeyPatch
) -> None:
    notify = datagrams("notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
    first = make_daemon("same").start()
    notify.wait_for(lambda d: d == b"READY=1")
    second = make_daemon("same")
    second.start(wait=False)
    assert second.wait_exit() == 255  # the instance lock is taken
    assert first.stop() == 0
    notify.wait_for(lambda d: d == b"STOPPING=1")
    assert notify.received == [b"READY=1", b"STOPPING=1"]  # both from the first


# ----- syslog and .debug -----------------------------------------------------------------


def write_debug(pve: Daemon, value: bytes) -> None:
    fd = os.open(pve.path(".debug"), os.O_WRONLY)
    try:
        assert os.write(fd, value) == len(value)
    finally:
        os.close(fd)


def test_syslog_lines_and_debug_switched_at_run_time(
    make_daemon: MakeDaemon, datagrams: Callable[[str], Datagrams], monkeypatch: pytest.MonkeyPatch
) -> None:
    syslog = datagrams("log")
    monkeypatch.setenv(SYSLOG_SOCKET_ENV, str(syslog.path))
    pve = make_daemon().start()
    assert pve.proc is not None
    prefix = f"pmxcfs[{pve.proc.pid}]: "
    # facility daemon (3), priority info (6): <30>; the line as on stderr, after the ident
    mounted = f"[main] info: mounted {pve.mount} (node node1)"
    assert syslog.wait_for(lambda d: mounted.encode() in d) == f"<30>{prefix}{mounted}\0".encode()
    assert mounted in pve.lines
    assert not any(d.startswith(b"<31>") for d in syslog.received)  # no debug lines yet

    probe_on, probe_off = f"probe-on-{uuid.uuid4().hex}", f"probe-off-{uuid.uuid4().hex}"
    write_debug(pve, b"1\n")
    assert not pve.path(probe_on).exists()
    line = syslog.wait_for(lambda d: probe_on.encode() in d).decode()
    assert line.startswith(f"<31>{prefix}[fusefs.operations] debug: ")
    assert line.endswith(")\0")  # debug lines end with (file:line:function)
    assert "(operations.py:" in line
    # the same line on stderr (read by another thread, which may come after the datagram)
    pve.wait_for_line(lambda ln: probe_on in ln and ln.startswith("[fusefs.operations] debug: "))

    write_debug(pve, b"0\n")
    assert not pve.path(probe_off).exists()
    assert pve.stop() == 0
    syslog.wait_for(lambda d: b"] info: exit proxmox configuration filesystem (0)" in d)
    assert not any(probe_off.encode() in d for d in syslog.received)
    assert not any(probe_off in ln for ln in pve.lines)


# ----- background mode under Type=notify ------------------------------------------------


def test_background_mode_hands_readiness_to_the_child_and_logs_only_to_syslog(
    make_daemon: MakeDaemon,
    datagrams: Callable[[str], Datagrams],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    notify, syslog = datagrams("notify"), datagrams("log")
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
    monkeypatch.setenv(SYSLOG_SOCKET_ENV, str(syslog.path))
    pve = make_daemon()
    command = [arg for arg in pve.command() if arg not in ("-f", "--foreground")]
    pidfile = pve.base / "pmxcfs.pid"
    child: int | None = None
    parent: subprocess.Popen[bytes] | None = None
    try:
        with open(tmp_path / "parent.err", "w") as err:
            parent = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO
            )
            assert parent.wait(STOP_TIMEOUT_S) == 0, (tmp_path / "parent.err").read_text()
        child = int(pidfile.read_text())
        # the parent, the unit's main process under Type=notify, names the child and is ready
        assert notify.received == [f"MAINPID={child}\nREADY=1".encode()]
        assert is_mounted(pve.mount)
        pve.path("f").write_text("background\n")
        os.kill(child, signal.SIGTERM)
        wait_pid_exit(child, STOP_TIMEOUT_S)
        assert notify.wait_for(lambda d: d == b"STOPPING=1")
        assert not is_mounted(pve.mount)
        assert not pidfile.exists()
    finally:
        if parent is not None and parent.poll() is None:
            parent.kill()
            parent.wait(STOP_TIMEOUT_S)
        kill_leftover(child, pve.mount, pve.entry()[-1])
    # the child's lines went to syslog (with its own pid), none to the parent's stderr
    teardown = f"<30>pmxcfs[{child}]: [main] info: teardown filesystem\0".encode()
    assert syslog.wait_for(lambda d: d == teardown)
    assert "teardown filesystem" not in (tmp_path / "parent.err").read_text()


# ----- corosync.conf at startup, without corosync ----------------------------------------


def test_cluster_mode_startup_writes_the_trees_corosync_conf_to_a_missing_host_file(
    make_daemon: MakeDaemon,
) -> None:
    pve = make_daemon()
    copy_vector_db(pve.db)  # holds corosync.conf (config_version 1): cluster mode
    host = pve.base / "host-corosync.conf"
    pve.start()
    assert host.read_bytes() == (VECTORS / "corosync.conf").read_bytes()
    assert stat.S_IMODE(host.stat().st_mode) == 0o644
    assert not host.with_name(host.name + ".bak").exists()  # there was nothing to keep
    assert pve.stop() == 0


def test_cluster_mode_startup_keeps_a_newer_host_file(make_daemon: MakeDaemon) -> None:
    pve = make_daemon()
    copy_vector_db(pve.db)
    host = pve.base / "host-corosync.conf"
    newer = (VECTORS / "corosync.conf").read_bytes().replace(b"config_version: 1", b"config_version: 5")
    host.parent.mkdir(parents=True, exist_ok=True)
    host.write_bytes(newer)
    pve.start()
    assert "[daemon.corosync_conf] crit: local corosync.conf is newer" in pve.lines
    assert host.read_bytes() == newer
    assert pve.stop() == 0
