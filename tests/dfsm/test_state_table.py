"""The per-mode table of state messages (reference 1.7), its QUIRKs and the epoch filter."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dfsm import Dfsm, Mode
from tests.fakes.dfsm import ME, N2, T, deliver, make, sent_types, state, to_start_sync, to_synced, to_update
from wire import dcdb
from wire import dfsm as wire

OTHER_EPOCH = wire.Epoch(epoch=42, time=5, nodeid=2, pid=200)


def in_start(machine: Dfsm) -> None:
    to_synced(machine)
    machine.initialize()  # START again; sync_info and sync_epoch survive


SETUP: dict[Mode, Callable[[Dfsm], object]] = {
    Mode.START: in_start,
    Mode.START_SYNC: to_start_sync,
    Mode.UPDATE: to_update,
    Mode.SYNCED: to_synced,
}

PAYLOAD = {
    T.SYNC_START: b"",
    T.STATE: b"st",
    T.UPDATE: b"up",
    T.UPDATE_COMPLETE: b"",
    T.VERIFY_REQUEST: dcdb.encode_verify_request(dcdb.VerifyRequest(csum_id=1)),
    T.VERIFY: dcdb.encode_verify(dcdb.Verify(csum_id=1, csum=bytes(32))),
}

LEAVE = "leave"
IGNORE = "ignore"
# (mode, type) -> LEAVE, IGNORE, or the app callback that must run (mode unchanged unless noted)
TABLE: dict[tuple[Mode, T], str] = {
    (Mode.START_SYNC, T.SYNC_START): "get_state",
    (Mode.START_SYNC, T.STATE): "stored",
    (Mode.START_SYNC, T.UPDATE): LEAVE,
    (Mode.START_SYNC, T.UPDATE_COMPLETE): LEAVE,
    (Mode.START_SYNC, T.VERIFY_REQUEST): LEAVE,  # QUIRK
    (Mode.START_SYNC, T.VERIFY): LEAVE,  # QUIRK
    (Mode.UPDATE, T.SYNC_START): LEAVE,
    (Mode.UPDATE, T.STATE): LEAVE,
    (Mode.UPDATE, T.UPDATE): "process_update",
    (Mode.UPDATE, T.UPDATE_COMPLETE): "commit",
    (Mode.UPDATE, T.VERIFY_REQUEST): LEAVE,  # QUIRK
    (Mode.UPDATE, T.VERIFY): LEAVE,  # QUIRK
    (Mode.SYNCED, T.SYNC_START): IGNORE,
    (Mode.SYNCED, T.STATE): IGNORE,
    (Mode.SYNCED, T.UPDATE): IGNORE,
    (Mode.SYNCED, T.UPDATE_COMPLETE): "all synced",
    (Mode.SYNCED, T.VERIFY_REQUEST): "checksum",
    (Mode.SYNCED, T.VERIFY): "compared",
    **{(Mode.START, t): LEAVE for t in PAYLOAD},  # "unknown mode"
}


def message(machine: Dfsm, msg_type: T, epoch: wire.Epoch | None = None) -> bytes:
    if epoch is None:
        epoch = OTHER_EPOCH if msg_type == T.SYNC_START else machine.sync_epoch
    return state(msg_type, epoch, PAYLOAD[msg_type])


@pytest.mark.parametrize(("mode", "msg_type"), list(TABLE), ids=[f"{m.name}-{t.name}" for m, t in TABLE])
def test_state_message_table(mode: Mode, msg_type: T) -> None:
    machine, app, _ = make()
    SETUP[mode](machine)
    assert machine.mode == mode
    calls = len(app.calls)
    actions = deliver(machine, N2, message(machine, msg_type))
    new_calls = app.names()[calls:]
    expected = TABLE[mode, msg_type]
    if expected == LEAVE:
        assert machine.mode == Mode.LEAVE
    elif expected == IGNORE:
        assert (actions, new_calls, machine.mode) == ([], [], mode)
    elif expected == "get_state":
        assert new_calls == ["get_state"]
        assert sent_types(actions) == ["STATE"]
        assert machine.sync_epoch == OTHER_EPOCH
    elif expected == "stored":
        assert (actions, new_calls, machine.mode) == ([], [], mode)
    elif expected == "commit":
        assert new_calls[0] == "commit"
        assert machine.mode == Mode.SYNCED
    elif expected == "all synced":
        assert machine.mode == Mode.SYNCED
        assert all(node.synced for node in machine._sync.nodes)
    elif expected == "compared":
        assert machine.mode == Mode.SYNCED
    else:
        assert new_calls == [expected]
        assert machine.mode == mode


WRONG_EPOCH_TYPES = [T.STATE, T.UPDATE, T.UPDATE_COMPLETE, T.VERIFY_REQUEST, T.VERIFY]


@pytest.mark.parametrize("mode", list(SETUP), ids=[m.name for m in SETUP])
@pytest.mark.parametrize("msg_type", WRONG_EPOCH_TYPES, ids=[t.name for t in WRONG_EPOCH_TYPES])
def test_wrong_epoch_state_messages_are_dropped_silently(mode: Mode, msg_type: T) -> None:
    machine, app, _ = make()
    SETUP[mode](machine)
    calls = len(app.calls)
    assert deliver(machine, N2, message(machine, msg_type, OTHER_EPOCH)) == []
    assert machine.mode == mode
    assert len(app.calls) == calls


def test_sync_start_skips_the_epoch_check_and_is_adopted() -> None:
    machine, _, clock = make()
    to_start_sync(machine)
    clock.now += 3
    actions = deliver(machine, N2, message(machine, T.SYNC_START))
    [msg] = [wire.decode(a.data) for a in actions if hasattr(a, "data")]
    assert isinstance(msg, wire.StateMessage)
    assert (msg.type, msg.epoch, msg.payload, msg.time) == (T.STATE, OTHER_EPOCH, b"state", clock.now)


def test_sync_start_from_a_non_lowest_member_is_processed_anyway() -> None:
    # QUIRK: "ignore sync request from wrong member" is logged, then the request is served.
    machine, app, _ = make(N2)
    to_start_sync(machine, (ME, N2))
    actions = deliver(machine, N2, message(machine, T.SYNC_START))
    assert sent_types(actions) == ["STATE"]
    assert app.names()[-1] == "get_state"
    assert machine.sync_epoch == OTHER_EPOCH


def test_verify_request_while_another_node_is_in_update_makes_it_leave() -> None:
    # 1.7 QUIRK: the lowest node's hourly timer fires while this node still waits in UPDATE.
    machine, app, _ = make(N2)
    to_update(machine, (ME, N2), leader=ME)
    deliver(machine, ME, message(machine, T.VERIFY_REQUEST))
    assert machine.mode == Mode.LEAVE
    assert "checksum" not in app.names()
