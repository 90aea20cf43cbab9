"""Logging as the original: '[tag] level: message' to stderr and syslog; .debug switches it."""

from __future__ import annotations

import logging
import logging.handlers
import os

_FORMAT = "[%(name)s] %(levelname)s: %(message)s"
_DEBUG_FORMAT = "[%(name)s] %(levelname)s: %(message)s (%(filename)s:%(lineno)d:%(funcName)s)"


def setup_logging(*, debug: bool) -> None:
    """Send logs to stderr and, where there is one, to syslog (ident pmxcfs, facility daemon)."""
    root = logging.getLogger()
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if os.path.exists("/dev/log"):
        syslog = logging.handlers.SysLogHandler(
            address="/dev/log", facility=logging.handlers.SysLogHandler.LOG_DAEMON
        )
        syslog.ident = "pmxcfs: "
        handlers.append(syslog)
    for handler in handlers:
        root.addHandler(handler)
    # pykka logs every error returned to an asker at INFO with a traceback: those are answers.
    logging.getLogger("pykka").setLevel(logging.WARNING)
    set_debug(debug)


def set_debug(on: bool) -> None:
    """Debug level and file:line:function on every line, or info level."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if on else logging.INFO)
    formatter = logging.Formatter(_DEBUG_FORMAT if on else _FORMAT)
    for handler in root.handlers:
        handler.setFormatter(formatter)


def stop_stderr_logging() -> None:
    """A daemonized process has no terminal: keep only syslog."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
