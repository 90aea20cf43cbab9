"""The dispatch seam: one thread waits on corosync fds and tells the owning actor.

The poller never calls into a corosync library. When an fd becomes readable it tells the
owner ``FdReadable(fd=...)`` and stops watching that fd; the owner runs the library's
dispatch on its own thread and then calls ``watch`` again. So every call into a handle
happens on the owner's thread, and a slow owner is never flooded with wake-ups.

The fds are in an epoll set as one-shot: a wake-up disarms its fd, and ``watch`` re-arms it
from the owner's thread with one epoll_ctl, which the kernel orders against the poller's
epoll_wait; the poller thread itself is not woken for it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
from typing import Any

import pykka

from actors.messages import FdReadable, Tick

log = logging.getLogger(__name__)

_ERROR_EVENTS = select.EPOLLERR | select.EPOLLHUP
_ARMED = select.EPOLLIN | select.EPOLLONESHOT


class FdPoller:
    """Watches fds for their owners; thread-safe ``watch`` and ``forget``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[int, pykka.ActorRef[Any]] = {}
        """Armed fds and whom to tell."""
        self._registered: set[int] = set()
        """Fds in the epoll set, armed or disarmed by a wake-up."""
        self._epoll = select.epoll()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="fd-poller", daemon=True)
        self._thread.start()

    def watch(self, fd: int, owner: pykka.ActorRef[Any]) -> None:
        """Tell ``owner`` once when ``fd`` is readable (or broken)."""
        with self._lock:
            self._owners[fd] = owner
            try:
                if fd in self._registered:
                    try:
                        self._epoll.modify(fd, _ARMED)
                        return
                    except FileNotFoundError:  # closed and reopened unforgotten: epoll dropped it
                        self._registered.discard(fd)
                self._epoll.register(fd, _ARMED)
                self._registered.add(fd)
                return
            except OSError as exc:  # closed, or not pollable: the owner's dispatch will see it
                log.debug("can't watch fd %d: %s", fd, os.strerror(exc.errno or errno.EBADF))
                del self._owners[fd]
                self._registered.discard(fd)
        self._tell(fd, owner, broken=True)

    def forget(self, fd: int) -> None:
        """Stop watching ``fd`` (before the owner finalizes its handle)."""
        with self._lock:
            self._owners.pop(fd, None)
            if fd in self._registered:
                self._registered.discard(fd)
                with contextlib.suppress(OSError):  # already closed: epoll dropped it itself
                    self._epoll.unregister(fd)

    def stop(self) -> None:
        """End the thread."""
        self._stopped = True
        with contextlib.suppress(BlockingIOError):  # a wake-up is pending already
            os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        self._epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _run(self) -> None:
        while not self._stopped:
            try:
                events = self._epoll.poll()
            except InterruptedError:
                continue
            for fd, mask in events:
                if fd != self._wake_r:
                    self._fire(fd, broken=bool(mask & _ERROR_EVENTS))

    def _fire(self, fd: int, *, broken: bool) -> None:
        with self._lock:
            owner = self._owners.pop(fd, None)
        if owner is not None:  # None: forgotten meanwhile
            self._tell(fd, owner, broken=broken)

    @staticmethod
    def _tell(fd: int, owner: pykka.ActorRef[Any], *, broken: bool) -> None:
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
