"""The status (kvstore) group with our daemons on real corosync clusters.

.members, .vmlist, .version and .clusterlog as the nodes see each other: online flags from the
pve_kvstore_v1 membership, IPs from the ``nodeip`` every node announces after each sync, guests
from the replicated tree, the cluster logs merged on every membership change. Status files are
regenerated on getattr, so every read goes through a forced getattr, and every change of state is
awaited with a deadline poll.
"""

from __future__ import annotations

import errno
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from daemon.identity import resolve_node_ip
from lab.cluster import CorosyncLab, NodeDaemon
from lab.daemon import REPO
from lab.nodes import QUORATE_S, start_daemon, start_nodes
from lab.probes import status, status_json, wait_status, wait_until, write_errno
from tests.integration.mounts import require_fuse

pytestmark = [pytest.mark.corosync, pytest.mark.fuse]

SYNC_S = 30.0
"""Deadline for a status change to reach another node (normally well under a second)."""
DETECT_S = 10.0
"""A stopped daemon leaves the CPG group at once; a killed one within corosync's token timeout."""


def node_ip(lab: CorosyncLab, i: int) -> str:
    """What node i announces: its name resolved, else its ring0 address (the lab's names don't resolve)."""
    return resolve_node_ip(f"node{i}") or lab.addr(i)


def ipc(lab: CorosyncLab, i: int, *args: str) -> bytes:
    """Run the IPC client inside node i's netns (its pmxcfs's "pve2"); returns its output."""
    done = lab.node_exec(
        i, [sys.executable, "-m", "ipc.client", *args], cwd=REPO, text=False, timeout=60, check=False
    )
    assert done.returncode == 0, f"node{i} ipc {args}: {done.stderr.decode(errors='replace')}"
    return bytes(done.stdout)


def log_entries(pve: NodeDaemon) -> list[dict[str, Any]]:
    return list(status_json(pve, ".clusterlog")["data"])


def startup_entries(pve: NodeDaemon) -> list[tuple[str, int, int]]:
    """(node, uid, time) of every "starting cluster log" entry this node knows."""
    return sorted(
        (e["node"], e["uid"], e["time"]) for e in log_entries(pve) if e["msg"] == "starting cluster log"
    )


@pytest.fixture
def three(cluster3: CorosyncLab, tmp_path: Path) -> list[NodeDaemon]:
    require_fuse()
    return start_nodes(cluster3, tmp_path, [1, 2, 3])


def online_everywhere(daemons: Sequence[NodeDaemon], online: Sequence[int], nodes: int = 3) -> None:
    want = {f"node{i}": int(i in online) for i in range(1, nodes + 1)}
    for pve in daemons:
        wait_status(
            pve,
            ".members",
            lambda m: {name: node["online"] for name, node in m.get("nodelist", {}).items()} == want,
            timeout=DETECT_S,
        )


def test_members_show_every_node_online_with_its_ip(cluster3: CorosyncLab, three: list[NodeDaemon]) -> None:
    ips = {f"node{i}": node_ip(cluster3, i) for i in (1, 2, 3)}
    for pve in three:
        members = wait_status(
            pve,
            ".members",
            lambda m: {name: node.get("ip") for name, node in m.get("nodelist", {}).items()} == ips,
        )
        assert members["nodename"] == pve.nodename
        assert members["cluster"] == {"name": cluster3.cluster_name, "version": 1, "nodes": 3, "quorate": 1}
        assert {name: node["online"] for name, node in members["nodelist"].items()} == dict.fromkeys(ips, 1)
        assert members["version"] >= 4  # the config read, a membership change and three IPs at least


