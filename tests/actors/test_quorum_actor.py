"""QuorumActor with fake quorum and cmap handles: quorum tracking, config reads, reconnects."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import actors.quorum_actor as quorum_actor
from actors.messages import (
    ClusterConfigChanged,
    FdReadable,
    QuorumChanged,
    RingQuorum,
    ServiceStateChanged,
    Tick,
)
from actors.quorum_actor import QuorumActor, read_cluster_config
from bindings._types import CS_TRACK_CHANGES
from bindings.libcmap import (
    CMAP_TRACK_ADD,
    CMAP_TRACK_ALL,
    CMAP_TRACK_DELETE,
    CMAP_TRACK_MODIFY,
    CMAP_TRACK_PREFIX,
    NodeEntry,
)
from bindings.libquorum import QUORUM_FREE, QUORUM_SET
from corosync.config import ClusterConfig, ClusterNode
from corosync.poller import FdPoller
from errors import CsError, CsLibraryError, CsNotExist, CsTryAgain
from tests.fakes.actors import Recorder
from tests.fakes.clock import Clock
from tests.fakes.corosync import Poller

WAIT_S = 5.0

NODES = (NodeEntry(1, "node1", "10.0.0.1"), NodeEntry(2, "node2", "10.0.0.2"), NodeEntry(3, "node3", "", 2))
CONFIG = ClusterConfig(
    name="pmxlab",
    config_version=3,
    nodes=(
        ClusterNode(1, "node1", 1, "10.0.0.1"),
        ClusterNode(2, "node2", 1, "10.0.0.2"),
        ClusterNode(3, "node3", 2),
    ),
    local_nodeid=2,
)


def library_error(call: str) -> CsLibraryError:
    return CsLibraryError(2, "CS_ERR_LIBRARY", call)


def not_exist(call: str) -> CsNotExist:
    return CsNotExist(12, "CS_ERR_NOT_EXIST", call)


# ----- fakes -------------------------------------------------------------------------------


class Corosync:
    """The state the fake handles read, and every handle they created."""

    def __init__(self) -> None:
        self.running = True
        self.quorum_type = QUORUM_SET
        self.quorate = False
        self.values: dict[str, str | int] = {
            "totem.cluster_name": "pmxlab",
            "totem.config_version": 3,
            "runtime.votequorum.this_node_id": 2,
        }
        self.nodes: tuple[NodeEntry, ...] = NODES
        self.quorum_handles: list[FakeQuorumHandle] = []
        self.cmap_handles: list[FakeCmapHandle] = []
        self.pipes = False
        """With pipes, each handle's fd is a real pipe that turns readable when something is queued."""
        self.trackstart_error: CsError | None = None
        self._next_fd = 50

    def fd(self) -> tuple[int, int | None]:
        if self.pipes:
            r, w = os.pipe()
            os.set_blocking(r, False)
            return r, w
        self._next_fd += 1
        return self._next_fd, None

    def set_quorate(self, quorate: bool) -> None:
        self.quorate = quorate
        for handle in self.quorum_handles:
            if handle.live:
                handle.queue(quorate)

    def change(self, key: str, event: int = CMAP_TRACK_MODIFY) -> None:
        for handle in self.cmap_handles:
            if handle.live:
                handle.queue((event, key))

    def close(self) -> None:
        for handle in (*self.quorum_handles, *self.cmap_handles):
            handle.close_pipe()


class FakeHandle:
    def __init__(self, corosync: Corosync) -> None:
        self.corosync = corosync
        self.initialized = False
        self.finalized = 0
        self.dispatch_error: CsError | None = None
        self.pending: list[Any] = []
        self._fd, self._w = corosync.fd()

    @property
    def live(self) -> bool:
        return self.initialized and not self.finalized

    def fd(self) -> int:
        return self._fd

    def queue(self, item: Any) -> None:
        self.pending.append(item)
        if self._w is not None:
            os.write(self._w, b"x")

    def finalize(self) -> None:
        self.finalized += 1

    def close_pipe(self) -> None:
        if self._w is not None:
            os.close(self._w)
            os.close(self._fd)
            self._w = None

    def _take(self) -> list[Any]:
        if self.dispatch_error is not None:
            raise self.dispatch_error
        if self._w is not None:
            with contextlib.suppress(BlockingIOError):
                os.read(self._fd, 4096)
        items, self.pending = self.pending, []
        return items


