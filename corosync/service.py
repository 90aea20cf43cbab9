"""The original's service loop rhythm (loop.c), for actors that hold corosync handles.

Each service is (re)initialized when it is down and more than RETRY_SPACING_S has passed
since its last attempt; with the 1 s tick that is a retry about every 6 s, as the original.
A dispatch error takes the service down; the next due tick brings it back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from corosync.poller import FdPoller
from errors import CsError, CsTryAgain

log = logging.getLogger(__name__)

RETRY_SPACING_S = 5.0
"""A service that is down is re-initialized when more than this has passed since the last try."""


RETRY_S = 0.1
TRIES = 100
"""cpg_join and cpg_mcast_joined answering TRY_AGAIN are retried every 100 ms, ~10 s in all."""


def retry(call: Callable[[], None]) -> None:
    """Run ``call``, retrying while corosync answers TRY_AGAIN (the last try raises)."""
    for _ in range(TRIES - 1):
        try:
            call()
            return
        except CsTryAgain:
            time.sleep(RETRY_S)
    call()


@dataclass
class Service:
    """One corosync connection of an actor, with its retry bookkeeping."""

    name: str
    connect: Callable[[], Any]
    """Open and set up a handle (initialize, track, join); raises CsError if corosync is down."""
    on_down: Callable[[], None] = lambda: None
    """Called once when the connection is lost or closed."""
    after_dispatch: Callable[[], None] = lambda: None
    """Called after each successful dispatch."""
    on_state: Callable[[str, bool], None] = lambda name, connected: None
    """Told (name, connected) whenever the connection comes up or goes down (for .health)."""
    handle: Any = None
    """The open CpgHandle/QuorumHandle/CmapHandle, or None while down."""
    fd: int = -1
    last_try: float | None = None
    failures: int = 0

    @property
    def connected(self) -> bool:
        """True while the handle is up."""
        return self.handle is not None

    def due(self, now: float, spacing: float = RETRY_SPACING_S) -> bool:
        """True if down and the last attempt is old enough."""
        return self.handle is None and (self.last_try is None or now - self.last_try > spacing)

    def start(self, now: float, poller: FdPoller, owner: pykka.ActorRef[Any]) -> bool:
        """Try to connect; on success watch the fd. Returns whether it is up."""
        self.last_try = now
        try:
            self.handle = self.connect()
            self.fd = self.handle.fd()
        except (CsError, ImportError) as exc:  # corosync down, or its libraries missing
            self._close_quietly()
            self.failures += 1
            if self.failures == 1:
                log.warning("can't initialize service %s: %s", self.name, exc)
            return False
        if self.failures:
            log.info("service %s connected again after %d failed tries", self.name, self.failures)
        else:
            log.info("service %s connected", self.name)
        self.failures = 0
        poller.watch(self.fd, owner)
        self.on_state(self.name, True)
        return True

    def dispatch(self, poller: FdPoller, owner: pykka.ActorRef[Any]) -> None:
        """Dispatch after the fd became readable; a failure takes the service down."""
        if self.handle is None:
            return
        try:
            self.handle.dispatch()
        except CsTryAgain:
            poller.watch(self.fd, owner)
            return
        except CsError as exc:
            log.warning("service %s: %s - connection lost", self.name, exc)
            self.stop(poller)
            return
        except Exception:  # a callback bug must not stop the owning actor
            log.exception("service %s: error in a callback; reconnecting", self.name)
            self.stop(poller)
            return
        self.after_dispatch()
        if self.handle is not None:
            poller.watch(self.fd, owner)

    def stop(self, poller: FdPoller) -> None:
        """Close the connection (if open) and report it down."""
        if self.handle is None:
            return
        poller.forget(self.fd)
        self._close_quietly()
        self.on_down()
        self.on_state(self.name, False)

    def _close_quietly(self) -> None:
        handle, self.handle, self.fd = self.handle, None, -1
        if handle is None:
            return
        try:
            handle.finalize()
        except CsError as exc:
            log.debug("service %s: finalize: %s", self.name, exc)
