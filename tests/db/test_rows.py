"""Row encoding and the one-transaction-per-change rule (reference 2.3, 2.4)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from db.store import Store
from errors import StorageError
from memdb.records import DT_DIR, DT_REG, Row, StoreChange, version_row
from tests.db.vectors import INSERT_RE, raw_rows, vector_create_sql, vector_insert_lines
from tests.vectors import VECTORS

U64_MAX = (1 << 64) - 1
U32_MAX = 0xFFFFFFFF


def _change(
    version: int, upsert: Row | None = None, delete: int | None = None, *, writer: int = 0
) -> StoreChange:
    return StoreChange(
        version=version, writer=writer, mtime=1000 + version, upsert=upsert, delete_inode=delete
    )


def test_version_row_is_inode_0_type_8_named___version___with_null_data(store: Store) -> None:
    store.apply(_change(1))
    assert raw_rows(Path(store.path)) == [(0, 0, 1, 0, 1001, 8, "__version__", None, "null")]


def test_version_row_helper_matches_the_encoding() -> None:
    assert version_row(7, 3, 99) == Row(0, 0, 7, 3, 99, DT_REG, "__version__", None)


def test_every_change_rewrites_the_version_row(store: Store) -> None:
    store.apply(_change(1))
    store.apply(_change(2, Row(2, 0, 2, 0, 5, DT_DIR, "d", None), writer=4))
    rows = raw_rows(Path(store.path))
    assert rows[0] == (0, 0, 2, 4, 1002, 8, "__version__", None, "null")
    assert len(rows) == 2


def test_empty_file_and_directory_store_null_data(store: Store) -> None:
    store.apply(_change(1))
    store.apply(_change(2, Row(2, 0, 2, 0, 5, DT_DIR, "d", None)))
    store.apply(_change(3, Row(3, 0, 3, 0, 5, DT_REG, "empty", b"")))
    store.apply(_change(4, Row(4, 0, 4, 0, 5, DT_REG, "full", b"\x00\xffab")))
    by_name = {r[6]: r for r in raw_rows(Path(store.path))}
    assert by_name["d"][7:] == (None, "null")
    assert by_name["empty"][7:] == (None, "null")
    assert by_name["full"][7:] == (b"\x00\xffab", "blob")
    assert by_name["d"][5] == 4
    assert by_name["empty"][5] == 8


def test_u64_inode_and_version_stored_signed_and_read_back_unsigned(store: Store) -> None:
    big = Row(U64_MAX, 1 << 63, (1 << 63) + 7, 0, 5, DT_REG, "big", b"x")
    store.apply(StoreChange(version=(1 << 63) + 7, writer=0, mtime=5, upsert=big))
    rows = {r[6]: r for r in raw_rows(Path(store.path))}
    assert rows["big"][:3] == (-1, -(1 << 63), -(1 << 63) + 7)
    assert rows["__version__"][2] == -(1 << 63) + 7
    store.close()
    reread = Store(store.path)
    try:
        loaded = {r.name: r for r in reread.open()}
    finally:
        reread.close()
    assert loaded["big"] == big
    assert loaded["__version__"].version == (1 << 63) + 7


def test_below_2_63_stays_positive(store: Store) -> None:
    row = Row((1 << 63) - 1, 0, (1 << 63) - 1, 0, 5, DT_REG, "edge", None)
    store.apply(StoreChange(version=(1 << 63) - 1, writer=0, mtime=5, upsert=row))
    rows = {r[6]: r for r in raw_rows(Path(store.path))}
    assert rows["edge"][0] == (1 << 63) - 1


def test_writer_and_mtime_are_stored_as_non_negative_u32(store: Store) -> None:
    row = Row(2, 0, 2, U32_MAX, U32_MAX, DT_REG, "w", None)
    store.apply(StoreChange(version=2, writer=U32_MAX, mtime=U32_MAX, upsert=row))
    rows = {r[6]: r for r in raw_rows(Path(store.path))}
    assert rows["w"][3:5] == (U32_MAX, U32_MAX)
    assert rows["__version__"][3:5] == (U32_MAX, U32_MAX)


def test_utf8_name_is_text(store: Store) -> None:
    store.apply(_change(2, Row(2, 0, 2, 0, 5, DT_REG, "größe.cfg", b"1")))
    con = sqlite3.connect(store.path)
    try:
        assert con.execute("SELECT typeof(name), name FROM tree WHERE inode=2").fetchone() == (
            "text",
            "größe.cfg",
        )
    finally:
        con.close()


def test_upsert_replaces_the_whole_row(store: Store) -> None:
    store.apply(_change(2, Row(2, 0, 2, 0, 5, DT_REG, "f", b"hello world")))
    store.apply(_change(3, Row(2, 0, 3, 0, 6, DT_REG, "f", b"hi")))
    rows = [r for r in raw_rows(Path(store.path)) if r[0] == 2]
    assert rows == [(2, 0, 3, 0, 6, 8, "f", b"hi", "blob")]


def test_delete_and_upsert_in_one_change(store: Store) -> None:
    store.apply(_change(2, Row(2, 0, 2, 0, 5, DT_REG, "a", b"a")))
    store.apply(_change(3, Row(3, 0, 3, 0, 5, DT_REG, "b", b"b")))
    # rename a -> b: the replaced target's row goes, the moved row is upserted
    store.apply(_change(4, Row(2, 0, 4, 0, 7, DT_REG, "b", b"a"), delete=3))
    assert [r[:7] for r in raw_rows(Path(store.path))] == [
        (0, 0, 4, 0, 1004, 8, "__version__"),
        (2, 0, 4, 0, 7, 8, "b"),
    ]


def test_a_committed_change_is_seen_by_another_connection_at_once(store: Store) -> None:
    other = sqlite3.connect(store.path)
    try:
        assert other.execute("SELECT count(*) FROM tree").fetchone()[0] == 0
        store.apply(_change(2, Row(2, 0, 2, 0, 5, DT_REG, "f", b"x")))
        assert other.execute("SELECT count(*) FROM tree").fetchone()[0] == 2
        assert not store.sqlite().in_transaction
        # the store holds no lock after the commit: another writer gets in without waiting
        other.execute("PRAGMA busy_timeout=0")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_a_failing_change_rolls_back_as_a_whole(store: Store) -> None:
    store.apply(_change(2, Row(2, 0, 2, 0, 5, DT_REG, "keep", b"k")))
    before = raw_rows(Path(store.path))
    bad = Row(3, 0, 3, "w", 5, DT_REG, "x", b"x")  # type: ignore[arg-type]  # CHECK(typeof(writer)) fails
    with pytest.raises(StorageError) as info:
        store.apply(_change(3, bad, delete=2))
    assert info.value.what == store.path
    assert raw_rows(Path(store.path)) == before
    assert not store.sqlite().in_transaction
    # the store still works afterwards
    store.apply(_change(3, Row(3, 0, 3, 0, 5, DT_REG, "next", None)))
    assert len(raw_rows(Path(store.path))) == 3


def test_apply_after_the_table_is_dropped_raises_storage_error(store: Store) -> None:
    store.apply(_change(1))
    con = sqlite3.connect(store.path)
    con.execute("DROP TABLE tree")
    con.commit()
    con.close()
    with pytest.raises(StorageError, match="no such table"):
        store.apply(_change(2, Row(2, 0, 2, 0, 5, DT_DIR, "d", None)))


def test_close_checkpoints_and_removes_the_wal(store: Store) -> None:
    store.apply(_change(2, Row(2, 0, 2, 0, 5, DT_REG, "f", b"x")))
    assert os.path.exists(store.path + "-wal")
    store.close()
    assert not os.path.exists(store.path + "-wal")
    assert not os.path.exists(store.path + "-shm")
    # everything is in the main file now
    assert len(raw_rows(Path(store.path))) == 2


def test_our_file_reads_with_plain_sqlite3(store: Store) -> None:
    store.apply(_change(1))
    store.apply(_change(2, Row(2, 0, 2, 0, 1795608459, DT_DIR, "nodes", None)))
    store.apply(_change(3, Row(3, 2, 3, 0, 1795608459, DT_REG, "user.cfg", b"user:root@pam:1:0:::\n")))
    store.close()
    con = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
    try:
        assert con.execute("SELECT inode, parent, name, data FROM tree ORDER BY inode").fetchall() == [
            (0, 0, "__version__", None),
            (2, 0, "nodes", None),
            (3, 2, "user.cfg", b"user:root@pam:1:0:::\n"),
        ]
    finally:
        con.close()


def _sqlite3_cli() -> str:
    cli = shutil.which("sqlite3")
    if cli is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the sqlite3 command line tool is missing (apt-get install sqlite3)")
        pytest.skip("the sqlite3 command line tool is not installed")
    return cli


def test_sqlite3_dump_has_the_vector_schema_and_row_shapes(store: Store) -> None:
    cli = _sqlite3_cli()
    store.apply(_change(1))
    store.apply(_change(2, Row(2, 0, 2, 0, 1795608459, DT_DIR, "nodes", None)))
    store.apply(_change(3, Row(3, 0, 3, 0, 1795608460, DT_REG, "empty", b"")))
    store.apply(_change(4, Row(4, 0, 4, 0, 1795608486, DT_REG, "datacenter.cfg", b"keyboard: en-us\n")))
    store.apply(_change(5, Row(1 << 63, 0, 1 << 63, 1, 7, DT_REG, "it's", b"\x00")))
    store.close()
    dump = subprocess.run([cli, store.path, ".dump"], capture_output=True, text=True, check=True).stdout
    lines = dump.splitlines()
    vector = (VECTORS / "config.db.sql").read_text().splitlines()
    assert lines[:2] == vector[:2] == ["PRAGMA foreign_keys=OFF;", "BEGIN TRANSACTION;"]
    assert lines[2] == vector_create_sql() + ";" == vector[2]
    assert lines[-1] == vector[-1] == "COMMIT;"
    inserts = lines[3:-1]
    assert all(INSERT_RE.fullmatch(line) for line in inserts), inserts
    assert all(INSERT_RE.fullmatch(line) for line in vector_insert_lines())
    assert inserts == [
        # rowid order: the u64 inode 2^63 is stored as the smallest signed value
        f"INSERT INTO tree VALUES({-(1 << 63)},0,{-(1 << 63)},1,7,8,'it''s',X'00');",
        "INSERT INTO tree VALUES(0,0,5,0,1005,8,'__version__',NULL);",
        "INSERT INTO tree VALUES(2,0,2,0,1795608459,4,'nodes',NULL);",
        "INSERT INTO tree VALUES(3,0,3,0,1795608460,8,'empty',NULL);",
        "INSERT INTO tree VALUES(4,0,4,0,1795608486,8,'datacenter.cfg',X'6b6579626f6172643a20656e2d75730a');",
    ]
    # The vector's datacenter.cfg line has exactly this shape and data.
    assert "X'6b6579626f6172643a20656e2d75730a'" in next(v for v in vector if "'datacenter.cfg'" in v)


def test_a_sync_commit_deletes_and_upserts_in_one_transaction(store: Store) -> None:
    store.apply(_change(2, Row(2, 0, 2, 0, 5, DT_REG, "gone", b"g")))
    store.apply(_change(3, Row(3, 0, 3, 0, 5, DT_REG, "kept", b"k")))
    rows = tuple(Row(i, 0, i, 1, 6, DT_REG, f"f{i}", b"d" * i) for i in range(4, 304))
    store.replace_rows((2,), (*rows, Row(3, 0, 9, 1, 7, DT_REG, "kept", b"new"), version_row(400, 1, 7)))
    stored = {r[0]: r for r in raw_rows(Path(store.path))}
    assert 2 not in stored
    assert stored[3][2] == 9
    assert stored[3][7] == b"new"
    assert [stored[i][7] for i in (4, 303)] == [b"d" * 4, b"d" * 303]
    assert stored[0][2] == 400
    assert len(stored) == 302  # version row, inode 3, 300 new rows
    assert not store.sqlite().in_transaction


def test_a_failing_sync_commit_changes_nothing(store: Store) -> None:
    store.apply(_change(2, Row(2, 0, 2, 0, 5, DT_REG, "keep", b"k")))
    before = raw_rows(Path(store.path))
    bad = Row(9, 0, 9, "w", 5, DT_REG, "x", b"x")  # type: ignore[arg-type]  # CHECK(typeof(writer)) fails
    good = tuple(Row(i, 0, i, 1, 6, DT_REG, f"f{i}", b"d") for i in range(10, 20))
    with pytest.raises(StorageError):
        store.replace_rows((2,), (*good, bad))
    assert raw_rows(Path(store.path)) == before
    assert not store.sqlite().in_transaction