class FakeQuorumHandle(FakeHandle):
    def __init__(self, corosync: Corosync) -> None:
        super().__init__(corosync)
        self.notify: Callable[[bool, int, tuple[int, ...]], None] | None = None
        self.track_flags: int | None = None
        corosync.quorum_handles.append(self)

    def initialize(self, notify: Callable[[bool, int, tuple[int, ...]], None]) -> int:
        if not self.corosync.running:
            raise library_error("quorum_initialize")
        self.initialized = True
        self.notify = notify
        return self.corosync.quorum_type

    def trackstart(self, flags: int) -> None:
        if self.corosync.trackstart_error is not None:
            raise self.corosync.trackstart_error
        self.track_flags = flags
        self.queue(self.corosync.quorate)  # corosync answers with the current state at once

    def dispatch(self) -> None:
        assert self.notify is not None
        for quorate in self._take():
            self.notify(quorate, 7, (1, 2))


class FakeCmapHandle(FakeHandle):
    def __init__(self, corosync: Corosync) -> None:
        super().__init__(corosync)
        self.tracks: list[tuple[str, int]] = []
        self._callbacks: list[tuple[str, Callable[[int, str], None]]] = []
        corosync.cmap_handles.append(self)

    def initialize(self) -> None:
        if not self.corosync.running:
            raise library_error("cmap_initialize")
        self.initialized = True

    def track_add(
        self,
        key: str,
        callback: Callable[[int, str], None],
        track_type: int = CMAP_TRACK_ALL | CMAP_TRACK_PREFIX,
    ) -> int:
        self.tracks.append((key, track_type))
        self._callbacks.append((key, callback))
        return len(self.tracks)

    def _get(self, key: str, kind: type) -> Any:
        value = self.corosync.values.get(key)
        if value is None:
            raise not_exist("cmap_get")
        if not isinstance(value, kind):
            raise CsError(7, "CS_ERR_INVALID_PARAM", "cmap_get")
        return value

    def get_string(self, key: str) -> str:
        return self._get(key, str)

    def get_uint32(self, key: str) -> int:
        return self._get(key, int)

    def get_uint64(self, key: str) -> int:
        return self._get(key, int)

    def nodelist(self) -> tuple[NodeEntry, ...]:
        return self.corosync.nodes

    def dispatch(self) -> None:
        for event, key in self._take():
            for prefix, callback in self._callbacks:
                if key.startswith(prefix):
                    callback(event, key)


@pytest.fixture
def corosync(monkeypatch: pytest.MonkeyPatch) -> Iterator[Corosync]:
    fake = Corosync()
    monkeypatch.setattr(quorum_actor, "QuorumHandle", lambda: FakeQuorumHandle(fake))
    monkeypatch.setattr(quorum_actor, "CmapHandle", lambda: FakeCmapHandle(fake))
    yield fake
    fake.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def poller() -> Poller:
    return Poller()


class Parts:
    """An actor built without start(), its fakes and its listeners."""

    def __init__(self, corosync: Corosync, poller: Poller, clock: Clock) -> None:
        self.corosync = corosync
        self.poller = poller
        self.clock = clock
        self.fs = Recorder()
        self.status = Recorder()
        self.cluster = Recorder()
        self.actor = QuorumActor(
            poller,  # type: ignore[arg-type]
            quorum_listeners=(self.fs, self.status),  # type: ignore[arg-type]
            config_listeners=(self.status,),  # type: ignore[arg-type]
            ring_listeners=(self.cluster,),  # type: ignore[arg-type]
            clock=clock,
        )

    @property
    def quorum(self) -> FakeQuorumHandle:
        return self.corosync.quorum_handles[-1]

    @property
    def cmap(self) -> FakeCmapHandle:
        return self.corosync.cmap_handles[-1]

    def states(self) -> dict[str, bool]:
        return {"quorum": False, "cmap": False} | self.status.services

    def dispatch_quorum(self) -> None:
        self.actor.on_receive(FdReadable(fd=self.quorum.fd()))

    def dispatch_cmap(self) -> None:
        self.actor.on_receive(FdReadable(fd=self.cmap.fd()))

    def quorum_told(self) -> list[bool]:
        told = [m.quorate for m in self.fs.of(QuorumChanged)]
        assert told == [m.quorate for m in self.status.of(QuorumChanged)]
        return told

    def configs(self) -> list[ClusterConfig]:
        return [m.config for m in self.status.of(ClusterConfigChanged)]