def test_vm_created_on_node2_shows_in_vmlist_on_nodes_1_and_3(three: list[NodeDaemon]) -> None:
    n1, n2, n3 = three
    before = {pve.nodename: status_json(pve, ".vmlist")["version"] for pve in three}
    (n2.path("nodes/node2/qemu-server")).mkdir(parents=True, exist_ok=True)
    n2.path("nodes/node2/qemu-server/100.conf").write_text("memory: 512\n")
    n2.path("nodes/node2/lxc").mkdir(exist_ok=True)
    n2.path("nodes/node2/lxc/101.conf").write_text("hostname: ct\n")
    for pve in (n1, n3, n2):
        vmlist = wait_status(pve, ".vmlist", lambda v: set(v.get("ids", {})) == {"100", "101"})
        assert vmlist["ids"]["100"]["node"] == "node2"
        assert vmlist["ids"]["100"]["type"] == "qemu"
        assert vmlist["ids"]["101"] == {
            "node": "node2",
            "type": "lxc",
            "version": vmlist["ids"]["101"]["version"],
        }
        assert vmlist["version"] > before[pve.nodename]
    # a guest moved to node3 (rename across nodes) is shown there everywhere
    n2.path("nodes/node3/qemu-server").mkdir(parents=True, exist_ok=True)
    n2.path("nodes/node2/qemu-server/100.conf").rename(n2.path("nodes/node3/qemu-server/100.conf"))
    for pve in three:
        wait_status(pve, ".vmlist", lambda v: v["ids"]["100"]["node"] == "node3")


def test_version_counts_writes_to_tracked_files_on_every_node(three: list[NodeDaemon]) -> None:
    before = [status_json(pve, ".version")["storage.cfg"] for pve in three]
    three[0].path("storage.cfg").write_text("dir: local\n\tpath /var/lib/vz\n")
    for pve, old in zip(three, before, strict=True):
        wait_status(pve, ".version", lambda v, old=old: v["storage.cfg"] > old)


def test_a_stopped_node_is_shown_offline_on_the_others(
    cluster3: CorosyncLab, three: list[NodeDaemon]
) -> None:
    online_everywhere(three, [1, 2, 3])
    assert cluster3.stop_pmxcfs(3) == 0
    online_everywhere(three[:2], [1, 2])
    # corosync of node 3 still runs: only the daemon is gone, and the others still know its IP
    assert status_json(three[0], ".members")["nodelist"]["node3"]["ip"] == node_ip(cluster3, 3)


def test_a_killed_node_is_shown_offline_on_the_others(cluster3: CorosyncLab, three: list[NodeDaemon]) -> None:
    online_everywhere(three, [1, 2, 3])
    cluster3.stop_pmxcfs(2, signal.SIGKILL)
    online_everywhere([three[0], three[2]], [1, 3])


def test_every_node_learns_every_startup_entry(three: list[NodeDaemon]) -> None:
    def all_three(pve: NodeDaemon) -> list[tuple[str, int, int]] | None:
        entries = startup_entries(pve)
        return entries if sorted({e[0] for e in entries}) == ["node1", "node2", "node3"] else None

    seen = [wait_until(lambda pve=pve: all_three(pve), SYNC_S, lambda: "startup entries") for pve in three]
    assert seen[0] == seen[1] == seen[2]
    assert len(seen[0]) == 3  # once each


def test_restarted_node_gets_the_others_status_and_log_back(
    cluster3: CorosyncLab, tmp_path: Path, three: list[NodeDaemon]
) -> None:
    n1, n2, _ = three
    ips = {f"node{i}": node_ip(cluster3, i) for i in (1, 2, 3)}
    for pve in three:
        wait_status(
            pve, ".members", lambda m: {k: v.get("ip") for k, v in m.get("nodelist", {}).items()} == ips
        )
    originals = startup_entries(n1)
    # a new process counts its log entries from uid 1 again: within the second of the old
    # process's first entry they would be the same entry (reference 6.3), so let that second pass
    started = max(entry[2] for entry in originals)
    wait_until(lambda: int(time.time()) > started, 2.0, lambda: "the next second")
    assert cluster3.stop_pmxcfs(3) == 0
    online_everywhere([n1, n2], [1, 2])
    n3 = start_daemon(cluster3, tmp_path, 3)
    # the new process starts with an empty log and no IPs; the sync brings both back
    members = wait_status(
        n3, ".members", lambda m: {k: v.get("ip") for k, v in m.get("nodelist", {}).items()} == ips
    )
    assert {k: v["online"] for k, v in members["nodelist"].items()} == {"node1": 1, "node2": 1, "node3": 1}

    def merged() -> list[tuple[str, int, int]] | None:
        entries = startup_entries(n3)
        return entries if len(entries) == 4 else None

    entries = wait_until(merged, SYNC_S, lambda: f"node3 log: {startup_entries(n3)}")
    for entry in originals:
        assert entry in entries  # the very same entries (node, uid, time), not copies
    assert [e for e in entries if e[0] == "node3"][-1] not in originals  # and its own new one
    for pve in (n1, n2):
        wait_until(lambda pve=pve: len(startup_entries(pve)) == 4, SYNC_S, lambda: "node3's new entry")
    assert wait_status(n3, ".members", lambda m: m["cluster"]["quorate"] == 1, timeout=QUORATE_S)


