"""Garbage from a group member fed into a ``dfsm.Dfsm`` in each mode: LEAVE or ignore, never raise.

The machine runs a small DCDB-like application that decodes what it is given exactly as
replication/dcdb_app.py does (a WireFormatError becomes DfsmLeave). A rogue member, whose STATE made
it part of the group, then sends a few messages: random bytes, mutated captured messages, good
headers over bad payloads, some stamped with the current sync epoch so that they pass the epoch
check. After each one:

- no exception escapes ``on_deliver``;
- a Leave action comes exactly when the machine enters an error mode;
- a message of an older protocol is ignored without a trace, a newer one is VERSION_ERROR;
- a message the codecs reject (garbage/classify) changes neither the application's data nor the
  mode, except into LEAVE or VERSION_ERROR.

Then the rogue leaves and the node must recover: rejoin, resync with the honest member, apply
its next write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dfsm import Action, Dfsm, DfsmLeave, Leave, Member, MemberState, Mode, Multicast, StateDecision
from errors import WireFormatError
from tests.fuzz import corpus
from tests.fuzz.garbage import (
    DCDB_GROUP,
    NEWER,
    OLDER,
    WELL_FORMED,
    classify,
    with_epoch,
    with_version,
)
from tests.fuzz.strategies import fuzz, garbage
from wire import dcdb
from wire import dfsm as wire

EXAMPLES = 150
ME = Member(1, 100)
HONEST = Member(2, 200)
ROGUE = Member(2, 4242)
"""Like the real rogue: a second process on node 2."""
T0 = 1_700_000_000
T = wire.MessageType


@dataclass
class TreeApp:
    """A DCDB-like application whose data is a dict path -> content."""

    state: bytes
    data: dict[str, bytes] = field(default_factory=dict)
    pending: list[dcdb.UpdateRecord] = field(default_factory=list)
    calls: int = 0
    verifies: bool = True

    def get_state(self) -> bytes:
        self.calls += 1
        return self.state

    def process_state_update(self, states: Sequence[MemberState], me: Member) -> StateDecision:
        self.calls += 1
        try:
            parsed = [(s, dcdb.decode_index(s.state)) for s in states]
        except WireFormatError as exc:
            raise DfsmLeave("STATE", str(exc)) from exc
        leader = max(parsed, key=lambda p: (p[1].version, p[1].mtime))[0]
        synced = frozenset(s.member for s, _ in parsed if s.state == leader.state)
        return StateDecision(synced=synced, send_update_complete=leader.member == me)

    def process_update(self, sender: Member, payload: bytes) -> None:
        self.calls += 1
        try:
            self.pending.append(dcdb.decode_update(payload))
        except WireFormatError as exc:
            raise DfsmLeave("UPDATE", str(exc)) from exc

    def commit(self) -> None:
        self.calls += 1
        self.data.update({rec.name: rec.data for rec in self.pending})

    def cleanup(self) -> None:
        self.pending = []

    def deliver(self, sender: Member, subtype: int, payload: bytes, time: int, count: int) -> int:
        self.calls += 1
        try:
            message = dcdb.decode_payload(subtype, payload)
        except WireFormatError as exc:
            raise DfsmLeave("NORMAL", str(exc)) from exc
        if isinstance(message, dcdb.FuseMessage) and message.path is not None:
            self.data[message.path] = message.data
        return 0

    def checksum(self) -> bytes:
        return bytes(32)

    def on_synced(self) -> None:
        pass

    def on_confchg(self, members: Sequence[Member]) -> None:
        pass


def indexes() -> tuple[bytes, bytes]:
    """Two real memdb indexes of different versions (ours, and a newer one for the leader)."""
    by_version = sorted(corpus.payloads("index"), key=lambda raw: dcdb.decode_index(raw).version)
    return by_version[0], by_version[-1]


def state_msg(msg_type: T, epoch: wire.Epoch, payload: bytes = b"") -> bytes:
    return wire.encode(
        wire.StateMessage(type=msg_type, protocol_version=1, time=T0, epoch=epoch, payload=payload)
    )


def write_msg(count: int, path: str, data: bytes) -> bytes:
    payload = dcdb.encode_fuse(dcdb.FuseMessage(path=path, data=data))
    return wire.encode(
        wire.NormalMessage(
            subtype=dcdb.DcdbMessageType.WRITE, protocol_version=1, time=T0, count=count, payload=payload
        )
    )


def own_multicasts(machine: Dfsm, actions: list[Action]) -> None:
    """Deliver our own multicasts back to us, as CPG does (and theirs, recursively)."""
    for action in actions:
        if isinstance(action, Multicast):
            own_multicasts(machine, machine.on_deliver(ME.nodeid, ME.pid, action.data))


def sync_round(machine: Dfsm, members: Sequence[Member], others: dict[Member, bytes], joined: bool) -> None:
    """A confchg, our SYNC_START and STATE come back, then the others' STATEs."""
    actions = machine.on_confchg(members, [], [m for m in members if m != ME] if joined else [])
    own_multicasts(machine, actions)
    for member, index in others.items():
        own_multicasts(
            machine,
            machine.on_deliver(member.nodeid, member.pid, state_msg(T.STATE, machine.sync_epoch, index)),
        )


