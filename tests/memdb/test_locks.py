"""Locks under priv/lock (1.9), with an injected clock."""

from __future__ import annotations

import pytest

from errors import AccessDenied, ErrorLatched
from memdb.checksum import entry_checksum
from memdb.loader import load_memdb
from memdb.locks import LOCK_TIMEOUT, LockTable
from memdb.tree import MemDb
from tests.fakes.clock import Clock
from tests.memdb.helpers import rows_of, tree_state

LOCK = "priv/lock/file-storage_cfg"


@pytest.fixture
def locked(db: MemDb, clock: Clock) -> MemDb:
    clock.now = 1000.0
    db.mkdir("priv", 0, 10)
    db.mkdir("priv/lock", 0, 10)
    db.mkdir(LOCK, 0, 500)
    return db


def test_lock_timeout_constant() -> None:
    assert LOCK_TIMEOUT == 120


def test_mkdir_in_lockdir_registers_lock(locked: MemDb) -> None:
    assert locked.locks.paths() == (LOCK,)


def test_mkdir_priv_lock_itself_and_deeper_are_not_locks(db: MemDb) -> None:
    db.mkdir("priv", 0, 10)
    db.mkdir("priv/lock", 0, 10)
    assert db.locks.paths() == ()
    db.mkdir("priv/lock/a", 0, 10)
    db.mkdir("priv/lock/a/b", 0, 10)
    db.create("priv/lock/file", 0, 10)
    db.mkdir("nodes", 0, 10)
    db.mkdir("nodes/priv", 0, 10)
    assert db.locks.paths() == ("priv/lock/a",)


def test_lock_held_mkdir_eexist(locked: MemDb) -> None:
    from errors import AlreadyExists

    with pytest.raises(AlreadyExists):
        locked.mkdir(LOCK, 0, 600)


@pytest.mark.parametrize(("writer", "mtime"), [(0, 499), (0, 0), (1, 500), (1, 600), (2, 0)])
def test_set_mtime_on_lock_refused(locked: MemDb, writer: int, mtime: int) -> None:
    before = tree_state(locked)
    with pytest.raises(AccessDenied):
        locked.set_mtime(LOCK, writer, mtime)
    assert tree_state(locked) == before


@pytest.mark.parametrize("mtime", [500, 501, 10_000])
def test_set_mtime_on_lock_same_writer_not_backwards_is_refresh(locked: MemDb, mtime: int) -> None:
    applied = locked.set_mtime(LOCK, 0, mtime)
    attr = locked.getattr(LOCK)
    assert attr is not None
    assert (attr.version, attr.mtime) == (locked.root.version, mtime)
    assert applied.paths == (LOCK,)


def test_lock_writer_from_cluster(db: MemDb) -> None:
    db.mkdir("priv", 0, 10)
    db.mkdir("priv/lock", 0, 10)
    db.mkdir("priv/lock/x", 3, 100)
    with pytest.raises(AccessDenied):
        db.set_mtime("priv/lock/x", 0, 200)
    db.set_mtime("priv/lock/x", 3, 200)


def test_mtime_rules_only_for_dirs_directly_in_lockdir(locked: MemDb) -> None:
    locked.mkdir(LOCK + "/inner", 0, 500)
    locked.create("priv/lock/plainfile", 0, 500)
    locked.set_mtime(LOCK + "/inner", 5, 1)  # deeper dir: not a lock for mtime
    locked.set_mtime("priv/lock/plainfile", 5, 1)  # a file: not a lock
    attr = locked.getattr("priv/lock/plainfile")
    assert attr is not None
    assert (attr.writer, attr.mtime) == (5, 1)


def test_unlock_not_expired_before_timeout(locked: MemDb, clock: Clock) -> None:
    for now in (1000.0, 1060.0, 1119.0, 1120.0):
        clock.now = now
        before = tree_state(locked)
        assert locked.unlock_if_expired(LOCK, 0, 5000) is None
        assert tree_state(locked) == before
    assert locked.getattr(LOCK) is not None


def test_unlock_deletes_after_timeout(locked: MemDb, clock: Clock) -> None:
    lock = locked.getattr(LOCK)
    assert lock is not None
    clock.now = 1121.0
    version = locked.root.version
    applied = locked.unlock_if_expired(LOCK, 0, 5000)
    assert applied is not None
    assert applied.change is not None
    assert applied.change.delete_inode == lock.inode
    assert applied.change.upsert is None
    assert locked.getattr(LOCK) is None
    assert locked.root.version == version + 1
    assert (locked.root.writer, locked.root.mtime) == (0, 5000)
    assert locked.locks.paths() == ()
    # the lock can be taken again
    locked.mkdir(LOCK, 0, 5001)


def test_unlock_just_over_timeout(locked: MemDb, clock: Clock) -> None:
    clock.now = 1120.5
    assert locked.unlock_if_expired(LOCK, 0, 5000) is not None


def test_refresh_resets_age(locked: MemDb, clock: Clock) -> None:
    clock.now = 1100.0
    locked.set_mtime(LOCK, 0, 600)
    clock.now = 1200.0  # 200 s after creation, 100 s after the refresh
    assert locked.unlock_if_expired(LOCK, 0, 5000) is None
    clock.now = 1220.0
    assert locked.unlock_if_expired(LOCK, 0, 5000) is None
    clock.now = 1221.0
    assert locked.unlock_if_expired(LOCK, 0, 5000) is not None


def test_entry_mtime_is_never_compared_to_clock(db: MemDb, clock: Clock) -> None:
    # a lock with an ancient mtime, created "now" by this node's clock, is not expired
    db.mkdir("priv", 0, 10)
    db.mkdir("priv/lock", 0, 10)
    db.mkdir("priv/lock/old", 0, 1)
    clock.now += 60
    assert db.unlock_if_expired("priv/lock/old", 0, 99999) is None


