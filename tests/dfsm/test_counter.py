"""The message counter (reference 1.8) and the local result of a sent message (1.9)."""

from __future__ import annotations

from dfsm import Action, DfsmLeave, LocalResult, Mode, Multicast
from tests.fakes.dfsm import (
    ME,
    N2,
    T0,
    deliver,
    make,
    normal,
    states_from,
    sync_start_from,
    to_start_sync,
    to_synced,
)
from wire import dfsm as wire


def results(actions: list[Action]) -> list[LocalResult]:
    return [a for a in actions if isinstance(a, LocalResult)]


def test_counts_start_at_one_and_are_pre_incremented() -> None:
    machine, _, clock = make()
    clock.now = T0 + 7
    count, actions = machine.send_normal(5, b"payload")
    assert (count, machine.msgcount) == (1, 1)
    assert actions == [
        Multicast(data=normal(1, b"payload", subtype=5, time=T0 + 7), must_succeed=False, count=1)
    ]
    assert machine.send_normal(5, b"x")[0] == 2


def test_fire_and_forget_messages_count_too_and_get_no_result() -> None:
    machine, _, _ = make()
    to_synced(machine)
    count, _ = machine.send_normal(1, b"kv", wait=False)
    assert machine.send_normal(1, b"kv")[0] == count + 1
    assert deliver(machine, ME, normal(count)) == []


def test_counter_is_never_reset() -> None:
    machine, _, _ = make()
    machine.send_normal(1, b"")
    to_synced(machine)
    deliver(machine, ME, b"bad")  # LEAVE
    machine.finalize()
    machine.initialize()
    machine.on_confchg([ME], [], [ME])
    assert machine.send_normal(1, b"")[0] == 2


def test_protocol_version_and_time_in_the_header() -> None:
    machine, _, clock = make(version=0)
    clock.now = 2**32 + 5  # time(NULL) truncated to 32 bits
    _, [action] = machine.send_normal(3, b"")
    assert isinstance(action, Multicast)
    msg = wire.decode(action.data)
    assert (msg.protocol_version, msg.time) == (0, 5)


def test_own_delivery_returns_the_app_result() -> None:
    machine, _app, _ = make(result=17)
    to_synced(machine)
    count, _ = machine.send_normal(1, b"w")
    actions = deliver(machine, ME, normal(count))
    assert actions == [LocalResult(count=count, result=17, processed=True)]
    assert deliver(machine, N2, normal(count)) == []  # another sender's equal count is not ours


def test_leave_in_deliver_reports_minus_one() -> None:
    machine, app, _ = make()
    to_synced(machine)
    app.raise_in["deliver"] = DfsmLeave("write", "not quorate")
    count, _ = machine.send_normal(1, b"w")
    actions = deliver(machine, ME, normal(count))
    assert actions[0] == LocalResult(count=count, result=-1, processed=True)
    assert machine.mode == Mode.LEAVE


def test_queued_own_message_gets_its_result_after_the_sync() -> None:
    machine, _, _ = make()
    to_start_sync(machine, (ME, N2))
    count, _ = machine.send_normal(1, b"w")
    assert deliver(machine, ME, normal(count)) == []
    sync_start_from(machine, ME, machine.sync_epoch)
    actions = states_from(machine, {ME: b"s", N2: b"s"})
    assert results(actions) == [LocalResult(count=count, result=0, processed=True)]


def test_initialize_and_finalize_abort_every_waiter() -> None:
    machine, _, _ = make()
    to_synced(machine)
    first, _ = machine.send_normal(1, b"")
    second, _ = machine.send_normal(1, b"")
    assert results(machine.initialize()) == [
        LocalResult(count=first, result=None, processed=False),
        LocalResult(count=second, result=None, processed=False),
    ]
    third, _ = machine.send_normal(1, b"")
    assert machine.finalize() == [LocalResult(count=third, result=None, processed=False)]
    assert machine.finalize() == []


def test_a_later_own_delivery_wakes_earlier_waiters_unprocessed() -> None:
    # msgcount_rcvd = count wakes every waiter with a lower count (their record stays unset).
    machine, _, _ = make(result=0)
    to_synced(machine)
    lost, _ = machine.send_normal(1, b"")
    later, _ = machine.send_normal(1, b"")
    assert deliver(machine, ME, normal(later)) == [
        LocalResult(count=later, result=0, processed=True),
        LocalResult(count=lost, result=None, processed=False),
    ]


def test_failed_multicast_of_a_normal_message_fails_its_waiter_only() -> None:
    machine, _, _ = make()
    to_synced(machine)
    _, [action] = machine.send_normal(1, b"")
    assert isinstance(action, Multicast)
    other, _ = machine.send_normal(1, b"")
    assert machine.multicast_failed(action) == [LocalResult(count=1, result=None, processed=False)]
    assert machine.mode == Mode.SYNCED
    assert deliver(machine, ME, normal(other))[0].count == other


def test_failed_multicast_that_must_succeed_means_leave() -> None:
    machine, _, _ = make()
    [action] = [a for a in machine.on_confchg([ME, N2], [], [N2]) if isinstance(a, Multicast)]
    machine.multicast_failed(action)
    assert machine.mode == Mode.LEAVE


def test_messages_in_error_mode_leave_the_waiter_blocked_until_initialize() -> None:
    machine, _, _ = make()
    to_synced(machine)
    count, _ = machine.send_normal(1, b"")
    deliver(machine, ME, b"x")  # LEAVE
    assert deliver(machine, ME, normal(count)) == []
    assert results(machine.initialize()) == [LocalResult(count=count, result=None, processed=False)]


def test_a_send_from_inside_a_callback_joins_the_event_actions() -> None:
    machine, app, _ = make()
    to_synced(machine)
    nested: list[tuple[int, list[object]]] = []
    app.deliver_hook = lambda sender, subtype, payload: nested.append(
        machine.send_normal(8, b"unlock", wait=False)
    )
    actions = deliver(machine, N2, normal(1))
    assert nested == [(1, [])]
    assert actions == [Multicast(data=normal(1, b"unlock", subtype=8), must_succeed=False, count=1)]
