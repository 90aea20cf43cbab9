"""A change's writer is answered only once a majority is known to hold it (corosync/confirm.py):
by a barrier that comes back in the same, quorate totem ring, or by a ring change that keeps a
majority of a quorate ring; a ring without quorum, or a change into a minority, answers failed."""

from __future__ import annotations

import logging
import struct
from typing import Any

import pykka
import pytest

from bindings.libcpg import CpgRingId
from corosync.confirm import RINGS_KEPT, Confirmations, Ring
from dfsm import LocalResult
from errors import CsError
from tests.fakes.corosync import Poller, dcdb_group
from tests.fakes.dfsm import ME, N2, N3, to_synced
from wire.barrier import barrier_group

R1 = Ring(CpgRingId(1, 8), frozenset({1, 2, 3}))
R2_ALONE = Ring(CpgRingId(1, 12), frozenset({1}))
R2_PAIR = Ring(CpgRingId(1, 12), frozenset({1, 2}))
R2_MORE = Ring(CpgRingId(1, 12), frozenset({1, 2, 3, 4}))


def result(count: int) -> LocalResult:
    return LocalResult(count=count, result=0, processed=True)


# ----- the bookkeeping ------------------------------------------------------------------


def quorate(ring: Ring = R1) -> Confirmations:
    """Bookkeeping that knows ``ring`` is quorate."""
    c = Confirmations()
    assert c.ring_quorum(ring.ring_id.seq, True) == ([], [])
    return c


def test_a_barrier_sent_after_the_delivery_settles_it() -> None:
    c = quorate()
    assert c.hold(result(1), R1)
    assert c.wants_barrier
    number = c.barrier_sent()
    assert not c.wants_barrier
    assert c.barrier_delivered(number, R1.ring_id) == ([result(1)], [])
    assert c.held == []
    assert not c.in_flight


def test_a_barrier_sent_before_the_delivery_does_not_settle_it() -> None:
    c = quorate()
    c.hold(result(1), R1)
    first = c.barrier_sent()
    c.hold(result(2), R1)  # delivered while the first barrier was on its way
    assert c.barrier_delivered(first, R1.ring_id) == ([result(1)], [])
    assert c.wants_barrier  # the second change needs a barrier of its own
    assert c.barrier_delivered(c.barrier_sent(), R1.ring_id) == ([result(2)], [])


def test_a_barrier_back_in_another_ring_settles_nothing() -> None:
    c = quorate()
    c.hold(result(1), R1)
    assert c.barrier_delivered(c.barrier_sent(), R2_ALONE.ring_id) == ([], [])
    assert [h.result for h in c.held] == [result(1)]


def test_the_barrier_waits_for_the_rings_quorum_verdict() -> None:
    c = Confirmations()
    c.hold(result(1), R1)
    assert c.barrier_delivered(c.barrier_sent(), R1.ring_id) == ([], [])
    assert c.ring_quorum(R2_PAIR.ring_id.seq, True) == ([], [])  # another ring's verdict
    assert c.ring_quorum(R1.ring_id.seq, True) == ([result(1)], [])


def test_a_change_delivered_in_a_ring_without_quorum_is_refused() -> None:
    """Sent just before a cut, delivered after it in the minority's new ring: the barrier comes
    back in that ring too, but corosync says the ring has no quorum."""
    c = Confirmations()
    c.hold(result(1), R2_ALONE)
    assert c.barrier_delivered(c.barrier_sent(), R2_ALONE.ring_id) == ([], [])
    assert c.ring_quorum(R2_ALONE.ring_id.seq, False) == ([], [result(1)])
    c.hold(result(2), R2_ALONE)  # the verdict is known: refused at once
    assert c.ring_quorum(R2_ALONE.ring_id.seq, False) == ([], [result(2)])


def test_waiting_for_the_verdict_sends_no_more_barriers() -> None:
    c = Confirmations()
    c.hold(result(1), R1)
    c.barrier_delivered(c.barrier_sent(), R1.ring_id)
    assert not c.wants_barrier  # the barrier is back: only corosync's verdict is missing


def test_without_barriers_what_a_ring_without_quorum_delivered_is_still_refused() -> None:
    c = Confirmations()
    c.hold(result(1), R1)
    c.hold(result(2), R2_ALONE)
    c.quorate_rings[R2_ALONE.ring_id.seq] = False
    assert c.drop_unless_refused() == ([result(1)], [result(2)])
    assert c.held == []


def test_alone_in_a_quorate_ring_nothing_waits() -> None:
    """A one-node cluster (or a quorum device's vote): no one else to lose the change to."""
    c = quorate(R2_ALONE)
    assert not c.hold(result(1), R2_ALONE)
    assert not c.wants_barrier
    assert Confirmations().hold(result(2), R2_ALONE)  # the verdict not known yet: it waits


def test_only_the_newest_verdicts_are_kept() -> None:
    c = Confirmations()
    for seq in range(100):
        c.ring_quorum(seq, True)
    assert sorted(c.quorate_rings) == list(range(100 - RINGS_KEPT, 100))


@pytest.mark.parametrize(
    ("new", "acknowledged"),
    [(R2_ALONE, False), (R2_PAIR, True), (R2_MORE, True)],
    ids=["cut-off-alone", "majority-stays", "a-node-joins"],
)
def test_a_ring_change_settles_by_majority(new: Ring, acknowledged: bool) -> None:
    c = quorate()
    c.hold(result(1), R1)
    done, refused = c.ring_changed(new)
    assert (done, refused) == (([result(1)], []) if acknowledged else ([], [result(1)]))
    assert c.held == []


