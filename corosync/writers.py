"""The writers waiting for this node's changes, and when each of them is answered.

A writer's change goes out as a DFSM message; the DFSM reports its local result (delivered
here, or not) by the message's count at the end of a dispatch. The writer is then answered as
done, or told it failed (EBUSY) where the change may not survive:

* the message was not delivered (a sync or a membership change came first);
* the same dispatch showed that we were cut off into a minority (it was most likely delivered
  only in the transitional configuration of the partition we are now a minority of);
* with confirmation (the dcdb group): it is held until a majority is known to hold it, as
  corosync/confirm.py says; a barrier connection (corosync/barrier.py) carries the barriers.
  Without a working barrier connection the writers are answered at delivery, as the original.

Each waiter is the one object its writer waits on (replication/pending.py); nothing else keeps
a change's result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

from bindings.libcpg import CpgHandle, CpgRingId
from corosync.barrier import BarrierChannel
from corosync.confirm import Confirmations, Ring
from corosync.service import Service
from dfsm import LocalResult
from errors import ClusterBusy, PmxcfsError

log = logging.getLogger(__name__)

NOT_DELIVERED = "the change was not delivered (cluster sync or membership change)"
MINORITY = "the change was delivered while this node was cut off into a minority"
RING_CHANGED = "the ring changed before a majority was known to hold the change"
NOT_QUORATE = "the change was delivered in a ring without quorum"
CONNECTION_LOST = "the connection to corosync was lost before a majority was known to hold the change"


class Waiter(Protocol):
    """What a waiting writer is told."""

    def acknowledge(self) -> None:
        """The change is done (a majority holds it)."""

    def refuse(self, exc: PmxcfsError) -> None:
        """The change may be lost; ``exc`` says why."""


W = TypeVar("W", bound=Waiter)


class Writers(Generic[W]):
    """This node's changes whose writers wait, by DFSM message count until delivered, then held."""

    def __init__(self, label: str, *, confirm: bool, cpg: Callable[[], CpgHandle] = CpgHandle) -> None:
        self._label = label
        self._waiting: dict[int, W] = {}
        """Sent, not yet settled by the DFSM's local result."""
        self.barrier = BarrierChannel(self._barrier_back, self._barrier_down, cpg) if confirm else None
        self._held: Confirmations[W] = Confirmations()
        self._ring: Ring | None = None
        """The totem ring the group's connection is in (with ``confirm``), in order with its deliveries."""
        self._fallback_logged = False

    @property
    def confirming(self) -> bool:
        """True if changes wait for a majority (the group then reports its totem rings)."""
        return self.barrier is not None

    @property
    def services(self) -> tuple[Service, ...]:
        """The barrier's connection, if any, to start and dispatch beside the group's."""
        return () if self.barrier is None else (self.barrier.service,)

    def expect(self, count: int, waiter: W) -> None:
        """This node's message ``count`` went out; ``waiter`` waits for it."""
        self._waiting[count] = waiter

    def waiting(self, count: int) -> W | None:
        """The writer waiting for this node's message ``count`` (while it is being delivered)."""
        return self._waiting.get(count)

    def settle(self, results: Iterable[LocalResult], *, shrunk: bool) -> None:
        """The DFSM's local results of one dispatch; ``shrunk``: it left us a minority."""
        for result in results:
            waiter = self._waiting.pop(result.count, None)
            if waiter is None:
                continue
            if not result.processed:
                waiter.refuse(ClusterBusy(reason=NOT_DELIVERED))
            elif shrunk:
                log.warning(
                    "%s: message %d was delivered while the membership shrank to a minority; "
                    "its sender is told it failed",
                    self._label,
                    result.count,
                )
                waiter.refuse(ClusterBusy(reason=MINORITY))
            elif not self._holds():
                waiter.acknowledge()
            else:
                assert self._ring is not None
                if not self._held.hold(waiter, self._ring):
                    waiter.acknowledge()  # a quorate ring of this node alone: nobody to lose it to
        self.kick()

    def _holds(self) -> bool:
        """True if changes wait for confirmation now (else they are answered at delivery)."""
        if self.barrier is None or self._ring is None:
            return False
        if self.barrier.ready:
            self._fallback_logged = False
            return True
        self._fall_back("the barrier connection is not ready")
        return False

    # ----- events that settle held changes (corosync/confirm.py) ----------------------------

    def ring_changed(self, ring_id: CpgRingId, nodes: tuple[int, ...]) -> None:
        """The group's connection reports a new totem ring, in order with its deliveries."""
        new = Ring(ring_id, frozenset(nodes))
        done, failed = self._held.ring_changed(new)
        self._ring = new
        if failed:
            log.warning(
                "%s: %d change(s) delivered just before the ring changed to %s, which keeps no "
                "majority of the previous, quorate one; their senders are told they failed",
                self._label,
                len(failed),
                sorted(nodes),
            )
        self._answer(done, failed, RING_CHANGED)

    def ring_quorum(self, seq: int, quorate: bool) -> None:
        """Corosync's quorum notification for totem ring ``seq``."""
        self._answer(*self._held.ring_quorum(seq, quorate), NOT_QUORATE)

    def down(self) -> None:
        """The group's connection is gone: what is held may be lost."""
        self._ring = None
        self._answer([], self._held.drop_all(), CONNECTION_LOST)

    def kick(self) -> None:
        """Send a barrier if a change waits for one and none is on its way."""
        if self.barrier is None or not self._held.wants_barrier:
            return
        number = self._held.barrier_sent()
        if not self.barrier.send(number):
            self._held.barrier_failed()
            self._fall_back("a barrier could not be sent")

    def _barrier_back(self, number: int, ring_id: CpgRingId) -> None:
        self._answer(*self._held.barrier_delivered(number, ring_id), NOT_QUORATE)
        self.kick()

    def _barrier_down(self) -> None:
        """Without barriers nothing held can be confirmed: answer as the original does."""
        self._fall_back("the barrier connection is down")

    def _fall_back(self, why: str) -> None:
        done, failed = self._held.drop_unless_refused()
        if done and not self._fallback_logged:
            self._fallback_logged = True
            log.warning("%s: %s; changes are acknowledged at local delivery", self._label, why)
        self._answer(done, failed, NOT_QUORATE)

    def _answer(self, done: list[W], failed: list[W], reason: str) -> None:
        if failed and reason == NOT_QUORATE:
            log.warning(
                "%s: %d change(s) delivered in a ring without quorum; their senders are told they failed",
                self._label,
                len(failed),
            )
        for waiter in done:
            waiter.acknowledge()
        for waiter in failed:
            waiter.refuse(ClusterBusy(reason=reason))
