"""The DCDB application inside the cluster actor: deliveries, sync decisions, the unlock protocol,
and the host's corosync.conf kept in step (local.md 5.4, as dcdb.c): after delivered changes of
corosync.conf (reload only for this node's own) and after a sync commit (no reload); a writer of
corosync.conf is answered after the host file was written."""

from __future__ import annotations

from collections.abc import Iterator
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
    Lookup,
    MakeDir,
    OpenStore,
    PrepareStore,
    QuorumChanged,
)
from corosync.writers import Writers
from daemon.corosync_conf import HostCorosyncConf
from dfsm import DfsmLeave, Member, MemberState
from errors import AlreadyExists, NotFound
from memdb.checksum import entry_checksum
from memdb.entry import Entry
from memdb.locks import LOCK_TIMEOUT
from replication.dcdb_app import DcdbApp
from replication.pending import PendingChange
from tests.fakes.actors import NOW, Recorder, q
from tests.fakes.clock import Clock
from tests.fakes.corosync import FakeDcdbGroup
from tests.fakes.corosync_conf import Runs, conf
from wire.dcdb import (
    DcdbMessageType,
    FuseMessage,
    UnlockMessage,
    decode_index,
    decode_update,
    encode_fuse,
    encode_unlock,
    encode_update,
)

ME = Member(1, 100)
OTHER = Member(2, 200)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fs(tmp_path: Path, clock: Clock):
    db = DbActor.start(str(tmp_path / "config.db"))
    fs = FsActor.start(db, None, quorate=True, clock=clock)
    q(fs, LoadTree(rows=q(db, OpenStore())))
    q(db, PrepareStore())
    q(fs, ActivateTree())
    return fs


class Sent:
    """The UNLOCK messages the application multicast."""

    def __init__(self, group: FakeDcdbGroup) -> None:
        self._group = group

    @property
    def unlocks(self) -> list[bytes]:
        return [payload for subtype, payload in self._group.sent if subtype == DcdbMessageType.UNLOCK]


def app(fs, *, lowest: bool = True, writers: Writers[PendingChange] | None = None) -> DcdbApp:
    group = FakeDcdbGroup(ME, lowest=lowest)
    return DcdbApp(fs, group, writers or Writers("dcdb", confirm=False))  # type: ignore[arg-type]


def sent_of(dcdb: DcdbApp) -> Sent:
    return Sent(dcdb._group)  # type: ignore[arg-type]


def waiting(writers: Writers[PendingChange], count: int) -> PendingChange:
    """A writer waiting for this node's message ``count``, acknowledged: it hears the tree's result."""
    pending = PendingChange(CreateFile(path="f"))
    writers.expect(count, pending)
    pending.acknowledge()
    return pending


def test_own_changes_report_to_the_waiting_writer(fs) -> None:
    writers: Writers[PendingChange] = Writers("dcdb", confirm=False)
    dcdb = app(fs, writers=writers)
    payload = encode_fuse(FuseMessage(path="f"))
    first, second = waiting(writers, 7), waiting(writers, 8)
    assert dcdb.deliver(ME, DcdbMessageType.CREATE, payload, 1234, 7) == 0
    assert first.get(timeout=5) == 0
    dcdb.deliver(ME, DcdbMessageType.CREATE, payload, 1235, 8)
    with pytest.raises(AlreadyExists):
        second.get(timeout=5)
    other = waiting(writers, 3)
    dcdb.deliver(OTHER, DcdbMessageType.MKDIR, encode_fuse(FuseMessage(path="d")), 1236, 3)
    assert q(fs, Lookup(path="d")).attr.writer == OTHER.nodeid
    with pytest.raises(pykka.Timeout):  # applied (the lookup queued behind it), but not ours
        other.get(timeout=0)


def test_a_change_nobody_waits_for_is_applied_all_the_same(fs) -> None:
    app(fs).deliver(ME, DcdbMessageType.MKDIR, encode_fuse(FuseMessage(path="d")), 1, 9)
    assert q(fs, Lookup(path="d")).attr.writer == ME.nodeid


def test_a_malformed_message_makes_the_node_leave(fs) -> None:
    with pytest.raises(DfsmLeave):
        app(fs).deliver(OTHER, DcdbMessageType.WRITE, b"\x01\x02", 1, 1)


def test_leader_sends_what_the_other_lacks(fs, tmp_path: Path) -> None:
    q(fs, CreateFile(path="a"))
    mine = q(fs, GetIndex())
    other_db = DbActor.start(str(tmp_path / "other.db"))
    other = FsActor.start(other_db, None, quorate=True)
    q(other, LoadTree(rows=q(other_db, OpenStore())))
    q(other_db, PrepareStore())
    q(other, ActivateTree())
    theirs = q(other, GetIndex())
    decision = app(fs).process_state_update(
        [MemberState(member=ME, state=mine), MemberState(member=OTHER, state=theirs)], ME
    )
    assert decision.synced == frozenset({ME})
    assert decision.send_update_complete
    assert {decode_update(u).inode for u in decision.updates} >= {q(fs, Lookup(path="a")).attr.inode}


