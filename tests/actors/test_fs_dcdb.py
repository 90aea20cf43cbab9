"""The fs actor as the DCDB application: delivered messages, UPDATE records, the sync commit."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import pykka
import pytest

import main
from actors.db_actor import DbActor
from actors.fs_actor import FsActor
from actors.messages import (
    ActivateTree,
    ApplyDelivered,
    AttachCluster,
    BuildUpdates,
    CommitSync,
    CreateFile,
    DcdbApplyFailed,
    DcdbSynced,
    GetChecksum,
    GetIndex,
    LoadTree,
    Lookup,
    OpenStore,
    Persist,
    PrepareStore,
    QuorumChanged,
    ReadFile,
    Request,
)
from dcdb.apply import Delivered
from errors import AlreadyExists, ErrorLatched, NotFound, NotPermitted
from memdb.checksum import tree_checksum
from replication.pending import PendingChange
from tests.fakes.actors import q
from tests.fakes.fake_cluster import apply
from wire.dcdb import DcdbMessageType, FuseMessage, decode_index

T = 1_800_000_000


def fuse(subtype: DcdbMessageType, path: str, *, sender: int = 3, time: int = T, **kw: object) -> Delivered:
    message = FuseMessage(path=path, **kw)  # type: ignore[arg-type]
    return Delivered(subtype=subtype, message=message, sender=sender, time=time)


def test_delivered_changes_take_writer_and_mtime_from_the_message(daemon: main.Actors) -> None:
    assert apply(daemon.fs, fuse(DcdbMessageType.MKDIR, "d", sender=2, time=T)) == 0
    assert apply(daemon.fs, fuse(DcdbMessageType.CREATE, "d/f", sender=3, time=T + 1)) == 0
    assert apply(daemon.fs, fuse(DcdbMessageType.WRITE, "d/f", sender=3, time=T + 2, data=b"hello")) == 5
    attr = q(daemon.fs, Lookup(path="d/f")).attr
    assert (attr.writer, attr.mtime, attr.size) == (3, T + 2, 5)
    assert apply(daemon.fs, fuse(DcdbMessageType.MTIME, "d/f", sender=2, offset=1234)) == 0
    attr = q(daemon.fs, Lookup(path="d/f")).attr
    assert (attr.writer, attr.mtime) == (2, 1234)
    assert apply(daemon.fs, fuse(DcdbMessageType.WRITE, "d/f", offset=2, flags=1)) == 0
    assert q(daemon.fs, ReadFile(path="d/f", size=10, offset=0)) == b"he"


def test_tree_errors_are_the_message_result(daemon: main.Actors) -> None:
    apply(daemon.fs, fuse(DcdbMessageType.CREATE, "f"))
    with pytest.raises(AlreadyExists):
        apply(daemon.fs, fuse(DcdbMessageType.CREATE, "f"))
    with pytest.raises(NotFound):
        apply(daemon.fs, fuse(DcdbMessageType.DELETE, "missing"))


def test_a_delivery_without_quorum_makes_the_node_leave_and_skip_until_synced_again(
    daemon: main.Actors,
) -> None:
    cluster = Recorder.start()
    q(daemon.fs, AttachCluster(cluster=cluster))
    daemon.fs.tell(QuorumChanged(quorate=False))
    with pytest.raises(NotPermitted):
        apply(daemon.fs, fuse(DcdbMessageType.MKDIR, "d"))
    assert q(cluster, Told()) == [
        DcdbApplyFailed(reason="received write while not quorate - trigger resync", fatal=False)
    ]
    daemon.fs.tell(QuorumChanged(quorate=True))
    # quorate again, but the tree missed a change: nothing more is applied until a sync round
    with pytest.raises(NotPermitted):
        apply(daemon.fs, fuse(DcdbMessageType.MKDIR, "e"))
    assert q(daemon.fs, Lookup(path="e")).attr is None
    q(daemon.fs, GetIndex())  # a sync round begins: not yet
    with pytest.raises(NotPermitted):
        apply(daemon.fs, fuse(DcdbMessageType.MKDIR, "e"))
    daemon.fs.tell(DcdbSynced())  # the group left, rejoined and synced (alone, or from a leader)
    assert apply(daemon.fs, fuse(DcdbMessageType.MKDIR, "e")) == 0
    assert q(daemon.fs, Lookup(path="e")).attr is not None
    cluster.stop()


@dataclass(frozen=True)
class Told(Request[list[object]]):
    """What the recorder was told so far."""


class Recorder(pykka.ThreadingActor):
    """Stands in for the cluster actor: keeps what the fs actor tells it."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[object] = []

    def on_receive(self, message: object) -> object:
        if isinstance(message, Told):
            return list(self.told)
        self.told.append(message)
        return None


