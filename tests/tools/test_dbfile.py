"""The read-only store open the tools use, and the loader's collect-all mode (check_rows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.store import Store
from errors import AlreadyExists, CorruptDatabase, StorageError
from memdb.loader import check_rows, load_memdb
from memdb.records import DT_REG, Row, version_row
from tests.memdb.helpers import rows_of
from tests.tools.helpers import run, sample_tree, sha256, side_files, write_db
from tools.dbfile import read_rows, write_new_db


def test_readonly_open_of_a_closed_database_leaves_no_side_files(sample_db: Path) -> None:
    before = sha256(sample_db)
    assert len(read_rows(str(sample_db))) == 16
    assert side_files(sample_db) == []
    assert sha256(sample_db) == before


def test_readonly_open_of_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "nope.db"), readonly=True)
    with pytest.raises(StorageError, match="unable to open database file"):
        store.open()
    assert list(tmp_path.iterdir()) == []


def test_readonly_store_can_not_write(sample_db: Path) -> None:
    store = Store(str(sample_db), readonly=True)
    store.open()
    try:
        with pytest.raises(StorageError, match="readonly"):
            store.replace_rows((), (version_row(99, 0, 0),))
    finally:
        store.close()
    assert load_memdb(read_rows(str(sample_db))).root.version == 23


def test_readonly_open_sees_a_live_wal_and_leaves_it(sample_db: Path) -> None:
    writer = Store(str(sample_db))
    writer.open()
    writer.prepare()
    writer.replace_rows((), (Row(40, 0, 40, 1, 1, DT_REG, "new", b"n"), version_row(40, 1, 1)))
    try:
        wal = Path(f"{sample_db}-wal")
        before = (sha256(sample_db), sha256(wal))
        rows = read_rows(str(sample_db))
        assert (len(rows), load_memdb(rows).read_all("new")) == (17, b"n")
        assert (sha256(sample_db), sha256(wal)) == before
    finally:
        writer.close()


def test_snapshot_stale_when_a_writer_comes_during_an_immutable_read(sample_db: Path) -> None:
    reader = Store(str(sample_db), readonly=True)
    reader.connect()
    writer = Store(str(sample_db))
    try:
        assert not reader.snapshot_stale()
        writer.open()  # a daemon starting: it creates the -wal
        assert reader.snapshot_stale()
    finally:
        writer.close()
        reader.close()


def test_check_rows_of_a_good_tree_is_empty() -> None:
    assert check_rows(rows_of(sample_tree())) == ()


def test_load_memdb_still_stops_at_the_first_problem() -> None:
    rows = [version_row(9, 0, 1), Row(2, 0, 2, 0, 1, DT_REG, "", None), Row(3, 8, 3, 0, 1, DT_REG, "x", None)]
    with pytest.raises(CorruptDatabase) as info:
        load_memdb(rows)
    assert (info.value.what, info.value.reason) == ("2", "inode has no name")
    assert [(p.what, p.reason) for p in check_rows(rows)] == [
        ("2", "inode has no name"),
        ("8", "missing directory inode (parent of inodes 3)"),
    ]


def test_write_new_db_refuses_a_leftover_wal(tmp_path: Path) -> None:
    (tmp_path / "new.db-wal").write_bytes(b"")
    with pytest.raises(AlreadyExists):
        write_new_db(str(tmp_path / "new.db"), (version_row(1, 0, 0),))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.db-wal"]


@pytest.mark.parametrize("name", ["..", "."])
def test_export_refuses_names_that_are_not_file_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    db = write_db(tmp_path / "odd.db", [version_row(5, 0, 1), Row(2, 0, 2, 0, 1, DT_REG, name, b"x")])
    result = run(capsys, "export", db, tmp_path / "out")
    assert result.code == 255
    assert result.err == f"pmxcfs-tool export: inode 2: name {name!r} can't be exported as a file name\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.db"]
