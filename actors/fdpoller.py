"""The dispatch seam: one thread waits on corosync fds and tells the owning actor.

The poller never calls into a corosync library. When an fd becomes readable it tells the
owner ``FdReadable(fd=...)`` and stops watching that fd; the owner runs the library's
dispatch on its own thread and then calls ``watch`` again. So every call into a handle
happens on the owner's thread, and a slow owner is never flooded with wake-ups.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
from typing import Any

import pykka

from actors.messages import FdReadable, Tick

log = logging.getLogger(__name__)

_ERROR_EVENTS = select.POLLERR | select.POLLHUP | select.POLLNVAL


class FdPoller:
    """Watches fds for their owners; thread-safe ``watch`` and ``forget``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[int, pykka.ActorRef[Any]] = {}
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="fd-poller", daemon=True)
        self._thread.start()

    def watch(self, fd: int, owner: pykka.ActorRef[Any]) -> None:
        """Tell ``owner`` once when ``fd`` is readable (or broken)."""
        with self._lock:
            self._owners[fd] = owner
        self._wake()

    def forget(self, fd: int) -> None:
        """Stop watching ``fd`` (before the owner finalizes its handle)."""
        with self._lock:
            self._owners.pop(fd, None)
        self._wake()

    def stop(self) -> None:
        """End the thread."""
        self._stopped = True
        self._wake()
        self._thread.join(timeout=5)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a wake-up is pending already
            os.write(self._wake_w, b"x")

    def _run(self) -> None:
        while not self._stopped:
            poll = select.poll()
            poll.register(self._wake_r, select.POLLIN)
            with self._lock:
                watched = dict(self._owners)
            for fd in watched:
                poll.register(fd, select.POLLIN)
            for fd, events in poll.poll():
                if fd == self._wake_r:
                    os.read(self._wake_r, 4096)
                    continue
                self._fire(fd, watched[fd], broken=bool(events & _ERROR_EVENTS))

    def _fire(self, fd: int, owner: pykka.ActorRef[Any], *, broken: bool) -> None:
        with self._lock:
            if self._owners.get(fd) is not owner:
                return  # forgotten or re-registered meanwhile
            del self._owners[fd]
        try:
            owner.tell(FdReadable(fd=fd, broken=broken))
        except pykka.ActorDeadError:
            log.debug("owner of fd %d is gone", fd)


class Ticker:
    """Tells every registered actor ``Tick()`` once per period (the service loop's timer)."""

    def __init__(self, period: float = 1.0) -> None:
        self._period = period
        self._owners: list[pykka.ActorRef[Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ticker", daemon=True)
        self._thread.start()

    def add(self, owner: pykka.ActorRef[Any]) -> None:
        """Start ticking ``owner``."""
        with self._lock:
            self._owners.append(owner)

    def stop(self) -> None:
        """End the thread."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            with self._lock:
                owners = list(self._owners)
            for owner in owners:
                try:
                    owner.tell(Tick())
                except pykka.ActorDeadError:
                    with self._lock:
                        self._owners.remove(owner)
