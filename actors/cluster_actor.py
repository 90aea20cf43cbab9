"""ClusterActor: owns the CPG connections (dfsm.c's service glue for dcdb.c and status.c).

Two groups, each run by a DFSM (corosync/group.py): pve_dcdb_v1 carries the config tree
(changes in total order, state sync on every membership change); pve_kvstore_v1 carries the
node status (kv updates, RRD data, cluster log entries; the logs merge on every membership
change) and its membership says which nodes are online. Every libcpg call and callback runs
on this actor's thread; the fd poller only tells it when to dispatch.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from actors.messages import (
    BroadcastKv,
    BroadcastLog,
    DcdbApplyFailed,
    FdReadable,
    MembershipChanged,
    Propose,
    QuorumChanged,
    RingQuorum,
    Tick,
)
from actors.serving import ServingActor
from bindings.libcpg import CpgHandle
from corosync.group import DfsmGroup
from corosync.poller import FdPoller
from corosync.service import RETRY_SPACING_S
from corosync.writers import Writers
from daemon.corosync_conf import HostCorosyncConf
from dfsm import Dfsm, DfsmApp, DfsmFatal, DfsmLeave, Member
from errors import ClusterBusy
from replication.dcdb_app import DcdbApp
from replication.kvstore_app import KvstoreApp
from replication.pending import PendingChange
from wire import kvstore
from wire.dcdb import encode_payload
from wire.dfsm import DCDB_PROTOCOL_VERSION, KVSTORE_PROTOCOL_VERSION

log = logging.getLogger(__name__)

STATUS_GROUP = b"pve_kvstore_v1"
"""The status (kvstore) CPG group; its members are the online nodes."""
DCDB_GROUP = b"pve_dcdb_v1"
"""The config tree's CPG group."""
VERIFY_PERIOD_S = 3600.0
"""DCDB_VERIFY_TIME: the lowest node asks everyone to compare checksums this often."""


def _wallclock() -> int:
    """time(NULL) as the u32 the DFSM headers carry."""
    return int(time.time()) & 0xFFFFFFFF


