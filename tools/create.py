"""create-db: a database from the regular files of one folder, as create_pmxcfs_db.

Each regular file directly in ``<dir>`` (dot files too; no subfolders, no symlinks) becomes a
top-level file: created, then written whole, by writer 0 with the tool's start time as mtime,
so two version bumps per file. A missing ``<dbfile>`` starts at version 1; an existing one is
loaded with every startup check first, and its files are added.

Beyond the original: files go in name order (the original takes readdir order), all
changes are checked before anything is written and then land in one transaction (the
original writes file by file, so a failure left half of them), a new database appears only
when complete, an existing one is refused while a pmxcfs holds its lock, and an unreadable
file is named on stderr (the original skips it silently) but still skipped.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from daemon.process import acquire_instance_lock
from db.store import Store
from errors import NotFound, PmxcfsError
from memdb.loader import load_memdb
from memdb.records import version_row
from tools.dbfile import write_new_db

if TYPE_CHECKING:
    from memdb.records import Row
    from memdb.tree import MemDb
    from tools.progress import Progress

WRITER = 0
"""The node id the original's tool writes with."""


@dataclass(frozen=True, slots=True)
class CreateResult:
    """What was added."""

    files: tuple[str, ...]
    version: int
    """The database's global version afterwards."""


def create_db(
    src_dir: str, dbfile: str, progress: Progress, *, clock: Callable[[], float] = time.time
) -> CreateResult:
    """Add the regular files of ``src_dir`` to ``dbfile`` (created if missing)."""
    mtime = int(clock())
    names = _regular_files(src_dir)
    if os.path.lexists(dbfile):
        memdb = _add_to_existing(dbfile, src_dir, names, mtime, progress)
    else:
        memdb = load_memdb(())
        write_new_db(dbfile, _add_files(memdb, src_dir, names, mtime, progress))
    return CreateResult(tuple(n for n in names if n in memdb.root.children), memdb.root.version)


def _add_to_existing(dbfile: str, src_dir: str, names: list[str], mtime: int, progress: Progress) -> MemDb:
    """Load (all checks), add the files, store them in one transaction; under the instance lock."""
    lock = acquire_instance_lock(dbfile, 0)
    try:
        store = Store(dbfile)
        try:
            memdb = load_memdb(store.open())
            rows = _add_files(memdb, src_dir, names, mtime, progress)
            store.prepare()
            store.replace_rows((), rows)
        finally:
            store.close()
    finally:
        lock.close()
    return memdb


def _regular_files(src_dir: str) -> list[str]:
    try:
        with os.scandir(src_dir) as found:
            return sorted(e.name for e in found if e.is_file(follow_symlinks=False))
    except OSError as exc:
        raise NotFound(src_dir, f"unable to open dir: {exc.strerror}") from exc


def _add_files(
    memdb: MemDb, src_dir: str, names: list[str], mtime: int, progress: Progress
) -> tuple[Row, ...]:
    """Apply create + write for each file to the tree; the rows to store, version row last."""
    if memdb.root.version == 0:
        memdb.start_fresh(mtime)
    progress.start("create-db", len(names), "files")
    rows: dict[int, Row] = {}
    for name in names:
        data = _read(os.path.join(src_dir, name))
        if data is not None:
            for row in _add_file(memdb, name, data, mtime):
                rows[row.inode] = row
        progress.advance()
    progress.finish()
    root = memdb.root
    return (*rows.values(), version_row(root.version, root.writer, root.mtime))


def _add_file(memdb: MemDb, name: str, data: bytes, mtime: int) -> list[Row]:
    try:
        created = memdb.create(name, WRITER, mtime)
    except PmxcfsError as exc:
        raise type(exc)(name, f"memdb_create failed: {exc.reason}") from exc
    try:
        written = memdb.write(name, WRITER, mtime, data, 0, truncate=True)
    except PmxcfsError as exc:
        raise type(exc)(name, f"memdb_write failed: {exc.reason}") from exc
    return [c.upsert for c in (created.change, written.change) if c is not None and c.upsert is not None]


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        print(f"skipping {path}: {exc.strerror}", file=sys.stderr)
        return None
