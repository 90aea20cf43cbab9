"""The DCDB application keeps the host's corosync.conf in step (local.md 5.4, as dcdb.c): after
delivered changes of corosync.conf (reload only for this node's own) and after a sync commit (no
reload); a writer of corosync.conf is answered after the host file was written."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.db_actor import DbActor
from actors.fs_actor import FsActor
from actors.messages import (
    ActivateTree,
    BuildUpdates,
    CreateFile,
    GetIndex,
    LoadTree,
    OpenStore,
    PrepareStore,
)
from corosync.writers import Writers
from daemon.corosync_conf import HostCorosyncConf
from dfsm import Member, MemberState
from errors import NotFound
from replication.dcdb_app import DcdbApp
from replication.pending import PendingChange
from tests.fakes.actors import NOW, Recorder, q
from tests.fakes.corosync import FakeDcdbGroup
from wire.dcdb import DcdbMessageType, FuseMessage, decode_index, encode_fuse, encode_update

ME = Member(1, 100)
OTHER = Member(2, 200)
T = 1_800_000_000
TIMEOUT_S = 10.0


def conf(version: int) -> bytes:
    return f"totem {{\n  cluster_name: lab\n  config_version: {version}\n}}\n".encode()


class Runs:
    """Stands in for corosync-cfgtool -R."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.called = threading.Event()

    def __call__(self, command: Sequence[str]) -> int:
        self.calls.append(tuple(command))
        self.called.set()
        return 0


@pytest.fixture
def runs() -> Runs:
    return Runs()


@pytest.fixture
def host(tmp_path: Path, runs: Runs) -> Iterator[HostCorosyncConf]:
    made = HostCorosyncConf(str(tmp_path / "etc-corosync.conf"), reload_delay=0.0, run=runs)
    yield made
    made.close()


def start_fs(path: Path) -> pykka.ActorRef[Any]:
    """An fs actor with its db actor, on a fresh tree."""
    db = DbActor.start(str(path))
    fs = FsActor.start(db, Recorder(), quorate=True, wallclock=lambda: float(NOW))
    q(fs, LoadTree(rows=q(db, OpenStore())))
    q(db, PrepareStore())
    q(fs, ActivateTree())
    return fs


class Node:
    """This node's DCDB application on a real fs actor; ``deliver`` answers like a writer."""

    def __init__(self, fs: pykka.ActorRef[Any], host: HostCorosyncConf | None) -> None:
        self.fs = fs
        self.writers: Writers[PendingChange] = Writers("dcdb", confirm=False)
        self.app = DcdbApp(fs, FakeDcdbGroup(ME), self.writers, host)  # type: ignore[arg-type]
        self.count = 0

    def deliver(self, subtype: DcdbMessageType, path: str, *, local: bool = False, **kw: Any) -> object:
        """Deliver one change (ours if ``local``: return the tree's result or raise its error)."""
        self.count += 1
        payload = encode_fuse(FuseMessage(path=path, **kw))
        if not local:
            self.app.deliver(OTHER, subtype, payload, T, self.count)
            return q(self.fs, GetIndex())  # the ask queues behind the change: it is applied
        pending = PendingChange(CreateFile(path=path))
        self.writers.expect(self.count, pending)
        self.app.deliver(ME, subtype, payload, T, self.count)
        pending.acknowledge()
        return pending.get(timeout=TIMEOUT_S)


@pytest.fixture
def node(tmp_path: Path, host: HostCorosyncConf) -> Iterator[Node]:
    fs = start_fs(tmp_path / "config.db")
    yield Node(fs, host)
    pykka.ActorRegistry.stop_all()


def write_conf(node: Node, path: str, data: bytes, *, local: bool = False) -> None:
    node.deliver(DcdbMessageType.CREATE, path, local=local)
    node.deliver(DcdbMessageType.WRITE, path, local=local, data=data)


def test_a_change_from_this_node_is_written_and_reloaded(
    node: Node, host: HostCorosyncConf, runs: Runs
) -> None:
    Path(host.path).write_bytes(conf(1))
    write_conf(node, "corosync.conf", conf(2), local=True)
    assert Path(host.path).read_bytes() == conf(2)  # already when the writer is answered
    assert Path(host.backup_path).read_bytes() == conf(1)
    assert runs.called.wait(TIMEOUT_S)
    assert runs.calls == [("corosync-cfgtool", "-R")]


def no_reloads(host: HostCorosyncConf, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record reloads scheduled from now on, instead of scheduling them."""
    scheduled: list[int] = []
    monkeypatch.setattr(host, "schedule_reload", lambda: scheduled.append(1))
    return scheduled


def test_a_change_from_another_node_is_written_without_reload(
    node: Node, host: HostCorosyncConf, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduled = no_reloads(host, monkeypatch)
    Path(host.path).write_bytes(conf(1))
    write_conf(node, "corosync.conf", conf(2), local=False)
    assert Path(host.path).read_bytes() == conf(2)
    assert scheduled == []
    write_conf(node, "other", b"x", local=True)
    node.deliver(DcdbMessageType.WRITE, "corosync.conf", local=True, data=conf(3))
    assert scheduled == [1]  # the same change sent by this node reloads


def test_a_rename_onto_corosync_conf_counts(node: Node, host: HostCorosyncConf) -> None:
    Path(host.path).write_bytes(conf(1))
    write_conf(node, "corosync.conf.new", conf(5))
    assert Path(host.path).read_bytes() == conf(1)  # another file of the tree: nothing
    node.deliver(DcdbMessageType.RENAME, "corosync.conf.new", to="corosync.conf")
    assert Path(host.path).read_bytes() == conf(5)


def test_a_failed_change_does_not_sync(node: Node, host: HostCorosyncConf) -> None:
    with pytest.raises(NotFound):
        node.deliver(DcdbMessageType.RENAME, "missing", local=True, to="corosync.conf")
    assert not Path(host.path).exists()


def test_without_a_host_file_object_nothing_is_written(tmp_path: Path) -> None:
    node = Node(start_fs(tmp_path / "config.db"), None)
    try:
        write_conf(node, "corosync.conf", conf(2), local=True)
    finally:
        pykka.ActorRegistry.stop_all()
    assert not (tmp_path / "etc-corosync.conf").exists()


def test_a_sync_commit_writes_the_leaders_copy_without_reload(
    node: Node, host: HostCorosyncConf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduled = no_reloads(host, monkeypatch)
    leader = Node(start_fs(tmp_path / "leader.db"), None)
    write_conf(leader, "corosync.conf", conf(7), local=True)
    master = q(leader.fs, GetIndex())
    inodes = tuple(entry.inode for entry in decode_index(master).entries)
    Path(host.path).write_bytes(conf(6))
    states = [MemberState(member=ME, state=q(node.fs, GetIndex())), MemberState(member=OTHER, state=master)]
    decision = node.app.process_state_update(states, ME)
    assert decision.synced == frozenset({OTHER})  # the other node leads: its tree is newer
    for record in q(leader.fs, BuildUpdates(inodes=inodes)):
        node.app.process_update(OTHER, encode_update(record))
    node.app.commit()
    assert q(node.fs, GetIndex()) == master
    assert Path(host.path).read_bytes() == conf(7)
    assert Path(host.backup_path).read_bytes() == conf(6)
    assert scheduled == []
