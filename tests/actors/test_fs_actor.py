"""FsActor handlers called directly (no start): answers, persistence, announcements, quorum."""

from __future__ import annotations

import errno
from pathlib import Path

import pykka
import pytest

from actors.fs_actor import FsActor
from actors.messages import (
    ActivateTree,
    ChangeRefused,
    CommitPending,
    CreateFile,
    GetIndex,
    GetStatFs,
    ListDir,
    LoadTree,
    Lookup,
    LookupReply,
    MakeDir,
    QuorumChanged,
    ReadFile,
    Remove,
    Rename,
    SetMtime,
    TreeChanged,
    TreeReloaded,
    Truncate,
    VmListChanged,
    WriteFile,
)
from errno_map import errno_for
from errors import (
    AccessDenied,
    AlreadyExists,
    DirectoryNotEmpty,
    FileTooLarge,
    NotADirectory,
    NotFound,
    NotQuorate,
)
from memdb.records import DT_DIR, DT_REG, VmListSnapshot
from replication.refusals import describe
from tests.fakes.actors import NOW, Recorder, raw_rows
from tests.fakes.clock import Clock


def _attr(fs: FsActor, path: str):
    reply = fs.on_receive(Lookup(path=path))
    assert isinstance(reply, LookupReply)
    return reply.attr


def _root_version(fs: FsActor) -> int:
    return _attr(fs, "").version


def _assert_row_matches(fs: FsActor, db_path: Path, path: str) -> None:
    """The store row of ``path`` and the version row say what the tree says."""
    attr = _attr(fs, path)
    rows = raw_rows(db_path)
    _parent, version, writer, mtime, type_, name, data = rows[attr.inode]
    assert (version, writer, mtime, type_, name) == (
        attr.version,
        attr.writer,
        attr.mtime,
        attr.type,
        path.rpartition("/")[2],
    )
    if attr.type == DT_REG:
        expected = fs.on_receive(ReadFile(path=path, size=1 << 20, offset=0))
        assert (data or b"") == expected
        assert data is None or data != b""
    else:
        assert data is None
    root = _attr(fs, "")
    assert rows[0] == (0, root.version, root.writer, root.mtime, 8, "__version__", None)


def test_activate_on_a_fresh_db_stores_version_1(db_ref: pykka.ActorRef, db_path: Path) -> None:
    rec = Recorder()
    fs = FsActor(db_ref, rec, quorate=True, wallclock=lambda: float(NOW))  # type: ignore[arg-type]
    assert fs.on_receive(LoadTree(rows=())) is None
    assert _root_version(fs) == 0
    assert fs.on_receive(ActivateTree()) is None
    assert _root_version(fs) == 1
    assert raw_rows(db_path) == {0: (0, 1, 0, NOW, 8, "__version__", None)}
    assert rec.told == [TreeReloaded(), VmListChanged(snapshot=VmListSnapshot(version=0, vms=()))]


