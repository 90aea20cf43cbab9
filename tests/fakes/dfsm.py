"""A recording fake application, message builders and helpers that drive one Dfsm into a mode."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dfsm import Action, Dfsm, DfsmLeave, Member, MemberState, Mode, Multicast, StateDecision
from wire import dfsm as wire

T = wire.MessageType
ME = Member(1, 100)
N2 = Member(2, 200)
N3 = Member(3, 300)
T0 = 1_700_000_000


class Clock:
    """time(NULL) for the machine; tests set ``now``."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass
class FakeApp:
    """Records every callback as (name, args...); behaviour is configured through the fields."""

    state: bytes = b"state"
    verifies: bool = True
    csum: bytes = bytes(range(32))
    result: int = 0
    decide: Callable[[Sequence[MemberState], Member], StateDecision] | None = None
    raise_in: dict[str, DfsmLeave] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    on_synced_hook: Callable[[], None] | None = None
    deliver_hook: Callable[[Member, int, bytes], None] | None = None

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name in self.raise_in:
            raise self.raise_in[name]

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]

    def get_state(self) -> bytes:
        self._call("get_state")
        return self.state

    def process_state_update(self, states: Sequence[MemberState], me: Member) -> StateDecision:
        self._call("process_state_update", tuple(states), me)
        if self.decide is not None:
            return self.decide(states, me)
        return StateDecision(synced=frozenset(s.member for s in states))

    def process_update(self, sender: Member, payload: bytes) -> None:
        self._call("process_update", sender, payload)

    def commit(self) -> None:
        self._call("commit")

    def cleanup(self) -> None:
        self._call("cleanup")

    def deliver(self, sender: Member, subtype: int, payload: bytes, time: int, count: int) -> int:
        self._call("deliver", sender, subtype, payload, time, count)
        if self.deliver_hook is not None:
            self.deliver_hook(sender, subtype, payload)
        return self.result

    def checksum(self) -> bytes:
        self._call("checksum")
        return self.csum

    def on_synced(self) -> None:
        self._call("on_synced")
        if self.on_synced_hook is not None:
            self.on_synced_hook()

    def on_confchg(self, members: Sequence[Member]) -> None:
        self._call("on_confchg", tuple(members))

    def delivered(self) -> list[tuple[Member, int, bytes]]:
        return [(c[1], c[5], c[3]) for c in self.calls if c[0] == "deliver"]


def make(me: Member = ME, *, version: int = 1, **app_fields: Any) -> tuple[Dfsm, FakeApp, Clock]:
    app = FakeApp(**app_fields)
    clock = Clock()
    machine = Dfsm(app, protocol_version=version, nodeid=me.nodeid, pid=me.pid, clock=clock, name="test")
    return machine, app, clock


def normal(count: int, payload: bytes = b"p", *, subtype: int = 1, version: int = 1, time: int = T0) -> bytes:
    msg = wire.NormalMessage(
        subtype=subtype, protocol_version=version, time=time, count=count, payload=payload
    )
    return wire.encode(msg)


def state(msg_type: T, epoch: wire.Epoch, payload: bytes = b"", *, version: int = 1, time: int = T0) -> bytes:
    msg = wire.StateMessage(type=msg_type, protocol_version=version, time=time, epoch=epoch, payload=payload)
    return wire.encode(msg)


def sent(actions: list[Action]) -> list[wire.Message]:
    """The decoded multicasts among ``actions``."""
    return [wire.decode(a.data) for a in actions if isinstance(a, Multicast)]


def sent_types(actions: list[Action]) -> list[str]:
    return [m.type.name if isinstance(m, wire.StateMessage) else "NORMAL" for m in sent(actions)]


def deliver(machine: Dfsm, sender: Member, data: bytes) -> list[Action]:
    return machine.on_deliver(sender.nodeid, sender.pid, data)


def epoch_of(machine: Dfsm) -> wire.Epoch:
    return machine.sync_epoch


def to_start_sync(machine: Dfsm, members: Sequence[Member] = (ME, N2)) -> list[Action]:
    """A confchg with several members: START_SYNC (the lowest also multicasts SYNC_START)."""
    actions = machine.on_confchg(members, [], [m for m in members if m != machine.me])
    assert machine.mode == Mode.START_SYNC
    return actions


def sync_start_from(machine: Dfsm, sender: Member, epoch: wire.Epoch | None = None) -> list[Action]:
    """Deliver SYNC_START from ``sender`` (by default under the sender's new epoch)."""
    epoch = epoch or wire.Epoch(epoch=7, time=T0, nodeid=sender.nodeid, pid=sender.pid)
    return deliver(machine, sender, state(T.SYNC_START, epoch, version=machine.protocol_version))


def states_from(machine: Dfsm, blobs: dict[Member, bytes]) -> list[Action]:
    """Deliver one STATE per member under the machine's current epoch."""
    actions: list[Action] = []
    for member, blob in blobs.items():
        msg = state(T.STATE, machine.sync_epoch, blob, version=machine.protocol_version)
        actions += deliver(machine, member, msg)
    return actions


def to_synced(machine: Dfsm, members: Sequence[Member] = (ME, N2)) -> None:
    """Through a full round in which everybody is synced."""
    to_start_sync(machine, members)
    sync_start_from(machine, min(members))
    states_from(machine, {m: b"same" for m in members})
    assert machine.mode == Mode.SYNCED


def to_update(machine: Dfsm, members: Sequence[Member] = (ME, N2), leader: Member = N2) -> None:
    """Through a round in which only ``leader`` is synced, so this node waits in UPDATE."""
    app = machine._app  # the FakeApp
    assert isinstance(app, FakeApp)
    app.decide = lambda states, me: StateDecision(synced=frozenset({leader}))
    to_start_sync(machine, members)
    sync_start_from(machine, min(members))
    states_from(machine, {m: b"s" + bytes([m.nodeid]) for m in members})
    app.decide = None
    assert machine.mode == Mode.UPDATE
