"""The DCDB application inside the cluster actor: deliveries, sync decisions, the unlock protocol."""

from __future__ import annotations

from pathlib import Path

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
from dfsm import DfsmLeave, Member, MemberState
from errors import AlreadyExists
from memdb.checksum import entry_checksum
from memdb.entry import Entry
from memdb.locks import LOCK_TIMEOUT
from replication.dcdb_app import DcdbApp
from replication.pending import PendingChange
from tests.fakes.actors import q
from tests.fakes.clock import Clock
from tests.fakes.corosync import FakeDcdbGroup
from wire.dcdb import DcdbMessageType, FuseMessage, UnlockMessage, decode_update, encode_fuse, encode_unlock

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
