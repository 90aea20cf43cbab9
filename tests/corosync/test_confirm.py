"""The bookkeeping of corosync/confirm.py: a held change is settled by a barrier that comes back
in the same, quorate totem ring, or by a ring change that keeps a majority of a quorate ring; a
ring without quorum, or a change into a minority, refuses it."""

from __future__ import annotations

import pytest

from bindings.libcpg import CpgRingId
from corosync.confirm import RINGS_KEPT, Confirmations, Ring
from dfsm import LocalResult

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
    assert [h.item for h in c.held] == [result(1)]


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
