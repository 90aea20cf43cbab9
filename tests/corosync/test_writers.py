"""A change's writer is answered only once a majority is known to hold it (corosync/writers.py on
the bookkeeping of corosync/confirm.py), with the reason it failed when it did; without a
working barrier connection at local delivery, as the original."""

from __future__ import annotations

import logging
import struct

import pytest

from bindings.libcpg import CpgRingId
from corosync.confirm import Ring
from corosync.writers import CONNECTION_LOST, NOT_QUORATE, RING_CHANGED
from tests.fakes.corosync import Answer, FakeHandle, Poller, dcdb_group
from tests.fakes.dfsm import ME, N2, N3, to_synced
from wire.barrier import barrier_group

R1 = Ring(CpgRingId(1, 8), frozenset({1, 2, 3}))
R2_ALONE = Ring(CpgRingId(1, 12), frozenset({1}))
R2_PAIR = Ring(CpgRingId(1, 12), frozenset({1, 2}))


class Group:
    """The dcdb group with fake handles: its own and its barrier's, both in ring R1."""

    def __init__(self) -> None:
        self.dcdb = FakeHandle()
        self.barrier = FakeHandle()
        handles = [self.dcdb, self.barrier]
        self.results: list[Answer] = []
        self.group = dcdb_group(self.results, lambda: handles.pop(0), confirm=True)
        assert self.group.writers is not None
        self.writers = self.group.writers
        assert self.writers.barrier is not None
        self.writers.barrier._pid = ME.pid  # the barrier filters on this process's pid
        for service in self.group.services:
            assert service.start(0.0, Poller(), None)  # type: ignore[arg-type]
        assert self.barrier.joined == barrier_group(ME.nodeid) == b"pmxcfs_py_barrier_v2_%d" % ME.nodeid
        self.dcdb.totem(R1)
        self.barrier.totem(R1)
        self.writers.ring_quorum(R1.ring_id.seq, True)
        assert self.group.dfsm is not None
        to_synced(self.group.dfsm, (ME, N2, N3))

    def write(self) -> None:
        """A change of ours, delivered back (one dispatch)."""
        assert self.group.send(1, b"change", Answer(self.results))
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
    assert answer.done


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
    assert not answer.done
    assert answer.reason == RING_CHANGED
    assert "keeps no majority" in caplog.text
    g.barrier_back(R2_ALONE)  # the barrier then comes back in the new ring: nothing more
    assert len(g.results) == 1


def test_a_ring_change_that_keeps_a_majority_acknowledges() -> None:
    g = Group()
    g.write()
    g.dcdb.totem(R2_PAIR)
    (answer,) = g.results
    assert answer.done


def test_changes_delivered_while_a_barrier_is_out_wait_for_the_next() -> None:
    g = Group()
    g.write()
    g.write()  # the first barrier is still out: no second one yet
    assert len(g.barrier.sent) == 1
    g.barrier_back()
    assert len(g.results) == 1  # the second change was delivered after barrier 1 was sent
    assert g.barrier.sent[-1] == struct.pack("<Q", 2)
    g.barrier_back()
    assert [r.done for r in g.results] == [True, True]


def test_losing_the_dcdb_connection_refuses_what_is_held() -> None:
    g = Group()
    g.write()
    g.group.service.stop(Poller())  # type: ignore[arg-type]
    assert [r.done for r in g.results] == [False]
    assert g.results[0].reason == CONNECTION_LOST


def test_without_a_barrier_connection_changes_are_acknowledged_at_delivery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    g = Group()
    g.write()
    assert g.writers.barrier is not None
    with caplog.at_level(logging.WARNING):
        g.writers.barrier.service.stop(Poller())  # type: ignore[arg-type]
    assert [r.done for r in g.results] == [True]
    assert "acknowledged at local delivery" in caplog.text
    g.write()
    assert [r.done for r in g.results] == [True, True]


def test_a_barrier_that_cannot_be_sent_falls_back_to_delivery() -> None:
    g = Group()
    g.barrier.fail_mcast = True
    g.write()
    assert [r.done for r in g.results] == [True]


def test_a_ring_without_quorum_refuses_what_it_delivered(caplog: pytest.LogCaptureFixture) -> None:
    g = Group()
    g.dcdb.totem(R2_ALONE)  # a cut: our change goes out in the new ring, alone
    g.barrier.totem(R2_ALONE)
    g.write()
    g.barrier_back()
    assert g.results == []  # the barrier alone does not do: the ring's quorum is not known yet
    g.writers.ring_quorum(R2_ALONE.ring_id.seq, False)
    assert [r.done for r in g.results] == [False]
    assert g.results[0].reason == NOT_QUORATE
    assert "without quorum" in caplog.text
