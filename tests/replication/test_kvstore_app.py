"""KvstoreApp, the kvstore group's DFSM application, against a started status actor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from actors.messages import (
    ClusterConfigChanged,
    GetClusterLog,
    GetStatus,
    ReadStatusFile,
    RenderStatusFile,
)
from actors.status_actor import StatusActor
from corosync.config import ClusterConfig, ClusterNode
from dfsm import DfsmLeave, Member, MemberState
from replication.kvstore_app import KvstoreApp
from status.clusterlog import ClusterLog, new_entry
from tests.fakes.actors import q
from wire import kvstore
from wire.kvstore import KvstoreMessageType, KvUpdate

ME = Member(1, 100)
OTHER = Member(2, 200)
CONFIG = ClusterConfig(
    name="c", config_version=1, nodes=(ClusterNode(1, "node1"), ClusterNode(2, "node2")), local_nodeid=1
)


@pytest.fixture
def status() -> Iterator[pykka.ActorRef[Any]]:
    ref = StatusActor.start("node1", wallclock=lambda: 1_000.0)
    ref.tell(ClusterConfigChanged(config=CONFIG))
    yield ref
    ref.stop(block=True, timeout=10)


@pytest.fixture
def seen() -> list[frozenset[int]]:
    return []


@pytest.fixture
def app(status: pykka.ActorRef[Any], seen: list[frozenset[int]]) -> KvstoreApp:
    return KvstoreApp(status, me=ME, on_members=seen.append)


def clusterlog(status: pykka.ActorRef[Any]) -> list[str]:
    return [d["msg"] for d in json.loads(q(status, GetClusterLog(max_entries=50)))["data"]]


def test_no_verify_and_no_update_phase(app: KvstoreApp) -> None:
    assert not app.verifies
    app.process_update(OTHER, b"x")  # logged and ignored
    app.commit()
    app.cleanup()


def test_state_is_the_status_actors_ring(app: KvstoreApp) -> None:
    state = kvstore.decode_clog(app.get_state())
    assert state.size == 131072
    assert [slot.entry.msg for slot in state.slots] == ["starting cluster log"]


def test_everyone_is_synced_and_the_logs_merged(app: KvstoreApp, status: pykka.ActorRef[Any]) -> None:
    other = ClusterLog()
    other.insert(
        new_entry(uid=1, time=900, priority=6, tag="t", pid=1, node="node2", ident="root", msg="theirs")
    )
    decision = app.process_state_update(
        [
            MemberState(member=ME, state=b"ignored: ours is the live log"),
            MemberState(member=OTHER, state=other.state()),
        ],
        ME,
    )
    assert decision.synced == frozenset({ME, OTHER})
    assert decision.updates == ()
    assert not decision.send_update_complete
    assert clusterlog(status) == ["starting cluster log", "theirs"]


def test_deliveries_of_others_reach_the_status_actor(app: KvstoreApp, status: pykka.ActorRef[Any]) -> None:
    update = kvstore.encode_update(KvUpdate(key="kv/x", value=b"2\0"))
    assert app.deliver(OTHER, KvstoreMessageType.UPDATE, update, 0, 1) == 1
    entry = new_entry(uid=3, time=950, priority=6, tag="t", pid=1, node="node2", ident="root", msg="hello")
    app.deliver(OTHER, KvstoreMessageType.LOG, kvstore.encode_log(entry), 0, 2)
    assert q(status, GetStatus(key="kv/x", nodename="node2")) == b"2\0"
    assert "hello" in clusterlog(status)


def test_own_and_malformed_deliveries_are_ignored(app: KvstoreApp, status: pykka.ActorRef[Any]) -> None:
    update = kvstore.encode_update(KvUpdate(key="kv/own", value=b"1"))
    assert app.deliver(ME, KvstoreMessageType.UPDATE, update, 0, 1) == 1
    assert app.deliver(OTHER, KvstoreMessageType.UPDATE, b"short", 0, 2) == 1
    assert app.deliver(OTHER, KvstoreMessageType.LOG, b"\0" * 47, 0, 3) == 1
    assert app.deliver(OTHER, 9, b"whatever", 0, 4) == 1
    size = q(status, RenderStatusFile(name=".version"))
    version = json.loads(q(status, ReadStatusFile(name=".version", size=size, offset=0)))
    assert version["kvstore"] == {"node1": {}}


def test_confchg_reports_the_member_nodes(app: KvstoreApp, seen: list[frozenset[int]]) -> None:
    app.on_confchg([ME, OTHER, Member(2, 300)])
    assert seen == [frozenset({1, 2})]


def test_a_dead_status_actor_makes_the_node_leave(status: pykka.ActorRef[Any]) -> None:
    app = KvstoreApp(status, me=ME, on_members=lambda online: None)
    status.stop(block=True, timeout=10)
    with pytest.raises(DfsmLeave):
        app.get_state()
