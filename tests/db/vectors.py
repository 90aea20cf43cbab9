"""The C-written config.db vector, its ``sqlite3 .dump`` text, and raw readers of SQLite rows."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

from tests.vectors import VECTORS

VECTOR_DB = VECTORS / "config.db"
VECTOR_SQL = VECTORS / "config.db.sql"

INSERT_RE = re.compile(
    r"INSERT INTO tree VALUES\((-?\d+),(-?\d+),(-?\d+),(\d+),(\d+),(\d+),"
    r"'((?:[^']|'')*)',(NULL|X'[0-9a-f]*')\);"
)
"""One row line of `sqlite3 .dump` for the tree table."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def vector_create_sql() -> str:
    """The CREATE TABLE text the C pmxcfs left in sqlite_master (the .dump line without ';')."""
    lines = [line for line in VECTOR_SQL.read_text().splitlines() if line.startswith("CREATE TABLE tree")]
    assert len(lines) == 1
    return lines[0].removesuffix(";")


def vector_insert_lines() -> list[str]:
    return [line for line in VECTOR_SQL.read_text().splitlines() if line.startswith("INSERT INTO")]


def raw_rows(path: Path) -> list[tuple]:
    """Every row as SQLite stores it, read through a separate plain sqlite3 connection."""
    con = sqlite3.connect(path)
    try:
        return con.execute(
            "SELECT inode, parent, version, writer, mtime, type, name, data, typeof(data) "
            "FROM tree ORDER BY inode"
        ).fetchall()
    finally:
        con.close()