def test_unlock_request_for_non_locks_is_none(locked: MemDb, clock: Clock) -> None:
    locked.create("priv/lock/plainfile", 0, 500)
    locked.mkdir("other", 0, 500)
    clock.now = 10_000.0
    for path in ("priv/lock/plainfile", "other", "priv/lock", "priv/lock/missing", "priv"):
        assert locked.unlock_if_expired(path, 0, 1) is None
    assert locked.getattr("priv/lock/plainfile") is not None
    assert locked.getattr("other") is not None


def test_unknown_lock_is_registered_on_first_request(locked: MemDb, clock: Clock) -> None:
    locked.locks.clear()
    clock.now = 5000.0
    assert locked.unlock_if_expired(LOCK, 0, 1) is None  # first seen now
    assert locked.locks.paths() == (LOCK,)
    clock.now = 5120.0
    assert locked.unlock_if_expired(LOCK, 0, 1) is None
    clock.now = 5121.0
    assert locked.unlock_if_expired(LOCK, 0, 1) is not None


def test_rename_lock_eacces(locked: MemDb) -> None:
    before = tree_state(locked)
    for target in ("priv/lock/other", "moved", LOCK):
        with pytest.raises(AccessDenied):
            locked.rename(LOCK, target, 0, 600)
    assert tree_state(locked) == before


def test_rename_deeper_dir_under_lock_eacces(locked: MemDb) -> None:
    # path_is_lockdir counts any depth below priv/lock/
    locked.mkdir(LOCK + "/inner", 0, 500)
    with pytest.raises(AccessDenied):
        locked.rename(LOCK + "/inner", "moved", 0, 600)


def test_rename_file_under_lockdir_allowed(locked: MemDb) -> None:
    locked.create("priv/lock/plainfile", 0, 500)
    locked.rename("priv/lock/plainfile", "priv/lock/renamed", 0, 600)
    assert locked.getattr("priv/lock/renamed") is not None


def test_rmdir_drops_lock(locked: MemDb) -> None:
    locked.delete(LOCK, 0, 600)
    assert locked.locks.paths() == ()
    assert locked.getattr(LOCK) is None


def test_lock_checksum(locked: MemDb) -> None:
    entry = locked.lookup(LOCK)
    assert entry is not None
    assert locked.lock_checksum(LOCK) == entry_checksum(entry)
    assert locked.lock_checksum("priv/lock") is None
    assert locked.lock_checksum("priv/lock/missing") is None
    before = locked.lock_checksum(LOCK)
    locked.set_mtime(LOCK, 0, 600)
    assert locked.lock_checksum(LOCK) != before


def test_unlock_while_latched(locked: MemDb, clock: Clock) -> None:
    locked.latched = True
    clock.now = 2000.0
    with pytest.raises(ErrorLatched):
        locked.unlock_if_expired(LOCK, 0, 1)
    assert locked.getattr(LOCK) is not None


def test_rebuild_on_load_registers_dirs_only_with_age_zero(locked: MemDb) -> None:
    locked.create("priv/lock/plainfile", 0, 500)
    locked.mkdir("priv/lock/second", 4, 500)
    locked.mkdir("priv/lock/second/inner", 0, 500)
    clock = Clock(50_000.0)
    loaded = load_memdb(rows_of(locked), clock=clock)
    assert sorted(loaded.locks.paths()) == sorted([LOCK, "priv/lock/second"])
    clock.now = 50_120.0
    assert loaded.unlock_if_expired(LOCK, 0, 1) is None
    clock.now = 50_121.0
    assert loaded.unlock_if_expired(LOCK, 0, 1) is not None


def test_rebuild_locks_resets_ages(locked: MemDb, clock: Clock) -> None:
    clock.now = 1100.0
    locked.rebuild_locks()
    clock.now = 1150.0  # 150 s after creation, 50 s after the rebuild
    assert locked.unlock_if_expired(LOCK, 0, 1) is None
    clock.now = 1221.0
    assert locked.unlock_if_expired(LOCK, 0, 1) is not None


# ----- LockTable on its own ------------------------------------------------------------


def test_locktable_expiry() -> None:
    clock = Clock(100.0)
    table = LockTable(clock)
    assert table.expired("priv/lock/a", b"1") is False  # unknown: registered, not expired
    clock.now = 220.0
    assert table.expired("priv/lock/a", b"1") is False
    clock.now = 221.0
    assert table.expired("priv/lock/a", b"1") is True


@pytest.mark.allow_error_logs
def test_locktable_wrong_checksum_resets(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(100.0)
    table = LockTable(clock)
    table.reset("priv/lock/a", b"1")
    clock.now = 500.0
    assert table.expired("priv/lock/a", b"2") is False
    assert any("wrong lock csum" in r.getMessage() for r in caplog.records)
    clock.now = 620.0
    assert table.expired("priv/lock/a", b"2") is False
    clock.now = 621.0
    assert table.expired("priv/lock/a", b"2") is True


def test_locktable_clock_going_back_never_expires() -> None:
    clock = Clock(1000.0)
    table = LockTable(clock)
    table.reset("priv/lock/a", b"1")
    clock.now = 0.0
    assert table.expired("priv/lock/a", b"1") is False


def test_locktable_drop_and_clear() -> None:
    table = LockTable(Clock())
    table.reset("priv/lock/a", b"1")
    table.reset("priv/lock/b", b"1")
    table.drop("priv/lock/a")
    table.drop("priv/lock/missing")
    assert table.paths() == ("priv/lock/b",)
    table.clear()
    assert table.paths() == ()