def test_every_change_answers_what_the_tree_says(fs: FsActor, db_path: Path) -> None:
    # mkdir and create answer the new entry's attributes, as the tree has them
    assert fs.on_receive(MakeDir(path="d")) == _attr(fs, "d")
    d = _attr(fs, "d")
    assert (d.inode, d.version, d.type, d.mtime, d.writer) == (2, 2, DT_DIR, NOW, 0)
    _assert_row_matches(fs, db_path, "d")

    assert fs.on_receive(CreateFile(path="d/f")) == _attr(fs, "d/f")
    f = _attr(fs, "d/f")
    assert (f.inode, f.version, f.size, f.type) == (3, 3, 0, DT_REG)
    assert 3 not in raw_rows(db_path)  # committed when its writer closes it
    assert fs.on_receive(CommitPending()) is None
    _assert_row_matches(fs, db_path, "d/f")

    assert fs.on_receive(WriteFile(path="d/f", data=b"hello", offset=0)) == 5
    assert fs.on_receive(ReadFile(path="d/f", size=100, offset=0)) == b"hello"
    assert fs.on_receive(CommitPending()) is None
    _assert_row_matches(fs, db_path, "d/f")

    assert fs.on_receive(WriteFile(path="d/f", data=b"ab", offset=7)) == 2
    assert fs.on_receive(ReadFile(path="d/f", size=100, offset=0)) == b"hello\0\0ab"
    assert fs.on_receive(ReadFile(path="d/f", size=3, offset=1)) == b"ell"
    assert fs.on_receive(ReadFile(path="d/f", size=3, offset=50)) == b""

    assert fs.on_receive(Truncate(path="d/f", size=3)) == 0
    assert fs.on_receive(ReadFile(path="d/f", size=100, offset=0)) == b"hel"
    assert fs.on_receive(Truncate(path="d/f", size=6)) == 0
    assert fs.on_receive(ReadFile(path="d/f", size=100, offset=0)) == b"hel\0\0\0"
    _assert_row_matches(fs, db_path, "d/f")

    assert fs.on_receive(SetMtime(path="d/f", mtime=12345)) == 0
    assert _attr(fs, "d/f").mtime == 12345
    _assert_row_matches(fs, db_path, "d/f")

    assert fs.on_receive(Rename(src="d/f", dst="g")) == 0
    g = _attr(fs, "g")
    assert g.inode == 3  # a rename keeps the inode
    assert g.mtime == NOW  # and sets the mtime to the rename time
    assert _attr(fs, "d/f") is None
    _assert_row_matches(fs, db_path, "g")

    assert fs.on_receive(Remove(path="g")) == 0
    assert _attr(fs, "g") is None
    assert 3 not in raw_rows(db_path)
    assert fs.on_receive(Remove(path="d")) == 0
    assert set(raw_rows(db_path)) == {0}
    # 10 successful changes on top of version 1
    assert _root_version(fs) == 11
    assert raw_rows(db_path)[0][1] == 11


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (WriteFile(path="missing", data=b"x", offset=0), NotFound),
        (WriteFile(path="nodir/x", data=b"x", offset=0), NotFound),
        (CreateFile(path="f"), AlreadyExists),
        (MakeDir(path="d"), AlreadyExists),
        (CreateFile(path="f/x"), NotADirectory),
        (WriteFile(path="d", data=b"x", offset=0), NotADirectory),
        (Remove(path="d"), DirectoryNotEmpty),
        (Remove(path="missing"), NotFound),
        (Rename(src="missing", dst="x"), NotFound),
        (WriteFile(path="f", data=b"x", offset=1 << 20), FileTooLarge),
        (Truncate(path="f", size=(1 << 20) + 1), FileTooLarge),
        (MakeDir(path=""), AccessDenied),
        (SetMtime(path="", mtime=1), AccessDenied),
        (SetMtime(path="missing", mtime=1), NotFound),
    ],
)
def test_refused_changes_raise_and_change_nothing(
    fs: FsActor, db_path: Path, recorder: Recorder, message: object, error: type[Exception]
) -> None:
    fs.on_receive(MakeDir(path="d"))
    fs.on_receive(CreateFile(path="d/x"))
    fs.on_receive(CreateFile(path="f"))
    recorder.clear()
    index = fs.on_receive(GetIndex())
    rows = raw_rows(db_path)
    with pytest.raises(error):
        fs.on_receive(message)
    assert fs.on_receive(GetIndex()) == index
    assert raw_rows(db_path) == rows
    # nothing changed; the status actor only hears of the refusal (for .health)
    (refused,) = recorder.told
    assert isinstance(refused, ChangeRefused)
    assert refused.op == describe(message)[0]
    assert refused.error == errno.errorcode[errno_for(error())]


def test_truncate_to_the_limit_is_allowed(fs: FsActor) -> None:
    fs.on_receive(CreateFile(path="f"))
    assert fs.on_receive(Truncate(path="f", size=1 << 20)) == 0
    assert _attr(fs, "f").size == 1 << 20


def test_reads(fs: FsActor) -> None:
    fs.on_receive(MakeDir(path="d"))
    fs.on_receive(CreateFile(path="d/a"))
    fs.on_receive(MakeDir(path="d/b"))
    assert sorted(fs.on_receive(ListDir(path="d"))) == ["a", "b"]
    assert fs.on_receive(ListDir(path="d/a")) == ()
    assert fs.on_receive(ListDir(path="missing")) == ()
    with pytest.raises(NotFound):
        fs.on_receive(ReadFile(path="d", size=10, offset=0))
    with pytest.raises(NotFound):
        fs.on_receive(ReadFile(path="missing", size=10, offset=0))
    info = fs.on_receive(GetStatFs())
    assert info.files - info.ffree == 4
    assert isinstance(fs.on_receive(GetIndex()), bytes)


