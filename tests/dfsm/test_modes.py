"""Mode-setting rule and its escalation (reference 1.4), the synced callback, ERROR mode."""

from __future__ import annotations

import pytest

from dfsm import DfsmFatal, Leave, LocalResult, Mode, ModeChanged
from tests.fakes.dfsm import ME, N2, deliver, make, normal, to_synced

M = Mode


@pytest.mark.parametrize(
    ("old", "new", "result"),
    [
        (M.START, M.SYNCED, M.SYNCED),
        (M.SYNCED, M.START_SYNC, M.START_SYNC),
        (M.LEAVE, M.START, M.START),  # below 128 can always be set
        (M.ERROR, M.SYNCED, M.SYNCED),  # ... even over ERROR (dfsm_set_mode)
        (M.SYNCED, M.LEAVE, M.LEAVE),
        (M.LEAVE, M.VERSION_ERROR, M.VERSION_ERROR),
        (M.LEAVE, M.ERROR, M.ERROR),
        (M.VERSION_ERROR, M.ERROR, M.ERROR),
        (M.VERSION_ERROR, M.LEAVE, M.VERSION_ERROR),
        (M.ERROR, M.LEAVE, M.ERROR),
        (M.ERROR, M.VERSION_ERROR, M.ERROR),
    ],
)
def test_mode_setting_rule(old: Mode, new: Mode, result: Mode) -> None:
    machine, _, _ = make()
    machine._mode = old
    actions = machine._run(lambda: machine._set_mode(new))
    assert machine.mode == result
    assert actions == ([ModeChanged(old=old, new=new)] if result != old else [])


def test_starts_in_start_and_is_restartable() -> None:
    machine, _, _ = make()
    assert machine.mode == Mode.START
    assert machine.restartable
    assert not machine.we_are_member


def test_synced_callback_fires_on_every_change_to_synced() -> None:
    machine, app, _ = make()
    machine.on_confchg([ME], [], [ME])
    assert app.names().count("on_synced") == 1
    machine._run(lambda: machine._set_mode(Mode.SYNCED))  # no change, no callback
    assert app.names().count("on_synced") == 1
    to_synced(machine, (ME, N2))
    assert app.names().count("on_synced") == 2


def test_set_error_mode_is_permanent() -> None:
    machine, _, _ = make()
    to_synced(machine)
    actions = machine.set_error_mode()
    assert machine.mode == Mode.ERROR
    assert any(isinstance(a, Leave) for a in actions)
    assert not machine.restartable
    with pytest.raises(DfsmFatal):
        machine.initialize()


def test_fatal_from_deliver_sets_error_and_keeps_the_result() -> None:
    machine, app, _ = make()
    to_synced(machine)
    app.raise_in["deliver"] = DfsmFatal("memdb", "errors flag", result=-5)
    count, _ = machine.send_normal(1, b"x")
    actions = deliver(machine, ME, normal(count))
    assert machine.mode == Mode.ERROR
    assert LocalResult(count=count, result=-5, processed=True) in actions
    # LEAVE does not replace ERROR
    assert [a.new for a in actions if isinstance(a, ModeChanged)] == [Mode.ERROR]


def test_leave_is_recoverable() -> None:
    machine, _, _ = make()
    to_synced(machine)
    deliver(machine, ME, b"short")
    assert machine.mode == Mode.LEAVE
    assert machine.restartable
    machine.initialize()
    assert machine.mode == Mode.START
