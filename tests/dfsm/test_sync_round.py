"""One sync round: SYNC_START, STATE collection and processing, UPDATE and commit (reference 1.7)."""

from __future__ import annotations

from dfsm import DfsmLeave, Leave, Mode, Multicast, StateDecision
from tests.fakes.dfsm import (
    ME,
    N2,
    N3,
    T0,
    T,
    deliver,
    make,
    sent,
    sent_types,
    state,
    states_from,
    sync_start_from,
    to_start_sync,
    to_synced,
    to_update,
)
from wire import dfsm as wire


def round_started(me=ME, members=(ME, N2)):
    machine, app, clock = make(me)
    to_start_sync(machine, members)
    sync_start_from(machine, min(members))
    return machine, app, clock


def test_state_from_a_non_member_means_leave() -> None:
    machine, _, _ = round_started()
    states_from(machine, {N3: b"x"})
    assert machine.mode == Mode.LEAVE


def test_duplicate_state_means_leave() -> None:
    machine, _, _ = round_started(members=(ME, N2, N3))
    states_from(machine, {N2: b"x"})
    states_from(machine, {N2: b"x"})
    assert machine.mode == Mode.LEAVE


def test_empty_state_never_counts_as_received() -> None:
    # C stores g_memdup2(msg, 0) == NULL, so the member still has no state (and no duplicate check).
    machine, app, _ = round_started()
    states_from(machine, {N2: b"", ME: b"s"})
    assert "process_state_update" not in app.names()
    states_from(machine, {N2: b"late"})
    assert "process_state_update" in app.names()


def test_empty_or_failed_get_state_means_leave() -> None:
    machine, app, _ = make(state=b"")
    to_start_sync(machine)
    sync_start_from(machine, ME)
    assert machine.mode == Mode.LEAVE
    machine, app, _ = make()
    app.raise_in["get_state"] = DfsmLeave("state", "no index")
    to_start_sync(machine)
    actions = sync_start_from(machine, ME)
    assert machine.mode == Mode.LEAVE
    assert sent(actions) == []


def test_a_second_sync_start_drops_collected_states() -> None:
    machine, app, _ = round_started(members=(ME, N2, N3))
    states_from(machine, {N2: b"old"})
    epoch = wire.Epoch(epoch=9, time=1, nodeid=1, pid=100)
    sync_start_from(machine, ME, epoch)
    states_from(machine, {N2: b"new", N3: b"c", ME: b"a"})  # N2 again: no duplicate
    [(_, states, _)] = [c for c in app.calls if c[0] == "process_state_update"]
    assert [s.state for s in states] == [b"a", b"new", b"c"]


def test_all_synced_goes_synced_and_cleans_up() -> None:
    machine, app, _ = round_started()
    actions = states_from(machine, {ME: b"s", N2: b"s"})
    assert machine.mode == Mode.SYNCED
    assert app.names()[-3:] == ["process_state_update", "on_synced", "cleanup"]
    assert sent(actions) == []


def test_leader_multicasts_updates_then_update_complete() -> None:
    machine, app, clock = round_started()
    app.decide = lambda states, me: StateDecision(
        synced=frozenset({ME}), updates=(b"u1", b"u2"), send_update_complete=True
    )
    clock.now = T0 + 9
    actions = states_from(machine, {ME: b"new", N2: b"old"})
    assert sent_types(actions) == ["UPDATE", "UPDATE", "UPDATE_COMPLETE"]
    expected = [
        state(T.UPDATE, machine.sync_epoch, b"u1", time=T0 + 9),
        state(T.UPDATE, machine.sync_epoch, b"u2", time=T0 + 9),
        state(T.UPDATE_COMPLETE, machine.sync_epoch, time=T0 + 9),
    ]
    multicasts = [a for a in actions if isinstance(a, Multicast)]
    assert [a.data for a in multicasts] == expected
    assert [a.must_succeed for a in multicasts] == [False, False, True]
    assert machine.mode == Mode.SYNCED


def test_out_of_date_node_waits_in_update_without_cleanup() -> None:
    machine, app, _ = make()
    to_update(machine, (ME, N2), leader=N2)
    assert "cleanup" not in app.names()
    assert "on_synced" not in app.names()


def test_process_state_update_failure_means_leave_with_cleanup() -> None:
    machine, app, _ = round_started()
    app.raise_in["process_state_update"] = DfsmLeave("index", "short")
    actions = states_from(machine, {ME: b"s", N2: b"s"})
    assert machine.mode == Mode.LEAVE
    assert app.names()[-1] == "cleanup"
    assert any(isinstance(a, Leave) for a in actions)


def test_update_records_go_to_the_app_and_commit_finishes() -> None:
    machine, app, _ = make()
    to_update(machine, (ME, N2), leader=N2)
    deliver(machine, N2, state(T.UPDATE, machine.sync_epoch, b"rec1"))
    deliver(machine, N3, state(T.UPDATE, machine.sync_epoch, b"rec2"))  # accepted from anyone
    deliver(machine, N2, state(T.UPDATE_COMPLETE, machine.sync_epoch))
    assert [c for c in app.calls if c[0] == "process_update"] == [
        ("process_update", N2, b"rec1"),
        ("process_update", N3, b"rec2"),
    ]
    assert app.names()[-3:] == ["commit", "on_synced", "cleanup"]
    assert machine.mode == Mode.SYNCED
    assert all(node.synced for node in machine._sync.nodes)


def test_process_update_or_commit_failure_means_leave() -> None:
    for failing in ("process_update", "commit"):
        machine, app, _ = make()
        to_update(machine)
        app.raise_in[failing] = DfsmLeave(failing, "bad")
        deliver(machine, N2, state(T.UPDATE, machine.sync_epoch, b"rec"))
        deliver(machine, N2, state(T.UPDATE_COMPLETE, machine.sync_epoch))
        assert machine.mode == Mode.LEAVE, failing
        assert app.names()[-1] == "cleanup"


def test_update_complete_in_synced_marks_everyone_synced() -> None:
    machine, app, _ = round_started(members=(ME, N2))
    app.decide = lambda states, me: StateDecision(synced=frozenset({ME}), send_update_complete=True)
    states_from(machine, {ME: b"a", N2: b"b"})
    assert [n.synced for n in machine._sync.nodes] == [True, False]
    deliver(machine, ME, state(T.UPDATE_COMPLETE, machine.sync_epoch))
    assert [n.synced for n in machine._sync.nodes] == [True, True]
    assert machine.mode == Mode.SYNCED


def test_followers_send_state_under_the_adopted_epoch() -> None:
    machine, _, _ = make(N2)
    to_start_sync(machine, (ME, N2))
    leader_epoch = wire.Epoch(epoch=2, time=T0, nodeid=1, pid=100)
    [msg] = sent(sync_start_from(machine, ME, leader_epoch))
    assert isinstance(msg, wire.StateMessage)
    assert msg.epoch == leader_epoch
    # our own epoch's messages are now stale
    own = wire.Epoch(epoch=1, time=T0, nodeid=2, pid=200)
    assert deliver(machine, ME, state(T.STATE, own, b"x")) == []


def test_synced_round_after_synced() -> None:
    machine, _, _ = make()
    to_synced(machine)
    to_synced(machine, (ME, N2, N3))
    assert machine.mode == Mode.SYNCED
