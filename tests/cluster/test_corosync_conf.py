"""/etc/pve/corosync.conf -> each node's /etc/corosync/corosync.conf on a real 2-node cluster
(local.md 5.4, cluster.md 2.4).

Each daemon's --corosync-conf is the file its node's corosync runs with, so a higher
config_version written to the tree reaches both host files, and the writer's
``corosync-cfgtool -R`` (run inside its netns, 1 s later) makes both corosyncs reload it: their
cmap ``totem.config_version`` follows. Every wait is a deadline poll.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.cluster import CorosyncLab, NodeDaemon
from lab.nodes import start_daemon, start_nodes, wait_writable
from lab.probes import wait_until
from tests.integration.mounts import require_fuse

pytestmark = [pytest.mark.corosync, pytest.mark.fuse]

SYNC_S = 30.0
"""A change reaches the other node's host file well within a second; a reload takes ~1 s more."""


def with_version(text: bytes, version: int, note: str) -> bytes:
    """The lab's corosync.conf with another config_version and a harmless comment."""
    changed, count = re.subn(rb"config_version: \d+", f"config_version: {version}".encode(), text)
    assert count == 1
    return f"# {note}\n".encode() + changed


def running_version(lab: CorosyncLab, i: int) -> int | None:
    """Node i's corosync's totem.config_version (what it last loaded); None if unreadable."""
    done = lab.node_exec(i, ["corosync-cmapctl", "-g", "totem.config_version"])
    match = re.search(r"= (\d+)", done.stdout)
    return int(match.group(1)) if done.returncode == 0 and match else None


def wait_running_version(lab: CorosyncLab, i: int, version: int) -> None:
    seen: list[int | None] = [None]

    def check() -> bool:
        seen[0] = running_version(lab, i)
        return seen[0] == version

    wait_until(check, SYNC_S, lambda: f"node{i} corosync runs config_version {seen[0]}, want {version}")


def wait_host_file(lab: CorosyncLab, i: int, data: bytes) -> None:
    path = lab.corosync_conf_path(i)
    wait_until(lambda: path.read_bytes() == data, SYNC_S, lambda: f"{path}:\n{path.read_text()}")


def backup(lab: CorosyncLab, i: int) -> bytes:
    return Path(f"{lab.corosync_conf_path(i)}.bak").read_bytes()


def assert_healthy(lab: CorosyncLab, daemons: list[NodeDaemon]) -> None:
    lab.wait_all_quorate()
    for pve in daemons:
        wait_writable(pve)


def test_a_higher_version_reaches_both_host_files_and_corosync_reloads(
    corosync_lab_factory: Callable[..., CorosyncLab], tmp_path: Path
) -> None:
    require_fuse()
    lab = corosync_lab_factory(2)
    n1, n2 = start_nodes(lab, tmp_path, [1, 2])
    v1 = lab.corosync_conf_path(1).read_bytes()
    assert [running_version(lab, i) for i in (1, 2)] == [1, 1]

    # written in place on node 1
    v2 = with_version(v1, 2, "edited on node1")
    n1.path("corosync.conf").write_bytes(v2)
    for i in (1, 2):
        wait_host_file(lab, i, v2)
        assert backup(lab, i) == v1
    for i in (1, 2):
        wait_running_version(lab, i, 2)
    assert_healthy(lab, [n1, n2])

    # the way pvecm does it: a new file renamed over the old one, here on node 2
    v3 = with_version(v1, 3, "renamed on node2")
    n2.path("corosync.conf.new").write_bytes(v3)
    n2.path("corosync.conf.new").rename(n2.path("corosync.conf"))
    for i in (1, 2):
        wait_host_file(lab, i, v3)
        assert backup(lab, i) == v2
    for i in (1, 2):
        wait_running_version(lab, i, 3)
    assert_healthy(lab, [n1, n2])

    # a lower version is not written: the host files are newer
    n1.path("corosync.conf").write_bytes(with_version(v1, 2, "older"))
    for pve in (n1, n2):
        pve.wait_for_line(lambda line: "crit: local corosync.conf is newer" in line, timeout=SYNC_S)
    for i in (1, 2):
        assert lab.corosync_conf_path(i).read_bytes() == v3
        assert backup(lab, i) == v2
        assert running_version(lab, i) == 3
    assert_healthy(lab, [n1, n2])


def test_a_node_that_missed_the_change_gets_it_by_sync_and_at_startup(
    corosync_lab_factory: Callable[..., CorosyncLab], tmp_path: Path
) -> None:
    require_fuse()
    lab = corosync_lab_factory(2)
    n1, _ = start_nodes(lab, tmp_path, [1, 2])
    v1 = lab.corosync_conf_path(1).read_bytes()
    assert lab.stop_pmxcfs(2) == 0

    v2 = with_version(v1, 2, "edited while node2's pmxcfs was down")
    n1.path("corosync.conf").write_bytes(v2)
    wait_host_file(lab, 1, v2)
    # node 1's reload reaches both corosyncs; node 2's still reads its old file
    wait_running_version(lab, 1, 2)
    wait_running_version(lab, 2, 1)
    assert lab.corosync_conf_path(2).read_bytes() == v1

    # node 2's daemon comes back: the sync commit writes its host file, without a reload
    n2 = start_daemon(lab, tmp_path, 2)
    wait_host_file(lab, 2, v2)
    assert backup(lab, 2) == v1
    wait_writable(n2)
    assert running_version(lab, 2) == 1

    # startup: the tree's copy is newer than the host file, which is written and reloaded
    assert lab.stop_pmxcfs(2) == 0
    lab.corosync_conf_path(2).write_bytes(v1)
    n2 = start_daemon(lab, tmp_path, 2)
    wait_host_file(lab, 2, v2)
    assert backup(lab, 2) == v1
    wait_running_version(lab, 2, 2)
    assert_healthy(lab, [n1, n2])
