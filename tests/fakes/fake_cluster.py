"""A fake cluster for in-process tests: total order without corosync.

``FakeBus`` is one actor that puts every proposal of every node into one order and applies
it on every node (telling each node's fs actor ``ApplyDelivered``, as the real cluster actor
does, and waiting for its result), then answers the proposer with its own node's result.
``FakeClusterActor`` is the per-node port: it speaks the real cluster actor's messages
(``Propose`` in, ``ApplyDelivered`` out) and records what its node multicast.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import pykka

from actors.messages import ApplyDelivered, AttachCluster, Propose, Request, ask
from dcdb.apply import Delivered
from errors import PmxcfsError
from replication.pending import PendingChange
from wire.dcdb import DcdbMessageType

TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Join(Request[None]):
    """Register a node's fs actor with the bus."""

    nodeid: int
    fs: pykka.ActorRef[Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Broadcast:
    """A proposal on the bus, with its sender and send time."""

    sender: int
    time: int
    proposal: Propose


@dataclass(frozen=True, slots=True, kw_only=True)
class GetLog(Request[tuple[Broadcast, ...]]):
    """Everything delivered so far, in order."""


class FakeBus(pykka.ThreadingActor):
    """The total order: applies each broadcast on every joined node, in join order."""

    def __init__(self) -> None:
        super().__init__()
        self._nodes: dict[int, pykka.ActorRef[Any]] = {}
        self._log: list[Broadcast] = []

    def on_receive(self, message: object) -> object:
        match message:
            case Join(nodeid=nodeid, fs=fs):
                self._nodes[nodeid] = fs
                return None
            case Broadcast():
                self._deliver(message)
                return None
            case GetLog():
                return tuple(self._log)
            case _:
                return super().on_receive(message)

    def _deliver(self, broadcast: Broadcast) -> None:
        self._log.append(broadcast)
        proposal = broadcast.proposal
        if proposal.subtype == DcdbMessageType.UNLOCK_REQUEST:
            return  # the lowest node's expiry check is the real cluster actor's business
        delivered = Delivered(
            subtype=proposal.subtype, message=proposal.message, sender=broadcast.sender, time=broadcast.time
        )
        outcome: tuple[bool, Any] | None = None
        for nodeid, fs in self._nodes.items():
            try:
                applied: tuple[bool, Any] = (False, apply(fs, delivered))
            except PmxcfsError:
                applied = (True, sys.exc_info())
            if nodeid == broadcast.sender:
                outcome = applied
        # the writer hears back once every node applied the change, so that a test reading
        # any node right after its write sees it (the real cluster answers after its own node)
        if outcome is not None and proposal.reply is not None:
            if outcome[0]:
                proposal.reply.set_exception(outcome[1])
            else:
                proposal.reply.set(outcome[1])


def apply(fs: pykka.ActorRef[Any], delivered: Delivered) -> Any:
    """Tell ``fs`` to apply ``delivered`` as its own change and wait for the tree's result.

    Raises:
        PmxcfsError: the tree refused it (ENOENT and the like), or the node can't apply it.
    """
    pending = PendingChange(delivered.message)
    pending.acknowledge()  # settled at once: no confirmation here
    fs.tell(ApplyDelivered(delivered=delivered, pending=pending))
    return pending.get(timeout=TIMEOUT_S)


class FakeClusterActor(pykka.ThreadingActor):
    """One node's port to the bus: takes Propose from its fs actor like the real cluster actor."""

    def __init__(self, bus: pykka.ActorRef[Any], nodeid: int) -> None:
        super().__init__()
        self._bus = bus
        self._nodeid = nodeid

    def on_receive(self, message: object) -> object:
        if isinstance(message, Propose):
            self._bus.tell(Broadcast(sender=self._nodeid, time=int(time.time()), proposal=message))
            return None
        return super().on_receive(message)


def join(bus: pykka.ActorRef[Any], nodeid: int, fs: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
    """Make ``fs`` a node of the fake cluster; returns its port."""
    port = FakeClusterActor.start(bus, nodeid)
    ask(bus, Join(nodeid=nodeid, fs=fs), timeout=TIMEOUT_S)
    ask(fs, AttachCluster(cluster=port), timeout=TIMEOUT_S)
    return port