# ----- through IPC: kv, RRD and cluster log messages as the Proxmox tools send them ----------


def log_count(pve: NodeDaemon, msg: str) -> int:
    return sum(1 for e in log_entries(pve) if e["msg"] == msg)


def test_a_log_entry_made_on_node1_appears_on_every_node_once(
    cluster3: CorosyncLab, tmp_path: Path, three: list[NodeDaemon]
) -> None:
    msg = f"hello from node1 {time.monotonic_ns()}"
    ipc(cluster3, 1, "log-cluster-msg", "5", "root@pam", "pvetest", msg)
    for pve in three:
        wait_until(lambda pve=pve: log_count(pve, msg) == 1, SYNC_S, lambda pve=pve: f"{pve.nodename} log")
    entry = next(e for e in log_entries(three[1]) if e["msg"] == msg)
    assert (entry["node"], entry["user"], entry["tag"], entry["pri"]) == ("node1", "root@pam", "pvetest", 5)
    # a membership change merges every log: still once everywhere, and the new process gets it
    assert cluster3.stop_pmxcfs(3) == 0
    n3 = start_daemon(cluster3, tmp_path, 3)
    wait_until(lambda: log_count(n3, msg) == 1, SYNC_S, lambda: f"node3 log {log_entries(n3)[:5]}")
    online_everywhere([three[0], three[1], n3], [1, 2, 3])
    for pve in (three[0], three[1], n3):
        assert log_count(pve, msg) == 1
    # and the cluster log over IPC says the same
    data = json.loads(ipc(cluster3, 2, "get-cluster-log", "--user", "root@pam"))["data"]
    assert [e["msg"] for e in data].count(msg) == 1


