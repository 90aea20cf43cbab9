"""Log lines as the original's: '[tag] priority: message', syslog ident and facility, .debug."""

from __future__ import annotations

import errno
import io
import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import logs
from fusefs.libfuse import FUSE, FuseOSError

TIMEOUT_S = 5.0


def record(level: int, msg: str, *args: object, name: str = "main") -> logging.LogRecord:
    return logging.LogRecord(name, level, "/src/daemon/x.py", 17, msg, args, None, func="start")


@pytest.mark.parametrize(
    ("level", "word"),
    [
        (logging.DEBUG, "debug"),
        (logging.INFO, "info"),
        (25, "info"),
        (logging.WARNING, "warning"),
        (logging.ERROR, "error"),
        (logging.CRITICAL, "crit"),
    ],
)
def test_priority_words_are_libqbs(level: int, word: str) -> None:
    assert logs.priority_name(level) == word


def test_the_line_format_and_its_debug_form() -> None:
    formatter = logs.LineFormatter(syslog=False)
    rec = record(logging.INFO, "mounted %s", "/etc/pve")
    assert formatter.format(rec) == "[main] info: mounted /etc/pve"
    formatter.debug = True
    assert formatter.format(rec) == "[main] info: mounted /etc/pve (x.py:17:start)"


def test_the_syslog_form_names_ident_and_pid() -> None:
    rec = record(logging.CRITICAL, "local corosync.conf is newer", name="daemon.corosync_conf")
    line = logs.LineFormatter(syslog=True).format(rec)
    assert line == f"pmxcfs[{os.getpid()}]: [daemon.corosync_conf] crit: local corosync.conf is newer"


def test_messages_become_ascii_and_are_capped() -> None:
    formatter = logs.LineFormatter(syslog=False)
    assert formatter.format(record(logging.INFO, "caf\u00e9\tx\n")) == "[main] info: caf\\u00e9#009x#010"
    long = formatter.format(record(logging.INFO, "a" * 20_000))
    assert long == "[main] info: " + "a" * logs.MAX_MESSAGE


def test_a_traceback_follows_the_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = logging.LogRecord("main", logging.ERROR, "x.py", 1, "failed", (), __import__("sys").exc_info())
    text = logs.LineFormatter(syslog=False).format(rec)
    first, _, rest = text.partition("\n")
    assert first == "[main] error: failed"
    assert rest.startswith("Traceback")
    assert rest.endswith("ValueError: boom")


@pytest.fixture
def syslog_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket standing in for /dev/log; the root logger is restored afterwards."""
    path = tmp_path / "log"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(TIMEOUT_S)
    monkeypatch.setenv(logs.SYSLOG_SOCKET_ENV, str(path))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield sock
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    sock.close()


def test_setup_sends_daemon_facility_lines_and_debug_switches_at_run_time(
    syslog_socket: socket.socket,
) -> None:
    logs.setup_logging(debug=False)
    log = logging.getLogger("tests.logs")
    log.debug("not yet")
    log.info("hello %d", 1)
    assert syslog_socket.recv(8192) == f"<30>pmxcfs[{os.getpid()}]: [tests.logs] info: hello 1\0".encode()
    logs.set_debug(True)
    log.debug("now")
    line = syslog_socket.recv(8192).decode()
    assert line.startswith(f"<31>pmxcfs[{os.getpid()}]: [tests.logs] debug: now (test_logs.py:")
    logs.set_debug(False)
    log.debug("gone again")
    log.warning("last")
    assert syslog_socket.recv(8192).startswith(b"<28>")  # daemon (3) * 8 + warning (4)


def test_no_syslog_socket_means_stderr_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(logs.SYSLOG_SOCKET_ENV, str(tmp_path / "missing"))
    assert logs._syslog_handler() is None


def test_stderr_that_is_the_journal_is_recognised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open(tmp_path / "stream", "w") as stream:
        monkeypatch.setattr("sys.stderr", stream)
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert logs._stderr_is_journal() is True
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
        assert logs._stderr_is_journal() is False


@pytest.fixture
def fuse_lines() -> Iterator[io.StringIO]:
    """fusepy's logger at debug level with the filter setup_logging installs, into a buffer."""
    fuse_log = logging.getLogger("fuse")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.LineFormatter(syslog=False))
    flt = logs.FuseErrnoFilter()
    level = fuse_log.level
    fuse_log.addHandler(handler)
    fuse_log.addFilter(flt)
    fuse_log.setLevel(logging.DEBUG)
    yield out
    fuse_log.removeHandler(handler)
    fuse_log.removeFilter(flt)
    fuse_log.setLevel(level)


def test_a_refused_fuse_operation_is_one_line(fuse_lines: io.StringIO) -> None:
    def getattr(path: str) -> None:  # named as the operation fusepy reports
        raise FuseOSError(errno.ENOENT)

    assert FUSE._wrapper(getattr, "/missing") == -errno.ENOENT  # fusepy's own logging
    assert fuse_lines.getvalue() == (
        f"[fuse] debug: FUSE operation getattr raised a {FuseOSError}, returning errno 2.\n"
    )


@pytest.mark.allow_error_logs  # fusepy logs it at ERROR: expected here
def test_an_unexpected_fuse_exception_keeps_its_traceback(fuse_lines: io.StringIO) -> None:
    def read(path: str) -> None:
        raise ValueError("bug")

    assert FUSE._wrapper(read, "/x") == -errno.EINVAL
    first, _, rest = fuse_lines.getvalue().partition("\n")
    assert first == "[fuse] error: Uncaught exception from FUSE operation read, returning errno.EINVAL."
    assert rest.startswith("Traceback")
    assert rest.rstrip().endswith("ValueError: bug")


def test_an_oserror_without_a_positive_errno_keeps_its_traceback() -> None:
    for exc in (OSError(-5, "negative"), OSError("no errno")):
        try:
            raise exc
        except OSError:
            rec = logging.LogRecord("fuse", logging.ERROR, "fuse.py", 1, "failed", (), sys.exc_info())
        assert logs.FuseErrnoFilter().filter(rec) is True
        assert rec.exc_info is not None


def test_setup_installs_the_fuse_filter_once(syslog_socket: socket.socket) -> None:
    fuse_log = logging.getLogger("fuse")
    before = list(fuse_log.filters)
    added = []
    try:
        logs.setup_logging(debug=False)
        logs.setup_logging(debug=False)
        added += [f for f in fuse_log.filters if f not in before]
        assert len([f for f in fuse_log.filters if isinstance(f, logs.FuseErrnoFilter)]) == 1
    finally:
        for flt in added:
            fuse_log.removeFilter(flt)
