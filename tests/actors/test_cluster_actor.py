"""ClusterActor with a fake CPG handle: joining the status group, who is online, reconnects.

Node 1 is this process (its pid is ours), so the kvstore DFSM sees itself in the confchgs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

import actors.cluster_actor as cluster_actor
from actors.cluster_actor import STATUS_GROUP, ClusterActor
from actors.messages import (
    BroadcastKv,
    BroadcastLog,
    FdReadable,
    GroupModeChanged,
    KvstoreSynced,
    MembershipChanged,
    ServiceStateChanged,
    Tick,
)
from bindings.libcpg import CpgAddress, CpgReason
from corosync.poller import FdPoller
from errors import CsError, CsLibraryError, CsTryAgain
from status.clusterlog import new_entry
from tests.fakes.actors import Recorder
from tests.fakes.clock import Clock
from tests.fakes.corosync import Poller
from wire import dfsm, kvstore
from wire.dfsm import MessageType, decode_base_header
from wire.kvstore import KvstoreMessageType, KvUpdate

WAIT_S = 5.0


def library_error(call: str) -> CsLibraryError:
    return CsLibraryError(2, "CS_ERR_LIBRARY", call)


def pid_of(nodeid: int) -> int:
    return os.getpid() if nodeid == 1 else 1000 + nodeid


def addr(nodeid: int, reason: int = 0) -> CpgAddress:
    return CpgAddress(nodeid, pid_of(nodeid), reason)


class Corosync:
    """The group state the fake handles see, and every handle created."""

    def __init__(self) -> None:
        self.running = True
        self.join_error: CsError | None = None
        self.members: list[int] = []
        self.handles: list[FakeCpgHandle] = []
        self.sent: list[bytes] = []
        self.pipes = False
        self._next_fd = 70

    def fd(self) -> tuple[int, int | None]:
        if self.pipes:
            r, w = os.pipe()
            os.set_blocking(r, False)
            return r, w
        self._next_fd += 1
        return self._next_fd, None

    def live(self) -> list[FakeCpgHandle]:
        return [h for h in self.handles if h.joined and not h.finalized]

    def confchg(self, members: Sequence[int], left: Sequence[int] = (), joined: Sequence[int] = ()) -> None:
        self.members = list(members)
        for handle in self.live():
            handle.queue(("confchg", tuple(members), tuple(left), tuple(joined)))

    def deliver(self, nodeid: int, payload: bytes) -> None:
        for handle in self.live():
            handle.queue(("deliver", nodeid, payload))

    def close(self) -> None:
        for handle in self.handles:
            handle.close_pipe()


class FakeCpgHandle:
    def __init__(self, corosync: Corosync) -> None:
        self.corosync = corosync
        self.deliver: Callable[..., None] | None = None
        self.confchg: Callable[..., None] | None = None
        self.groups: list[bytes] = []
        self.finalized = 0
        self.dispatch_error: CsError | None = None
        self.pending: list[tuple[Any, ...]] = []
        self._fd, self._w = corosync.fd()
        corosync.handles.append(self)

    @property
    def joined(self) -> bool:
        return bool(self.groups)

    def initialize(self, deliver: Callable[..., None], confchg: Callable[..., None]) -> None:
        if not self.corosync.running:
            raise library_error("cpg_model_initialize")
        self.deliver, self.confchg = deliver, confchg

    def join(self, group: bytes) -> None:
        if self.corosync.join_error is not None:
            raise self.corosync.join_error
        self.groups.append(group)
        # corosync answers a join with a confchg that lists this node as joined
        members = sorted({*self.corosync.members, 1})
        self.corosync.members = members
        self.queue(("confchg", tuple(members), (), (1,)))

    def fd(self) -> int:
        return self._fd

    def local_get(self) -> int:
        return 1

    def mcast(self, parts: list[bytes]) -> None:
        self.corosync.sent.append(b"".join(parts))

    def queue(self, item: tuple[Any, ...]) -> None:
        self.pending.append(item)
        if self._w is not None:
            os.write(self._w, b"x")

    def dispatch(self) -> None:
        if self.dispatch_error is not None:
            raise self.dispatch_error
        if self._w is not None:
            with contextlib.suppress(BlockingIOError):
                os.read(self._fd, 4096)
        items, self.pending = self.pending, []
        assert self.deliver is not None
        assert self.confchg is not None
        for item in items:
            if item[0] == "confchg":
                _, members, left, joined = item
                self.confchg(
                    STATUS_GROUP,
                    tuple(addr(n) for n in members),
                    tuple(addr(n, CpgReason.LEAVE) for n in left),
                    tuple(addr(n, CpgReason.JOIN) for n in joined),
                )
            else:
                _, nodeid, payload = item
                self.deliver(STATUS_GROUP, nodeid, pid_of(nodeid), payload)

    def finalize(self) -> None:
        self.finalized += 1

    def close_pipe(self) -> None:
        if self._w is not None:
            os.close(self._w)
            os.close(self._fd)
            self._w = None


@pytest.fixture
def corosync(monkeypatch: pytest.MonkeyPatch) -> Iterator[Corosync]:
    fake = Corosync()
    monkeypatch.setattr(cluster_actor, "CpgHandle", lambda: FakeCpgHandle(fake))
    yield fake
    fake.close()


class Parts:
    def __init__(self, corosync: Corosync) -> None:
        self.corosync = corosync
        self.poller = Poller()
        self.clock = Clock()
        self.status = Recorder()
        self.actor = ClusterActor(
            self.poller,  # type: ignore[arg-type]
            status=self.status,  # type: ignore[arg-type]
            membership_listeners=(self.status,),  # type: ignore[arg-type]
            clock=self.clock,
        )

    @property
    def handle(self) -> FakeCpgHandle:
        return self.corosync.handles[-1]

    def dispatch(self) -> None:
        self.actor.on_receive(FdReadable(fd=self.handle.fd()))

    def online(self) -> list[set[int]]:
        return [set(m.online) for m in self.status.of(MembershipChanged)]

    def connected(self) -> bool:
        return self.status.services.get("kvstore", False)

    def tick(self, seconds: float = 1.0) -> None:
        self.clock.now += seconds
        self.actor.on_receive(Tick())


@pytest.fixture
def parts(corosync: Corosync) -> Parts:
    return Parts(corosync)


@pytest.fixture
def started(parts: Parts) -> Parts:
    parts.actor.on_start()
    return parts


def test_group_name() -> None:
    assert STATUS_GROUP == b"pve_kvstore_v1"


def test_start_joins_the_status_group(started: Parts) -> None:
    assert started.handle.groups == [b"pve_kvstore_v1"]
    assert started.connected()
    assert started.poller.calls == [("watch", started.handle.fd())]
    assert started.online() == []  # nothing is known before the first confchg


def test_confchg_tells_who_is_online(corosync: Corosync, started: Parts) -> None:
    started.dispatch()  # the join's own confchg
    assert started.online() == [{1}]
    corosync.confchg([1, 2, 3], joined=[2, 3])
    started.dispatch()
    assert started.online() == [{1}, {1, 2, 3}]
    corosync.confchg([1, 2, 3])  # same members: told again (the cluster info version goes up)
    started.dispatch()
    assert started.online() == [{1}, {1, 2, 3}, {1, 2, 3}]
    corosync.confchg([1, 3], left=[2])
    started.dispatch()
    assert started.online() == [{1}, {1, 2, 3}, {1, 2, 3}, {1, 3}]


def test_several_confchgs_in_one_dispatch(corosync: Corosync, started: Parts) -> None:
    corosync.confchg([1, 2], joined=[2])
    corosync.confchg([1, 2, 3], joined=[3])
    started.dispatch()
    assert started.online()[-1] == {1, 2, 3}


def test_lowest_member_starts_the_sync(corosync: Corosync, started: Parts) -> None:
    started.dispatch()
    assert corosync.sent == []  # alone: synced at once, nothing to exchange
    corosync.confchg([1, 2], joined=[2])
    started.dispatch()
    (sync_start,) = corosync.sent
    assert decode_base_header(sync_start).type == MessageType.SYNC_START  # sent by the lowest member


def test_alone_the_group_is_synced_at_once_and_the_status_actor_told(
    corosync: Corosync, started: Parts
) -> None:
    started.dispatch()
    assert started.status.of(KvstoreSynced) == [KvstoreSynced()]


def test_broadcasts_are_kvstore_normal_messages(corosync: Corosync, started: Parts) -> None:
    started.dispatch()
    started.actor.on_receive(BroadcastKv(key="kv/test", value=b"v\0"))
    entry = new_entry(uid=1, time=5, priority=6, tag="t", pid=9, node="node1", ident="root", msg="m")
    started.actor.on_receive(BroadcastLog(entry=entry))
    update, log_message = (dfsm.decode(raw) for raw in corosync.sent)
    assert isinstance(update, dfsm.NormalMessage)
    assert isinstance(log_message, dfsm.NormalMessage)
    assert (update.subtype, update.protocol_version, update.count) == (KvstoreMessageType.UPDATE, 0, 1)
    assert kvstore.decode_update(update.payload) == KvUpdate(key="kv/test", value=b"v\0")
    assert (log_message.subtype, log_message.count) == (KvstoreMessageType.LOG, 2)
    assert kvstore.decode_log(log_message.payload) == entry


def test_connection_and_mode_changes_are_reported(corosync: Corosync, started: Parts) -> None:
    started.dispatch()
    assert started.status.of(ServiceStateChanged) == [ServiceStateChanged(name="kvstore", connected=True)]
    assert started.status.of(GroupModeChanged) == [GroupModeChanged(group="kvstore", mode="synced")]
    corosync.confchg([1, 2], joined=[2])
    started.dispatch()
    assert started.status.of(GroupModeChanged)[-1] == GroupModeChanged(group="kvstore", mode="start_sync")
    started.actor.on_stop()
    assert started.status.of(ServiceStateChanged)[-1] == ServiceStateChanged(name="kvstore", connected=False)


def test_broadcast_while_down_is_dropped(corosync: Corosync, parts: Parts) -> None:
    corosync.running = False
    parts.actor.on_start()
    parts.actor.on_receive(BroadcastKv(key="kv/test", value=b"v"))
    assert corosync.sent == []


def test_join_failure_closes_the_handle(
    corosync: Corosync, parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    corosync.join_error = CsError(11, "CS_ERR_ACCESS", "cpg_join")
    with caplog.at_level(logging.WARNING):
        parts.actor.on_start()
    assert not parts.connected()
    assert parts.handle.finalized == 1
    assert parts.poller.calls == []
    assert any("can't initialize service kvstore" in r.getMessage() for r in caplog.records)
    corosync.join_error = None
    parts.tick(5.0)
    assert len(corosync.handles) == 1  # not more than 5 s yet
    parts.tick(1.0)
    assert len(corosync.handles) == 2
    assert parts.connected()


def test_join_try_again_is_retried(corosync: Corosync, parts: Parts, monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[CsError | None] = [CsTryAgain(6, "CS_ERR_TRY_AGAIN", "cpg_join")] * 2

    def join(self: FakeCpgHandle, group: bytes) -> None:
        error = answers.pop(0) if answers else None
        if error is not None:
            raise error
        self.groups.append(group)

    monkeypatch.setattr(FakeCpgHandle, "join", join)
    parts.actor.on_start()
    assert parts.connected()
    assert len(corosync.handles) == 1
    assert parts.handle.groups == [b"pve_kvstore_v1"]
    assert parts.handle.finalized == 0


def test_corosync_down_at_start_retries_every_six_seconds(corosync: Corosync, parts: Parts) -> None:
    corosync.running = False
    parts.actor.on_start()
    assert not parts.connected()
    tries = []
    for second in range(1, 19):
        before = len(corosync.handles)
        parts.tick()
        if len(corosync.handles) > before:
            tries.append(second)
    assert tries == [6, 12, 18]
    assert parts.online() == []  # still nobody online: nothing to tell


def test_lost_connection_takes_everyone_offline_and_reconnects(corosync: Corosync, started: Parts) -> None:
    corosync.confchg([1, 2, 3])
    started.dispatch()
    old = started.handle
    old.dispatch_error = library_error("cpg_dispatch")
    started.clock.now += 60
    started.dispatch()
    assert started.online()[-1] == set()
    assert old.finalized == 1
    assert not started.connected()
    assert started.poller.calls[-1] == ("forget", old.fd())
    started.tick()  # the last connect was 61 s ago: retried on the next tick
    assert started.connected()
    assert started.handle is not old
    started.dispatch()
    assert started.online()[-1] == {1, 2, 3}


def test_try_again_keeps_the_connection(corosync: Corosync, started: Parts) -> None:
    started.dispatch()
    started.handle.dispatch_error = CsTryAgain(6, "CS_ERR_TRY_AGAIN", "cpg_dispatch")
    started.dispatch()
    assert started.connected()
    assert started.online() == [{1}]


def test_fd_of_nobody_is_ignored(started: Parts) -> None:
    before = list(started.poller.calls)
    started.actor.on_receive(FdReadable(fd=4242))
    assert started.poller.calls == before


def test_tick_while_connected_does_nothing(corosync: Corosync, started: Parts) -> None:
    started.tick(100)
    assert len(corosync.handles) == 1


def test_stop_finalizes_and_tells_offline(corosync: Corosync, started: Parts) -> None:
    started.dispatch()
    handle = started.handle
    started.actor.on_stop()
    assert handle.finalized == 1
    assert started.poller.calls[-1] == ("forget", handle.fd())
    assert started.online() == [{1}, set()]


class Inbox:
    """Collects the membership news and the connection's state (mode events are tested above)."""

    def __init__(self) -> None:
        self.q: queue.Queue[object] = queue.Queue()
        self.services: queue.Queue[object] = queue.Queue()

    def tell(self, message: object) -> None:
        if isinstance(message, MembershipChanged):
            self.q.put(message)
        elif isinstance(message, ServiceStateChanged):
            self.services.put(message)

    def next(self) -> Any:
        return self.q.get(timeout=WAIT_S)

    def next_service(self) -> Any:
        return self.services.get(timeout=WAIT_S)


def test_round_trip_with_a_real_poller(corosync: Corosync) -> None:
    corosync.pipes = True
    poller = FdPoller()
    status = Inbox()
    try:
        ref = ClusterActor.start(poller, status=status, membership_listeners=(status,))  # type: ignore[arg-type]
        assert status.next() == MembershipChanged(online=frozenset({1}))
        corosync.confchg([1, 2], joined=[2])
        assert status.next() == MembershipChanged(online=frozenset({1, 2}))
        corosync.confchg([1], left=[2])
        assert status.next() == MembershipChanged(online=frozenset({1}))
        assert status.next_service() == ServiceStateChanged(name="kvstore", connected=True)
        corosync.handles[-1].dispatch_error = library_error("cpg_dispatch")
        corosync.deliver(2, b"wakes the poller")
        assert status.next() == MembershipChanged(online=frozenset())
        assert status.next_service() == ServiceStateChanged(name="kvstore", connected=False)
        ref.stop()
        assert corosync.handles[-1].finalized == 1
    finally:
        poller.stop()