def test_kv_and_rrd_updates_reach_every_node(cluster3: CorosyncLab, three: list[NodeDaemon]) -> None:
    ipc(cluster3, 1, "set-status", "kv/test", "one")
    ipc(cluster3, 1, "set-status", "kv/test", "two")
    now = int(time.time())
    data = f"1000:0:{now}:0.5:4:0.25:0.01:8000:4000:1000:0:50000:20000:1000:2000"
    ipc(cluster3, 1, "set-status", "rrd/pve2-node/node1", data)
    for i, pve in zip((1, 2, 3), three, strict=True):
        wait_until(
            lambda i=i: ipc(cluster3, i, "get-status", "kv/test", "node1") == b"two\0",
            SYNC_S,
            lambda i=i: f"node{i} kv/test of node1",
        )
        version = status_json(pve, ".version")["kvstore"]
        assert version["node1"] == {"kv/test": 1}
        # every node writes the RRD file of every node's data, and lists it in .rrd
        wait_until(
            lambda pve=pve: (pve.base / "rrd" / "pve-node-9.0" / "node1").is_file(),
            SYNC_S,
            lambda: "rrd file",
        )
        assert f"pve2-node/node1:{data}\n" in status(pve, ".rrd")
    # the other nodes keep it in node1's table, not their own
    done = cluster3.node_exec(
        2,
        [sys.executable, "-m", "ipc.client", "get-status", "kv/test"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 1
    assert "ENOENT" in done.stderr


def test_restarted_node_gets_the_others_kv_back(
    cluster3: CorosyncLab, tmp_path: Path, three: list[NodeDaemon]
) -> None:
    ipc(cluster3, 1, "set-status", "kv/persist", "kept")
    wait_until(
        lambda: ipc(cluster3, 3, "get-status", "kv/persist", "node1") == b"kept\0", SYNC_S, lambda: "node3 kv"
    )
    assert cluster3.stop_pmxcfs(3) == 0
    n3 = start_daemon(cluster3, tmp_path, 3)
    # node1 re-broadcasts its kv entries after the sync: the new process learns them
    wait_until(
        lambda: ipc(cluster3, 3, "get-status", "kv/persist", "node1") == b"kept\0",
        SYNC_S,
        lambda: "node3 kv after restart",
    )
    assert status_json(n3, ".version")["kvstore"]["node1"] == {"kv/persist": 0}


def test_ipc_answers_with_what_other_nodes_did(cluster3: CorosyncLab, three: list[NodeDaemon]) -> None:
    n1, _, n3 = three
    n1.path("nodes/node1/qemu-server").mkdir(parents=True, exist_ok=True)
    n1.path("nodes/node1/qemu-server/200.conf").write_text("name: web\nmemory: 2048\n")
    wait_status(n3, ".vmlist", lambda v: "200" in v.get("ids", {}))
    guests = json.loads(ipc(cluster3, 3, "get-guest-list"))
    assert guests["ids"]["200"]["node"] == "node1"
    assert ipc(cluster3, 3, "get-config", "nodes/node1/qemu-server/200.conf") == b"name: web\nmemory: 2048\n"
    assert json.loads(ipc(cluster3, 3, "get-guest-config-property", "200", "memory")) == {
        "200": {"memory": "2048"}
    }
    info = wait_until(
        lambda: (
            (text := ipc(cluster3, 2, "get-cluster-info"))
            and all(n["online"] == 1 for n in json.loads(text)["nodelist"].values())
            and text
        ),
        SYNC_S,
        lambda: "node2 cluster info",
    )
    assert json.loads(info)["nodelist"]["node1"]["ip"] == node_ip(cluster3, 1)
    assert json.loads(ipc(cluster3, 2, "get-fs-version"))["vmlist"] >= 1


# ----- .health ---------------------------------------------------------------------------


def test_health_says_not_quorate_when_quorum_is_lost(cluster3: CorosyncLab, three: list[NodeDaemon]) -> None:
    n1 = three[0]
    health = wait_status(
        n1, ".health", lambda h: h["writable"] and h["sync"] == {"dcdb": "synced", "kvstore": "synced"}
    )
    assert health["mode"] == "cluster"
    assert health["corosync"] == {"quorum": True, "cmap": True, "kvstore": True, "dcdb": True}
    assert health["online"] == [1, 2, 3]
    for pve in three[1:]:
        cluster3.stop_pmxcfs(int(pve.nodename.removeprefix("node")))
    cluster3.kill(2)
    cluster3.kill(3)
    health = wait_status(n1, ".health", lambda h: not h["quorate"], timeout=DETECT_S)
    assert health["writable"] is False
    assert "not quorate" in health["not_writable_because"]
    assert health["corosync"]["quorum"] is True  # corosync itself is still there: no quorum, not no link
    assert write_errno(n1.path("refused.cfg")) == errno.EACCES
    refusal = wait_status(n1, ".health", lambda h: h["last_refusal"] is not None)["last_refusal"]
    assert (refusal["op"], refusal["error"]) == ("create", "EACCES")
    assert "quorate" in refusal["reason"]
    assert any("refused create refused.cfg" in line for line in n1.lines)
    cluster3.start(2)
    wait_status(n1, ".health", lambda h: h["quorate"] and h["writable"], timeout=QUORATE_S * 2)
