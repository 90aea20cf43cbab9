"""Fakes of the corosync plumbing: a CPG handle that records what is multicast, a poller that
watches nothing, and a DCDB group on them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from corosync.group import DfsmGroup
from corosync.writers import Writers
from dfsm import Dfsm, Member
from errors import PmxcfsError
from tests.fakes.dfsm import ME, FakeApp


class FakeHandle:
    """A CpgHandle that records the multicasts and delivers nothing by itself."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def initialize(self, deliver: Any, confchg: Any) -> None:
        pass

    def local_get(self) -> int:
        return ME.nodeid

    def join(self, group: bytes) -> None:
        pass

    def fd(self) -> int:
        return 99

    def mcast(self, parts: list[bytes]) -> None:
        self.sent.append(b"".join(parts))

    def finalize(self) -> None:
        pass


class Poller:
    """An FdPoller that watches nothing."""

    def watch(self, fd: int, owner: object) -> None:
        pass

    def forget(self, fd: int) -> None:
        pass


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