def test_a_ring_change_from_a_ring_of_unknown_quorum_refuses() -> None:
    c = Confirmations()
    c.hold(result(1), R1)
    assert c.ring_changed(R2_MORE) == ([], [result(1)])


def test_a_ring_change_keeps_what_was_delivered_in_the_new_ring() -> None:
    c = quorate()
    c.hold(result(1), R2_PAIR)
    assert c.ring_changed(R2_PAIR) == ([], [])
    assert len(c.held) == 1


def test_half_of_an_even_ring_is_no_majority() -> None:
    four = Ring(CpgRingId(1, 8), frozenset({1, 2, 3, 4}))
    assert not four.keeps_majority_in(R2_PAIR)
    assert four.keeps_majority_in(Ring(CpgRingId(1, 12), frozenset({1, 2, 3})))


# ----- inside the dcdb group -------------------------------------------------------------


class FakeHandle:
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
        self.callbacks[2](ring.ring_id, tuple(sorted(ring.members)))


class Group:
    """The dcdb group with fake handles: its own and its barrier's, both in ring R1."""

    def __init__(self) -> None:
        self.dcdb = FakeHandle()
        self.barrier = FakeHandle()
        handles = [self.dcdb, self.barrier]
        self.results: list[LocalResult] = []
        self.group = dcdb_group(self.results, lambda: handles.pop(0), confirm=True)
        assert self.group.barrier is not None
        self.group.barrier._pid = ME.pid  # the barrier filters on this process's pid
        for service in self.group.services:
            assert service.start(0.0, Poller(), None)  # type: ignore[arg-type]
        assert self.barrier.joined == barrier_group(ME.nodeid) == b"pmxcfs_py_barrier_v2_%d" % ME.nodeid
        self.dcdb.totem(R1)
        self.barrier.totem(R1)
        self.group.ring_quorum(R1.ring_id.seq, True)
        assert self.group.dfsm is not None
        to_synced(self.group.dfsm, (ME, N2, N3))

    def write(self) -> None:
        """A change of ours, delivered back (one dispatch)."""
        reply: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        assert self.group.send(1, b"change", reply)
        self.group._deliver(b"test", ME.nodeid, ME.pid, self.dcdb.sent[-1])
        self.group._after_dispatch()

    def barrier_back(self, ring: Ring | None = None, nodeid: int = ME.nodeid, pid: int = ME.pid) -> None:
        """The last barrier sent comes back (one dispatch of the barrier connection)."""
        if ring is not None:
            self.barrier.totem(ring)
        self.barrier.callbacks[0](barrier_group(ME.nodeid), nodeid, pid, self.barrier.sent[-1])


def test_the_writer_waits_for_the_barrier() -> None:
    g = Group()
    g.write()
    assert g.results == []
    assert g.barrier.sent == [struct.pack("<Q", 1)]
    g.barrier_back()
    (answer,) = g.results
    assert answer.processed


def test_another_daemons_barrier_settles_nothing() -> None:
    g = Group()
    g.write()
    g.barrier_back(nodeid=N2.nodeid, pid=N2.pid)
    g.barrier_back(pid=ME.pid + 1)
    assert g.results == []


def test_cut_off_into_a_minority_before_the_barrier_the_writer_is_told_it_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    g = Group()
    g.write()
    g.dcdb.totem(R2_ALONE)
    (answer,) = g.results
    assert not answer.processed
    assert "keeps no majority" in caplog.text
    g.barrier_back(R2_ALONE)  # the barrier then comes back in the new ring: nothing more
    assert len(g.results) == 1


def test_a_ring_change_that_keeps_a_majority_acknowledges() -> None:
    g = Group()
    g.write()
    g.dcdb.totem(R2_PAIR)
    (answer,) = g.results
    assert answer.processed


def test_changes_delivered_while_a_barrier_is_out_wait_for_the_next() -> None:
    g = Group()
    g.write()
    g.write()  # the first barrier is still out: no second one yet
    assert len(g.barrier.sent) == 1
    g.barrier_back()
    assert len(g.results) == 1  # the second change was delivered after barrier 1 was sent
    assert g.barrier.sent[-1] == struct.pack("<Q", 2)
    g.barrier_back()
    assert [r.processed for r in g.results] == [True, True]


def test_losing_the_dcdb_connection_refuses_what_is_held() -> None:
    g = Group()
    g.write()
    g.group.service.stop(Poller())  # type: ignore[arg-type]
    assert [r.processed for r in g.results] == [False]


def test_without_a_barrier_connection_changes_are_acknowledged_at_delivery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    g = Group()
    g.write()
    assert g.group.barrier is not None
    with caplog.at_level(logging.WARNING):
        g.group.barrier.service.stop(Poller())  # type: ignore[arg-type]
    assert [r.processed for r in g.results] == [True]
    assert "acknowledged at local delivery" in caplog.text
    g.write()
    assert [r.processed for r in g.results] == [True, True]


def test_a_barrier_that_cannot_be_sent_falls_back_to_delivery() -> None:
    g = Group()
    g.barrier.fail_mcast = True
    g.write()
    assert [r.processed for r in g.results] == [True]


def test_a_ring_without_quorum_refuses_what_it_delivered(caplog: pytest.LogCaptureFixture) -> None:
    g = Group()
    g.dcdb.totem(R2_ALONE)  # a cut: our change goes out in the new ring, alone
    g.barrier.totem(R2_ALONE)
    g.write()
    g.barrier_back()
    assert g.results == []  # the barrier alone does not do: the ring's quorum is not known yet
    g.group.ring_quorum(R2_ALONE.ring_id.seq, False)
    assert [r.processed for r in g.results] == [False]
    assert "without quorum" in caplog.text
