"""An in-memory CPG joining several Dfsm instances, and a toy replicated database to sync.

``FakeCpg`` keeps one FIFO of events in total order. A multicast is appended when its sender
carries out the action and is delivered, when its turn comes, to every live process whose current
view contains the sender (so a partition splits delivery). Joins, exits, partitions and heals
append one configuration change per component. After each event a node whose machine is in an
error mode leaves the group, as the original's dispatch does.

``ToyDb`` plays DCDB: state = its whole content with a root version and mtime; the leader is the
highest (version, mtime), then the lowest member; the leader sends one UPDATE per differing key plus
a root record and always UPDATE_COMPLETE; commit must reproduce the leader's state exactly.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dfsm import (
    Action,
    Dfsm,
    DfsmFatal,
    DfsmLeave,
    LocalResult,
    Member,
    MemberState,
    Multicast,
    StateDecision,
)
from tests.fakes.dfsm import T0, Clock


@dataclass
class ToyDb:
    """A replicated key/value store with DCDB's sync rules."""

    data: dict[str, str] = field(default_factory=dict)
    version: int = 0
    mtime: int = 0
    quorate: bool = True
    verifies: bool = True
    updates: list[dict[str, Any]] = field(default_factory=list)
    master: bytes = b""

    def get_state(self) -> bytes:
        return json.dumps({"v": self.version, "m": self.mtime, "d": self.data}, sort_keys=True).encode()

    def process_state_update(self, states: Sequence[MemberState], me: Member) -> StateDecision:
        parsed = [json.loads(s.state) for s in states]
        leader = 0
        for i, idx in enumerate(parsed):
            best = parsed[leader]
            if idx["v"] > best["v"] or (idx["v"] == best["v"] and idx["m"] > best["m"]):
                leader = i
        self.master = states[leader].state
        synced = frozenset(s.member for s in states if s.state == self.master)
        if states[leader].member != me:
            return StateDecision(synced=synced)
        return StateDecision(synced=synced, updates=self._updates(parsed, leader), send_update_complete=True)

    def _updates(self, parsed: list[dict[str, Any]], leader: int) -> tuple[bytes, ...]:
        master = parsed[leader]
        others = [idx for i, idx in enumerate(parsed) if i != leader]
        keys = sorted({k for idx in others for k, v in master["d"].items() if idx["d"].get(k) != v})
        records = [{"k": k, "val": master["d"][k]} for k in keys]
        if any(idx != master for idx in others):  # DCDB: the root only when it differs somewhere
            records.append({"root": [master["v"], master["m"]], "keys": sorted(master["d"])})
        return tuple(json.dumps(r).encode() for r in records)

    def process_update(self, sender: Member, payload: bytes) -> None:
        self.updates.append(json.loads(payload))

    def commit(self) -> None:
        root = next(r for r in self.updates if "root" in r)
        data = {k: v for k, v in self.data.items() if k in root["keys"]}
        data.update({r["k"]: r["val"] for r in self.updates if "k" in r})
        self.data, (self.version, self.mtime) = data, root["root"]
        if self.get_state() != self.master:
            raise DfsmFatal("commit", "new index does not match master index")

    def cleanup(self) -> None:
        self.updates = []

    def deliver(self, sender: Member, subtype: int, payload: bytes, time: int, count: int) -> int:
        if not self.quorate:
            raise DfsmLeave("deliver", "received write while not quorate - trigger resync")
        key, _, value = payload.decode().partition("=")
        self.data[key] = value
        self.version += 1
        self.mtime = time
        return self.version

    def checksum(self) -> bytes:
        return hashlib.sha256(self.get_state()).digest()

    def on_synced(self) -> None:
        pass

    def on_confchg(self, members: Sequence[Member]) -> None:
        pass


@dataclass
class Node:
    """One pmxcfs process and what its cluster actor does with the machine's actions."""

    member: Member
    machine: Dfsm
    db: ToyDb
    joined: bool = False
    view: tuple[Member, ...] = ()
    results: dict[int, LocalResult] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Confchg:
    targets: tuple[Member, ...]
    members: tuple[Member, ...]
    left: tuple[Member, ...]
    joined: tuple[Member, ...]


@dataclass(frozen=True)
class Msg:
    sender: Member
    data: bytes