def test_tracked_paths_are_announced(fs: FsActor, recorder: Recorder) -> None:
    fs.on_receive(CreateFile(path="storage.cfg"))
    fs.on_receive(WriteFile(path="storage.cfg", data=b"x", offset=0))
    fs.on_receive(Truncate(path="storage.cfg", size=0))
    fs.on_receive(SetMtime(path="storage.cfg", mtime=1))
    assert recorder.of(TreeChanged) == [TreeChanged(paths=("storage.cfg",))] * 4
    recorder.clear()

    fs.on_receive(Rename(src="storage.cfg", dst="user.cfg"))
    assert recorder.of(TreeChanged) == [TreeChanged(paths=("storage.cfg", "user.cfg"))]
    recorder.clear()

    fs.on_receive(CreateFile(path="tmp"))
    fs.on_receive(Rename(src="tmp", dst="datacenter.cfg"))
    assert recorder.of(TreeChanged) == [TreeChanged(paths=("datacenter.cfg",))]
    recorder.clear()

    fs.on_receive(Remove(path="user.cfg"))
    assert recorder.of(TreeChanged) == [TreeChanged(paths=("user.cfg",))]
    recorder.clear()

    # mkdir does not count; nor do untracked paths
    fs.on_receive(MakeDir(path="ha"))
    fs.on_receive(MakeDir(path="jobs.cfg"))
    fs.on_receive(CreateFile(path="ha/other.cfg"))
    fs.on_receive(CreateFile(path="ha/resources.cfg"))
    assert recorder.of(TreeChanged) == [TreeChanged(paths=("ha/resources.cfg",))]


def test_vm_configs_announce_the_vmlist(fs: FsActor, recorder: Recorder) -> None:
    for d in ("nodes", "nodes/node1", "nodes/node1/qemu-server", "nodes/node1/lxc"):
        fs.on_receive(MakeDir(path=d))
    assert recorder.told == []
    fs.on_receive(CreateFile(path="nodes/node1/qemu-server/100.conf"))
    (first,) = recorder.of(VmListChanged)
    assert [(v.vmid, v.node, v.vmtype) for v in first.snapshot.vms] == [(100, "node1", "qemu")]
    recorder.clear()

    fs.on_receive(WriteFile(path="nodes/node1/qemu-server/100.conf", data=b"memory: 512\n", offset=0))
    (second,) = recorder.of(VmListChanged)
    assert second.snapshot.version > first.snapshot.version
    assert second.snapshot.vms[0].version > first.snapshot.vms[0].version
    recorder.clear()

    # an mtime set does not change the vmlist
    fs.on_receive(SetMtime(path="nodes/node1/qemu-server/100.conf", mtime=5))
    assert recorder.of(VmListChanged) == []

    fs.on_receive(Rename(src="nodes/node1/qemu-server/100.conf", dst="nodes/node1/lxc/100.conf"))
    (moved,) = recorder.of(VmListChanged)
    assert [(v.vmid, v.node, v.vmtype) for v in moved.snapshot.vms] == [(100, "node1", "lxc")]
    recorder.clear()

    with pytest.raises(AlreadyExists):
        fs.on_receive(CreateFile(path="nodes/node1/qemu-server/100.conf"))
    assert recorder.of(VmListChanged) == []  # refused: the vmlist stays (the refusal is reported)
    reasons = [m.reason for m in recorder.of(ChangeRefused)]
    assert reasons == ["VMID 100 already exists on another node or type"]

    fs.on_receive(Remove(path="nodes/node1/lxc/100.conf"))
    (gone,) = recorder.of(VmListChanged)
    assert gone.snapshot.vms == ()


def test_quorum_lost_makes_every_change_refused(fs: FsActor, db_path: Path) -> None:
    fs.on_receive(MakeDir(path="d"))
    fs.on_receive(CreateFile(path="f"))
    fs.on_receive(MakeDir(path="priv"))
    fs.on_receive(MakeDir(path="priv/lock"))
    fs.on_receive(MakeDir(path="priv/lock/l"))
    assert fs.on_receive(QuorumChanged(quorate=False)) is None
    assert fs.on_receive(Lookup(path="f")).writable is False
    assert fs.on_receive(Lookup(path="missing")) == LookupReply(None, False)
    rows = raw_rows(db_path)
    changes = [
        MakeDir(path="e"),
        Remove(path="d"),
        CreateFile(path="g"),
        WriteFile(path="f", data=b"x", offset=0),
        Truncate(path="f", size=0),
        SetMtime(path="f", mtime=1),
        SetMtime(path="priv/lock/l", mtime=0),
        Rename(src="f", dst="h"),
        # even changes that would fail anyway answer "not quorate" first
        WriteFile(path="missing", data=b"x", offset=0),
    ]
    for change in changes:
        with pytest.raises(NotQuorate):
            fs.on_receive(change)
    assert raw_rows(db_path) == rows
    # reads still work
    assert fs.on_receive(ReadFile(path="f", size=1, offset=0)) == b""
    assert sorted(fs.on_receive(ListDir(path=""))) == ["d", "f", "priv"]
    fs.on_receive(QuorumChanged(quorate=True))
    assert fs.on_receive(Lookup(path="f")).writable is True
    assert fs.on_receive(MakeDir(path="e")) == _attr(fs, "e")


