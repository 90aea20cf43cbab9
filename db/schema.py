"""The config.db schema: one table ``tree``, exactly as the C pmxcfs creates it (database.c)."""

from __future__ import annotations

from peewee import BlobField, IntegerField, Model, SqliteDatabase, TextField

_dialect = SqliteDatabase(None)
"""Never connected: it only gives the model its SQL dialect. Each Store has its own connection."""

CREATE_TREE_SQL = (
    "CREATE TABLE IF NOT EXISTS tree ("
    "  inode INTEGER PRIMARY KEY NOT NULL,"
    "  parent INTEGER NOT NULL CHECK(typeof(parent)=='integer'),"
    "  version INTEGER NOT NULL CHECK(typeof(version)=='integer'),"
    "  writer INTEGER NOT NULL CHECK(typeof(writer)=='integer'),"
    "  mtime INTEGER NOT NULL CHECK(typeof(mtime)=='integer'),"
    "  type INTEGER NOT NULL CHECK(typeof(type)=='integer'),"
    "  name TEXT NOT NULL,"
    "  data BLOB);"
)
"""The original DDL, byte for byte, so sqlite_master holds the same text as a C-made file."""


class Tree(Model):
    """One row per tree entry except the root; inode 0 is the ``__version__`` row."""

    inode = IntegerField(primary_key=True)
    """Entry id (rowid alias); u64 stored as signed 64-bit."""
    parent = IntegerField()
    """Inode of the containing directory; 0 for top-level entries."""
    version = IntegerField()
    """Global version after the entry's last change (the version row: the global version)."""
    writer = IntegerField()
    """Node id of the last writer (0 in local mode), u32."""
    mtime = IntegerField()
    """Seconds since the epoch, u32."""
    type = IntegerField()
    """8 = file, 4 = directory (the version row says 8)."""
    name = TextField()
    """Name within the parent; ``__version__`` for inode 0."""
    data = BlobField(null=True)
    """Whole file content; NULL for directories, empty files and the version row."""

    class Meta:
        """Bound to a dialect only; each Store runs the SQL on its own connection."""

        database = _dialect
        table_name = "tree"
