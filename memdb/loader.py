"""Build a MemDb from store rows, with the startup consistency checks (bdb_backend_load_index)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from errors import CorruptDatabase
from memdb.entry import Entry
from memdb.records import DT_DIR, DT_REG, VERSION_ROW_NAME, Row
from memdb.tree import MemDb

_U32 = 0xFFFFFFFF


class _Builder:
    """Places rows into a tree; children may come before their parent (placeholders)."""

    def __init__(self, memdb: MemDb) -> None:
        self.memdb = memdb
        self.placeholders: set[int] = set()

    def add(self, row: Row) -> None:
        if row.inode == 0:
            self._version_row(row)
            return
        self._check_row(row)
        parent = self._parent(row)
        if row.name in parent.children:
            raise CorruptDatabase(row.name, f"found entry with duplicate name in inode {row.parent}")
        entry = self._entry(row)
        parent.children[row.name] = entry
        self.memdb.index[row.inode] = entry

    def _version_row(self, row: Row) -> None:
        if row.name != VERSION_ROW_NAME:
            raise CorruptDatabase(row.name, "root inode has unexpected name")
        root = self.memdb.root
        root.version, root.writer, root.mtime = row.version, row.writer, row.mtime

    @staticmethod
    def _check_row(row: Row) -> None:
        if not row.name:
            raise CorruptDatabase(str(row.inode), "inode has no name")
        if row.type not in (DT_DIR, DT_REG):
            raise CorruptDatabase(str(row.inode), f"inode has unknown type {row.type}")
        if row.type == DT_DIR and row.data:
            raise CorruptDatabase(str(row.inode), "directory inode contains data")
        if row.parent == row.inode:
            raise CorruptDatabase(str(row.inode), "inode is its own parent")

    def _parent(self, row: Row) -> Entry:
        parent = self.memdb.index.get(row.parent)
        if parent is None:
            parent = Entry(row.parent, 0, 0, 0, 0, DT_DIR, "")
            self.memdb.index[row.parent] = parent
            self.placeholders.add(row.parent)
        elif not parent.is_dir:
            raise CorruptDatabase(str(row.inode), f"parent {row.parent} is not a directory")
        return parent

    def _entry(self, row: Row) -> Entry:
        data = row.data or b""
        existing = self.memdb.index.get(row.inode)
        if existing is None:
            return Entry(row.inode, row.parent, row.version, row.writer, row.mtime, row.type, row.name, data)
        if row.inode not in self.placeholders:
            raise CorruptDatabase(str(row.inode), "found strange placeholder")
        if row.type != DT_DIR:
            raise CorruptDatabase(str(row.inode), "a file is used as a parent directory")
        self.placeholders.discard(row.inode)
        existing.parent, existing.version = row.parent, row.version
        existing.writer, existing.mtime, existing.name = row.writer, row.mtime, row.name
        return existing


def _check_reachable(memdb: MemDb) -> None:
    seen = 0
    stack = [memdb.root]
    while stack:
        entry = stack.pop()
        seen += 1
        stack.extend(entry.children.values())
    if seen != len(memdb.index):
        raise CorruptDatabase(reason=f"{len(memdb.index) - seen} entries are not reachable from the root")


def _check_versions(memdb: MemDb) -> None:
    top = memdb.root.version
    for entry in memdb.index.values():
        if entry.inode > top or entry.version > top:
            raise CorruptDatabase(str(entry.inode), f"entry is newer than the database version {top}")


def load_memdb(
    rows: Iterable[Row],
    *,
    clock: Callable[[], float] = time.monotonic,
) -> MemDb:
    """Build the tree, the vmlist and the lock table; raise CorruptDatabase on bad rows.

    A database without a version row comes back at version 0; the caller sets it to 1
    and stores that (a fresh database).
    """
    memdb = MemDb(clock=clock)
    builder = _Builder(memdb)
    for row in rows:
        builder.add(row)
    if builder.placeholders:
        missing = min(builder.placeholders)
        raise CorruptDatabase(str(missing), "missing directory inode")
    _check_reachable(memdb)
    if memdb.root.version:
        _check_versions(memdb)
    elif len(memdb.index) > 1:
        raise CorruptDatabase(VERSION_ROW_NAME, "entries exist but the version row is missing")
    if not memdb.vmlist.rebuild(memdb.root):
        raise CorruptDatabase(reason="inconsistent guest configs (duplicate VMID or bad folder)")
    memdb.rebuild_locks()
    return memdb


def normalise_row(
    inode: int, parent: int, version: int, writer: int, mtime: int, type_: int, name: str, data: object
) -> Row:
    """Decode one stored row: u64 from signed, 32-bit writer/mtime, 8-bit type."""
    blob: bytes | None
    if data is None or isinstance(data, bytes):
        blob = data
    elif isinstance(data, str):
        blob = data.encode("utf-8", "surrogateescape")
    else:
        blob = bytes(data)  # type: ignore[call-overload]
    return Row(
        inode=inode & 0xFFFFFFFFFFFFFFFF,
        parent=parent & 0xFFFFFFFFFFFFFFFF,
        version=version & 0xFFFFFFFFFFFFFFFF,
        writer=writer & _U32,
        mtime=mtime & _U32,
        type=type_ & 0xFF,
        name=name or "",
        data=blob,
    )
