"""Configuration changes: epochs and steps 1-11 of reference 1.6."""

from __future__ import annotations

from dfsm import Member, Mode, ModeChanged, Multicast, StateDecision
from tests.fakes.dfsm import (
    ME,
    N2,
    N3,
    T0,
    T,
    deliver,
    make,
    normal,
    sent,
    sent_types,
    states_from,
    sync_start_from,
    to_start_sync,
    to_synced,
    to_update,
)
from wire import dfsm as wire


def test_each_confchg_makes_a_new_local_epoch() -> None:
    machine, _, clock = make()
    machine.on_confchg([ME], [], [ME])
    assert machine.sync_epoch == wire.Epoch(epoch=1, time=T0, nodeid=1, pid=100)
    clock.now = T0 + 5
    machine.on_confchg([ME, N2], [], [N2])
    assert machine.sync_epoch == wire.Epoch(epoch=2, time=T0 + 5, nodeid=1, pid=100)


def test_alone_is_synced_without_sync_start_or_state() -> None:
    machine, app, _ = make()
    actions = machine.on_confchg([ME], [], [ME])
    assert machine.mode == Mode.SYNCED
    assert sent(actions) == []
    assert actions == [ModeChanged(old=Mode.START, new=Mode.SYNCED)]
    assert app.names() == ["on_synced", "on_confchg"]
    assert machine.we_are_member
    assert machine.is_lowest_nodeid


def test_alone_delivers_the_queue() -> None:
    machine, app, _ = make()
    to_start_sync(machine, (ME, N2))
    deliver(machine, ME, normal(2, b"b"))
    deliver(machine, ME, normal(1, b"a"))
    machine.on_confchg([ME], [N2], [])
    assert [p for _, _, p in app.delivered()] == [b"a", b"b"]


def test_lowest_nodeid_multicasts_sync_start_with_the_new_epoch() -> None:
    machine, app, clock = make()
    clock.now = T0 + 1
    actions = machine.on_confchg([N2, ME], [], [N2])
    assert machine.mode == Mode.START_SYNC
    [msg] = sent(actions)
    expected = wire.StateMessage(
        type=T.SYNC_START, protocol_version=1, time=T0 + 1, epoch=machine.sync_epoch, payload=b""
    )
    assert msg == expected
    [multicast] = [a for a in actions if isinstance(a, Multicast)]
    assert multicast.must_succeed
    assert app.names() == ["on_confchg"]
    assert app.calls[-1] == ("on_confchg", (N2, ME))  # the member list as CPG gave it


def test_other_members_wait_for_sync_start() -> None:
    machine, _, _ = make(N2)
    actions = machine.on_confchg([ME, N2], [], [N2])
    assert machine.mode == Mode.START_SYNC
    assert sent(actions) == []
    assert not machine.is_lowest_nodeid


def test_lowest_nodeid_ignores_the_pid() -> None:
    machine, _, _ = make(Member(1, 100))
    actions = machine.on_confchg([Member(1, 50), Member(1, 100)], [], [Member(1, 50)])
    assert sent_types(actions) == ["SYNC_START"]


def test_not_a_member_in_start_is_ignored() -> None:
    machine, app, _ = make()
    assert machine.on_confchg([N2, N3], [], [N3]) == []
    assert machine.mode == Mode.START
    assert app.calls == []


def test_not_a_member_otherwise_means_leave() -> None:
    machine, app, _ = make()
    to_synced(machine)
    machine.on_confchg([N2, N3], [ME], [N3])
    assert machine.mode == Mode.LEAVE
    assert not machine.we_are_member
    assert "on_confchg" not in app.names()[-1:]


def test_error_mode_only_renews_epoch_and_drops_sync_queue() -> None:
    machine, app, _ = make()
    to_synced(machine)
    machine.set_error_mode()
    calls, members = len(app.calls), machine.members
    assert machine.on_confchg([ME, N2, N3], [], [N3]) == []
    # our own local counter (1 confchg before), not the adopted epoch of the last SYNC_START
    assert machine.sync_epoch == wire.Epoch(epoch=2, time=T0, nodeid=1, pid=100)
    assert machine.members == members
    assert len(app.calls) == calls
    assert not machine.we_are_member


def test_confchg_drops_the_sync_queue_but_keeps_msg_queue() -> None:
    machine, _, _ = make()
    to_update(machine, (ME, N2, N3), leader=N2)
    deliver(machine, N2, normal(1))  # synced sender in UPDATE -> sync_queue
    deliver(machine, N3, normal(1))  # unsynced sender -> msg_queue
    assert machine.queue_lengths == (1, 1)
    machine.on_confchg([ME, N2, N3], [], [])
    assert machine.queue_lengths == (1, 0)


def test_resend_own_queued_messages_when_someone_joined() -> None:
    machine, _, _ = make()
    to_start_sync(machine, (ME, N2))
    mine = [normal(2, b"two"), normal(1, b"one")]
    deliver(machine, ME, mine[0])
    deliver(machine, N2, normal(1, b"theirs"))
    deliver(machine, ME, mine[1])
    actions = machine.on_confchg([ME, N2, N3], [], [N3])
    resent = [a for a in actions if isinstance(a, Multicast)]
    # own messages only, exact original bytes, in count order; then SYNC_START
    assert [a.data for a in resent[:2]] == [mine[1], mine[0]]
    assert all(a.must_succeed for a in resent)
    assert [a.count for a in resent[:2]] == [1, 2]
    assert sent_types(actions) == ["NORMAL", "NORMAL", "SYNC_START"]
    assert machine.queue_lengths == (0, 0)  # others' messages are discarded too


def test_no_resend_without_joined_members() -> None:
    machine, _, _ = make()
    to_start_sync(machine, (ME, N2, N3))
    deliver(machine, ME, normal(1))
    actions = machine.on_confchg([ME, N2], [N3], [])
    assert sent_types(actions) == ["SYNC_START"]
    assert machine.queue_lengths == (1, 0)


def test_confchg_frees_states_and_runs_cleanup_for_app_data() -> None:
    machine, app, _ = make()
    to_update(machine, (ME, N2), leader=N2)
    assert "cleanup" not in app.names()
    machine.on_confchg([ME, N2, N3], [], [N3])
    assert app.names()[-2:] == ["cleanup", "on_confchg"]
    # a STATE of the previous round does not count in the new one
    sync_start_from(machine, ME, machine.sync_epoch)
    states_from(machine, {N2: b"x"})
    assert machine.mode == Mode.START_SYNC


def test_member_list_is_sorted_by_nodeid_then_pid() -> None:
    machine, app, _ = make()
    members = [N3, Member(2, 900), ME, Member(2, 5)]
    machine.on_confchg(members, [], [N3])
    assert machine.members == (ME, Member(2, 5), Member(2, 900), N3)
    sync_start_from(machine, ME, machine.sync_epoch)
    app.decide = lambda states, me: StateDecision(synced=frozenset())
    states_from(machine, {m: b"s" for m in reversed(members)})
    [(_, states, me)] = [c for c in app.calls if c[0] == "process_state_update"]
    assert [s.member for s in states] == [ME, Member(2, 5), Member(2, 900), N3]
    assert me == ME
