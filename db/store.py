"""The SQLite store: open and check config.db, load its rows, write one change per transaction.

Use from one thread only (the db actor's): peewee connections are thread-local.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import urllib.parse

import peewee

from db.schema import CREATE_TREE_SQL, Tree
from errors import StorageError
from memdb.loader import normalise_row
from memdb.records import Row, StoreChange, version_row

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 10
"""SQLite busy timeout, as the original (10000 ms)."""

_I64 = 1 << 63
_U64 = 1 << 64

# Statement texts are built once by peewee from the model and then run as prepared SQL.
# The name is bound as its bytes and cast to TEXT: names may hold any byte but '/' and NUL
# (not only UTF-8), and the column must stay TEXT, as the original stores it.
_UPSERT_SQL = (
    Tree.replace(inode=0, parent=0, version=0, writer=0, mtime=0, type=0, name="", data=None)
    .sql()[0]
    .replace("?, ?)", "CAST(? AS TEXT), ?)")
)
_DELETE_SQL, _ = Tree.delete().where(Tree.inode == 0).sql()
_SELECT_SQL, _ = Tree.select(
    Tree.inode, Tree.parent, Tree.version, Tree.writer, Tree.mtime, Tree.type, Tree.name, Tree.data
).sql()


def _decode_text(data: bytes) -> str:
    """TEXT columns as str, keeping bytes that are not UTF-8 (names may hold any byte)."""
    return data.decode("utf-8", "surrogateescape")


def _signed(value: int) -> int:
    """A u64 as SQLite's signed 64-bit integer."""
    return value - _U64 if value >= _I64 else value


def _row_params(row: Row) -> list[object]:
    return [
        _signed(row.inode),
        _signed(row.parent),
        _signed(row.version),
        row.writer,
        row.mtime,
        row.type,
        row.name.encode("utf-8", "surrogateescape"),
        row.data if row.data else None,
    ]


def _apply_rows(conn: sqlite3.Connection, change: StoreChange) -> None:
    if change.delete_inode is not None:
        conn.execute(_DELETE_SQL, [_signed(change.delete_inode)])
    if change.upsert is not None:
        conn.execute(_UPSERT_SQL, _row_params(change.upsert))
    row = version_row(change.version, change.writer, change.mtime)
    conn.execute(_UPSERT_SQL, _row_params(row))


class Store:
    """config.db: the original's schema, pragmas and row encoding."""

    def __init__(self, path: str, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        """Open without write access (the operator tools); the file must exist."""
        self._immutable = False
        self.db = peewee.SqliteDatabase(None, autoconnect=False)
        """This store's own connection (one per thread, used from one thread only)."""

    def connect(self) -> None:
        """Connect without reading; raise StorageError if the file can't be opened.

        Read-only: ``mode=ro`` never writes the file and reads a live WAL without
        checkpointing it. Without a ``-wal`` file no connection has the database open, so
        (unless a ``-journal`` needs a rollback) ``immutable=1`` reads it without leaving
        ``-wal``/``-shm`` files beside it; ``snapshot_stale`` tells if a writer came meanwhile.
        """
        try:
            if self.readonly:
                self._immutable = not any(os.path.exists(self.path + side) for side in ("-wal", "-journal"))
                flags = "mode=ro&immutable=1" if self._immutable else "mode=ro"
                uri = f"file:{urllib.parse.quote(os.path.abspath(self.path))}?{flags}"
                self.db.init(uri, uri=True, timeout=BUSY_TIMEOUT_S)
            else:
                self.db.init(self.path, timeout=BUSY_TIMEOUT_S)
            self.db.connect(reuse_if_open=True)
            self.db.connection().text_factory = _decode_text
        except (peewee.DatabaseError, sqlite3.Error) as exc:
            self.close()
            raise StorageError(self.path, str(exc)) from exc

    def sqlite(self) -> sqlite3.Connection:
        """The connected sqlite3 connection (the tools' PRAGMAs and the online backup API)."""
        connection: sqlite3.Connection = self.db.connection()
        return connection

    def open(self) -> tuple[Row, ...]:
        """Connect and read every row, writing nothing; raise StorageError if unreadable."""
        self.connect()
        rows = self._read_rows()
        if self.snapshot_stale():
            self.close()
            self.connect()
            rows = self._read_rows()
        return rows

    def snapshot_stale(self) -> bool:
        """True if a writer opened the file while this read-only store read it as immutable.

        Such a read may have missed that writer's changes: read again (now through its WAL).
        """
        return self._immutable and os.path.exists(f"{self.path}-wal")

    def _read_rows(self) -> tuple[Row, ...]:
        try:
            if not self.db.table_exists("tree"):
                return ()
            cursor = self.db.execute_sql(_SELECT_SQL)
            return tuple(normalise_row(*values) for values in cursor)
        except (peewee.DatabaseError, sqlite3.Error, UnicodeDecodeError) as exc:
            self.close()
            raise StorageError(self.path, str(exc)) from exc

    def prepare(self) -> None:
        """Set WAL and synchronous=NORMAL, create the table if missing, chmod 0600."""
        try:
            mode = self.db.execute_sql("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(self.path, f"unable to set WAL mode (got {mode})")
            self.db.execute_sql("PRAGMA synchronous=NORMAL")
            self.db.execute_sql(CREATE_TREE_SQL)
            os.chmod(self.path, 0o600)
        except (peewee.DatabaseError, sqlite3.Error, OSError) as exc:
            raise StorageError(self.path, str(exc)) from exc

    def apply(self, change: StoreChange, earlier: tuple[StoreChange, ...] = ()) -> None:
        """Write one change in one committed transaction (bdb_backend_write), after ``earlier``.

        ``earlier`` are changes whose commit was deferred (a file's creation and writes until
        it is closed): they go into the same transaction, so the file always holds a prefix
        of the changes. Plain BEGIN/COMMIT on the sqlite3 connection rather than peewee: the hot
        path, and peewee 3.14 (Debian 12) commits after every statement it does not know to be
        inside a transaction of its own.
        """
        try:
            conn = self.sqlite()
            conn.execute("BEGIN")
        except (peewee.DatabaseError, peewee.InterfaceError, sqlite3.Error) as exc:
            raise StorageError(self.path, str(exc)) from exc
        try:
            for deferred in earlier:
                if deferred.upsert is not None:
                    conn.execute(_UPSERT_SQL, _row_params(deferred.upsert))
            _apply_rows(conn, change)
            conn.execute("COMMIT")
        except BaseException as exc:  # whatever failed, no transaction is left open
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StorageError(self.path, str(exc)) from exc
            raise

    def replace_rows(self, delete_inodes: tuple[int, ...], rows: tuple[Row, ...]) -> None:
        """A cluster sync commit: delete these inodes and upsert these rows, in one transaction."""
        try:
            with self.db.atomic():
                cursor = self.db.cursor()  # executemany: a sync stores thousands of rows
                cursor.executemany(_DELETE_SQL, [[_signed(inode)] for inode in delete_inodes])
                cursor.executemany(_UPSERT_SQL, map(_row_params, rows))
        except (peewee.DatabaseError, sqlite3.Error) as exc:
            raise StorageError(self.path, str(exc)) from exc

    def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL on the last close)."""
        if not self.db.is_closed():
            self.db.close()