def test_commit_sync_takes_the_leaders_tree_and_survives_a_restart(
    start_daemon, db_path: Path, tmp_path: Path
) -> None:
    leader = start_daemon(local=True)
    for name in ("a", "b", "c"):
        apply(leader.fs, fuse(DcdbMessageType.CREATE, name))
        apply(leader.fs, fuse(DcdbMessageType.WRITE, name, data=name.encode() * 4))
    apply(leader.fs, fuse(DcdbMessageType.DELETE, "b"))
    master = q(leader.fs, GetIndex())
    every_inode = tuple(entry.inode for entry in decode_index(master).entries)
    records = q(leader.fs, BuildUpdates(inodes=every_inode))
    leader_sum = q(leader.fs, GetChecksum())
    leader.stop()

    db_path.rename(tmp_path / "leader.db")
    follower = start_daemon(local=True)
    apply(follower.fs, fuse(DcdbMessageType.CREATE, "only-here"))
    q(follower.fs, CommitSync(master_index=master, records=records))
    assert q(follower.fs, GetIndex()) == master
    assert q(follower.fs, GetChecksum()) == leader_sum
    assert q(follower.fs, Lookup(path="only-here")).attr is None
    follower.stop()

    again = start_daemon(local=True)
    assert q(again.fs, GetIndex()) == master
    assert q(again.fs, ReadFile(path="c", size=100, offset=0)) == b"cccc"


@pytest.mark.allow_error_logs
def test_a_commit_that_does_not_reproduce_the_master_latches(daemon: main.Actors) -> None:
    apply(daemon.fs, fuse(DcdbMessageType.CREATE, "x"))
    other = bytearray(q(daemon.fs, GetIndex()))
    other[0] ^= 1  # another version: no record can reproduce it
    with pytest.raises(ErrorLatched):
        q(daemon.fs, CommitSync(master_index=bytes(other), records=()))
    with pytest.raises(NotPermitted):  # latched: the node leaves for good, its writer is refused
        apply(daemon.fs, fuse(DcdbMessageType.CREATE, "y"))
    assert q(daemon.fs, Lookup(path="y")).attr is None


def test_checksum_is_the_tree_checksum(daemon: main.Actors) -> None:
    apply(daemon.fs, fuse(DcdbMessageType.CREATE, "x"))
    assert len(q(daemon.fs, GetChecksum())) == 32
    assert q(daemon.fs, GetChecksum()) != tree_checksum([])


class CountingDb(DbActor):
    """The real db actor, counting the transactions it commits; it can be held up."""

    def __init__(self, path: str, hold: threading.Event, commits: list[int]) -> None:
        super().__init__(path)
        self.hold = hold
        self.commits = commits

    def receive(self, message: object) -> object:
        if isinstance(message, Persist):
            self.hold.wait(10)
            self.commits.append(1)
        return super().receive(message)


def test_other_nodes_changes_queued_together_are_committed_together(tmp_path: Path) -> None:
    hold = threading.Event()
    hold.set()
    commits: list[int] = []
    db = CountingDb.start(str(tmp_path / "config.db"), hold, commits)
    fs = FsActor.start(db, None, quorate=True)
    try:
        q(fs, LoadTree(rows=q(db, OpenStore())))
        q(db, PrepareStore())
        q(fs, ActivateTree())
        apply(fs, fuse(DcdbMessageType.MKDIR, "d"))  # alone in the mailbox: committed at once
        assert len(commits) == 2  # the fresh tree's, and this one
        hold.clear()  # the next commit waits: the deliveries behind it pile up in the mailbox
        fs.tell(ApplyDelivered(delivered=fuse(DcdbMessageType.CREATE, "d/first")))
        futures = []
        for k in range(100):
            pending = PendingChange(CreateFile(path=f"d/f{k}"))
            pending.acknowledge()
            futures.append(pending)
            fs.tell(ApplyDelivered(delivered=fuse(DcdbMessageType.CREATE, f"d/f{k}"), pending=pending))
        hold.set()
        assert [f.get(timeout=10) for f in futures] == [0] * 100
        q(fs, Lookup(path="d"))  # the mailbox ran empty after the last one: the batch is committed
        assert len(commits) <= 4  # not one per change
        fs.stop()
        db.stop()
        rows = {row[0] for row in sqlite3.connect(tmp_path / "config.db").execute("SELECT name FROM tree")}
        assert {"first", *(f"f{k}" for k in range(100))} <= rows  # every one of them on disk
    finally:
        for ref in (fs, db):
            if ref.is_alive():
                ref.stop()