class FakeCpg:
    """One CPG group of several processes, driven step by step."""

    def __init__(self) -> None:
        self.clock = Clock(T0)
        self.nodes: dict[Member, Node] = {}
        self.events: deque[Confchg | Msg] = deque()
        self.components: list[set[int]] = [set(range(1, 100))]
        self.wire: list[tuple[Member, bytes]] = []
        """Every delivered multicast in total order (sender, bytes)."""
        self._views: dict[Member, tuple[Member, ...]] = {}
        """The member list of the last confchg queued for each process."""

    # -- processes

    def start(self, nodeid: int, pid: int, db: ToyDb | None = None) -> Node:
        """A pmxcfs process starts (or rejoins with ``db`` kept on disk) and joins the group."""
        member = Member(nodeid, pid)
        db = db if db is not None else ToyDb()
        machine = Dfsm(db, protocol_version=1, nodeid=nodeid, pid=pid, clock=self.clock, name=f"n{nodeid}")
        node = Node(member, machine, db)
        self.nodes[member] = node
        self.rejoin(node)
        return node

    def rejoin(self, node: Node) -> None:
        """The service (re)initializes and calls cpg_join."""
        self._execute(node, node.machine.initialize())
        node.joined = True
        self._reconfigure(just_joined=frozenset({node.member}))

    def stop(self, node: Node) -> None:
        """The process exits; corosync notices and tells the others."""
        node.joined = False
        del self.nodes[node.member]
        self._reconfigure()

    def partition(self, *groups: Iterable[int]) -> None:
        self.components = [set(g) for g in groups]
        self._reconfigure()

    def heal(self) -> None:
        self.partition(set().union(*self.components))

    def write(self, node: Node, key: str, value: str) -> int:
        count, actions = node.machine.send_normal(1, f"{key}={value}".encode())
        self._execute(node, actions)
        return count

    # -- running

    def step(self) -> bool:
        if not self.events:
            return False
        event = self.events.popleft()
        if isinstance(event, Confchg):
            self._deliver_confchg(event)
        else:
            self._deliver_msg(event)
        return True

    def run(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            if not self.step():
                return
        raise AssertionError("the cluster did not settle")

    def run_until(self, predicate: Any, limit: int = 10_000) -> None:
        for _ in range(limit):
            if predicate():
                return
            assert self.step(), "ran out of events"
        raise AssertionError("condition never met")

    def live(self) -> list[Node]:
        return [self.nodes[m] for m in sorted(self.nodes)]

    # -- internals

    def _deliver_confchg(self, event: Confchg) -> None:
        for member in event.targets:
            node = self.nodes.get(member)
            if node is None:
                continue
            node.view = event.members if member in event.members else ()
            node.trace.append(f"confchg {[m.nodeid for m in event.members]}")
            self._execute(node, node.machine.on_confchg(event.members, event.left, event.joined))

    def _deliver_msg(self, event: Msg) -> None:
        self.wire.append((event.sender, event.data))
        for node in self.live():
            if event.sender in node.view:
                actions = node.machine.on_deliver(event.sender.nodeid, event.sender.pid, event.data)
                self._execute(node, actions)

    def _execute(self, node: Node, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Multicast) and node.joined:
                self.events.append(Msg(node.member, action.data))
            elif isinstance(action, LocalResult):
                node.results[action.count] = action
        if node.machine.mode.is_error and node.joined and node.member in self.nodes:
            node.trace.append(f"leave ({node.machine.mode.name})")
            node.joined = False
            rest = tuple(m for m in node.view if m != node.member)
            self.events.append(Confchg((node.member,), rest, (node.member,), ()))
            self._views.pop(node.member, None)
            self._reconfigure()

    def _reconfigure(self, just_joined: frozenset[Member] = frozenset()) -> None:
        """Queue one confchg per component whose member list changed; left/joined as each node sees it."""
        group = sorted(m for m, n in self.nodes.items() if n.joined)
        for component in self.components:
            new = tuple(m for m in group if m.nodeid in component)
            batches: dict[tuple[tuple[Member, ...], tuple[Member, ...]], list[Member]] = {}
            for member in new:
                if member in just_joined:
                    old = tuple(m for m in new if m not in just_joined)
                else:
                    old = self._views.get(member, ())
                if old == new:
                    continue
                key = (tuple(m for m in old if m not in new), tuple(m for m in new if m not in old))
                batches.setdefault(key, []).append(member)
                self._views[member] = new
            for (left, joined), targets in batches.items():
                self.events.append(Confchg(tuple(targets), new, left, joined))
