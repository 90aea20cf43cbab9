"""Readers on other threads read the fs actor's published snapshots (memdb/snapshot.py).

A change is answered only after the snapshot holding it is published (read-your-writes), and a
reader racing a storm of renames and writes sees only whole versions: one name or the other,
never both or neither, the content that goes with the version, versions that never go back.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from pyrsistent import pmap

import main
from actors.messages import (
    CreateFile,
    GetClusterLog,
    GetStatus,
    GetStatusText,
    LogClusterMessage,
    MakeDir,
    QuorumChanged,
    Rename,
    SetQuorate,
    SetStatus,
    WriteFile,
)
from errors import NotFound
from memdb.snapshot import Published, empty_snapshot
from status.published import StatusFiles, StatusSnapshot
from tests.fakes.actors import q


def test_each_answer_comes_after_its_snapshot(start_daemon: Callable[..., main.Actors]) -> None:
    actors = start_daemon(local=True)
    tree = actors.tree
    q(actors.fs, CreateFile(path="f.cfg"))
    assert tree.value.read_all("f.cfg") == b""
    for i in range(20):
        data = f"version {i}\n".encode()
        q(actors.fs, WriteFile(path="f.cfg", data=data, offset=0))
        assert tree.value.read_all("f.cfg") == data  # read-your-writes, no ask
    q(actors.fs, SetQuorate(quorate=False))
    assert tree.value.writable is False
    actors.fs.tell(QuorumChanged(quorate=True))
    q(actors.fs, SetQuorate(quorate=True))
    assert tree.value.writable is True


def test_readers_racing_renames_and_writes_see_whole_versions(
    start_daemon: Callable[..., main.Actors],
) -> None:
    actors = start_daemon(local=True)
    tree = actors.tree
    q(actors.fs, CreateFile(path="old.cfg"))
    q(actors.fs, WriteFile(path="old.cfg", data=b"0" * 64, offset=0))
    done = threading.Event()
    problems: list[str] = []
    looks = [0]

    def reader() -> None:
        last_version = 0
        while not done.is_set():
            snap = tree.value
            looks[0] += 1
            version = snap.root.attr.version
            if version < last_version:
                problems.append(f"version went back: {last_version} -> {version}")
            last_version = version
            names = [name for name in ("old.cfg", "new.cfg") if snap.getattr(name) is not None]
            if len(names) != 1:
                problems.append(f"at version {version}: {names}")
                continue
            data = snap.read_all(names[0])
            if data is None or len(set(data)) != 1 or len(data) != 64:
                problems.append(f"at version {version}: torn content {data!r}")
            time.sleep(0)  # let the writer's threads have the GIL too

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        name = "old.cfg"
        for i in range(200):
            other = "new.cfg" if name == "old.cfg" else "old.cfg"
            q(actors.fs, Rename(src=name, dst=other))
            name = other
            q(actors.fs, WriteFile(path=name, data=str(i % 10).encode() * 64, offset=0))
    finally:
        done.set()
        for thread in threads:
            thread.join(10)
    assert problems == []
    assert looks[0] > 200  # the readers really raced the writer


def test_version_and_vmlist_from_snapshots_equal_the_status_actors(
    start_daemon: Callable[..., main.Actors],
) -> None:
    actors = start_daemon(local=True)
    files = actors.status_files
    for path in ("nodes", "nodes/node1", "nodes/node1/qemu-server", "ha"):
        q(actors.fs, MakeDir(path=path))
    q(actors.fs, CreateFile(path="nodes/node1/qemu-server/100.conf"))
    q(actors.fs, CreateFile(path="storage.cfg"))
    q(actors.fs, WriteFile(path="storage.cfg", data=b"dir: local\n", offset=0))
    q(actors.fs, Rename(src="storage.cfg", dst="ha/resources.cfg"))
    # read-your-writes: the counters and the vmlist are the fs actor's, published before its answer
    version = json.loads(files.text(".version") or b"")
    assert (version["storage.cfg"], version["ha/resources.cfg"]) == (4, 2)  # 1 at the start
    assert b'"100": {' in (files.text(".vmlist") or b"")
    for name in (".version", ".vmlist", ".members"):
        asked = q(actors.status, GetStatusText(name=name))  # queued behind every event told
        assert files.text(name) == asked, name
    # rendered again once what it is made of changed (the last rendering is kept until then)
    assert files.text(".version") is files.text(".version")
    q(actors.fs, CreateFile(path="nodes/node1/qemu-server/101.conf"))
    q(actors.fs, CreateFile(path="storage.cfg"))
    for name in (".version", ".vmlist"):
        assert files.text(name) == q(actors.status, GetStatusText(name=name)), name
    assert json.loads(files.text(".version") or b"")["storage.cfg"] == 5


def test_status_values_are_read_from_the_status_snapshot(start_daemon: Callable[..., main.Actors]) -> None:
    actors = start_daemon(local=True)
    files = actors.status_files
    with pytest.raises(NotFound):
        files.status_value("", "kv/test")
    q(actors.status, SetStatus(key="kv/test", value=b"one\0"))
    assert files.status_value("", "kv/test") == b"one\0"  # published before the answer
    assert files.status_value("node1", "kv/test") == b"one\0"
    assert files.status_value("", "kv/test") == q(actors.status, GetStatus(key="kv/test", nodename=""))
    with pytest.raises(NotFound):
        files.status_value("node9", "kv/test")


def test_cluster_log_and_rrd_dump_are_read_from_the_status_snapshot(
    start_daemon: Callable[..., main.Actors],
) -> None:
    actors = start_daemon(local=True)
    files = actors.status_files
    for i in range(60):
        q(
            actors.status,
            LogClusterMessage(
                priority=6, ident="root@pam" if i % 2 else "me", tag="t", msg=b"m%d" % i, pid=1
            ),
        )
    # published before the answer: the last message is already there
    newest = json.loads(files.cluster_log(1, "") or b"")["data"]
    assert [d["msg"] for d in newest] == ["m59"]
    for limit, user in ((50, ""), (3, "root@pam"), (200, "me"), (1, "nobody")):
        asked = q(actors.status, GetClusterLog(max_entries=limit, user=user))
        assert files.cluster_log(limit, user) == asked.encode(), (limit, user)
    assert files.text(".clusterlog") == q(actors.status, GetClusterLog(max_entries=50, user="")).encode()
    q(actors.status, SetStatus(key="rrd/pve2-node/node1", value=b"100:0:1:2\0"))
    made = files.rrd_dump()
    assert made == (b"pve2-node/node1:100:0:1:2\n", True)
    assert files.text(".rrd") == made[0]  # the same dump for 2 s, as the original
    assert files.rrd_dump() == (made[0], False)


def test_rrd_dump_is_remade_every_two_seconds_and_skips_old_entries() -> None:
    clock = [1_000_000.0]
    status = Published(
        StatusSnapshot(
            texts=pmap(), nodename="n1", rrd=(("old", "1:2", 1_000_000.0 - 301), ("new", "3:4", 1_000_000.0))
        )
    )
    files = StatusFiles(Published(empty_snapshot()), status, wallclock=lambda: clock[0])
    assert files.rrd_dump() == (b"new:3:4\n", True)
    status.publish(replace(status.value, rrd=(("new", "3:4", 1_000_000.0), ("more", "5:6", 1_000_001.0))))
    clock[0] += 1.9
    assert files.rrd_dump() == (b"new:3:4\n", False)  # cached
    clock[0] += 0.1
    assert files.rrd_dump() == (b"new:3:4\nmore:5:6\n", True)
    clock[0] += 298.5  # "new" is older than 300 s now, "more" not yet
    assert files.rrd_dump() == (b"more:5:6\n", True)
    assert files.text(".rrd") == b"more:5:6\n"
