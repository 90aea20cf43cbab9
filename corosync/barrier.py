"""The barrier group's CPG connection: this node's barriers out, and back in their ring.

corosync/confirm.py says why a barrier settles the changes delivered before it; this is the
connection that carries them (its own Service, dispatched by the cluster actor).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from bindings.libcpg import CpgHandle, CpgRingId
from corosync.service import Service, retry
from errors import CsError
from wire.barrier import barrier_group, decode_barrier, encode_barrier

log = logging.getLogger(__name__)


class BarrierChannel:
    """The barrier group's CPG connection (its own Service, dispatched by the cluster actor)."""

    def __init__(
        self,
        on_barrier: Callable[[int, CpgRingId], None],
        on_down: Callable[[], None],
        cpg: Callable[[], CpgHandle] = CpgHandle,
    ) -> None:
        self._on_barrier = on_barrier
        self._cpg = cpg
        self._ring: CpgRingId | None = None
        self._pid = os.getpid()
        self._nodeid = 0
        self.service = Service("barrier", self._connect, on_down=self._down(on_down))

    @property
    def ready(self) -> bool:
        """True once joined and the current ring is known."""
        return self.service.connected and self._ring is not None

    def send(self, number: int) -> bool:
        """Multicast barrier ``number``; False if that failed."""
        handle = self.service.handle
        if handle is None:
            return False
        try:
            retry(lambda: handle.mcast([encode_barrier(number)]))
        except CsError as exc:
            log.warning("barrier multicast failed: %s", exc)
            return False
        return True

    def _connect(self) -> CpgHandle:
        handle = self._cpg()
        handle.initialize(self._deliver, None, self._totem_confchg)  # members do not matter
        try:
            self._nodeid = handle.local_get()
            self._ring = None
            retry(lambda: handle.join(barrier_group(self._nodeid)))
        except BaseException:
            handle.finalize()
            raise
        return handle

    def _down(self, on_down: Callable[[], None]) -> Callable[[], None]:
        def down() -> None:
            self._ring = None
            on_down()

        return down

    def _deliver(self, group: bytes, nodeid: int, pid: int, payload: bytes) -> None:
        number = decode_barrier(payload)
        if nodeid != self._nodeid or pid != self._pid or number is None:
            return  # another daemon's barrier
        if self._ring is not None:
            self._on_barrier(number, self._ring)

    def _totem_confchg(self, ring_id: CpgRingId, nodes: tuple[int, ...]) -> None:
        self._ring = ring_id
