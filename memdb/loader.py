"""Build a MemDb from store rows, with the startup consistency checks (bdb_backend_load_index).

``load_memdb`` stops at the first problem, as the daemon does; ``check_rows`` runs the same
rules and returns every problem (the offline check of ``python -m tools check``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from errors import CorruptDatabase
from memdb.entry import Entry
from memdb.records import DT_DIR, DT_REG, VERSION_ROW_NAME, Row
from memdb.tree import MemDb

_U32 = 0xFFFFFFFF

Report = Callable[[CorruptDatabase], None]
"""Receives each problem: ``_raise`` stops the load, a list's ``append`` collects them all."""


def _raise(problem: CorruptDatabase) -> None:
    raise problem


class _Builder:
    """Places rows into a tree; children may come before their parent (placeholders).

    A row that breaks a rule is reported and left out of the tree.
    """

    def __init__(self, memdb: MemDb, report: Report) -> None:
        self.memdb = memdb
        self.report = report
        self.placeholders: set[int] = set()

    def add(self, row: Row) -> None:
        if row.inode == 0:
            self._version_row(row)
            return
        problem = self._row_problem(row)
        if problem:
            self.report(CorruptDatabase(str(row.inode), problem))
            return
        parent = self._parent(row)
        if parent is None:
            return
        if row.name in parent.children:
            reason = f"found entry with duplicate name {row.name!r} in inode {row.parent}"
            self.report(CorruptDatabase(str(row.inode), reason))
            return
        entry = self._entry(row)
        if entry is None:
            return
        parent.children[row.name] = entry
        self.memdb.index[row.inode] = entry

    def _version_row(self, row: Row) -> None:
        if row.name != VERSION_ROW_NAME:
            self.report(CorruptDatabase("0", f"root inode has unexpected name {row.name!r}"))
            return
        root = self.memdb.root
        root.version, root.writer, root.mtime = row.version, row.writer, row.mtime

    @staticmethod
    def _row_problem(row: Row) -> str:
        if not row.name:
            return "inode has no name"
        if row.type not in (DT_DIR, DT_REG):
            return f"inode has unknown type {row.type}"
        if row.type == DT_DIR and row.data:
            return "directory inode contains data"
        if row.parent == row.inode:
            return "inode is its own parent"
        return ""

    def _parent(self, row: Row) -> Entry | None:
        parent = self.memdb.index.get(row.parent)
        if parent is None:
            parent = Entry(row.parent, 0, 0, 0, 0, DT_DIR, "")
            self.memdb.index[row.parent] = parent
            self.placeholders.add(row.parent)
        elif not parent.is_dir:
            self.report(CorruptDatabase(str(row.inode), f"parent {row.parent} is not a directory"))
            return None
        return parent

    def _entry(self, row: Row) -> Entry | None:
        data = row.data or b""
        existing = self.memdb.index.get(row.inode)
        if existing is None:
            return Entry(row.inode, row.parent, row.version, row.writer, row.mtime, row.type, row.name, data)
        if row.inode not in self.placeholders:
            self.report(CorruptDatabase(str(row.inode), "found strange placeholder"))
            return None
        if row.type != DT_DIR:
            self.report(CorruptDatabase(str(row.inode), "a file is used as a parent directory"))
            return None
        self.placeholders.discard(row.inode)
        existing.parent, existing.version = row.parent, row.version
        existing.writer, existing.mtime, existing.name = row.writer, row.mtime, row.name
        return existing


def _check_reachable(memdb: MemDb, placeholders: set[int], report: Report) -> None:
    """Report each cycle of directories cut off from the root.

    Entries below a missing directory are already reported as such.
    """
    reachable: set[int] = set()
    stack = [memdb.root]
    while stack:
        entry = stack.pop()
        reachable.add(entry.inode)
        stack.extend(entry.children.values())
    settled = reachable | placeholders
    for inode in sorted(set(memdb.index) - settled):
        chain: list[int] = []
        while inode not in settled and inode not in chain:
            chain.append(inode)
            inode = memdb.index[inode].parent
        settled.update(chain)
        if inode in chain:
            cycle = chain[chain.index(inode) :]
            names = ", ".join(str(i) for i in sorted(cycle))
            reason = f"directories {names} form a cycle, not reachable from the root"
            report(CorruptDatabase(str(min(cycle)), reason))


def _check_versions(memdb: MemDb, placeholders: set[int], report: Report) -> None:
    top = memdb.root.version
    for entry in sorted(memdb.index.values(), key=lambda e: e.inode):
        if entry.inode in placeholders:
            continue
        if entry.inode > top or entry.version > top:
            report(CorruptDatabase(str(entry.inode), f"entry is newer than the database version {top}"))


def _check(memdb: MemDb, rows: Iterable[Row], report: Report) -> None:
    builder = _Builder(memdb, report)
    for row in rows:
        builder.add(row)
    for missing in sorted(builder.placeholders):
        children = ", ".join(str(child.inode) for child in memdb.index[missing].children.values())
        detail = f" (parent of inodes {children})" if children else ""
        report(CorruptDatabase(str(missing), f"missing directory inode{detail}"))
    _check_reachable(memdb, builder.placeholders, report)
    if memdb.root.version:
        _check_versions(memdb, builder.placeholders, report)
    elif len(memdb.index) - len(builder.placeholders) > 1:
        report(CorruptDatabase(VERSION_ROW_NAME, "entries exist but the version row is missing"))


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
    _check(memdb, rows, _raise)
    if not memdb.vmlist.rebuild(memdb.root):
        raise CorruptDatabase(reason="inconsistent guest configs (duplicate VMID or bad folder)")
    memdb.rebuild_locks()
    return memdb


def check_rows(rows: Iterable[Row]) -> tuple[CorruptDatabase, ...]:
    """Every problem ``load_memdb`` would refuse the rows for, in the order found.

    ``what`` is the inode (as a decimal string) for problems of one row, ``__version__``
    for the version row and a tree path for guest config problems.
    """
    problems: list[CorruptDatabase] = []
    memdb = MemDb()
    _check(memdb, rows, problems.append)
    for path, reason in memdb.vmlist.rebuild_report(memdb.root):
        problems.append(CorruptDatabase(path, reason))
    return tuple(problems)


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
