"""Fakes of the corosync plumbing: a CPG handle that records what is multicast, a poller that
watches nothing, and a DCDB group on them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from corosync.group import DfsmGroup
from dfsm import Dfsm, LocalResult
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


def dcdb_group(results: list[LocalResult], cpg: Callable[[], Any], *, confirm: bool = False) -> DfsmGroup:
    """A group on fake handles whose results land in ``results``."""
    return DfsmGroup(
        b"test",
        "dcdb",
        lambda nodeid: Dfsm(FakeApp(), protocol_version=1, nodeid=ME.nodeid, pid=ME.pid, clock=lambda: 1),
        Poller(),  # type: ignore[arg-type]
        on_result=lambda result, waiter: results.append(result),
        cpg=cpg,
        confirm=confirm,
    )
