"""Whole database files for the tools: read one read-only, write a new one, publish it.

Everything goes through db/store.py (the daemon's schema, pragmas and row encoding) and
memdb/loader.py (the daemon's load checks).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import TYPE_CHECKING

from db.store import Store
from errors import AlreadyExists, NotFound, StorageError
from memdb.loader import load_memdb

if TYPE_CHECKING:
    from memdb.records import Row
    from memdb.tree import MemDb

SIDE_FILES = ("-wal", "-shm", "-journal")
"""SQLite's files beside a database."""


def require_file(path: str) -> None:
    """Raise NotFound unless ``path`` is an existing regular file."""
    if not os.path.exists(path):
        raise NotFound(path, "no such file")
    if not os.path.isfile(path):
        raise NotFound(path, "not a regular file")


def read_rows(path: str) -> tuple[Row, ...]:
    """Every row of an existing database, read-only (the file is never written)."""
    require_file(path)
    store = Store(path, readonly=True)
    try:
        return store.open()
    finally:
        store.close()


def read_tree(path: str) -> MemDb:
    """Load an existing database with every startup check; refuse an empty one."""
    memdb = load_memdb(read_rows(path))
    if memdb.root.version == 0:
        raise StorageError(path, "no version row: an empty database, not a pmxcfs tree")
    return memdb


def refuse_existing(path: str) -> None:
    """Raise AlreadyExists if ``path`` (or a database's side file for it) exists."""
    for candidate in (path, *(path + side for side in SIDE_FILES)):
        if os.path.lexists(candidate):
            raise AlreadyExists(candidate, "exists already; give a new path")


def temp_beside(dest: str, suffix: str = "") -> str:
    """A new empty file (mode 0600) in the folder of ``dest``, to be published as ``dest``."""
    folder = os.path.dirname(os.path.abspath(dest))
    try:
        handle, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=suffix, dir=folder)
    except OSError as exc:
        raise StorageError(folder, f"can't write here: {exc.strerror}") from exc
    os.close(handle)
    return tmp


def publish(tmp: str, dest: str) -> None:
    """Give the finished ``tmp`` its name ``dest``, never replacing an existing file."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise AlreadyExists(dest, "exists already; give a new path") from None
    except OSError as exc:
        raise StorageError(dest, exc.strerror or str(exc)) from exc
    finally:
        remove_db_files(tmp)


def remove_db_files(path: str) -> None:
    """Remove a database file and its side files, if present."""
    for candidate in (path, *(path + side for side in SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(candidate)


def write_new_db(dest: str, rows: tuple[Row, ...]) -> MemDb:
    """Write ``rows`` into a new database at ``dest`` and return it as loaded back from disk.

    The rows must pass the load checks. The file is built beside ``dest`` and gets its name
    only once it reads back with the same index as the rows; an existing ``dest`` is never
    touched.
    """
    refuse_existing(dest)
    expected = load_memdb(rows).encode_index()
    tmp = temp_beside(dest)
    try:
        store = Store(tmp)
        try:
            store.open()
            store.prepare()
            store.replace_rows((), rows)
        finally:
            store.close()
        written = load_memdb(read_rows(tmp))
        if written.encode_index() != expected:
            raise StorageError(dest, "the new database does not read back as written")
        publish(tmp, dest)
    finally:
        remove_db_files(tmp)
    return written
