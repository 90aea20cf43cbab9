"""DfsmGroup with its writers: this node's writers are answered at the end of a dispatch, and not
as done when the same dispatch showed that we were cut off into a minority (the transitional
delivery)."""

from __future__ import annotations

import pytest

from bindings.libcpg import CpgAddress
from corosync.writers import MINORITY, NOT_DELIVERED
from dfsm import Member
from tests.fakes.corosync import Answer, FakeHandle, Poller, dcdb_group
from tests.fakes.dfsm import ME, N2, N3, to_synced

N4 = Member(4, 400)
N5 = Member(5, 500)


class Group:
    def __init__(self, members: tuple[Member, ...]) -> None:
        self.handle = FakeHandle()
        self.results: list[Answer] = []
        self.group = dcdb_group(self.results, lambda: self.handle)
        assert self.group.service.start(0.0, Poller(), None)  # type: ignore[arg-type]
        assert self.group.dfsm is not None
        to_synced(self.group.dfsm, members)

    def write(self) -> bytes:
        assert self.group.send(1, b"change", Answer(self.results))
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
    assert not result.done
    assert result.reason == MINORITY


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
    assert result.done


def test_without_a_confchg_the_result_is_answered_after_the_dispatch() -> None:
    g = Group((ME, N2, N3))
    g.group._deliver(b"test", ME.nodeid, ME.pid, g.write())
    assert g.results == []
    g.group._after_dispatch()
    (result,) = g.results
    assert result.done


def test_a_message_lost_to_a_restart_of_the_connection_is_refused() -> None:
    g = Group((ME, N2, N3))
    g.write()
    g.group.service.stop(Poller())  # type: ignore[arg-type]
    (result,) = g.results
    assert not result.done
    assert result.reason == NOT_DELIVERED
