"""ClusterActor: owns the CPG connections (dfsm.c's service glue, status.c's membership).

Two groups: pve_dcdb_v1 carries the config tree through the DFSM (changes in total order,
state sync on every membership change); pve_kvstore_v1's membership says which nodes are
online (the kvstore protocol itself is a later issue). Every libcpg call and callback runs
on this actor's thread; the fd poller only tells it when to dispatch.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from actors.corosync_service import RETRY_SPACING_S, Service
from actors.dcdb_app import DcdbApp
from actors.fdpoller import FdPoller
from actors.messages import (
    FdReadable,
    GetServiceStates,
    MembershipChanged,
    Propose,
    QuorumChanged,
    ServiceState,
    Tick,
)
from bindings.libcpg import CpgAddress, CpgHandle
from dfsm import Action, Dfsm, Leave, LocalResult, Member, ModeChanged, Multicast
from errors import ClusterBusy, CsError, CsTryAgain, NotPermitted
from wire.dcdb import DcdbMessageType, encode_payload
from wire.dfsm import DCDB_PROTOCOL_VERSION

log = logging.getLogger(__name__)

STATUS_GROUP = b"pve_kvstore_v1"
"""The status (kvstore) CPG group; its members are the online nodes."""
DCDB_GROUP = b"pve_dcdb_v1"
"""The config tree's CPG group."""
RETRY_S = 0.1
TRIES = 100
"""cpg_join and cpg_mcast_joined answering TRY_AGAIN are retried every 100 ms, ~10 s in all."""
VERIFY_PERIOD_S = 3600.0
"""DCDB_VERIFY_TIME: the lowest node asks everyone to compare checksums this often."""


def _retry(call: Callable[[], None]) -> None:
    for _ in range(TRIES - 1):
        try:
            call()
            return
        except CsTryAgain:
            time.sleep(RETRY_S)
    call()


def _members(addresses: Sequence[CpgAddress]) -> tuple[Member, ...]:
    return tuple(Member(nodeid=a.nodeid, pid=a.pid) for a in addresses)


def _error(exc: BaseException) -> Any:
    """An exc_info tuple for pykka's set_exception."""
    try:
        raise exc
    except BaseException:  # noqa: BLE001 - only to capture the traceback
        return sys.exc_info()


