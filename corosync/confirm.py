"""A change is acknowledged only once a majority of the cluster is known to hold it.

Corosync delivers CPG messages in agreed order: the sender delivers its own message as soon as
it has it in sequence, which can be before any other node received it. If the network cuts the
sender off right then, the others never get the message, the sender's partition is a minority,
and at the next sync the majority's tree replaces the sender's: a write that was answered as
done is gone. (The original acknowledges at local delivery and has this window too.)

So the dcdb group holds the writer of each of this node's changes after delivering it, tagged
with the totem ring it was delivered in, and settles it by one of these events:

* a *barrier*: a tiny message of ours, multicast after the change was delivered, comes back
  delivered in the same ring, and corosync's quorum notification for that ring says quorate.
  Totem sends a node's new messages only when the token visits it again, so the token went once
  around the whole ring after the change was multicast, and the ring did not break meanwhile;
  the ring holds the quorum: the change is acknowledged;
* corosync says the ring the change was delivered in is not quorate (a change sent just before
  a cut and delivered after it, in the minority's new ring): the writer is told it failed;
* a totem ring change reported on the dcdb connection (in order with its deliveries) before
  that: extended virtual synchrony has the change delivered on every node of the transitional
  configuration (the old ring's members that are in our new ring). If those are a majority of
  the old, quorate ring, the change is acknowledged; otherwise it may live only in a minority and
  the writer is told it failed (EBUSY: the outcome is not known, the majority's state wins).

The barriers go to a CPG group of this node's daemon alone, so other nodes (the original's
included) never see them (corosync filters by group); totem orders all groups on one ring. One
barrier is in flight at a time, and it settles every change delivered before it was sent. The
connection that carries them is corosync/barrier.py, their format wire/barrier.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bindings.libcpg import CpgRingId

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ring:
    """A totem ring as a CPG connection reports it."""

    ring_id: CpgRingId
    members: frozenset[int]

    def keeps_majority_in(self, new: Ring) -> bool:
        """True if more than half of this ring's nodes are also in ``new`` (our new ring)."""
        return 2 * len(self.members & new.members) > len(self.members)


T = TypeVar("T")
"""What is held: the writer waiting for one change (corosync/writers.py)."""


@dataclass
class _Held(Generic[T]):
    item: T
    ring: Ring
    after: int
    """Barriers sent before the change was delivered: a later one settles it."""
    barrier_back: bool = False
    """A later barrier came back in the same ring (the ring's quorum may still be unknown)."""


Settled = tuple[list[T], list[T]]
"""(acknowledged, refused) items."""
RINGS_KEPT = 32
"""Quorum verdicts kept, by ring sequence number (the newest)."""


@dataclass
class Confirmations(Generic[T]):
    """The bookkeeping, without corosync: which held changes an event settles."""

    held: list[_Held[T]] = field(default_factory=list)
    sent: int = 0
    """Barriers sent so far (the number of the last one)."""
    in_flight: bool = False
    quorate_rings: dict[int, bool] = field(default_factory=dict)
    """Corosync's latest quorum verdict for each recent ring, by sequence number."""

    def hold(self, item: T, ring: Ring) -> bool:
        """Keep ``item`` (a change of ours delivered in ``ring``) until it is settled.

        Returns False instead if it needs no wait: a ring of this node alone that corosync calls
        quorate (a one-node cluster, or a quorum device's vote) has no one else to lose it to.
        """
        if len(ring.members) == 1 and self.quorate_rings.get(ring.ring_id.seq):
            return False
        self.held.append(_Held(item, ring, self.sent))
        return True

    @property
    def wants_barrier(self) -> bool:
        """True if a change waits for a barrier and none is on its way to settle it."""
        return not self.in_flight and any(not h.barrier_back for h in self.held)

    def barrier_sent(self) -> int:
        """Count a barrier as sent; returns its number."""
        self.sent += 1
        self.in_flight = True
        return self.sent

    def barrier_failed(self) -> None:
        """The barrier could not be sent."""
        self.in_flight = False

    def barrier_delivered(self, number: int, ring_id: CpgRingId) -> Settled[T]:
        """Barrier ``number`` came back in ring ``ring_id``: (acknowledged, refused)."""
        if number == self.sent:
            self.in_flight = False
        for h in self.held:
            if h.after < number and h.ring.ring_id == ring_id:
                h.barrier_back = True
        return self._settle()

    def ring_quorum(self, seq: int, quorate: bool) -> Settled[T]:
        """Corosync's quorum verdict for ring ``seq``: (acknowledged, refused)."""
        self.quorate_rings[seq] = quorate
        for old in sorted(self.quorate_rings)[:-RINGS_KEPT]:
            del self.quorate_rings[old]
        return self._settle()

    def _settle(self) -> Settled[T]:
        done: list[T] = []
        refused: list[T] = []
        kept: list[_Held[T]] = []
        for h in self.held:
            verdict = self.quorate_rings.get(h.ring.ring_id.seq)
            if verdict is False:
                refused.append(h.item)
            elif verdict and h.barrier_back:
                done.append(h.item)
            else:
                kept.append(h)
        self.held = kept
        return done, refused

    def ring_changed(self, new: Ring) -> Settled[T]:
        """The dcdb connection moved to ``new``: (acknowledged, refused) among the earlier rings'."""
        kept: list[_Held[T]] = []
        done: list[T] = []
        refused: list[T] = []
        for h in self.held:
            if h.ring.ring_id == new.ring_id:
                kept.append(h)
            elif h.ring.keeps_majority_in(new) and self.quorate_rings.get(h.ring.ring_id.seq):
                done.append(h.item)
            else:
                refused.append(h.item)
        self.held = kept
        return done, refused

    def drop_all(self) -> list[T]:
        """Everything held (the connection is gone: the outcome is unknown)."""
        items = [h.item for h in self.held]
        self.held = []
        self.in_flight = False
        return items

    def drop_unless_refused(self) -> Settled[T]:
        """Everything held, as (acknowledged, refused), when no barrier can settle it.

        Refused where corosync called the ring non-quorate; the rest is acknowledged, as the
        original acknowledges at delivery.
        """
        done: list[T] = []
        refused: list[T] = []
        for h in self.held:
            (refused if self.quorate_rings.get(h.ring.ring_id.seq) is False else done).append(h.item)
        self.held = []
        self.in_flight = False
        return done, refused
