"""DfsmGroup: this node's results are answered at the end of a dispatch, and not as done when
the same dispatch showed that we were cut off into a minority (the transitional delivery)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pykka
import pytest

from actors.dfsm_group import DfsmGroup
from bindings.libcpg import CpgAddress
from dfsm import Dfsm, LocalResult, Member
from tests.dfsm.fakes import ME, N2, N3, FakeApp, to_synced

N4 = Member(4, 400)
N5 = Member(5, 500)


class FakeHandle:
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


class Group:
    def __init__(self, members: tuple[Member, ...]) -> None:
        self.handle = FakeHandle()
        self.results: list[LocalResult] = []
        self.group = dcdb_group(self.results, lambda: self.handle)
        assert self.group.service.start(0.0, Poller(), None)  # type: ignore[arg-type]
        assert self.group.dfsm is not None
        to_synced(self.group.dfsm, members)

    def write(self) -> bytes:
        reply: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        assert self.group.send(1, b"change", reply)
        return self.handle.sent[-1]

    def dispatch(self, own: bytes, remaining: tuple[Member, ...], left: tuple[Member, ...]) -> None:
        """One cpg_dispatch: our message comes back, then a confchg."""
        self.group._deliver(b"test", ME.nodeid, ME.pid, own)
        assert self.results == []  # answered only once the dispatch is over
        self.group._confchg(
            b"test",
            tuple(CpgAddress(m.nodeid, m.pid, 0) for m in remaining),
            tuple(CpgAddress(m.nodeid, m.pid, 3) for m in left),
            (),
        )
        self.group._after_dispatch()


def test_a_delivery_followed_by_a_minority_confchg_is_not_answered_as_done() -> None:
    g = Group((ME, N2, N3))
    g.dispatch(g.write(), remaining=(ME,), left=(N2, N3))
    (result,) = g.results
    assert not result.processed


@pytest.mark.parametrize(
    ("members", "remaining"),
    [((ME, N2, N3), (ME, N2)), ((ME, N2, N3, N4, N5), (ME, N2, N3))],
    ids=["3->2", "5->3"],
)
def test_a_majority_keeps_its_results(members: tuple[Member, ...], remaining: tuple[Member, ...]) -> None:
    g = Group(members)
    left = tuple(m for m in members if m not in remaining)
    g.dispatch(g.write(), remaining=remaining, left=left)
    (result,) = g.results
    assert result.processed


def test_without_a_confchg_the_result_is_answered_after_the_dispatch() -> None:
    g = Group((ME, N2, N3))
    g.group._deliver(b"test", ME.nodeid, ME.pid, g.write())
    assert g.results == []
    g.group._after_dispatch()
    (result,) = g.results
    assert result.processed
