"""Shared helpers for the memdb tests (snapshots, rows, a fake clock)."""

from __future__ import annotations

from memdb.loader import load_memdb
from memdb.records import Row
from memdb.records import version_row as _version_row
from memdb.tree import MemDb

MIB = 1024 * 1024


class FakeClock:
    """A settable monotonic clock for the lock table."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fresh(clock: FakeClock | None = None) -> MemDb:
    """A MemDb set to version 1, as the daemon does for a new database."""
    db = MemDb(clock=clock) if clock is not None else MemDb()
    db.root.version = 1
    return db


def tree_state(db: MemDb) -> tuple:
    """Everything a failed operation must leave alone."""
    entries = sorted(
        (e.inode, e.parent, e.version, e.writer, e.mtime, e.type, e.name, e.data, tuple(sorted(e.children)))
        for e in db.entries()
    )
    root = (db.root.version, db.root.writer, db.root.mtime)
    vmlist = db.vmlist.snapshot()
    vms = sorted((vm.vmid, vm.node, vm.vmtype, vm.version) for vm in vmlist.vms)
    return root, entries, vmlist.version, vms, sorted(db.locks.paths())


def version_row(db: MemDb) -> Row:
    """The __version__ row for the current root state."""
    return _version_row(db.root.version, db.root.writer, db.root.mtime)


def rows_of(db: MemDb) -> list[Row]:
    """The store rows of a tree, in rowid (inode) order, version row first."""
    rows = [e.row() for e in db.entries() if e.inode != 0]
    rows.sort(key=lambda r: r.inode)
    return [version_row(db), *rows]


def reload(db: MemDb, clock: FakeClock | None = None) -> MemDb:
    """Close and reopen: rebuild a MemDb from the rows of ``db``."""
    if clock is None:
        return load_memdb(rows_of(db))
    return load_memdb(rows_of(db), clock=clock)


def content_state(db: MemDb) -> list[tuple]:
    """Comparable view of every entry (for reload round trips)."""
    return sorted(
        (e.inode, e.parent, e.version, e.writer, e.mtime, e.type, e.name, e.data) for e in db.entries()
    )
