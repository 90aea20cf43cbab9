"""Refused changes: each one logged once with its reason, and reported for .health.

A refusal is a change request the tree did not carry out (no quorum, file too large, a
duplicate VMID, a lock held, a failed database write, ...). The same refusal repeated
within REPEAT_S (a tool retrying a lock every 100 ms, say) is logged once, and the count
of the repeats is logged with the next one that gets through.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors.messages import (
    ChangeRefused,
    CreateFile,
    MakeDir,
    Remove,
    Rename,
    SetMtime,
    Truncate,
    WriteFile,
)
from errno_map import errno_for
from errors import ErrorLatched, PmxcfsError
from status.health import shown_path

log = logging.getLogger(__name__)

REPEAT_S = 60.0
"""An identical refusal within this many seconds is counted, not logged again."""

_OPS: dict[type, str] = {
    WriteFile: "write",
    CreateFile: "create",
    Truncate: "truncate",
    MakeDir: "mkdir",
    Remove: "delete",
    Rename: "rename",
    SetMtime: "utimens",
}


def paths_of(request: object) -> tuple[str, ...]:
    """The paths a change request names (a rename's source and target)."""
    if isinstance(request, Rename):
        return request.src, request.dst
    return (str(getattr(request, "path", "")),)


def describe(request: object) -> tuple[str, str]:
    """(operation, path) of a change request, for the log (root only) and the full report."""
    op = _OPS.get(type(request), type(request).__name__)
    return op, " -> ".join(paths_of(request))


def shown(request: object) -> str:
    """The path(s) of ``request`` as .health shows them to any reader: private names hidden."""
    return " -> ".join(shown_path(path) for path in paths_of(request))


class RefusalLog:
    """Logs refusals once per REPEAT_S and tells the status actor; safe from any thread.

    The fs actor reports refusals it raises itself; in cluster mode a change's fate is known
    only once it was delivered and settled, and its ``PendingChange`` reports it (replication/pending.py).
    """

    def __init__(
        self,
        status: pykka.ActorRef[Any] | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self._status = status
        self._clock = clock
        self._wallclock = wallclock
        self._lock = threading.Lock()
        self._recent: dict[tuple[str, str, type], tuple[float, int]] = {}

    def refused(self, request: object, exc: PmxcfsError) -> None:
        """Record one refusal of ``request``."""
        op, path = describe(request)
        code = errno_for(exc)
        error = errno.errorcode.get(code, "EIO") if code is not None else "EIO"
        reason = exc.reason or type(exc).__name__
        key = (op, path, type(exc))
        now = self._clock()
        with self._lock:
            first, repeats = self._recent.get(key, (-REPEAT_S - 1.0, 0))
            if now - first <= REPEAT_S:
                self._recent[key] = (first, repeats + 1)
                repeated = None
            else:
                self._recent[key] = (now, 0)
                repeated = repeats
                if len(self._recent) > 1000:
                    self._recent = {k: v for k, v in self._recent.items() if now - v[0] <= REPEAT_S}
        if repeated is not None:
            more = f" (and {repeated} times more since it was last logged)" if repeated else ""
            level = logging.WARNING if isinstance(exc, ErrorLatched) else logging.INFO
            log.log(level, "refused %s %s: %s (%s)%s", op, path, reason, error, more)
        if self._status is not None:
            self._status.tell(
                ChangeRefused(
                    op=op,
                    path=path,
                    shown=shown(request),
                    error=error,
                    reason=reason,
                    time=int(self._wallclock()),
                    latched=isinstance(exc, ErrorLatched),
                )
            )
