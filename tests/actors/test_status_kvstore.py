"""StatusActor as the kvstore's state: local and remote updates, log entries, merge, nodeip."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest

from actors.messages import (
    AttachKvstore,
    BroadcastKv,
    BroadcastLog,
    ClusterConfigChanged,
    GetClogState,
    GetClusterLog,
    GetRrdDump,
    GetStatus,
    GetStatusText,
    KvDelivered,
    KvstoreSynced,
    LogClusterMessage,
    LogDelivered,
    MembershipChanged,
    MergeClogStates,
    QuorumChanged,
    ReadStatusFile,
    RenderStatusFile,
    SetStatus,
)
from actors.status_actor import StatusActor
from corosync.config import ClusterConfig, ClusterNode
from errors import BadStatusValue, FileTooLarge, NotFound
from status.clusterlog import ClusterLog, new_entry
from tests.fakes.actors import Recorder
from tests.vectors import VECTORS
from wire import kvstore

START = 1_795_608_717

CONFIG = ClusterConfig(
    name="gvcluster",
    config_version=1,
    nodes=(
        ClusterNode(1, "node1", 1, "10.214.0.1"),
        ClusterNode(2, "node2", 1, "10.214.0.2"),
        ClusterNode(3, "node3", 1, "10.214.0.3"),
    ),
    local_nodeid=1,
)


class Clock:
    def __init__(self) -> None:
        self.now = float(START)

    def __call__(self) -> float:
        return self.now


class Parts:
    def __init__(self, *, node_ip: str | None = "10.214.0.1") -> None:
        self.clock = Clock()
        self.rrd: list[tuple[str, bytes]] = []
        self.actor = StatusActor(
            "node1", wallclock=self.clock, node_ip=node_ip, rrd=lambda key, data: self.rrd.append((key, data))
        )
        self.cluster = Recorder()

    def send(self, message: object) -> Any:
        return self.actor.on_receive(message)

    def attach(self) -> None:
        self.send(AttachKvstore(cluster=self.cluster))  # type: ignore[arg-type]

    def text(self, name: str) -> str:
        size = self.send(RenderStatusFile(name=name))
        data: bytes = self.send(ReadStatusFile(name=name, size=size, offset=0))
        return data.decode()

    def kv_sent(self) -> list[tuple[str, bytes]]:
        return [(m.key, m.value) for m in self.cluster.of(BroadcastKv)]


@pytest.fixture
def parts() -> Parts:
    return Parts()


def kvstore_block(text: str) -> str:
    return text[text.index('"kvstore"') :]


# ----- local updates (SET_STATUS) ----------------------------------------------------


def test_local_kv_update_is_stored_versioned_and_broadcast(parts: Parts) -> None:
    parts.attach()
    parts.send(SetStatus(key="kv/test", value=b"hello\0"))
    parts.send(SetStatus(key="kv/test", value=b"again\0"))
    parts.send(SetStatus(key="tasklist", value=b"[]\0"))
    assert parts.send(GetStatus(key="kv/test")) == b"again\0"
    assert parts.send(GetStatus(key="kv/test", nodename="node1")) == b"again\0"
    assert kvstore_block(parts.text(".version")) == (
        '"kvstore": {\n"node1": {\n"kv/test": 1,\n"tasklist": 0}\n}\n}\n'
    )
    assert parts.kv_sent() == [("kv/test", b"hello\0"), ("kv/test", b"again\0"), ("tasklist", b"[]\0")]


def test_local_update_without_cluster_is_only_stored(parts: Parts) -> None:
    parts.send(SetStatus(key="kv/a", value=b"1"))
    assert parts.send(GetStatus(key="kv/a")) == b"1"
    assert parts.cluster.told == []


def test_too_large_value_is_refused_before_anything(parts: Parts) -> None:
    parts.attach()
    with pytest.raises(FileTooLarge):
        parts.send(SetStatus(key="kv/a", value=b"x" * (32 * 1024 + 1)))
    with pytest.raises(NotFound):
        parts.send(GetStatus(key="kv/a"))
    assert parts.cluster.told == []


def test_bad_rrd_value_is_refused_but_still_broadcast_as_the_original(parts: Parts) -> None:
    parts.attach()
    with pytest.raises(BadStatusValue):
        parts.send(SetStatus(key="rrd/pve2-node/node1", value=b"no-nul"))
    assert parts.rrd == []
    assert parts.send(GetRrdDump()) == b"\0"
    assert parts.kv_sent() == [("rrd/pve2-node/node1", b"no-nul")]


def test_rrd_update_writes_the_file_and_shows_in_rrd(parts: Parts) -> None:
    parts.send(SetStatus(key="rrd/pve2-node/node1", value=b"100:0:1:2\0"))
    assert parts.rrd == [("pve2-node/node1", b"100:0:1:2\0")]
    assert parts.text(".rrd") == "pve2-node/node1:100:0:1:2\n"
    parts.send(SetStatus(key="rrd/pve2-storage/node1/local", value=b"100:5:6\0"))
    # the dump of a moment ago is still cached (2 s), without the NUL over IPC
    assert parts.send(GetRrdDump()) == b"pve2-node/node1:100:0:1:2\n"
    parts.clock.now += 2
    assert parts.send(GetRrdDump()) == b"pve2-node/node1:100:0:1:2\npve2-storage/node1/local:100:5:6\n\0"
    assert kvstore_block(parts.text(".version")) == '"kvstore": {\n"node1": {\n}\n}\n}\n'


def test_nodeip_bumps_cluster_info_and_shows_in_members(parts: Parts) -> None:
    parts.send(ClusterConfigChanged(config=CONFIG))
    before = json.loads(parts.text(".members"))["version"]
    parts.send(SetStatus(key="nodeip", value=b"192.0.2.1\0"))
    parts.send(SetStatus(key="nodeip", value=b"192.0.2.1\0"))  # unchanged: no bump
    members = parts.text(".members")
    assert json.loads(members)["version"] == before + 1
    assert (
        '  "node1": { "id": 1, "online": 0, "ip": "192.0.2.1"},\n  "node2": { "id": 2, "online": 0},'
        in members
    )
    with pytest.raises(NotFound):
        parts.send(GetStatus(key="nodeip"))


def test_status_texts_for_ipc(parts: Parts) -> None:
    assert parts.send(GetStatusText(name=".members")) == b'{\n"nodename": "node1",\n"version": 0\n}\n'
    assert parts.send(GetStatusText(name=".vmlist")) == b'{\n"version": 0\n\n}\n'
    assert json.loads(parts.send(GetStatusText(name=".version")))["starttime"] == START
    with pytest.raises(NotFound):
        parts.send(GetStatusText(name=".clusterlog"))


# ----- remote updates (kvstore UPDATE) ---------------------------------------------------


def test_remote_updates_go_to_the_senders_table(parts: Parts) -> None:
    parts.send(ClusterConfigChanged(config=CONFIG))
    parts.send(KvDelivered(nodeid=2, key="kv/test", value=b"from2\0"))
    parts.send(KvDelivered(nodeid=2, key="kv/test", value=b"again\0"))
    parts.send(KvDelivered(nodeid=3, key="tasklist", value=b"[]\0"))
    parts.send(KvDelivered(nodeid=2, key="nodeip", value=b"10.214.0.2\0"))
    parts.send(KvDelivered(nodeid=3, key="rrd/pve2-node/node3", value=b"100:1\0"))
    assert parts.send(GetStatus(key="kv/test", nodename="node2")) == b"again\0"
    with pytest.raises(NotFound):
        parts.send(GetStatus(key="kv/test"))
    assert kvstore_block(parts.text(".version")) == (
        '"kvstore": {\n"node1": {\n}\n,\n"node2": {\n"kv/test": 1}\n,\n"node3": {\n"tasklist": 0}\n}\n}\n'
    )
    assert '"node2": { "id": 2, "online": 0, "ip": "10.214.0.2"}' in parts.text(".members")
    assert parts.rrd == [("pve2-node/node3", b"100:1\0")]
    assert parts.text(".rrd") == "pve2-node/node3:100:1\n"


def test_updates_before_the_nodelist_is_known_wait_for_it(parts: Parts) -> None:
    parts.send(KvDelivered(nodeid=2, key="nodeip", value=b"10.214.0.2\0"))
    parts.send(KvDelivered(nodeid=9, key="kv/test", value=b"x"))
    assert "ip" not in parts.text(".members")
    parts.send(ClusterConfigChanged(config=CONFIG))
    assert '"node2": { "id": 2, "online": 0, "ip": "10.214.0.2"}' in parts.text(".members")
    assert kvstore_block(parts.text(".version")) == '"kvstore": {\n"node1": {\n}\n}\n}\n'  # node 9: unknown


def test_updates_from_nodes_outside_the_nodelist_are_ignored(parts: Parts) -> None:
    parts.send(ClusterConfigChanged(config=CONFIG))
    parts.send(KvDelivered(nodeid=9, key="kv/test", value=b"x"))
    parts.send(KvDelivered(nodeid=9, key="rrd/pve2-node/node9", value=b"1:2\0"))
    assert parts.rrd == []
    assert kvstore_block(parts.text(".version")) == '"kvstore": {\n"node1": {\n}\n}\n}\n'


@pytest.mark.allow_error_logs
def test_malformed_remote_rrd_value_is_dropped(parts: Parts) -> None:
    parts.send(ClusterConfigChanged(config=CONFIG))
    parts.send(KvDelivered(nodeid=2, key="rrd/pve2-node/node2", value=b"unterminated"))
    parts.send(KvDelivered(nodeid=2, key="nodeip", value=b"x" * 300 + b"\0"))
    assert parts.rrd == []
    assert "ip" not in parts.text(".members")


# ----- the cluster log -------------------------------------------------------------


def test_log_message_is_added_and_broadcast(parts: Parts) -> None:
    parts.attach()
    parts.clock.now += 1
    parts.send(LogClusterMessage(priority=3, ident="root@pam", tag="vzdump", msg=b'say "hi"\n', pid=4242))
    (sent,) = parts.cluster.of(BroadcastLog)
    assert (sent.entry.uid, sent.entry.time, sent.entry.pid, sent.entry.node) == (2, START + 1, 4242, "node1")
    assert sent.entry.msg == 'say \\"hi\\"#010'
    newest = json.loads(parts.send(GetClusterLog(max_entries=1)))["data"]
    assert newest == [
        {
            "uid": 2,
            "time": START + 1,
            "pri": 3,
            "tag": "vzdump",
            "pid": 4242,
            "node": "node1",
            "user": "root@pam",
            "msg": 'say "hi"#010',
        }
    ]
    assert [d["user"] for d in json.loads(parts.send(GetClusterLog(user="root")))["data"]] == ["root"]


def test_log_message_with_a_bad_priority_is_dropped(parts: Parts) -> None:
    parts.attach()
    parts.send(LogClusterMessage(priority=8, ident="root", tag="t", msg=b"x", pid=1))
    assert parts.cluster.told == []
    assert len(json.loads(parts.text(".clusterlog"))["data"]) == 1


def test_delivered_log_entries_are_deduplicated(parts: Parts) -> None:
    entry = new_entry(uid=5, time=START, priority=6, tag="t", pid=7, node="node2", ident="root", msg="remote")
    parts.send(LogDelivered(entry=entry))
    parts.send(LogDelivered(entry=entry))
    msgs = [d["msg"] for d in json.loads(parts.text(".clusterlog"))["data"]]
    assert msgs.count("remote") == 1


def test_state_and_merge_then_rebroadcast_kv_only(parts: Parts) -> None:
    parts.attach()
    parts.send(SetStatus(key="kv/test", value=b"v\0"))
    parts.send(SetStatus(key="rrd/pve2-node/node1", value=b"1:2\0"))
    parts.send(SetStatus(key="nodeip", value=b"10.214.0.1\0"))
    parts.cluster.clear()
    other = ClusterLog()
    other.insert(
        new_entry(uid=1, time=START - 5, priority=6, tag="t", pid=1, node="node2", ident="root", msg="old")
    )
    ours = kvstore.decode_clog(parts.send(GetClogState()))
    assert [s.entry.msg for s in ours.slots] == ["starting cluster log"]
    parts.send(MergeClogStates(states=(None, other.state(), b"\x01garbage")))
    msgs = [d["msg"] for d in json.loads(parts.text(".clusterlog"))["data"]]
    assert msgs == ["starting cluster log", "old"]
    assert parts.kv_sent() == [("kv/test", b"v\0")]


def test_synced_announces_the_node_ip(parts: Parts) -> None:
    parts.send(KvstoreSynced())  # before the cluster actor is attached: announced on attach
    assert parts.cluster.told == []
    parts.attach()
    assert parts.kv_sent() == [("nodeip", b"10.214.0.1\0")]
    parts.send(SetStatus(key="nodeip", value=b"10.9.9.9\0"))
    parts.cluster.clear()
    parts.send(KvstoreSynced())  # a value set earlier wins over the resolved address
    assert parts.kv_sent() == [("nodeip", b"10.9.9.9\0")]


def test_synced_falls_back_to_the_ring0_address() -> None:
    parts = Parts(node_ip=None)
    parts.attach()
    parts.send(ClusterConfigChanged(config=CONFIG))
    parts.send(KvstoreSynced())
    assert parts.kv_sent() == [("nodeip", b"10.214.0.1\0")]


def test_synced_before_the_nodelist_is_read_announces_once_it_is() -> None:
    parts = Parts(node_ip=None)
    parts.attach()
    parts.send(KvstoreSynced())
    assert parts.kv_sent() == []
    parts.send(ClusterConfigChanged(config=CONFIG))
    parts.send(ClusterConfigChanged(config=CONFIG))
    assert parts.kv_sent() == [("nodeip", b"10.214.0.1\0")]  # once


def test_members_text_matches_the_c_vector(parts: Parts) -> None:
    parts.send(ClusterConfigChanged(config=CONFIG))
    parts.send(QuorumChanged(quorate=True))
    parts.send(MembershipChanged(online=frozenset({1, 2, 3})))
    parts.send(SetStatus(key="nodeip", value=b"10.214.0.1\0"))
    for nodeid in (2, 3):
        parts.send(KvDelivered(nodeid=nodeid, key="nodeip", value=f"10.214.0.{nodeid}\0".encode()))
    # clinfo: the config read, one membership change, three new IPs = 5, as in the vector
    assert parts.text(".members") == (VECTORS / "node1-members.json").read_text()


def test_version_kvstore_block_shape_matches_the_c_vector(parts: Parts) -> None:
    vector = (VECTORS / "node1-version.json").read_text()
    block = kvstore_block(vector)
    nodes = re.findall(r'^"(node\d)": \{$', block, re.MULTILINE)
    parts.send(ClusterConfigChanged(config=CONFIG))
    parsed = json.loads(vector)["kvstore"]
    for name, keys in parsed.items():
        nodeid = int(name.removeprefix("node"))
        for key, version in keys.items():
            for _ in range(version + 1):
                if nodeid == 1:
                    parts.send(SetStatus(key=key, value=b"x\0"))
                else:
                    parts.send(KvDelivered(nodeid=nodeid, key=key, value=b"x\0"))
    ours = kvstore_block(parts.text(".version"))
    assert re.findall(r'^"(node\d)": \{$', ours, re.MULTILINE) == nodes
    assert ours == block


def test_what_peers_send_never_breaks_the_json(parts: Parts) -> None:
    parts.send(ClusterConfigChanged(config=CONFIG))
    parts.send(KvDelivered(nodeid=2, key='kv/"quoted"\n', value=b"x"))
    parts.send(KvDelivered(nodeid=2, key="nodeip", value=b'10.0.0.2"\x01\0'))
    raw = new_entry(uid=9, time=START, priority=6, tag='t"\x02', pid=1, node="node2", ident="ro\\ot", msg="")
    for n, msg in enumerate(('C:\\path "x"', "tab\there", "\\u12", 'ok \\u00e4 \\"q\\"')):
        parts.send(LogDelivered(entry=replace(raw, msg=msg, uid=raw.uid + n)))
    version = json.loads(parts.text(".version"))
    assert list(version["kvstore"]["node2"]) == ['kv/\\"quoted\\"#010'.replace('\\"', '"')]
    members = json.loads(parts.text(".members"))
    assert members["nodelist"]["node2"]["ip"] == '10.0.0.2"#001'
    msgs = {d["msg"] for d in json.loads(parts.text(".clusterlog"))["data"]}
    assert 'C:\\path "x"' in msgs  # a lone backslash from a C node is escaped at the dump
    assert "tab#009here" in msgs
    assert 'ok \u00e4 "q"' in msgs  # valid escapes are shown as they are
    assert "\\u12" in msgs
