"""Replay one C process's view of one CPG group from dfsm-capture.jsonl into a Dfsm.

The stream of a (pid, group) pair is its confchg and recv events plus its own sends. The machine is
fed the confchg and recv events; an own NORMAL send line becomes ``send_normal`` and an own
VERIFY_REQUEST with nothing pending becomes ``verify_request`` (the hourly timer). Every other own
send must be matched, byte for byte, by a multicast the machine decided on by itself.

The application is an oracle: ``get_state`` returns the STATE the C process actually sent next, the
DCDB leader returns the UPDATE payloads it actually sent, ``checksum`` the checksum of the next
VERIFY, and the leader and synced flags follow the DCDB rule (2.7) on the captured indexes. The
clock reads the time the C process used: the confchg line's second for the new epoch, else the
header time of the next own state message.

Two fix-ups, both forced by the capture rather than the protocol:

* the shim logs a send after ``cpg_mcast_joined`` returns, on the sending thread; a cluster-log
  message sent from the IPC thread can therefore be logged after its own delivery. Such a send line
  is moved before the delivery.
* phase K (node1's third process joining) is in the withheld burst file. When a confchg reports a
  member leaving that this process never saw join, the missing join confchg is inserted first, and
  the counts this process used in phase K are skipped with unsent NORMAL messages.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from dfsm import Action, Dfsm, LocalResult, Member, MemberState, Mode, Multicast, StateDecision
from tests.fakes.dfsm import Clock
from tests.wire import capture
from wire import dcdb
from wire import dfsm as wire

PROTOCOL = {
    capture.DCDB_GROUP: wire.DCDB_PROTOCOL_VERSION,
    capture.KVSTORE_GROUP: wire.KVSTORE_PROTOCOL_VERSION,
}


@dataclass(frozen=True)
class Event:
    id: int
    dir: str
    t: float
    sender: Member | None = None
    raw: bytes = b""
    send_id: int | None = None
    members: tuple[Member, ...] = ()
    left: tuple[Member, ...] = ()
    joined: tuple[Member, ...] = ()
    synthetic: bool = False

    @property
    def msg(self) -> wire.Message:
        return wire.decode(self.raw)

    @property
    def type(self) -> wire.MessageType:
        return wire.MessageType(wire.decode_base_header(self.raw).type)


def _members(entries: list[list[int]]) -> tuple[Member, ...]:
    return tuple(Member(nodeid, pid) for nodeid, pid, _reason in entries)


def load_stream(pid: int, group: str) -> list[Event]:
    """The confchg, recv and own send events of one process in one group, in file order."""
    raw = {line.id: line.raw for line in capture.lines()}
    events = []
    for text in capture.CAPTURE.read_text().splitlines():
        line = json.loads(text)
        if line["local_pid"] != pid or line["group"] != group or line["dir"] == "join":
            continue
        if line["dir"] == "confchg":
            members = _members(line["members"])
            events.append(
                Event(
                    line["id"],
                    "confchg",
                    line["t"],
                    members=members,
                    left=_members(line["left"]),
                    joined=_members(line["joined"]),
                )
            )
        else:
            sender = Member(line["nodeid"], line["pid"])
            events.append(
                Event(
                    line["id"],
                    line["dir"],
                    line["t"],
                    sender,
                    raw[line["id"]],
                    line.get("same_bytes_as_send_id"),
                )
            )
    return _insert_missing_joins(_sends_before_own_deliveries(events))


def _sends_before_own_deliveries(events: list[Event]) -> list[Event]:
    by_id = {e.id: e for e in events}
    out: list[Event] = []
    moved: set[int] = set()
    for event in events:
        if event.id in moved:
            continue
        send = by_id.get(event.send_id) if event.dir == "recv" and event.send_id else None
        if send is not None and send.id > event.id:
            out.append(send)
            moved.add(send.id)
        out.append(event)
    return out


def _insert_missing_joins(events: list[Event]) -> list[Event]:
    out: list[Event] = []
    view: tuple[Member, ...] = ()
    for event in events:
        if event.dir == "confchg":
            unseen = tuple(m for m in event.left if m not in view)
            if unseen and view:
                members = tuple(sorted(view + unseen))
                out.append(
                    Event(-event.id, "confchg", event.t, members=members, joined=unseen, synthetic=True)
                )
            view = event.members
        out.append(event)
    return out


@dataclass
class OracleApp:
    """Answers every callback with what the C process did at that point of the stream."""

    stream: list[Event]
    me: Member
    verifies: bool
    pos: int = 0
    updates: list[bytes] = field(default_factory=list)
    commits: int = 0
    delivered: list[tuple[Member, int]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def _ahead(self, dirs: tuple[str, ...], msg_type: wire.MessageType) -> Event:
        for event in self.stream[self.pos + 1 :]:
            if (
                event.dir in dirs
                and event.raw
                and event.type == msg_type
                and (event.dir == "recv" or event.sender == self.me)
            ):
                return event
        raise AssertionError(f"no {msg_type.name} ahead of event {self.stream[self.pos].id}")

    def get_state(self) -> bytes:
        self.calls.append("get_state")
        return self._ahead(("send",), wire.MessageType.STATE).msg.payload

    def process_state_update(self, states: Sequence[MemberState], me: Member) -> StateDecision:
        self.calls.append("process_state_update")
        if not self.verifies:  # kvstore: everybody synced, nothing to send
            return StateDecision(synced=frozenset(s.member for s in states))
        leader = dcdb_leader(states)
        synced = frozenset(s.member for s in states if s.state == leader.state)
        if leader.member != me:
            return StateDecision(synced=synced)
        return StateDecision(synced=synced, updates=self._own_updates(), send_update_complete=True)

    def _own_updates(self) -> tuple[bytes, ...]:
        payloads = []
        for event in self.stream[self.pos + 1 :]:
            if event.dir == "send" and event.type == wire.MessageType.UPDATE_COMPLETE:
                return tuple(payloads)
            if event.dir == "send" and event.type == wire.MessageType.UPDATE:
                payloads.append(event.msg.payload)
        raise AssertionError("the leader sent no UPDATE_COMPLETE")

    def process_update(self, sender: Member, payload: bytes) -> None:
        self.updates.append(payload)

    def commit(self) -> None:
        self.commits += 1

    def cleanup(self) -> None:
        self.calls.append("cleanup")

    def deliver(self, sender: Member, subtype: int, payload: bytes, time: int, count: int) -> int:
        self.delivered.append((sender, count))
        return 0

    def checksum(self) -> bytes:
        msg = self._ahead(("send", "recv"), wire.MessageType.VERIFY).msg
        return dcdb.decode_verify(msg.payload).csum

    def on_synced(self) -> None:
        self.calls.append("on_synced")

    def on_confchg(self, members: Sequence[Member]) -> None:
        self.calls.append("on_confchg")


def dcdb_leader(states: Sequence[MemberState]) -> MemberState:
    """Reference 2.7: highest version, then root mtime, then the lowest (nodeid, pid)."""
    leader = states[0]
    for candidate in states[1:]:
        a, b = dcdb.decode_index(candidate.state), dcdb.decode_index(leader.state)
        if a.version > b.version or (a.version == b.version and a.mtime > b.mtime):
            leader = candidate
    return leader


@dataclass
class Replay:
    """What happened when the stream was fed into a Dfsm."""

    machine: Dfsm
    app: OracleApp
    problems: list[str] = field(default_factory=list)
    modes: list[tuple[int, Mode]] = field(default_factory=list)
    results: list[LocalResult] = field(default_factory=list)
    matched: list[int] = field(default_factory=list)
    """The ids of own send lines the machine reproduced byte for byte."""


def replay(pid: int, group: str) -> tuple[list[Event], Replay]:
    stream = load_stream(pid, group)
    me = next(e.sender for e in stream if e.dir == "send")
    assert me is not None
    clock = Clock()
    app = OracleApp(stream, me, verifies=group == capture.DCDB_GROUP)
    machine = Dfsm(
        app, protocol_version=PROTOCOL[group], nodeid=me.nodeid, pid=me.pid, clock=clock, name=group
    )
    run = Replay(machine, app)
    produced: deque[bytes] = deque()
    machine.initialize()
    for index, event in enumerate(stream):
        app.pos = index
        actions = _feed(run, stream, index, clock, produced)
        for action in actions:
            if isinstance(action, Multicast) and action.count is None:
                produced.append(action.data)
            elif isinstance(action, Multicast):
                run.problems.append(f"line {event.id}: the machine resent message {action.count}")
            elif isinstance(action, LocalResult):
                run.results.append(action)
        run.modes.append((event.id, machine.mode))
    run.problems += [f"multicast never sent by C: {wire.decode(d)}" for d in produced]
    return stream, run


def _feed(run: Replay, stream: list[Event], index: int, clock: Clock, produced: deque[bytes]) -> list[Action]:
    event, machine = stream[index], run.machine
    if event.dir == "confchg":
        clock.now = int(event.t)
        return machine.on_confchg(event.members, event.left, event.joined)
    if event.dir == "recv":
        clock.now = _next_send_time(stream, index, event)
        assert event.sender is not None
        return machine.on_deliver(event.sender.nodeid, event.sender.pid, event.raw)
    msg = event.msg
    clock.now = msg.time
    if isinstance(msg, wire.NormalMessage):
        return _own_normal(run, event, msg)
    actions = (
        machine.verify_request() if not produced and event.type == wire.MessageType.VERIFY_REQUEST else []
    )
    produced.extend(a.data for a in actions if isinstance(a, Multicast))
    if not produced:
        run.problems.append(f"C sent {event.type.name} (line {event.id}); the machine decided nothing")
    elif produced.popleft() != event.raw:
        run.problems.append(f"line {event.id}: the machine's {event.type.name} differs from C's")
    else:
        run.matched.append(event.id)
    return []


def _own_normal(run: Replay, event: Event, msg: wire.NormalMessage) -> list[Action]:
    machine = run.machine
    while machine.msgcount + 1 < msg.count:  # counts used in the withheld phase K
        machine.send_normal(0, b"", wait=False)
    _, actions = machine.send_normal(msg.subtype, msg.payload)
    if [a.data for a in actions if isinstance(a, Multicast)] != [event.raw]:
        run.problems.append(f"line {event.id}: NORMAL bytes differ")
    else:
        run.matched.append(event.id)
    return [a for a in actions if not isinstance(a, Multicast)]


def _next_send_time(stream: list[Event], index: int, event: Event) -> int:
    """The header time of the own state message this delivery made C send, if it made it send one."""
    following = stream[index + 1] if index + 1 < len(stream) else None
    if following is not None and following.dir == "send" and following.type != wire.MessageType.NORMAL:
        return following.msg.time
    return int(event.t)
