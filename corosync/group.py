"""One CPG group run by a DFSM (dfsm.c's service glue), inside the actor that owns it.

The cluster actor has two: pve_dcdb_v1 (the config tree) and pve_kvstore_v1 (status). Each
holds a CPG connection with the original's retry rhythm, feeds the connection's callbacks to
its ``Dfsm`` and carries out the actions the machine returns: multicasts (with the TRY_AGAIN
retries), local results, and leaving the group (the connection is closed after the dispatch,
a later tick rejoins). A group that takes writers (the dcdb group) hands the local results of
each dispatch to its :class:`~corosync.writers.Writers`, which answers them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from actors.messages import GroupModeChanged, ServiceStateChanged
from bindings.libcpg import CpgAddress, CpgHandle, CpgRingId
from corosync.poller import FdPoller
from corosync.service import Service, retry
from corosync.writers import Waiter, Writers
from dfsm import Action, Dfsm, DfsmLeave, Leave, LocalResult, Member, ModeChanged, Multicast
from errors import CsError

log = logging.getLogger(__name__)


def members(addresses: Sequence[CpgAddress]) -> tuple[Member, ...]:
    """CPG addresses as DFSM members."""
    return tuple(Member(nodeid=a.nodeid, pid=a.pid) for a in addresses)


class DfsmGroup:
    """A CPG group, its DFSM and, if it takes writers, the writers waiting for their changes."""

    def __init__(
        self,
        group: bytes,
        label: str,
        make_dfsm: Callable[[int], Dfsm],
        poller: FdPoller,
        *,
        writers: Writers[Any] | None = None,
        on_down: Callable[[], None] = lambda: None,
        report: Callable[[object], None] = lambda event: None,
        cpg: Callable[[], CpgHandle] = CpgHandle,
    ) -> None:
        self.group = group
        self.label = label
        self._make_dfsm = make_dfsm
        self._on_down = on_down
        self._cpg = cpg
        self._poller = poller
        self._report = report
        self.writers = writers
        self.service = Service(
            label,
            self._connect,
            on_down=self._down,
            after_dispatch=self._after_dispatch,
            on_state=lambda name, connected: report(ServiceStateChanged(name=name, connected=connected)),
        )
        self.dfsm: Dfsm | None = None
        self._leave_asked = False
        self._results: list[LocalResult] = []
        """Local results of this node's messages, answered once the dispatch that produced them ends."""
        self._shrunk = False
        """A confchg in this dispatch left at most half of the previous members."""

    @property
    def services(self) -> tuple[Service, ...]:
        """The corosync connections to start and dispatch: the group's, and its writers' barrier."""
        return (self.service,) if self.writers is None else (self.service, *self.writers.services)

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

    @property
    def is_lowest(self) -> bool:
        """True if this node has the lowest node id of the group's members."""
        return self.dfsm is not None and self.dfsm.is_lowest_nodeid

    def send(self, subtype: int, payload: bytes, waiter: Waiter | None = None) -> bool:
        """Multicast a NORMAL message; ``waiter`` hears how it ends. False if not connected."""
        if self.dfsm is None or not self.connected:
            return False
        count, actions = self.dfsm.send_normal(subtype, payload, wait=waiter is not None)
        if waiter is not None:
            assert self.writers is not None, f"{self.label} takes no writers"
            self.writers.expect(count, waiter)
        self.run(actions)
        self._answer()
        return True

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
        if self.writers is None or not self.writers.confirming:
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
        assert self.writers is not None
        self.writers.ring_changed(ring_id, nodes)

    def _down(self) -> None:
        if self.dfsm is not None:
            self.run(self.dfsm.finalize())
        self._answer()
        if self.writers is not None:
            self.writers.down()
        self._on_down()

    def _answer(self) -> None:
        """Hand the local results of this dispatch to the writers.

        A message of ours that corosync delivered in the same dispatch as a configuration
        change that left us with at most half of the members was most likely delivered only
        in the transitional configuration of a partition we are now a minority of: we learnt
        of the cut only now, quorum will be lost, and the majority's state will replace ours
        at the next sync (corosync/writers.py tells its writer it failed).
        """
        results, self._results = self._results, []
        shrunk, self._shrunk = self._shrunk, False
        if self.writers is not None:
            self.writers.settle(results, shrunk=shrunk)

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
