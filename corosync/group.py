"""One CPG group run by a DFSM (dfsm.c's service glue), inside the actor that owns it.

The cluster actor has two: pve_dcdb_v1 (the config tree) and pve_kvstore_v1 (status). Each
holds a CPG connection with the original's retry rhythm, feeds the connection's callbacks to
its ``Dfsm`` and carries out the actions the machine returns: multicasts (with the TRY_AGAIN
retries), local results for waiting senders, and leaving the group (the connection is closed
after the dispatch, a later tick rejoins).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from actors.messages import GroupModeChanged, ServiceStateChanged
from bindings.libcpg import CpgAddress, CpgHandle, CpgRingId
from corosync.barrier import BarrierChannel
from corosync.confirm import Confirmations, Ring, refused
from corosync.poller import FdPoller
from corosync.service import Service, retry
from dfsm import Action, Dfsm, DfsmLeave, Leave, LocalResult, Member, ModeChanged, Multicast
from errors import CsError

log = logging.getLogger(__name__)


def members(addresses: Sequence[CpgAddress]) -> tuple[Member, ...]:
    """CPG addresses as DFSM members."""
    return tuple(Member(nodeid=a.nodeid, pid=a.pid) for a in addresses)


class DfsmGroup:
    """A CPG group, its DFSM and the senders waiting for their messages' results."""

    def __init__(
        self,
        group: bytes,
        label: str,
        make_dfsm: Callable[[int], Dfsm],
        poller: FdPoller,
        *,
        on_result: Callable[[LocalResult, pykka.Future[Any] | None], None] = lambda result, waiter: None,
        on_down: Callable[[], None] = lambda: None,
        report: Callable[[object], None] = lambda event: None,
        cpg: Callable[[], CpgHandle] = CpgHandle,
        confirm: bool = False,
    ) -> None:
        self.group = group
        self.label = label
        self._make_dfsm = make_dfsm
        self._on_result = on_result
        self._on_down = on_down
        self._cpg = cpg
        self._poller = poller
        self._report = report
        self.service = Service(
            label,
            self._connect,
            on_down=self._down,
            after_dispatch=self._after_dispatch,
            on_state=lambda name, connected: report(ServiceStateChanged(name=name, connected=connected)),
        )
        self.dfsm: Dfsm | None = None
        self._waiters: dict[int, pykka.Future[Any]] = {}
        self._leave_asked = False
        self._results: list[LocalResult] = []
        """Results of this node's messages, answered once the dispatch that produced them ends."""
        self._shrunk = False
        """A confchg in this dispatch left at most half of the previous members."""
        self.barrier = BarrierChannel(self._barrier_back, self._barrier_down, cpg) if confirm else None
        """With ``confirm``: results of our changes wait for a majority to hold them (corosync/confirm.py)."""
        self._confirmations = Confirmations()
        self._ring: Ring | None = None
        """The totem ring the connection is in (with ``confirm``), in order with its deliveries."""
        self._fallback_logged = False

    @property
    def services(self) -> tuple[Service, ...]:
        """The corosync connections to start and dispatch: the group's, and its barrier's."""
        return (self.service,) if self.barrier is None else (self.service, self.barrier.service)

    @property
    def connected(self) -> bool:
        """True while the CPG connection is up (joined or joining)."""
        return self.service.connected

    @property
    def restartable(self) -> bool:
        """False once the DFSM is in a permanent error mode."""
        return self.dfsm is None or self.dfsm.restartable

    @property
    def me(self) -> Member:
        """This process as a member of the group."""
        assert self.dfsm is not None
        return self.dfsm.me

    def send(self, subtype: int, payload: bytes, reply: pykka.Future[Any] | None = None) -> bool:
        """Multicast a NORMAL message; ``reply`` hears its local result. False if not connected."""
        if self.dfsm is None or not self.connected:
            return False
        count, actions = self.dfsm.send_normal(subtype, payload, wait=reply is not None)
        if reply is not None:
            self._waiters[count] = reply
        self.run(actions)
        self._answer()
        return True

    def waits_for(self, count: int) -> bool:
        """Whether a sender waits for the result of this node's message ``count``."""
        return count in self._waiters

    def fail(self, failure: DfsmLeave, context: str) -> None:
        """The application failed between dispatches: the DFSM leaves, the connection closes."""
        if self.dfsm is not None and self.connected:
            self.run(self.dfsm.fail(failure, context))
            self._answer()
            self._leave_if_asked()

    def verify_request(self) -> None:
        """The hourly VERIFY_REQUEST (only the lowest node in SYNCED sends one)."""
        if self.dfsm is not None and self.connected:
            self.run(self.dfsm.verify_request())

    # ----- the connection ------------------------------------------------------------

    def _connect(self) -> CpgHandle:
        handle = self._cpg()
        if self.barrier is None:
            handle.initialize(self._deliver, self._confchg)
        else:
            handle.initialize(self._deliver, self._confchg, self._totem_confchg)
        try:
            if self.dfsm is None:
                self.dfsm = self._make_dfsm(handle.local_get())
            self._leave_asked = False
            self.run(self.dfsm.initialize())
            self._answer()
            retry(lambda: handle.join(self.group))
        except BaseException:
            handle.finalize()
            raise
        return handle

    def _deliver(self, group: bytes, nodeid: int, pid: int, payload: bytes) -> None:
        if self.dfsm is not None:
            self.run(self.dfsm.on_deliver(nodeid, pid, payload))

    def _confchg(
        self,
        group: bytes,
        current: tuple[CpgAddress, ...],
        left: tuple[CpgAddress, ...],
        joined: tuple[CpgAddress, ...],
    ) -> None:
        if self.dfsm is not None:
            before = len(self.dfsm.members)
            if before and len(current) * 2 <= before:
                self._shrunk = True
            self.run(self.dfsm.on_confchg(members(current), members(left), members(joined)))

    def _totem_confchg(self, ring_id: CpgRingId, nodes: tuple[int, ...]) -> None:
        new = Ring(ring_id, frozenset(nodes))
        done, failed = self._confirmations.ring_changed(new)
        self._ring = new
        for result in failed:
            log.warning(
                "%s: message %d was delivered just before the ring changed to %s, which keeps no "
                "majority of the previous, quorate one; its sender is told it failed",
                self.label,
                result.count,
                sorted(nodes),
            )
        self._settle(done + [refused(r) for r in failed])

    def _down(self) -> None:
        if self.dfsm is not None:
            self.run(self.dfsm.finalize())
        self._answer()
        self._ring = None
        self._settle([refused(r) for r in self._confirmations.drop_all()])
        self._on_down()

    # ----- acknowledging only what a majority holds (corosync/confirm.py) -------------------

    def _barrier_back(self, number: int, ring_id: CpgRingId) -> None:
        self._settle_both(*self._confirmations.barrier_delivered(number, ring_id))
        self.kick()

    def ring_quorum(self, seq: int, quorate: bool) -> None:
        """Corosync's quorum notification for totem ring ``seq``."""
        self._settle_both(*self._confirmations.ring_quorum(seq, quorate))

    def _settle_both(self, done: list[LocalResult], failed: list[LocalResult]) -> None:
        for result in failed:
            log.warning(
                "%s: message %d was delivered in a ring without quorum; its sender is told it failed",
                self.label,
                result.count,
            )
        self._settle(done + [refused(r) for r in failed])

    def _barrier_down(self) -> None:
        """Without barriers nothing held can be confirmed: answer as the original does."""
        self._fall_back("the barrier connection is down")

    def _fall_back(self, why: str) -> None:
        done, failed = self._confirmations.drop_unless_refused()
        if done and not self._fallback_logged:
            self._fallback_logged = True
            log.warning("%s: %s; changes are acknowledged at local delivery", self.label, why)
        self._settle_both(done, failed)

    def kick(self) -> None:
        """Send a barrier if a change waits for one and none is on its way."""
        if self.barrier is None or not self._confirmations.wants_barrier:
            return
        number = self._confirmations.barrier_sent()
        if not self.barrier.send(number):
            self._confirmations.barrier_failed()
            self._fall_back("a barrier could not be sent")

    def _settle(self, results: list[LocalResult]) -> None:
        for result in results:
            self._on_result(result, self._waiters.pop(result.count, None))

    def _answer(self) -> None:
        """Answer the senders of this node's messages delivered since the last answer.

        A message of ours that corosync delivered in the same dispatch as a configuration
        change that left us with at most half of the members was most likely delivered only
        in the transitional configuration of a partition we are now a minority of: we learnt
        of the cut only now, quorum will be lost, and the majority's state will replace ours
        at the next sync. Its sender is told it failed (EBUSY) rather than that it is done.
        """
        results, self._results = self._results, []
        shrunk, self._shrunk = self._shrunk, False
        for result in results:
            if shrunk and result.processed:
                log.warning(
                    "%s: message %d was delivered while the membership shrank to a minority; "
                    "its sender is told it failed",
                    self.label,
                    result.count,
                )
                result = refused(result)
            elif result.processed and self._holds():
                assert self._ring is not None
                if self._confirmations.hold(result, self._ring):
                    continue
            self._on_result(result, self._waiters.pop(result.count, None))
        self.kick()

    def _holds(self) -> bool:
        """True if results wait for confirmation now (else they are answered at delivery)."""
        if self.barrier is None or self._ring is None:
            return False
        if self.barrier.ready:
            self._fallback_logged = False
            return True
        self._fall_back("the barrier connection is not ready")
        return False

    def _after_dispatch(self) -> None:
        self._answer()
        self._leave_if_asked()

    def _leave_if_asked(self) -> None:
        """After a dispatch that made the DFSM leave: close the connection; a tick rejoins."""
        if self._leave_asked:
            self._leave_asked = False
            self.service.stop(self._poller)

    # ----- carrying out the DFSM's actions ----------------------------------------------

    def run(self, actions: list[Action]) -> None:
        """Carry out the actions in order; after a failed must-succeed multicast skip the rest."""
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
                        assert self.dfsm is not None
                        pending.extend(self.dfsm.multicast_failed(action))
                case LocalResult():
                    self._results.append(action)
                case ModeChanged(old=old, new=new):
                    log.info("%s mode %s -> %s", self.label, old.name, new.name)
                    self._report(GroupModeChanged(group=self.label, mode=new.name.lower()))
                case Leave(reason=reason):
                    log.warning("%s leaves the group: %s", self.label, reason)
                    self._leave_asked = True

    def _multicast(self, data: bytes) -> bool:
        handle = self.service.handle
        if handle is None:
            return False
        try:
            retry(lambda: handle.mcast([data]))
        except CsError as exc:
            log.warning("%s multicast failed: %s", self.label, exc)
            return False
        return True
