"""The checks every delivered message passes, in the original's order (reference 1.3)."""

from __future__ import annotations

import pytest

from dfsm import Leave, Member, Mode
from tests.fakes.dfsm import ME, N2, T, deliver, make, normal, state, to_start_sync, to_synced
from wire import dfsm as wire


def base_only(msg_type: int, version: int) -> bytes:
    return wire.BASE_HEADER.pack(msg_type, 0, version, 0, 0)


def test_error_mode_ignores_everything_first() -> None:
    machine, app, _ = make()
    to_synced(machine)
    machine.set_error_mode()
    calls = len(app.calls)
    assert deliver(machine, N2, b"x") == []  # even a short message: check 1 comes first
    assert deliver(machine, N2, normal(1)) == []
    assert len(app.calls) == calls


def test_no_sync_info_means_leave() -> None:
    machine, app, _ = make()
    actions = deliver(machine, N2, normal(1))
    assert machine.mode == Mode.LEAVE
    assert any(isinstance(a, Leave) for a in actions)
    assert "deliver" not in app.names()


@pytest.mark.parametrize("length", [0, 1, 15])
def test_shorter_than_base_header_means_leave(length: int) -> None:
    machine, _, _ = make()
    to_synced(machine)
    deliver(machine, N2, bytes(length))
    assert machine.mode == Mode.LEAVE


@pytest.mark.allow_error_logs
@pytest.mark.parametrize("msg_type", [T.NORMAL, T.STATE, 99])
def test_newer_protocol_is_version_error_before_any_length_check(msg_type: int) -> None:
    machine, _, _ = make(version=1)
    to_synced(machine)
    actions = deliver(machine, N2, base_only(msg_type, 2))
    assert machine.mode == Mode.VERSION_ERROR
    assert not machine.restartable
    assert any(isinstance(a, Leave) for a in actions)


@pytest.mark.parametrize("msg_type", [T.NORMAL, T.SYNC_START, 99])
def test_older_protocol_is_ignored_silently(msg_type: int) -> None:
    machine, app, _ = make(version=1)
    to_synced(machine)
    calls = len(app.calls)
    assert deliver(machine, N2, base_only(msg_type, 0)) == []
    assert deliver(machine, N2, normal(1, version=0)) == []
    assert machine.mode == Mode.SYNCED
    assert len(app.calls) == calls


def test_kvstore_protocol_zero_accepts_zero() -> None:
    machine, app, _ = make(version=0)
    to_synced(machine)
    deliver(machine, N2, normal(1, version=0))
    assert app.delivered() == [(N2, 1, b"p")]


@pytest.mark.parametrize("length", [16, 23])
def test_short_normal_means_leave(length: int) -> None:
    machine, _, _ = make()
    to_synced(machine)
    deliver(machine, N2, normal(1)[:length])
    assert machine.mode == Mode.LEAVE


@pytest.mark.parametrize("length", [16, 24, 31])
def test_short_state_message_means_leave(length: int) -> None:
    machine, _, _ = make()
    to_synced(machine)
    deliver(machine, N2, state(T.UPDATE_COMPLETE, machine.sync_epoch)[:length])
    assert machine.mode == Mode.LEAVE


def unknown_type(epoch: wire.Epoch) -> bytes:
    raw = bytearray(state(T.UPDATE_COMPLETE, epoch))
    raw[0] = 7
    return bytes(raw)


def test_unknown_type_with_wrong_epoch_is_dropped_silently() -> None:
    machine, _, _ = make()
    to_start_sync(machine)
    other = wire.Epoch(epoch=99, time=0, nodeid=9, pid=9)
    assert deliver(machine, N2, unknown_type(other)) == []
    assert machine.mode == Mode.START_SYNC


def test_unknown_type_is_ignored_in_synced_and_leave_otherwise() -> None:
    machine, _, _ = make()
    to_synced(machine)
    assert deliver(machine, N2, unknown_type(machine.sync_epoch)) == []
    assert machine.mode == Mode.SYNCED
    to_start_sync(machine)
    deliver(machine, N2, unknown_type(machine.sync_epoch))
    assert machine.mode == Mode.LEAVE


def test_malformed_payload_is_leave_never_an_exception() -> None:
    machine, _, _ = make()
    to_synced(machine)
    deliver(machine, ME, state(T.VERIFY_REQUEST, machine.sync_epoch, b"\x01\x02\x03"))
    assert machine.mode == Mode.LEAVE
    assert machine.restartable


def test_synced_delivers_without_checking_the_sender() -> None:
    # 1.7: SYNCED delivers at once; neither membership nor the synced flag is checked.
    machine, app, _ = make()
    to_synced(machine)
    deliver(machine, Member(9, 9), normal(1))
    assert app.delivered() == [(Member(9, 9), 1, b"p")]
    assert machine.mode == Mode.SYNCED
