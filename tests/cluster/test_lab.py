"""The corosync lab itself, against real corosync 3 processes in network namespaces."""

from __future__ import annotations

import glob
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.cluster import CorosyncLab, list_netns
from lab.daemon import is_mounted
from tests.integration.mounts import require_fuse

pytestmark = pytest.mark.corosync

DETECT_S = 5.0
"""A kill or a partition shows within ~1.1 s with token 500; allow for a loaded 2-core box."""


def is_corosync(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "corosync"
    except FileNotFoundError:
        return False


def test_one_node_is_quorate(cluster1: CorosyncLab) -> None:
    assert cluster1.quorate(1) is True
    assert cluster1.members(1) == [1]


def test_three_nodes_see_three_members(cluster3: CorosyncLab) -> None:
    for i in (1, 2, 3):
        assert cluster3.quorate(i) is True
        cluster3.wait_members(i, [1, 2, 3])


def test_five_nodes_see_five_members(cluster5: CorosyncLab) -> None:
    for i in range(1, 6):
        cluster5.wait_members(i, range(1, 6))


def test_kill_two_of_three_then_restart(cluster3: CorosyncLab) -> None:
    pid = cluster3.pid(3)
    assert pid is not None
    cluster3.kill(3)
    assert not cluster3.running(3)
    assert not is_corosync(pid)
    assert not glob.glob(f"/dev/shm/qb-corosync-{pid}-*")
    cluster3.wait_members(1, [1, 2], timeout=DETECT_S)
    assert cluster3.quorate(1) is True
    assert cluster3.quorate(2) is True

    cluster3.kill(2)
    cluster3.wait_quorate(1, expect=False, timeout=DETECT_S)
    assert cluster3.members(1) == [1]

    cluster3.start(2)
    cluster3.start(3)
    cluster3.wait_all_quorate()
    for i in (1, 2, 3):
        cluster3.wait_members(i, [1, 2, 3])


def test_isolate_and_heal(cluster3: CorosyncLab) -> None:
    cluster3.isolate(3)
    cluster3.wait_quorate(3, expect=False, timeout=DETECT_S)
    cluster3.wait_members(1, [1, 2], timeout=DETECT_S)
    cluster3.wait_members(2, [1, 2], timeout=DETECT_S)
    assert cluster3.members(3) == [3]
    assert cluster3.quorate(1) is True
    assert cluster3.quorate(2) is True

    cluster3.heal(3)
    cluster3.wait_all_quorate()
    for i in (1, 2, 3):
        cluster3.wait_members(i, [1, 2, 3])


def test_stop_and_start_one_node(cluster3: CorosyncLab) -> None:
    pid = cluster3.pid(2)
    assert pid is not None
    cluster3.stop(2)
    assert not cluster3.running(2)
    assert not is_corosync(pid)
    assert not glob.glob(f"/dev/shm/qb-corosync-{pid}-*")
    cluster3.wait_members(1, [1, 3], timeout=DETECT_S)
    assert cluster3.quorate(1) is True

    assert cluster3.start(2) != pid
    cluster3.wait_quorate(2)
    for i in (1, 2, 3):
        cluster3.wait_members(i, [1, 2, 3])


def test_two_labs_side_by_side(corosync_lab_factory: Callable[..., CorosyncLab]) -> None:
    a = corosync_lab_factory()
    b = corosync_lab_factory()
    assert a.prefix != b.prefix
    a.up(2, wait=False)
    b.up(2, wait=False)
    a.wait_all_quorate()
    b.wait_all_quorate()
    for lab in (a, b):
        assert lab.members(1) == [1, 2]
        assert lab.members(2) == [1, 2]


def test_down_leaves_nothing(corosync_lab_factory: Callable[..., CorosyncLab]) -> None:
    lab = corosync_lab_factory(3)
    client = lab.node_popen(1, ["corosync-quorumtool", "-m"], stdout=subprocess.DEVNULL)
    pids = [lab.pid(i) for i in (1, 2, 3)]
    assert all(pid is not None and is_corosync(pid) for pid in pids)
    assert lab.state_dir.is_dir()

    assert lab.down() == []

    assert client.poll() is not None
    assert [name for name in list_netns() if name.startswith(lab.prefix + "-")] == []
    for pid in pids:
        assert not is_corosync(pid)
        assert not glob.glob(f"/dev/shm/qb-corosync-{pid}-*")
        assert not glob.glob(f"/dev/shm/qb-{pid}-*")
    assert not lab.state_dir.exists()
    assert lab.down() == []  # idempotent


@pytest.mark.fuse
def test_pmxcfs_in_node_netns(cluster1: CorosyncLab, tmp_path: Path) -> None:
    require_fuse()
    pve = cluster1.start_pmxcfs(1, tmp_path / "pmxcfs")
    assert pve.proc is not None
    node_ns = os.stat(f"/run/netns/{cluster1.netns(1)}").st_ino
    assert os.stat(f"/proc/{pve.proc.pid}/ns/net").st_ino == node_ns

    pve.path("datacenter.cfg").write_text("keyboard: en-us\n")
    assert pve.path("datacenter.cfg").read_text() == "keyboard: en-us\n"

    assert cluster1.stop_pmxcfs(1) == 0
    assert not is_mounted(pve.mount)
