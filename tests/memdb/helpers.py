"""Shared helpers for the memdb tests (snapshots, rows, a fake clock)."""

from __future__ import annotations

import pytest

from memdb.loader import load_memdb
from memdb.records import DT_DIR, DT_REG, Row
from memdb.records import version_row as _version_row
from memdb.tree import MemDb
from tests.fakes.clock import Clock

MIB = 1024 * 1024


def fresh(clock: Clock | None = None) -> MemDb:
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


def reload(db: MemDb, clock: Clock | None = None) -> MemDb:
    """Close and reopen: rebuild a MemDb from the rows of ``db``."""
    if clock is None:
        return load_memdb(rows_of(db))
    return load_memdb(rows_of(db), clock=clock)


def content_state(db: MemDb) -> list[tuple]:
    """Comparable view of every entry (for reload round trips)."""
    return sorted(
        (e.inode, e.parent, e.version, e.writer, e.mtime, e.type, e.name, e.data) for e in db.entries()
    )


# ----- rows for the load checks (2.5) --------------------------------------------------------

V = Row(0, 0, 100, 2, 5555, DT_REG, "__version__", None)


def dir_row(inode: int, parent: int, name: str, version: int | None = None) -> Row:
    return Row(inode, parent, inode if version is None else version, 0, 1, DT_DIR, name, None)


def file_row(inode: int, parent: int, name: str, data: bytes | None = b"x") -> Row:
    return Row(inode, parent, inode, 0, 1, DT_REG, name, data)


BAD_ROWS = [
    pytest.param([V, file_row(2, 0, "")], id="empty-name"),
    pytest.param([V, dir_row(2, 0, "")], id="empty-name-dir"),
    pytest.param([V, Row(2, 0, 2, 0, 1, DT_DIR, "d", b"data")], id="dir-with-data"),
    pytest.param([V, Row(2, 0, 2, 0, 1, 10, "weird", None)], id="unknown-type-10"),
    pytest.param([V, Row(2, 0, 2, 0, 1, 0, "weird", None)], id="unknown-type-0"),
    pytest.param([V, Row(2, 0, 2, 0, 1, 1, "fifo", None)], id="unknown-type-1"),
    pytest.param([Row(0, 0, 100, 0, 1, DT_REG, "root", None)], id="root-unexpected-name"),
    pytest.param([Row(0, 0, 100, 0, 1, DT_REG, "__version__x", None)], id="root-name-prefix"),
    pytest.param([V, file_row(2, 0, "f"), file_row(3, 2, "child")], id="parent-is-file"),
    pytest.param([V, file_row(2, 0, "same"), file_row(3, 0, "same")], id="duplicate-name"),
    pytest.param([V, dir_row(2, 0, "same"), file_row(3, 0, "same")], id="duplicate-name-dir-file"),
    pytest.param(
        [V, dir_row(2, 0, "d"), file_row(3, 2, "a"), file_row(4, 2, "a")], id="duplicate-name-in-dir"
    ),
    pytest.param([V, dir_row(2, 0, "d"), dir_row(2, 0, "e")], id="strange-placeholder"),
    pytest.param([V, file_row(2, 0, "f"), dir_row(2, 0, "e")], id="strange-placeholder-over-file"),
    pytest.param([V, file_row(3, 9, "orphan")], id="missing-parent"),
    pytest.param(
        [V, dir_row(2, 0, "d"), file_row(3, 2, "ok"), file_row(4, 7, "orphan")], id="missing-parent-late"
    ),
    # stricter checks of the reimplementation (2.5 notes, "should reject")
    pytest.param([V, file_row(3, 2, "child"), file_row(2, 0, "f")], id="file-replaces-placeholder"),
    pytest.param([V, dir_row(2, 3, "a"), dir_row(3, 2, "b")], id="cycle"),
    pytest.param([V, dir_row(2, 2, "self")], id="own-parent"),
    pytest.param([V, file_row(101, 0, "future")], id="inode-newer-than-version"),
    pytest.param([V, Row(2, 0, 101, 0, 1, DT_REG, "f", None)], id="version-newer-than-root"),
    pytest.param([file_row(2, 0, "f")], id="no-version-row"),
]
