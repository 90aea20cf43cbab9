"""backup: a consistent copy of a database, also of a live one the daemon is writing to.

SQLite's online backup API copies the pages through a read-only connection that holds one
read transaction from the first page to the last. In WAL mode that pins one committed
snapshot: the daemon goes on committing (its writes go to the WAL), and the copy is exactly
the database as of the start, never a mix. The copy is then loaded with every startup check
before it gets its name.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from db.store import Store
from errors import StorageError
from tools.dbfile import publish, read_tree, refuse_existing, remove_db_files, require_file, temp_beside

if TYPE_CHECKING:
    from tools.progress import Progress

PAGES_PER_STEP = 256
"""Pages copied between two progress updates (1 MiB at the 4 KiB page size)."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    """What was copied."""

    pages: int
    entries: int
    """Entries of the copied tree, root included."""
    version: int
    """The copy's global version."""


def backup_database(
    dbfile: str, dest: str, progress: Progress, *, pages_per_step: int = PAGES_PER_STEP
) -> BackupResult:
    """Copy ``dbfile`` to the new file ``dest`` (mode 0600); the source is only read."""
    require_file(dbfile)
    refuse_existing(dest)
    tmp = temp_beside(dest)
    try:
        pages = _copy(dbfile, tmp, progress, pages_per_step)
        os.chmod(tmp, 0o600)
        memdb = read_tree(tmp)
        publish(tmp, dest)
    finally:
        remove_db_files(tmp)
    return BackupResult(pages=pages, entries=len(memdb.index), version=memdb.root.version)


def _copy(dbfile: str, tmp: str, progress: Progress, pages_per_step: int) -> int:
    """Copy the pages into ``tmp``; once more if a writer appeared during an immutable read."""
    pages = _copy_once(dbfile, tmp, progress, pages_per_step)
    if pages < 0:  # the second copy replaces every page of the first
        pages = _copy_once(dbfile, tmp, progress, pages_per_step)
    if pages < 0:
        raise StorageError(dbfile, "a writer started during the backup; try again")
    return pages


def _copy_once(dbfile: str, tmp: str, progress: Progress, pages_per_step: int) -> int:
    """The page count copied, or -1 if the read may have missed a writer (read again)."""
    source = Store(dbfile, readonly=True)
    source.connect()
    copied = 0

    def step(_status: int, remaining: int, total: int) -> None:
        nonlocal copied
        copied = total
        progress.update(total - remaining, total)

    try:
        con = source.sqlite()
        con.execute("BEGIN")
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()  # pins the snapshot
        target = sqlite3.connect(tmp)
        try:
            progress.start("backup", None, "pages")
            con.backup(target, pages=pages_per_step, progress=step)
            progress.finish()
        finally:
            target.close()
        con.execute("COMMIT")
        return -1 if source.snapshot_stale() else copied
    except sqlite3.Error as exc:
        raise StorageError(dbfile, f"backup failed: {exc}") from exc
    finally:
        source.close()
