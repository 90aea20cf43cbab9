"""The lock table: how long each lock under priv/lock has gone unchanged on this node."""

from __future__ import annotations

import logging
from collections.abc import Callable

LOCK_TIMEOUT = 120
"""Seconds a lock must stay unchanged before an unlock request may remove it (CFS_LOCK_TIMEOUT)."""

log = logging.getLogger(__name__)


class LockTable:
    """Map lock path -> (entry checksum, local time this node first saw that state).

    The time comes from ``clock`` (this node's clock), never from the entry's mtime, so
    clock drift between nodes does not matter.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._locks: dict[str, tuple[bytes, float]] = {}

    def reset(self, path: str, csum: bytes) -> None:
        """Record a new state of the lock (created or refreshed): its age starts at 0."""
        self._locks[path] = (csum, self._clock())

    def drop(self, path: str) -> None:
        """Forget the lock stored under exactly this path."""
        self._locks.pop(path, None)

    def clear(self) -> None:
        """Forget every lock (before a rebuild)."""
        self._locks.clear()

    def expired(self, path: str, csum: bytes) -> bool:
        """True if the lock has kept the checksum ``csum`` for more than LOCK_TIMEOUT s."""
        now = self._clock()
        known = self._locks.get(path)
        if known is None:
            self._locks[path] = (csum, now)
            return False
        if known[0] != csum:
            log.critical("wrong lock csum for %s - reset timeout", path)
            self._locks[path] = (csum, now)
            return False
        return now > known[1] and now - known[1] > LOCK_TIMEOUT

    def paths(self) -> tuple[str, ...]:
        """The lock paths currently known."""
        return tuple(self._locks)
