"""msg_queue (sorted by count) vs sync_queue (arrival order) and their delivery (reference 1.7)."""

from __future__ import annotations

from dfsm import DfsmLeave, Member, Mode, StateDecision
from tests.fakes.dfsm import (
    ME,
    N2,
    N3,
    T,
    deliver,
    make,
    normal,
    state,
    states_from,
    sync_start_from,
    to_start_sync,
)

MEMBERS = (ME, N2, N3)


def order(app) -> list[tuple[int, int]]:
    return [(sender.nodeid, count) for sender, count, _ in app.delivered()]


def finish_round(machine, synced=MEMBERS, **decision):
    machine._app.decide = lambda states, me: StateDecision(synced=frozenset(synced), **decision)
    sync_start_from(machine, ME, machine.sync_epoch)
    return states_from(machine, {m: b"s" for m in machine.members})


def test_msg_queue_is_sorted_by_count_with_ties_in_arrival_order() -> None:
    machine, app, _ = make()
    to_start_sync(machine, MEMBERS)
    for sender, count in [(N2, 3), (N3, 1), (ME, 2), (N2, 1), (N3, 3)]:
        deliver(machine, sender, normal(count))
    assert app.delivered() == []
    finish_round(machine)
    assert order(app) == [(3, 1), (2, 1), (1, 2), (2, 3), (3, 3)]
    assert machine.queue_lengths == (0, 0)


def test_queueing_from_a_non_member_means_leave() -> None:
    machine, _, _ = make()
    to_start_sync(machine, (ME, N2))
    deliver(machine, N3, normal(1))
    assert machine.mode == Mode.LEAVE


def test_out_of_date_node_delivers_synced_queue_then_arrivals_then_the_rest() -> None:
    machine, app, _ = make()
    to_start_sync(machine, MEMBERS)
    for sender, count in [(N3, 5), (N2, 2), (N2, 1)]:
        deliver(machine, sender, normal(count))
    finish_round(machine, synced={N2})
    assert machine.mode == Mode.UPDATE
    assert machine.queue_lengths == (1, 2)  # N2's moved to sync_queue in count order
    for sender, count in [(N2, 3), (N3, 1), (ME, 1)]:
        deliver(machine, sender, normal(count))
    assert machine.queue_lengths == (3, 3)
    deliver(machine, N2, state(T.UPDATE_COMPLETE, machine.sync_epoch))
    assert order(app) == [(2, 1), (2, 2), (2, 3), (3, 1), (1, 1), (3, 5)]


def test_synced_node_holds_unsynced_senders_until_update_complete() -> None:
    machine, app, _ = make()
    to_start_sync(machine, (ME, N2))
    deliver(machine, N2, normal(1, b"queued"))
    deliver(machine, ME, normal(1, b"mine"))
    finish_round(machine, synced={ME}, send_update_complete=True)
    assert machine.mode == Mode.SYNCED
    assert order(app) == [(1, 1)]
    # SYNCED delivers new messages at once without checking the sender's synced flag
    deliver(machine, N2, normal(2, b"new"))
    assert order(app) == [(1, 1), (2, 2)]
    deliver(machine, ME, state(T.UPDATE_COMPLETE, machine.sync_epoch))
    assert order(app) == [(1, 1), (2, 2), (2, 1)]


def test_queued_messages_of_departed_members_are_dropped() -> None:
    machine, app, _ = make()
    to_start_sync(machine, MEMBERS)
    deliver(machine, N3, normal(1))
    deliver(machine, N2, normal(2))
    machine.on_confchg([ME, N2], [N3], [])  # nobody joined: the queue is kept
    assert machine.queue_lengths == (2, 0)
    finish_round(machine, synced={ME, N2})
    assert order(app) == [(2, 2)]
    assert machine.queue_lengths == (0, 0)


def test_a_failing_delivery_stops_the_queue_pass() -> None:
    machine, app, _ = make()
    to_start_sync(machine, (ME, N2))
    deliver(machine, N2, normal(1))
    deliver(machine, N2, normal(2))
    app.raise_in["deliver"] = DfsmLeave("msg", "not quorate")
    finish_round(machine, synced={ME, N2})
    assert machine.mode == Mode.LEAVE
    assert order(app) == [(2, 1)]
    assert machine.queue_lengths == (1, 0)
    machine.initialize()
    assert machine.queue_lengths == (0, 0)


def test_queued_messages_are_rechecked_on_delivery() -> None:
    # The queue is delivered through the full receive path; a mode change in between stops it.
    machine, app, _ = make()
    to_start_sync(machine, (ME, N2))
    deliver(machine, N2, normal(1))
    app.deliver_hook = lambda sender, subtype, payload: machine.set_error_mode()
    deliver(machine, N2, normal(2))
    finish_round(machine, synced={ME, N2})
    assert machine.mode == Mode.ERROR
    assert order(app) == [(2, 1)]


def test_pids_tell_members_apart() -> None:
    machine, app, _ = make()
    old, new = Member(3, 1), Member(3, 2)
    to_start_sync(machine, (ME, new))
    deliver(machine, old, normal(1))  # a previous process of node 3 is not a member
    assert machine.mode == Mode.LEAVE
    assert app.delivered() == []