def test_not_quorate_is_an_access_denied() -> None:
    # The FUSE layer maps it to EACCES, as the original does without quorum.
    assert issubclass(NotQuorate, AccessDenied)


def test_unlock_request_removes_only_an_expired_lock(db_ref: pykka.ActorRef, db_path: Path) -> None:
    clock = Clock(5000.0)
    fs = FsActor(db_ref, None, quorate=True, clock=clock, wallclock=lambda: float(NOW))
    fs.on_receive(LoadTree(rows=()))
    fs.on_receive(ActivateTree())
    for d in ("priv", "priv/lock", "priv/lock/l"):
        fs.on_receive(MakeDir(path=d))
    lock = _attr(fs, "priv/lock/l")
    clock.now += 120
    with pytest.raises(AccessDenied):  # not expired yet: a plain mtime 0, below the current mtime
        fs.on_receive(SetMtime(path="priv/lock/l", mtime=0))
    # a refresh (mtime >= current) is allowed and resets the age
    clock.now += 100
    assert fs.on_receive(SetMtime(path="priv/lock/l", mtime=NOW + 1)) == 0
    clock.now += 100
    with pytest.raises(AccessDenied):
        fs.on_receive(SetMtime(path="priv/lock/l", mtime=0))
    clock.now += 21
    assert fs.on_receive(SetMtime(path="priv/lock/l", mtime=0)) == 0
    assert _attr(fs, "priv/lock/l") is None
    assert lock.inode not in raw_rows(db_path)
    # locks can't be renamed
    fs.on_receive(MakeDir(path="priv/lock/m"))
    with pytest.raises(AccessDenied):
        fs.on_receive(Rename(src="priv/lock/m", dst="priv/lock/n"))


def test_status_none_is_allowed(db_ref: pykka.ActorRef) -> None:
    fs = FsActor(db_ref, None, quorate=True)
    fs.on_receive(LoadTree(rows=()))
    fs.on_receive(ActivateTree())
    attr = fs.on_receive(CreateFile(path="storage.cfg"))
    assert attr is not None
    assert attr == _attr(fs, "storage.cfg")


def test_a_file_written_in_chunks_is_committed_once_at_close(fs: FsActor, db_path: Path) -> None:
    """Creation and writes wait for CommitPending (a close), then go in one transaction."""
    before = raw_rows(db_path)
    assert fs.on_receive(CreateFile(path="big.cfg")) is not None
    for i in range(4):
        assert fs.on_receive(WriteFile(path="big.cfg", data=bytes([65 + i]) * 1000, offset=1000 * i)) == 1000
    assert raw_rows(db_path) == before  # nothing written yet: no commit per chunk
    fs.on_receive(CommitPending())
    _assert_row_matches(fs, db_path, "big.cfg")
    assert raw_rows(db_path)[0][1] == _root_version(fs)
    after = raw_rows(db_path)
    fs.on_receive(CommitPending())  # nothing pending: nothing written
    assert raw_rows(db_path) == after


def test_any_other_change_commits_the_deferred_rows_with_it(fs: FsActor, db_path: Path) -> None:
    fs.on_receive(CreateFile(path="a.tmp"))
    fs.on_receive(WriteFile(path="a.tmp", data=b"content", offset=0))
    assert fs.on_receive(Rename(src="a.tmp", dst="a.cfg")) == 0  # the tools' temp file + rename
    _assert_row_matches(fs, db_path, "a.cfg")
    assert raw_rows(db_path)[_attr(fs, "a.cfg").inode][-1] == b"content"


def test_stopping_commits_the_deferred_rows(db_ref: pykka.ActorRef, db_path: Path) -> None:
    fs = FsActor(db_ref, None, quorate=True, wallclock=lambda: float(NOW))
    fs.on_receive(LoadTree(rows=()))
    fs.on_receive(ActivateTree())
    fs.on_receive(CreateFile(path="x"))
    fs.on_receive(WriteFile(path="x", data=b"kept", offset=0))
    fs.on_stop()
    _assert_row_matches(fs, db_path, "x")
