"""VERIFY_REQUEST / VERIFY (reference 1.10)."""

from __future__ import annotations

from dfsm import DfsmLeave, Mode, Multicast
from tests.fakes.dfsm import ME, N2, N3, T0, T, deliver, make, sent, state, to_start_sync, to_synced
from wire import dcdb
from wire import dfsm as wire

CSUM = bytes(range(32))


def request(csum_id: int) -> bytes:
    return dcdb.encode_verify_request(dcdb.VerifyRequest(csum_id=csum_id))


def verify(csum_id: int, csum: bytes = CSUM) -> bytes:
    return dcdb.encode_verify(dcdb.Verify(csum_id=csum_id, csum=csum))


def test_only_the_lowest_synced_node_sends_verify_request() -> None:
    machine, _, clock = make()
    assert machine.verify_request() == []  # no confchg yet: lowest_nodeid is 0
    to_start_sync(machine)
    assert machine.verify_request() == []  # not SYNCED
    to_synced(machine)
    clock.now = T0 + 3600
    actions = machine.verify_request()
    assert [a.data for a in actions if isinstance(a, Multicast)] == [
        state(T.VERIFY_REQUEST, machine.sync_epoch, request(1), time=T0 + 3600)
    ]
    assert not any(a.must_succeed for a in actions if isinstance(a, Multicast))
    other, _, _ = make(N2)
    to_synced(other)
    assert other.verify_request() == []


def test_a_round_in_flight_delays_the_next_request() -> None:
    machine, _, _ = make()
    to_synced(machine)
    machine.verify_request()
    assert machine.verify_request() == []  # csum_counter 1 != csum_id 0
    deliver(machine, ME, state(T.VERIFY_REQUEST, machine.sync_epoch, request(1)))
    [msg] = sent(machine.verify_request())
    assert isinstance(msg, wire.StateMessage)
    assert msg.payload == request(2)


def test_confchg_invalidates_the_round_in_flight() -> None:
    machine, _, _ = make()
    to_synced(machine)
    machine.verify_request()
    to_synced(machine, (ME, N2, N3))  # csum_id = csum_counter
    [msg] = sent(machine.verify_request())
    assert isinstance(msg, wire.StateMessage)
    assert msg.payload == request(2)


def test_requester_computes_and_multicasts_verify() -> None:
    machine, app, _ = make(csum=CSUM)
    to_synced(machine)
    actions = deliver(machine, ME, state(T.VERIFY_REQUEST, machine.sync_epoch, request(1)))
    assert app.names()[-1] == "checksum"
    [action] = actions
    assert isinstance(action, Multicast)
    assert action.must_succeed
    assert action.data == state(T.VERIFY, machine.sync_epoch, verify(1))


def test_others_compute_but_do_not_answer_and_then_compare() -> None:
    machine, app, _ = make(N2, csum=CSUM)
    to_synced(machine)
    assert deliver(machine, ME, state(T.VERIFY_REQUEST, machine.sync_epoch, request(1))) == []
    assert app.names()[-1] == "checksum"
    assert deliver(machine, ME, state(T.VERIFY, machine.sync_epoch, verify(1))) == []
    assert machine.mode == Mode.SYNCED


def test_checksum_mismatch_means_leave() -> None:
    machine, _, _ = make(N2, csum=CSUM)
    to_synced(machine)
    deliver(machine, ME, state(T.VERIFY_REQUEST, machine.sync_epoch, request(1)))
    deliver(machine, ME, state(T.VERIFY, machine.sync_epoch, verify(1, bytes(32))))
    assert machine.mode == Mode.LEAVE
    assert machine.restartable


def test_verify_without_a_saved_checksum_is_skipped() -> None:
    machine, _, _ = make(N2, csum=CSUM)
    to_synced(machine)
    deliver(machine, ME, state(T.VERIFY, machine.sync_epoch, verify(1, bytes(32))))  # none saved
    deliver(machine, ME, state(T.VERIFY_REQUEST, machine.sync_epoch, request(1)))
    deliver(machine, ME, state(T.VERIFY, machine.sync_epoch, verify(2, bytes(32))))  # other id
    assert machine.mode == Mode.SYNCED


def test_wrong_lengths_mean_leave() -> None:
    for payload, msg_type in [(b"\0" * 7, T.VERIFY_REQUEST), (b"\0" * 39, T.VERIFY)]:
        machine, _, _ = make(N2)
        to_synced(machine)
        deliver(machine, ME, state(msg_type, machine.sync_epoch, payload))
        assert machine.mode == Mode.LEAVE, msg_type


def test_an_app_without_checksum_checks_only_the_request_length() -> None:
    machine, app, _ = make(N2, verifies=False)
    to_synced(machine)
    deliver(machine, ME, state(T.VERIFY_REQUEST, machine.sync_epoch, request(1)))
    deliver(machine, ME, state(T.VERIFY, machine.sync_epoch, b"short"))
    assert machine.mode == Mode.SYNCED
    assert "checksum" not in app.names()
    deliver(machine, ME, state(T.VERIFY_REQUEST, machine.sync_epoch, b"short"))
    assert machine.mode == Mode.LEAVE


def test_checksum_failure_means_leave() -> None:
    machine, app, _ = make(N2)
    to_synced(machine)
    app.raise_in["checksum"] = DfsmLeave("checksum", "tree inconsistent")
    deliver(machine, ME, state(T.VERIFY_REQUEST, machine.sync_epoch, request(1)))
    assert machine.mode == Mode.LEAVE
