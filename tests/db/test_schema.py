"""The file Store.prepare() makes: the C schema, pragmas and mode (reference 2.1, 2.2)."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from db.schema import CREATE_TREE_SQL
from db.store import Store
from tests.db.vectors import VECTOR_DB, vector_create_sql


def _master(path: Path) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        con.close()


def test_new_file_schema_is_the_c_create_table_text(store: Store) -> None:
    (sql,) = store.db.execute_sql("SELECT sql FROM sqlite_master WHERE name='tree'").fetchone()
    assert sql == vector_create_sql()


def test_new_file_sqlite_master_equals_the_vector_files(store: Store, tmp_path: Path) -> None:
    # Only the table: no index, no other object, exactly as the C daemon leaves it.
    ours = _master(tmp_path / "config.db")
    theirs = _master(VECTOR_DB)
    assert ours == theirs
    assert [(t, n) for t, n, _, _ in ours] == [("table", "tree")]


def test_table_columns_match_the_reference(store: Store) -> None:
    cols = store.db.execute_sql("PRAGMA table_info(tree)").fetchall()
    # (cid, name, type, notnull, default, pk)
    assert [(c[1], c[2], c[3], c[5]) for c in cols] == [
        ("inode", "INTEGER", 1, 1),
        ("parent", "INTEGER", 1, 0),
        ("version", "INTEGER", 1, 0),
        ("writer", "INTEGER", 1, 0),
        ("mtime", "INTEGER", 1, 0),
        ("type", "INTEGER", 1, 0),
        ("name", "TEXT", 1, 0),
        ("data", "BLOB", 0, 0),
    ]


def test_create_sql_is_idempotent_and_keeps_the_text(vector_copy: Path) -> None:
    # CREATE TABLE IF NOT EXISTS on a C-made file is a no-op: its sqlite_master text stays.
    before = _master(vector_copy)
    s = Store(str(vector_copy))
    s.open()
    s.prepare()
    s.close()
    assert _master(vector_copy) == before
    assert "IF NOT EXISTS" in CREATE_TREE_SQL


@pytest.mark.parametrize("column", ["parent", "version", "writer", "mtime", "type"])
def test_check_constraints_reject_non_integer_columns(store: Store, column: str) -> None:
    values: dict[str, object] = {"inode": 5, "parent": 0, "version": 5, "writer": 0, "mtime": 0, "type": 8}
    values[column] = "x"
    con = sqlite3.connect(store.path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            con.execute(
                "INSERT INTO tree (inode, parent, version, writer, mtime, type, name, data) "
                "VALUES (:inode, :parent, :version, :writer, :mtime, :type, 'n', NULL)",
                values,
            )
    finally:
        con.close()


def test_pragmas_on_the_stores_connection(store: Store) -> None:
    assert store.db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute_sql("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert store.db.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 10000


def test_wal_mode_is_persistent_in_the_file(store: Store, tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "config.db")
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()


def test_new_file_mode_is_0600(store: Store, tmp_path: Path) -> None:
    assert stat.S_IMODE(os.stat(tmp_path / "config.db").st_mode) == 0o600


def test_prepare_chmods_an_existing_file_to_0600(vector_copy: Path) -> None:
    assert stat.S_IMODE(os.stat(vector_copy).st_mode) == 0o644
    s = Store(str(vector_copy))
    s.open()
    s.prepare()
    s.close()
    assert stat.S_IMODE(os.stat(vector_copy).st_mode) == 0o600


def test_prepare_writes_no_rows(store: Store, tmp_path: Path) -> None:
    # The version row of a fresh DB is written by the tree's activation, not by prepare.
    con = sqlite3.connect(tmp_path / "config.db")
    try:
        assert con.execute("SELECT count(*) FROM tree").fetchone()[0] == 0
    finally:
        con.close()
