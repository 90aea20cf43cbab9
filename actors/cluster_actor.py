"""ClusterActor: owns the CPG connection; for now it follows the status group's membership.

Which nodes are online comes from the membership of the status CPG group pve_kvstore_v1,
as in the original (status.c). The kvstore and DCDB protocols on top of CPG are the next
issues; messages delivered on the group are not interpreted yet.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from actors.corosync_service import RETRY_SPACING_S, Service
from actors.fdpoller import FdPoller
from actors.messages import FdReadable, GetServiceStates, MembershipChanged, ServiceState, Tick
from bindings.libcpg import CpgAddress, CpgHandle
from errors import CsTryAgain

log = logging.getLogger(__name__)

STATUS_GROUP = b"pve_kvstore_v1"
"""The status (kvstore) CPG group; its members are the online nodes."""
JOIN_RETRY_S = 0.1
JOIN_TRIES = 100
"""cpg_join answering TRY_AGAIN is retried every 100 ms, up to ~10 s; then the next service try."""


class ClusterActor(pykka.ThreadingActor):
    """Joins the status group and reports who is online.

    Accepts: Tick, FdReadable (from the poller and ticker); GetServiceStates (asked).
    """

    def __init__(
        self,
        poller: FdPoller,
        *,
        membership_listeners: Sequence[pykka.ActorRef[Any]],
        retry_spacing: float = RETRY_SPACING_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._poller = poller
        self._listeners = tuple(membership_listeners)
        self._spacing = retry_spacing
        self._clock = clock
        self._online: frozenset[int] = frozenset()
        self._cpg = Service("cpg", self._connect, on_down=lambda: self._set_online(frozenset()))

    def on_start(self) -> None:
        """Connect right away; later retries come with the ticks."""
        self._start_due()

    def on_stop(self) -> None:
        """Leave the group and close the connection."""
        self._cpg.stop(self._poller)

    def on_receive(self, message: object) -> object:
        """Dispatch one message."""
        match message:
            case FdReadable(fd=fd):
                if self._cpg.connected and self._cpg.fd == fd:
                    self._cpg.dispatch(self._poller, self.actor_ref)
                return None
            case Tick():
                self._start_due()
                return None
            case GetServiceStates():
                return (ServiceState(self._cpg.name, self._cpg.connected),)
            case _:
                return super().on_receive(message)

    def _start_due(self) -> None:
        now = self._clock()
        if self._cpg.due(now, self._spacing):
            self._cpg.start(now, self._poller, self.actor_ref)

    def _connect(self) -> CpgHandle:
        handle = CpgHandle()
        handle.initialize(self._on_deliver, self._on_confchg)
        try:
            self._join(handle)
        except BaseException:
            handle.finalize()
            raise
        return handle

    def _join(self, handle: CpgHandle) -> None:
        """cpg_join; CS_ERR_TRY_AGAIN (corosync is syncing) is retried every 100 ms, as the original."""
        for _ in range(JOIN_TRIES - 1):
            try:
                handle.join(STATUS_GROUP)
                return
            except CsTryAgain:
                time.sleep(JOIN_RETRY_S)
        handle.join(STATUS_GROUP)

    def _on_deliver(self, group: bytes, nodeid: int, pid: int, payload: bytes) -> None:
        log.debug("status group message from node %d (%d bytes) not interpreted yet", nodeid, len(payload))

    def _on_confchg(
        self,
        group: bytes,
        members: tuple[CpgAddress, ...],
        left: tuple[CpgAddress, ...],
        joined: tuple[CpgAddress, ...],
    ) -> None:
        self._set_online(frozenset(m.nodeid for m in members))

    def _set_online(self, online: frozenset[int]) -> None:
        if online == self._online:
            return
        self._online = online
        log.info("members of %s: %s", STATUS_GROUP.decode(), sorted(online) or "none")
        for listener in self._listeners:
            listener.tell(MembershipChanged(online=online))