@pytest.fixture
def parts(corosync: Corosync, poller: Poller, clock: Clock) -> Parts:
    return Parts(corosync, poller, clock)


@pytest.fixture
def started(parts: Parts) -> Parts:
    parts.actor.on_start()
    return parts


# ----- read_cluster_config ---------------------------------------------------------------


def test_read_cluster_config(corosync: Corosync) -> None:
    cmap = FakeCmapHandle(corosync)
    assert read_cluster_config(cmap) == CONFIG  # type: ignore[arg-type]


def test_config_version_unreadable_is_zero(corosync: Corosync) -> None:
    del corosync.values["totem.config_version"]
    cmap = FakeCmapHandle(corosync)
    assert read_cluster_config(cmap).config_version == 0  # type: ignore[arg-type]
    corosync.values["totem.config_version"] = "not a number"
    assert read_cluster_config(cmap).config_version == 0  # type: ignore[arg-type]


def test_unknown_local_node_id_is_zero(corosync: Corosync) -> None:
    del corosync.values["runtime.votequorum.this_node_id"]
    cmap = FakeCmapHandle(corosync)
    assert read_cluster_config(cmap).local_nodeid == 0  # type: ignore[arg-type]


def test_cluster_name_is_required(corosync: Corosync) -> None:
    del corosync.values["totem.cluster_name"]
    cmap = FakeCmapHandle(corosync)
    with pytest.raises(CsNotExist):
        read_cluster_config(cmap)  # type: ignore[arg-type]


# ----- start -------------------------------------------------------------------------------


def test_start_connects_both_services(started: Parts) -> None:
    assert started.states() == {"quorum": True, "cmap": True}
    assert started.quorum.track_flags == CS_TRACK_CHANGES
    assert started.poller.watched() == {started.quorum.fd(), started.cmap.fd()}


def test_start_tracks_the_nodelist_and_the_config_version(started: Parts) -> None:
    assert started.cmap.tracks == [
        ("nodelist.node.", CMAP_TRACK_ADD | CMAP_TRACK_DELETE | CMAP_TRACK_MODIFY | CMAP_TRACK_PREFIX),
        ("totem.config_version", CMAP_TRACK_ADD | CMAP_TRACK_DELETE | CMAP_TRACK_MODIFY),
    ]


def test_start_publishes_the_config_to_the_status_actor_only(started: Parts) -> None:
    assert started.configs() == [CONFIG]
    assert started.fs.of(ClusterConfigChanged) == []


def test_not_quorate_until_corosync_says_so(started: Parts) -> None:
    assert started.quorum_told() == []  # the actor starts not quorate, like the fs actor in cluster mode
    started.dispatch_quorum()  # corosync's answer to trackstart: not quorate
    assert started.quorum_told() == []