def machine_in(mode: str) -> tuple[Dfsm, TreeApp]:
    """A node whose group holds the rogue, in START_SYNC (waiting for the rogue), SYNCED or UPDATE."""
    old, new = indexes()
    app = TreeApp(state=old)
    machine = Dfsm(app, protocol_version=1, nodeid=ME.nodeid, pid=ME.pid, clock=lambda: T0, name="fuzz")
    machine.initialize()
    members = (ME, HONEST, ROGUE)
    if mode == "start_sync":
        sync_round(machine, members, {HONEST: old}, joined=True)
        assert machine.mode == Mode.START_SYNC
    elif mode == "synced":
        sync_round(machine, members, {HONEST: old, ROGUE: old}, joined=True)
        assert machine.mode == Mode.SYNCED
    else:
        sync_round(machine, members, {HONEST: new, ROGUE: new}, joined=True)
        assert machine.mode == Mode.UPDATE
    app.calls = 0
    return machine, app


@st.composite
def rogue_messages(draw: st.DrawFn) -> tuple[bytes, str, bool]:
    """(bytes, version choice, stamp with the current epoch?)."""
    seeds = corpus.messages(DCDB_GROUP)
    header_over_garbage = st.builds(
        lambda msg_type, payload: state_msg(msg_type, wire.Epoch(epoch=0, time=0, nodeid=0, pid=0), payload),
        st.sampled_from(list(T)[1:]),
        garbage(corpus.payloads("index") + corpus.payloads("update"), max_random=128),
    )
    data = draw(st.one_of(garbage(seeds), header_over_garbage))
    version = draw(st.sampled_from(("keep", "ours", "ours", "older")))
    return data, version, draw(st.booleans())


def deliver_garbage(machine: Dfsm, app: TreeApp, data: bytes) -> None:
    before_mode, before_data, before_calls = machine.mode, dict(app.data), app.calls
    kind = classify(DCDB_GROUP, data)
    actions = machine.on_deliver(ROGUE.nodeid, ROGUE.pid, data)  # must not raise
    leaves = [a for a in actions if isinstance(a, Leave)]
    entered_error = machine.mode.is_error and not before_mode.is_error
    assert bool(leaves) == entered_error, (kind, before_mode, machine.mode, actions)
    if before_mode.is_error or kind == OLDER:
        assert (actions, app.calls, machine.mode) == ([], before_calls, before_mode)
    elif kind == NEWER:
        assert machine.mode == Mode.VERSION_ERROR
    if kind != WELL_FORMED:
        assert app.data == before_data, kind
        assert machine.mode in (before_mode, Mode.LEAVE, Mode.VERSION_ERROR), (
            kind,
            before_mode,
            machine.mode,
        )


def recover(machine: Dfsm, app: TreeApp) -> None:
    """The rogue left: rejoin if we left, resync with the honest member, apply its next write."""
    if machine.mode == Mode.VERSION_ERROR:
        assert not machine.restartable
        return  # permanent by protocol (dfsm.c): the rogue spoke a newer version
    members = (ME, HONEST)
    if machine.mode.is_error:
        machine.initialize()
        sync_round(machine, members, {HONEST: app.state}, joined=True)
    else:
        actions = machine.on_confchg(members, [ROGUE], [])
        own_multicasts(machine, actions)
        honest_state = state_msg(T.STATE, machine.sync_epoch, app.state)
        own_multicasts(machine, machine.on_deliver(HONEST.nodeid, HONEST.pid, honest_state))
    assert machine.mode == Mode.SYNCED, machine.mode
    machine.on_deliver(HONEST.nodeid, HONEST.pid, write_msg(10_000, "after/rogue.cfg", b"still here"))
    assert app.data["after/rogue.cfg"] == b"still here"


@pytest.mark.allow_error_logs  # VERSION_ERROR is logged as an error, as C logs it critical
@pytest.mark.parametrize("mode", ["start_sync", "synced", "update"])
def test_rogue_garbage_is_a_leave_or_ignored(mode: str) -> None:
    seen: dict[str, int] = {}

    @fuzz(EXAMPLES)
    @given(st.lists(rogue_messages(), min_size=1, max_size=6))
    def run(messages: list[tuple[bytes, str, bool]]) -> None:
        machine, app = machine_in(mode)
        for data, version, stamp in messages:
            if version != "keep":
                data = with_version(data, 1 if version == "ours" else 0)
            if stamp:
                data = with_epoch(data, machine.sync_epoch)
            kind = classify(DCDB_GROUP, data)
            seen[kind] = seen.get(kind, 0) + 1
            deliver_garbage(machine, app, data)
        recover(machine, app)

    run()
    assert {"bad-payload", "short", "newer", "older", "well-formed"} <= set(seen), seen
