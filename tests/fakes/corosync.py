"""Fakes of the corosync plumbing: a CPG handle that records what is multicast, a poller that
watches nothing, and a DCDB group on them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from corosync.confirm import Ring
from corosync.group import DfsmGroup
from corosync.writers import Writers
from dfsm import Dfsm, Member
from errors import CsError, PmxcfsError
from tests.fakes.dfsm import ME, FakeApp


class FakeHandle:
    """A CpgHandle that records its callbacks, join and multicasts, and delivers nothing by itself."""

    def __init__(self, nodeid: int = ME.nodeid) -> None:
        self.sent: list[bytes] = []
        self.joined: bytes | None = None
        self.callbacks: tuple[Any, ...] = ()
        self.nodeid = nodeid
        self.fail_mcast = False

    def initialize(self, deliver: Any, confchg: Any, totem_confchg: Any = None) -> None:
        self.callbacks = (deliver, confchg, totem_confchg)

    def local_get(self) -> int:
        return self.nodeid

    def join(self, group: bytes) -> None:
        self.joined = group

    def fd(self) -> int:
        return 99

    def mcast(self, parts: list[bytes]) -> None:
        if self.fail_mcast:
            raise CsError(2, "CS_ERR_LIBRARY", "cpg_mcast_joined")
        self.sent.append(b"".join(parts))

    def finalize(self) -> None:
        pass

    def totem(self, ring: Ring) -> None:
        """Corosync reports totem ring ``ring`` on this connection."""
        self.callbacks[2](ring.ring_id, tuple(sorted(ring.members)))


class Poller:
    """An FdPoller that watches nothing and records the watch and forget calls (and the owners)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.owners: list[object] = []

    def watch(self, fd: int, owner: object) -> None:
        self.calls.append(("watch", fd))
        self.owners.append(owner)

    def forget(self, fd: int) -> None:
        self.calls.append(("forget", fd))

    def watched(self) -> set[int]:
        """The fds watched now (a watch undone by a fire is not modelled: the actor re-watches)."""
        state: set[int] = set()
        for op, fd in self.calls:
            if op == "watch":
                state.add(fd)
            else:
                state.discard(fd)
        return state


class Answer:
    """A waiting writer that records how it was answered: ``done``, or the refusal's reason."""

    def __init__(self, answers: list[Answer]) -> None:
        self._answers = answers
        self.done: bool | None = None
        self.reason = ""

    def acknowledge(self) -> None:
        self._settled(True, "")

    def refuse(self, exc: PmxcfsError) -> None:
        self._settled(False, exc.reason or type(exc).__name__)

    def _settled(self, done: bool, reason: str) -> None:
        assert self.done is None, "a writer is answered once"
        self.done, self.reason = done, reason
        self._answers.append(self)


def dcdb_group(answers: list[Answer], cpg: Callable[[], Any], *, confirm: bool = False) -> DfsmGroup:
    """A group on fake handles whose writers' answers land in ``answers`` (see ``Answer``)."""
    return DfsmGroup(
        b"test",
        "dcdb",
        lambda nodeid: Dfsm(FakeApp(), protocol_version=1, nodeid=ME.nodeid, pid=ME.pid, clock=lambda: 1),
        Poller(),  # type: ignore[arg-type]
        writers=Writers("dcdb", confirm=confirm, cpg=cpg),
        cpg=cpg,
    )


class FakeDcdbGroup:
    """What the DCDB application uses of its group: who we are, lowest or not, and UNLOCK's send."""

    def __init__(self, me: Member, *, lowest: bool = True) -> None:
        self.me = me
        self.is_lowest = lowest
        self.sent: list[tuple[int, bytes]] = []

    def send(self, subtype: int, payload: bytes, waiter: object = None) -> bool:
        self.sent.append((subtype, payload))
        return True