def test_quorum_without_provider_is_refused(
    corosync: Corosync, parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    corosync.quorum_type = QUORUM_FREE
    with caplog.at_level(logging.WARNING):
        parts.actor.on_start()
    assert parts.states() == {"quorum": False, "cmap": True}
    assert parts.quorum.finalized == 1
    assert parts.quorum_told() == []
    assert any("can't initialize service quorum" in r.getMessage() for r in caplog.records)


# ----- quorum ----------------------------------------------------------------------------


def test_quorum_changes_are_told_once_each(corosync: Corosync, started: Parts) -> None:
    corosync.set_quorate(True)
    started.dispatch_quorum()
    assert started.quorum_told() == [True]
    corosync.set_quorate(True)  # e.g. a new ring, still quorate
    started.dispatch_quorum()
    assert started.quorum_told() == [True]
    corosync.set_quorate(False)
    started.dispatch_quorum()
    assert started.quorum_told() == [True, False]


def test_every_notification_tells_the_rings_verdict(corosync: Corosync, started: Parts) -> None:
    """The ring listeners hear each notification with its ring (the fake's ring is 7), also
    when quorum did not change: the cluster actor acknowledges changes per ring."""
    for quorate in (True, True, False):
        corosync.set_quorate(quorate)
        started.dispatch_quorum()
    assert started.cluster.of(RingQuorum) == [
        RingQuorum(ring_seq=7, quorate=False),  # the state trackstart answered at the start
        RingQuorum(ring_seq=7, quorate=True),
        RingQuorum(ring_seq=7, quorate=True),
        RingQuorum(ring_seq=7, quorate=False),
    ]
    assert started.fs.of(RingQuorum) == []


def test_current_state_comes_with_trackstart(corosync: Corosync, parts: Parts) -> None:
    corosync.quorate = True
    parts.actor.on_start()
    parts.dispatch_quorum()
    assert parts.quorum_told() == [True]


def test_dispatch_watches_the_fd_again(corosync: Corosync, started: Parts) -> None:
    fd = started.quorum.fd()
    before = started.poller.calls.count(("watch", fd))
    started.dispatch_quorum()
    assert started.poller.calls.count(("watch", fd)) == before + 1


def test_fd_of_nobody_is_ignored(started: Parts) -> None:
    before = list(started.poller.calls)
    started.actor.on_receive(FdReadable(fd=9999))
    assert started.poller.calls == before


def test_try_again_keeps_quorum(corosync: Corosync, started: Parts) -> None:
    corosync.set_quorate(True)
    started.dispatch_quorum()
    started.quorum.dispatch_error = CsTryAgain(6, "CS_ERR_TRY_AGAIN", "quorum_dispatch")
    started.dispatch_quorum()
    assert started.states()["quorum"] is True
    assert started.quorum_told() == [True]


def test_lost_connection_drops_quorum(corosync: Corosync, started: Parts) -> None:
    corosync.set_quorate(True)
    started.dispatch_quorum()
    handle = started.quorum
    handle.dispatch_error = library_error("quorum_dispatch")
    started.dispatch_quorum()
    assert started.quorum_told() == [True, False]
    assert handle.finalized == 1
    assert started.states() == {"quorum": False, "cmap": True}
    assert handle.fd() not in started.poller.watched()


def test_lost_broken_fd_drops_quorum(corosync: Corosync, started: Parts) -> None:
    corosync.set_quorate(True)
    started.dispatch_quorum()
    started.quorum.dispatch_error = library_error("quorum_dispatch")
    started.actor.on_receive(FdReadable(fd=started.quorum.fd(), broken=True))
    assert started.quorum_told() == [True, False]


def test_reconnect_restores_quorum(corosync: Corosync, started: Parts, clock: Clock) -> None:
    corosync.set_quorate(True)
    started.dispatch_quorum()
    clock.now += 600
    old = started.quorum
    old.dispatch_error = library_error("quorum_dispatch")
    corosync.running = False
    started.dispatch_quorum()
    clock.now += 1
    started.actor.on_receive(Tick())  # the connect was long ago: retried at once, corosync down
    assert len(corosync.quorum_handles) == 2
    assert started.states()["quorum"] is False
    corosync.running = True
    for _ in range(5):  # ticks 1..5 s after the failed try: not yet
        clock.now += 1
        started.actor.on_receive(Tick())
    assert len(corosync.quorum_handles) == 2
    clock.now += 1
    started.actor.on_receive(Tick())  # 6 s after the failed try
    assert len(corosync.quorum_handles) == 3
    assert started.states()["quorum"] is True
    started.dispatch_quorum()  # trackstart answers with the current state
    assert started.quorum_told() == [True, False, True]


def test_corosync_down_at_start(corosync: Corosync, parts: Parts, clock: Clock) -> None:
    corosync.running = False
    parts.actor.on_start()
    assert parts.states() == {"quorum": False, "cmap": False}
    assert parts.configs() == []
    assert parts.poller.calls == []
    tries = []
    for second in range(1, 13):
        clock.now += 1
        before = len(corosync.quorum_handles) + len(corosync.cmap_handles)
        parts.actor.on_receive(Tick())
        if len(corosync.quorum_handles) + len(corosync.cmap_handles) > before:
            tries.append(second)
    assert tries == [6, 12]
    corosync.running = True
    for _ in range(6):
        clock.now += 1
        parts.actor.on_receive(Tick())
    assert parts.states() == {"quorum": True, "cmap": True}
    assert parts.configs() == [CONFIG]


def test_stop_closes_both_and_drops_quorum(corosync: Corosync, started: Parts) -> None:
    corosync.set_quorate(True)
    started.dispatch_quorum()
    quorum, cmap = started.quorum, started.cmap
    started.actor.on_stop()
    assert quorum.finalized == 1
    assert cmap.finalized == 1
    assert started.poller.watched() == set()
    assert started.quorum_told() == [True, False]
    assert started.states() == {"quorum": False, "cmap": False}


def test_trackstart_failure_closes_the_handle(corosync: Corosync, parts: Parts) -> None:
    corosync.trackstart_error = CsTryAgain(6, "CS_ERR_TRY_AGAIN", "quorum_trackstart")
    parts.actor.on_start()
    assert parts.states()["quorum"] is False
    assert parts.quorum.finalized == 1


# ----- cmap ------------------------------------------------------------------------------


def test_nodelist_change_rereads_the_config(corosync: Corosync, started: Parts) -> None:
    corosync.nodes = (*NODES, NodeEntry(4, "node4", "10.0.0.4"))
    corosync.values["totem.config_version"] = 4
    corosync.change("nodelist.node.3.nodeid", CMAP_TRACK_ADD)
    corosync.change("totem.config_version")
    started.dispatch_cmap()
    assert len(started.configs()) == 2
    new = started.configs()[-1]
    assert new.config_version == 4
    assert [n.name for n in new.nodes] == ["node1", "node2", "node3", "node4"]


def test_dispatch_without_change_publishes_nothing(started: Parts) -> None:
    started.dispatch_cmap()
    assert started.configs() == [CONFIG]
    assert started.states()["cmap"] is True


def test_unreadable_config_keeps_the_last_one(
    corosync: Corosync, started: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    del corosync.values["totem.cluster_name"]
    corosync.change("nodelist.node.0.name")
    with caplog.at_level(logging.WARNING):
        started.dispatch_cmap()
    assert started.configs() == [CONFIG]
    assert any("unable to read the corosync configuration" in r.getMessage() for r in caplog.records)
    # fixed later: the next change is read
    corosync.values["totem.cluster_name"] = "renamed"
    corosync.change("nodelist.node.0.name")
    started.dispatch_cmap()
    assert started.configs()[-1].name == "renamed"


def test_cmap_lost_keeps_quorum_and_reconnects(corosync: Corosync, started: Parts, clock: Clock) -> None:
    corosync.set_quorate(True)
    started.dispatch_quorum()
    old = started.cmap
    old.dispatch_error = library_error("cmap_dispatch")
    started.dispatch_cmap()
    assert old.finalized == 1
    assert started.states() == {"quorum": True, "cmap": False}
    assert started.quorum_told() == [True]
    clock.now += 10
    started.actor.on_receive(Tick())
    assert started.states()["cmap"] is True
    assert started.configs() == [CONFIG, CONFIG]  # re-read on reconnect


def test_unreadable_config_keeps_cmap_connected_and_the_old_config(corosync: Corosync, parts: Parts) -> None:
    # Reference 4.2: without totem.cluster_name the cluster info is not replaced; the cmap
    # service itself stays up (and its handle is neither leaked nor reopened every 6 s).
    del corosync.values["totem.cluster_name"]
    parts.actor.on_start()
    assert parts.states()["cmap"] is True
    assert parts.cmap.initialized
    assert parts.cmap.finalized == 0


# ----- round trip with a real poller -------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.q: queue.Queue[object] = queue.Queue()
        self.services: dict[str, bool] = {}

    def tell(self, message: object) -> None:
        if isinstance(message, ServiceStateChanged):  # told before the first dispatch
            self.services[message.name] = message.connected
        self.q.put(message)

    def next(self, kind: type) -> Any:
        while True:
            message = self.q.get(timeout=WAIT_S)
            if isinstance(message, kind):
                return message


def test_round_trip_with_a_real_poller(corosync: Corosync) -> None:
    corosync.pipes = True
    poller = FdPoller()
    fs, status = Inbox(), Inbox()
    try:
        ref = QuorumActor.start(poller, quorum_listeners=(fs, status), config_listeners=(status,))  # type: ignore[arg-type]
        assert status.next(ClusterConfigChanged).config == CONFIG
        # trackstart queued "not quorate": dispatched, nothing told
        corosync.set_quorate(True)
        assert fs.next(QuorumChanged) == QuorumChanged(quorate=True)
        assert status.next(QuorumChanged) == QuorumChanged(quorate=True)
        corosync.set_quorate(False)
        assert fs.next(QuorumChanged) == QuorumChanged(quorate=False)
        corosync.nodes = NODES[:2]
        corosync.change("nodelist.node.2.nodeid", CMAP_TRACK_DELETE)
        assert len(status.next(ClusterConfigChanged).config.nodes) == 2
        assert status.services == {"quorum": True, "cmap": True}
        ref.stop()
        assert all(h.finalized == 1 for h in (*corosync.quorum_handles, *corosync.cmap_handles))
    finally:
        poller.stop()