class ClusterActor(ServingActor):
    """Replicates the tree over pve_dcdb_v1 and the node status over pve_kvstore_v1.

    ``confirm`` (the default) makes a change's writer wait until a majority is known to hold it
    (corosync/confirm.py); without it writers are answered at local delivery, as the original.
    A change's writer waits on its PendingChange (replication/pending.py), which the Proposer
    sends with the change, ``self._writers`` answers and the fs actor hears the tree's result on.

    Accepts (told): Propose (from the FUSE threads, through the Proposer), DcdbApplyFailed (from
    the fs actor), BroadcastKv and BroadcastLog (from the status actor), QuorumChanged and
    RingQuorum (from the quorum actor), Tick and FdReadable (ticker, poller). Each service's
    connection state is reported to the status actor (ServiceStateChanged).
    """

    def __init__(
        self,
        poller: FdPoller,
        *,
        fs: pykka.ActorRef[Any] | None = None,
        status: pykka.ActorRef[Any] | None = None,
        membership_listeners: Sequence[pykka.ActorRef[Any]],
        retry_spacing: float = RETRY_SPACING_S,
        verify_period: float = VERIFY_PERIOD_S,
        clock: Callable[[], float] = time.monotonic,
        cpg: Callable[[], CpgHandle] | None = None,
        confirm: bool = True,
        host_conf: HostCorosyncConf | None = None,
    ) -> None:
        super().__init__()
        self._poller = poller
        self._fs = fs
        self._status = status
        self._listeners = tuple(membership_listeners)
        self._spacing = retry_spacing
        self._verify_period = verify_period
        self._clock = clock
        cpg = cpg or CpgHandle
        self._writers: Writers[PendingChange] = Writers("dcdb", confirm=confirm, cpg=cpg)
        self._host_conf = host_conf
        """The host's corosync.conf, kept in step with the tree's by the DCDB application (5.4)."""
        self._kvstore = DfsmGroup(
            STATUS_GROUP,
            "kvstore",
            self._new_kvstore_dfsm,
            poller,
            on_down=self._offline,
            report=self._report,
            cpg=cpg,
        )
        self._dcdb = DfsmGroup(
            DCDB_GROUP,
            "dcdb",
            self._new_dcdb_dfsm,
            poller,
            writers=self._writers,
            report=self._report,
            cpg=cpg,
        )
        self._last_verify = clock()
        self._ever_quorate = False
        """The dcdb group is joined only once quorum was reported: a delivery that reaches the
        fs actor before it knows about quorum would make this node leave right away."""

    def _groups(self) -> tuple[DfsmGroup, ...]:
        return (self._kvstore, self._dcdb) if self._fs is not None else (self._kvstore,)

    def on_start(self) -> None:
        """Connect right away; later retries come with the ticks."""
        self._start_due()

    def on_stop(self) -> None:
        """Close the connections (waiting writers get EBUSY); cancel a pending corosync reload."""
        for group in self._groups():
            for service in group.services:  # held changes are refused before the barrier goes
                service.stop(self._poller)
        if self._host_conf is not None:
            self._host_conf.close()

    def receive(self, message: object) -> object:
        """Dispatch one message."""
        match message:
            case FdReadable(fd=fd):
                for group in self._groups():
                    for service in group.services:
                        if service.connected and service.fd == fd:
                            service.dispatch(self._poller, self.actor_ref)
                return None
            case Propose():
                self._propose(message)
                return None
            case BroadcastKv(key=key, value=value):
                self._broadcast(kvstore.KvstoreMessageType.UPDATE, kvstore.KvUpdate(key=key, value=value))
                return None
            case BroadcastLog(entry=entry):
                self._broadcast(kvstore.KvstoreMessageType.LOG, entry)
                return None
            case DcdbApplyFailed(reason=reason, fatal=fatal):
                failure = DfsmFatal("NORMAL", reason) if fatal else DfsmLeave("NORMAL", reason)
                self._dcdb.fail(failure, "deliver failed")
                return None
            case RingQuorum(ring_seq=seq, quorate=quorate):
                self._writers.ring_quorum(seq, quorate)
                return None
            case QuorumChanged(quorate=quorate):
                if quorate and not self._ever_quorate:
                    self._ever_quorate = True
                    self._start_due()
                return None
            case Tick():
                self._start_due()
                self._verify_due()
                self._writers.kick()
                return None
            case _:
                return self.unexpected(message)

    def recover(self, message: object) -> None:
        """A failed dispatch takes its connection down; the tick reconnects it (5 s rhythm)."""
        if isinstance(message, FdReadable):
            for group in self._groups():
                for service in group.services:
                    if service.connected and service.fd == message.fd:
                        service.stop(self._poller)

    def _start_due(self) -> None:
        now = self._clock()
        for group in self._groups():
            if not group.restartable or (group is self._dcdb and not self._ever_quorate):
                continue
            for service in reversed(group.services):  # the barrier's first
                if service.due(now, self._spacing):
                    service.start(now, self._poller, self.actor_ref)

    def _new_dfsm(self, app: DfsmApp, protocol_version: int, nodeid: int, name: str) -> Dfsm:
        return Dfsm(
            app,
            protocol_version=protocol_version,
            nodeid=nodeid,
            pid=os.getpid(),
            clock=_wallclock,
            name=name,
        )

    # ----- kvstore group: node status, cluster log, who is online ------------------------

    def _new_kvstore_dfsm(self, nodeid: int) -> Dfsm:
        app = KvstoreApp(self._status, me=Member(nodeid, os.getpid()), on_members=self._set_online)
        return self._new_dfsm(app, KVSTORE_PROTOCOL_VERSION, nodeid, "status")

    def _set_online(self, online: frozenset[int]) -> None:
        """Every kvstore confchg is news (the original bumps the cluster info version)."""
        log.info("members of %s: %s", STATUS_GROUP.decode(), sorted(online) or "none")
        for listener in self._listeners:
            listener.tell(MembershipChanged(online=online))

    def _report(self, event: object) -> None:
        """Connection and sync state changes, for .health."""
        for listener in self._listeners:
            listener.tell(event)

    def _offline(self) -> None:
        self._set_online(frozenset())

    def _broadcast(self, subtype: int, message: kvstore.KvstorePayload) -> None:
        """Fire and forget on the kvstore group; dropped while it is down (as the original)."""
        try:
            payload = kvstore.encode_payload(message)
        except ValueError as exc:
            log.warning("can't broadcast status update: %s", exc)
            return
        if not self._kvstore.send(subtype, payload):
            log.debug("kvstore group down: status message not sent")

    # ----- dcdb group: the replicated tree ------------------------------------------

    def _new_dcdb_dfsm(self, nodeid: int) -> Dfsm:
        assert self._fs is not None
        app = DcdbApp(self._fs, self._dcdb, self._writers, self._host_conf)
        return self._new_dfsm(app, DCDB_PROTOCOL_VERSION, nodeid, "dcdb")

    def _propose(self, proposal: Propose) -> None:
        """Multicast a change; its writer hears how it ends through its PendingChange."""
        payload = encode_payload(proposal.message)
        if not self._dcdb.send(proposal.subtype, payload, proposal.reply) and proposal.reply is not None:
            proposal.reply.refuse(ClusterBusy(reason="not connected to the cluster"))

    def _verify_due(self) -> None:
        now = self._clock()
        if not self._dcdb.connected or now - self._last_verify < self._verify_period:
            return
        self._last_verify = now
        self._dcdb.verify_request()