def test_the_lowest_node_answers_an_expired_unlock_request(fs, clock: Clock) -> None:
    q(fs, MakeDir(path="priv"))
    q(fs, MakeDir(path="priv/lock"))
    q(fs, MakeDir(path="priv/lock/job"))
    dcdb = app(fs)
    sent = sent_of(dcdb)
    csum = _lock_csum(fs)
    request = encode_unlock(UnlockMessage(csum=csum, path="priv/lock/job"))
    dcdb.deliver(OTHER, DcdbMessageType.UNLOCK_REQUEST, request, 1, 1)
    assert sent.unlocks == []  # not expired yet
    clock.now += LOCK_TIMEOUT + 1
    dcdb.deliver(OTHER, DcdbMessageType.UNLOCK_REQUEST, request, 2, 2)
    assert sent.unlocks == [request]
    # UNLOCK, delivered everywhere, removes the lock as its sender
    dcdb.deliver(ME, DcdbMessageType.UNLOCK, request, 3, 3)
    assert q(fs, Lookup(path="priv/lock/job")).attr is None


def test_only_the_lowest_node_answers(fs, clock: Clock) -> None:
    q(fs, MakeDir(path="priv"))
    q(fs, MakeDir(path="priv/lock"))
    q(fs, MakeDir(path="priv/lock/job"))
    clock.now += LOCK_TIMEOUT + 1
    request = encode_unlock(UnlockMessage(csum=_lock_csum(fs), path="priv/lock/job"))
    dcdb = app(fs, lowest=False)
    dcdb.deliver(OTHER, DcdbMessageType.UNLOCK_REQUEST, request, 1, 1)
    assert sent_of(dcdb).unlocks == []


def _lock_csum(fs) -> bytes:
    """The lock's tree-entry checksum, from the exact fields the fs actor reports."""
    inode = q(fs, Lookup(path="priv/lock/job")).attr.inode
    (record,) = q(fs, BuildUpdates(inodes=(inode,)))
    entry = Entry(
        record.inode, record.parent, record.version, record.writer, record.mtime, record.type, record.name
    )
    return entry_checksum(entry)


def test_a_failed_delivery_stops_applying_until_the_group_is_synced_again(fs) -> None:
    dcdb = app(fs)
    fs.tell(QuorumChanged(quorate=False))
    dcdb.deliver(OTHER, DcdbMessageType.MKDIR, encode_fuse(FuseMessage(path="d")), 1, 1)  # refused
    fs.tell(QuorumChanged(quorate=True))
    dcdb.deliver(OTHER, DcdbMessageType.MKDIR, encode_fuse(FuseMessage(path="e")), 2, 2)  # skipped
    assert q(fs, Lookup(path="e")).attr is None
    dcdb.on_synced()  # rejoined and synced (here: alone)
    dcdb.deliver(OTHER, DcdbMessageType.MKDIR, encode_fuse(FuseMessage(path="e")), 3, 3)
    assert q(fs, Lookup(path="e")).attr is not None


# ----- the host's corosync.conf ---------------------------------------------------------

T = 1_800_000_000
TIMEOUT_S = 10.0


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

    def __init__(
        self, fs: pykka.ActorRef[Any], host: HostCorosyncConf | None, runs: Runs | None = None
    ) -> None:
        self.fs = fs
        self.host = host
        self.runs = runs
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
def node(tmp_path: Path) -> Iterator[Node]:
    """This node, its host file in tmp_path, reloads recorded (run at once, on the timer thread)."""
    runs = Runs()
    host = HostCorosyncConf(str(tmp_path / "etc-corosync.conf"), reload_delay=0.0, run=runs)
    try:
        yield Node(start_fs(tmp_path / "config.db"), host, runs)
    finally:
        host.close()
        pykka.ActorRegistry.stop_all()


@pytest.fixture
def host(node: Node) -> HostCorosyncConf:
    assert node.host is not None
    return node.host


def write_conf(node: Node, path: str, data: bytes, *, local: bool = False) -> None:
    node.deliver(DcdbMessageType.CREATE, path, local=local)
    node.deliver(DcdbMessageType.WRITE, path, local=local, data=data)


def test_a_change_from_this_node_is_written_and_reloaded(node: Node, host: HostCorosyncConf) -> None:
    runs = node.runs
    assert runs is not None
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