class ClusterActor(pykka.ThreadingActor):
    """Replicates the tree over pve_dcdb_v1 and reports who is online.

    Accepts: Propose (from the fs actor), QuorumChanged, Tick, FdReadable (poller, ticker);
    GetServiceStates.
    """

    def __init__(
        self,
        poller: FdPoller,
        *,
        fs: pykka.ActorRef[Any] | None = None,
        membership_listeners: Sequence[pykka.ActorRef[Any]],
        retry_spacing: float = RETRY_SPACING_S,
        verify_period: float = VERIFY_PERIOD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._poller = poller
        self._fs = fs
        self._listeners = tuple(membership_listeners)
        self._spacing = retry_spacing
        self._verify_period = verify_period
        self._clock = clock
        self._online: frozenset[int] = frozenset()
        self._status = Service("cpg", self._connect_status, on_down=lambda: self._set_online(frozenset()))
        self._dcdb = Service(
            "dcdb", self._connect_dcdb, on_down=self._dcdb_down, after_dispatch=self._leave_if_asked
        )
        self._dfsm: Dfsm | None = None
        self._app: DcdbApp | None = None
        self._waiters: dict[int, pykka.Future[Any]] = {}
        self._leave_asked = False
        self._last_verify = clock()
        self._ever_quorate = False
        """The dcdb group is joined only once quorum was reported: a delivery that reaches the
        fs actor before it knows about quorum would make this node leave right away."""

    def _services(self) -> tuple[Service, ...]:
        return (self._status, self._dcdb) if self._fs is not None else (self._status,)

    def on_start(self) -> None:
        """Connect right away; later retries come with the ticks."""
        self._start_due()

    def on_stop(self) -> None:
        """Close the connections; waiting writers get EBUSY."""
        for service in self._services():
            service.stop(self._poller)

    def on_receive(self, message: object) -> object:
        """Dispatch one message."""
        match message:
            case FdReadable(fd=fd):
                for service in self._services():
                    if service.connected and service.fd == fd:
                        service.dispatch(self._poller, self.actor_ref)
                return None
            case Propose():
                self._propose(message)
                return None
            case QuorumChanged(quorate=quorate):
                if quorate and not self._ever_quorate:
                    self._ever_quorate = True
                    self._start_due()
                return None
            case Tick():
                self._start_due()
                self._verify_due()
                return None
            case GetServiceStates():
                return tuple(ServiceState(s.name, s.connected) for s in self._services())
            case _:
                return super().on_receive(message)

    def _start_due(self) -> None:
        now = self._clock()
        for service in self._services():
            if service is self._dcdb and not self._dcdb_may_start():
                continue
            if service.due(now, self._spacing):
                service.start(now, self._poller, self.actor_ref)

    def _dcdb_may_start(self) -> bool:
        if not self._ever_quorate:
            return False
        return self._dfsm is None or self._dfsm.restartable

    # ----- status group: who is online --------------------------------------------

    def _connect_status(self) -> CpgHandle:
        handle = CpgHandle()
        handle.initialize(self._on_status_deliver, self._on_status_confchg)
        try:
            _retry(lambda: handle.join(STATUS_GROUP))
        except BaseException:
            handle.finalize()
            raise
        return handle

    def _on_status_deliver(self, group: bytes, nodeid: int, pid: int, payload: bytes) -> None:
        log.debug("status group message from node %d (%d bytes) not interpreted yet", nodeid, len(payload))

    def _on_status_confchg(
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

    # ----- dcdb group: the replicated tree ------------------------------------------

    def _connect_dcdb(self) -> CpgHandle:
        handle = CpgHandle()
        handle.initialize(self._on_dcdb_deliver, self._on_dcdb_confchg)
        try:
            if self._dfsm is None:
                self._dfsm = self._new_dfsm(handle.local_get())
            self._leave_asked = False
            self._run(self._dfsm.initialize())
            _retry(lambda: handle.join(DCDB_GROUP))
        except BaseException:
            handle.finalize()
            raise
        return handle

    def _new_dfsm(self, nodeid: int) -> Dfsm:
        assert self._fs is not None
        self._app = DcdbApp(
            self._fs,
            me=lambda: Member(nodeid, os.getpid()),
            send_unlock=self._send_unlock,
            is_lowest=self._is_lowest,
        )
        return Dfsm(
            self._app,
            protocol_version=DCDB_PROTOCOL_VERSION,
            nodeid=nodeid,
            pid=os.getpid(),
            clock=lambda: int(time.time()) & 0xFFFFFFFF,
            name="dcdb",
        )

    def _is_lowest(self) -> bool:
        return self._dfsm is not None and self._dfsm.is_lowest_nodeid

    def _send_unlock(self, payload: bytes) -> None:
        assert self._dfsm is not None
        _, actions = self._dfsm.send_normal(DcdbMessageType.UNLOCK, payload, wait=False)
        self._run(actions)

    def _on_dcdb_deliver(self, group: bytes, nodeid: int, pid: int, payload: bytes) -> None:
        if self._dfsm is not None:
            self._run(self._dfsm.on_deliver(nodeid, pid, payload))

    def _on_dcdb_confchg(
        self,
        group: bytes,
        members: tuple[CpgAddress, ...],
        left: tuple[CpgAddress, ...],
        joined: tuple[CpgAddress, ...],
    ) -> None:
        if self._dfsm is not None:
            self._run(self._dfsm.on_confchg(_members(members), _members(left), _members(joined)))

    def _dcdb_down(self) -> None:
        if self._dfsm is not None:
            self._run(self._dfsm.finalize())

    def _leave_if_asked(self) -> None:
        """After a dispatch that made the DFSM leave: close the connection; a tick rejoins."""
        if self._leave_asked:
            self._leave_asked = False
            self._dcdb.stop(self._poller)

    def _propose(self, proposal: Propose) -> None:
        """Multicast a change; its sender learns the result when it comes back delivered."""
        if self._dfsm is None or not self._dcdb.connected:
            if proposal.reply is not None:
                proposal.reply.set_exception(_error(ClusterBusy(reason="not connected to the cluster")))
            return
        payload = encode_payload(proposal.message)
        count, actions = self._dfsm.send_normal(proposal.subtype, payload, wait=proposal.reply is not None)
        if proposal.reply is not None:
            self._waiters[count] = proposal.reply
        self._run(actions)

    def _verify_due(self) -> None:
        now = self._clock()
        if self._dfsm is None or not self._dcdb.connected or now - self._last_verify < self._verify_period:
            return
        self._last_verify = now
        self._run(self._dfsm.verify_request())

    # ----- carrying out the DFSM's actions --------------------------------------------

    def _run(self, actions: list[Action]) -> None:
        pending = list(actions)
        skip_multicasts = False
        while pending:
            action = pending.pop(0)
            match action:
                case Multicast():
                    if skip_multicasts:
                        continue
                    if not self._multicast(action.data):
                        skip_multicasts = skip_multicasts or action.must_succeed
                        assert self._dfsm is not None
                        pending.extend(self._dfsm.multicast_failed(action))
                case LocalResult():
                    self._finish(action)
                case ModeChanged(old=old, new=new):
                    log.info("dcdb mode %s -> %s", old.name, new.name)
                case Leave(reason=reason):
                    log.warning("dcdb leaves the group: %s", reason)
                    self._leave_asked = True

    def _multicast(self, data: bytes) -> bool:
        handle = self._dcdb.handle
        if handle is None:
            return False
        try:
            _retry(lambda: handle.mcast([data]))
        except CsError as exc:
            log.warning("dcdb multicast failed: %s", exc)
            return False
        return True

    def _finish(self, result: LocalResult) -> None:
        """Answer the writer that waits for message ``result.count``."""
        waiter = self._waiters.pop(result.count, None)
        outcome = self._app.outcomes.pop(result.count, None) if self._app is not None else None
        if waiter is None:
            return
        if not result.processed or result.result is None:
            waiter.set_exception(_error(ClusterBusy(reason="the change was not delivered (cluster sync)")))
        elif outcome is None:
            waiter.set_exception(_error(NotPermitted(reason="this node left the cluster while applying it")))
        elif outcome[0]:
            waiter.set_exception(outcome[1])
        else:
            waiter.set(outcome[1])
