"""Logging as the original (local.md 5.7): '[tag] priority: message' to syslog and stderr.

Syslog gets ident ``pmxcfs`` with the pid, facility daemon; stderr gets the same line without
the ident, in the foreground only. Writing 1 to ``.debug`` (or ``-d``) switches every handler
to debug level and appends ``(file:line:function)``, at run time.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys

from status.clusterlog import to_ascii

IDENT = "pmxcfs"
SYSLOG_SOCKET = "/dev/log"
SYSLOG_SOCKET_ENV = "PMXCFS_SYSLOG_SOCKET"
"""Tests only: another syslog socket than /dev/log."""
MAX_MESSAGE = 8191
"""The original formats each message into an 8 KiB buffer."""

_PRIORITIES = (
    (logging.CRITICAL, "crit"),
    (logging.ERROR, "error"),
    (logging.WARNING, "warning"),
    (logging.INFO, "info"),
)
"""Python level -> the priority name libqb prints (its names, not syslog.h's)."""


def priority_name(level: int) -> str:
    """The priority word of a line: crit, error, warning, info or debug."""
    return next((name for threshold, name in _PRIORITIES if level >= threshold), "debug")


class LineFormatter(logging.Formatter):
    """``[tag] priority: message``; the tag is the logger name, the message plain ASCII."""

    def __init__(self, *, syslog: bool) -> None:
        super().__init__()
        self.syslog = syslog
        """Prefix ``pmxcfs[pid]: `` (the pid at the time of the record: it changes on fork)."""
        self.debug = False
        """Append `` (file:line:function)``, as the original in debug mode."""

    def format(self, record: logging.LogRecord) -> str:
        """One line (plus a traceback, if any)."""
        raw = record.getMessage().encode("utf-8", "surrogateescape")
        line = f"[{record.name}] {priority_name(record.levelno)}: {to_ascii(raw, quote=False)[:MAX_MESSAGE]}"
        if self.debug:
            line += f" ({record.filename}:{record.lineno}:{record.funcName})"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return f"{IDENT}[{record.process}]: {line}" if self.syslog else line


class FuseErrnoFilter(logging.Filter):
    """On fusepy's logger: a refused operation is one line, without fusepy's traceback.

    fusepy logs every ``FuseOSError`` (an errno answer such as ENOENT) at debug level with
    ``exc_info``, some 50 lines each. Such a record keeps its line and loses the traceback; an
    unexpected exception (logged at error level, answered EINVAL) keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop the traceback of an errno answer; never drop the record."""
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno > 0:
            record.exc_info = None
            record.exc_text = None
        return True


class _SysLogHandler(logging.handlers.SysLogHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        """Like syslog(3): a line that can't be sent (syslog daemon restarting) is lost quietly."""


def setup_logging(*, debug: bool) -> None:
    """Send logs to syslog, where there is one, and to stderr, unless stderr is the journal."""
    root = logging.getLogger()
    syslog = _syslog_handler()
    if syslog is not None:
        root.addHandler(syslog)
    if syslog is None or not _stderr_is_journal():
        stderr = logging.StreamHandler()
        stderr.setFormatter(LineFormatter(syslog=False))
        root.addHandler(stderr)
    # pykka logs every error returned to an asker at INFO with a traceback: those are answers.
    logging.getLogger("pykka").setLevel(logging.WARNING)
    fuse = logging.getLogger("fuse")
    if not any(isinstance(f, FuseErrnoFilter) for f in fuse.filters):
        fuse.addFilter(FuseErrnoFilter())
    set_debug(debug)


def _syslog_handler() -> logging.Handler | None:
    """A handler on /dev/log (facility daemon), or None where there is no such socket."""
    address = os.environ.get(SYSLOG_SOCKET_ENV) or SYSLOG_SOCKET
    if not os.path.exists(address):
        return None
    handler = _SysLogHandler(address=address, facility=logging.handlers.SysLogHandler.LOG_DAEMON)
    handler.setFormatter(LineFormatter(syslog=True))
    return handler


def _stderr_is_journal() -> bool:
    """True if stderr is systemd's journal stream (a unit's default).

    Syslog lines reach the journal already, with their priority; stderr would repeat them.
    """
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


def set_debug(on: bool) -> None:
    """Debug level and file:line:function on every line, or info level (run time switch)."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if on else logging.INFO)
    for handler in root.handlers:
        if isinstance(handler.formatter, LineFormatter):
            handler.formatter.debug = on


def stop_stderr_logging() -> None:
    """A daemonized process has no terminal: keep only syslog."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
