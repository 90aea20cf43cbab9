"""Startup load checks (2.5) and row decoding."""

from __future__ import annotations

import pytest

from errors import CorruptDatabase
from memdb.loader import load_memdb, normalise_row
from memdb.records import DT_DIR, DT_REG, Row
from memdb.tree import MemDb
from tests.memdb.helpers import BAD_ROWS, V, content_state, dir_row, file_row, reload, rows_of


@pytest.mark.parametrize("rows", BAD_ROWS)
def test_load_failures(rows: list[Row]) -> None:
    with pytest.raises(CorruptDatabase):
        load_memdb(rows)


def test_version_row_sets_root_state() -> None:
    db = load_memdb([V, file_row(2, 0, "f")])
    assert (db.root.version, db.root.writer, db.root.mtime) == (100, 2, 5555)
    assert (db.root.inode, db.root.parent, db.root.type, db.root.name) == (0, 0, DT_DIR, "")


def test_version_row_may_come_last() -> None:
    db = load_memdb([file_row(2, 0, "f"), V])
    assert db.root.version == 100
    assert db.read_all("f") == b"x"


def test_empty_db_loads_at_version_zero() -> None:
    db = load_memdb([])
    assert db.root.version == 0
    assert db.statfs().files - db.statfs().ffree == 1
    assert db.vmlist.version == 0


def test_version_row_only() -> None:
    db = load_memdb([Row(0, 0, 1, 0, 77, DT_REG, "__version__", None)])
    assert (db.root.version, db.root.mtime) == (1, 77)
    assert db.readdir("") == ()


def test_dir_with_empty_blob_is_fine() -> None:
    db = load_memdb([V, Row(2, 0, 2, 0, 1, DT_DIR, "d", b"")])
    attr = db.getattr("d")
    assert attr is not None
    assert attr.is_dir


def test_out_of_order_rows_load() -> None:
    rows = [
        V,
        file_row(3, 10, "f3", b"three"),  # parent 10 seen later
        dir_row(5, 10, "sub"),  # a dir child first, too
        file_row(6, 5, "deep", b"deep"),
        file_row(7, 12, "f7"),  # grandparent chain appears later
        dir_row(10, 0, "top"),
        dir_row(12, 5, "sub2"),
    ]
    db = load_memdb(rows)
    assert set(db.readdir("top")) == {"f3", "sub"}
    assert set(db.readdir("top/sub")) == {"deep", "sub2"}
    assert db.read_all("top/f3") == b"three"
    assert db.read_all("top/sub/deep") == b"deep"
    assert db.read_all("top/sub/sub2/f7") == b"x"
    top = db.getattr("top")
    assert top is not None
    assert (top.inode, top.version) == (10, 10)
    assert db.lookup("top/sub/sub2") is db.index[12]
    assert db.index[12].parent == 5
    assert db.statfs().files - db.statfs().ffree == 7


def test_loaded_entries_have_row_values() -> None:
    db = load_memdb([V, Row(7, 0, 42, 3, 999, DT_REG, "f", b"abc"), Row(8, 0, 43, 1, 5, DT_REG, "e", None)])
    attr = db.getattr("f")
    assert attr is not None
    assert (attr.inode, attr.version, attr.writer, attr.mtime, attr.size) == (7, 42, 3, 999, 3)
    empty = db.getattr("e")
    assert empty is not None
    assert empty.size == 0
    assert db.read_all("e") == b""


def test_round_trip_of_a_tree(populated: MemDb) -> None:
    populated.rename("d/sub/x", "e/x", 0, 900)
    populated.mkdir("z", 0, 901)
    populated.rename("f", "z/f", 0, 902)  # f's inode is now lower than its parent's
    again = reload(populated)
    assert content_state(again) == content_state(populated)
    assert again.encode_index() == populated.encode_index()
    assert again.checksum() == populated.checksum()
    assert again.root.version == populated.root.version
    assert (again.root.writer, again.root.mtime) == (populated.root.writer, populated.root.mtime)
    assert rows_of(again) == rows_of(populated)


def test_loaded_tree_accepts_changes_with_next_inode(populated: MemDb) -> None:
    again = reload(populated)
    version = again.root.version
    again.create("new", 0, 1)
    attr = again.getattr("new")
    assert attr is not None
    assert attr.inode == version + 1


def test_normalise_row_masks() -> None:
    row = normalise_row(-1, -2, -3, -1, -1, 0x108, "n", memoryview(b"ab"))
    assert row == Row(
        inode=2**64 - 1,
        parent=2**64 - 2,
        version=2**64 - 3,
        writer=0xFFFFFFFF,
        mtime=0xFFFFFFFF,
        type=8,
        name="n",
        data=b"ab",
    )
    assert isinstance(row.data, bytes)


def test_normalise_row_writer_mtime_over_32_bits() -> None:
    row = normalise_row(2, 0, 2, (1 << 32) + 5, (1 << 33) + 7, 4, "d", None)
    assert (row.writer, row.mtime, row.type, row.data) == (5, 7, 4, None)


def test_normalise_row_text_data_and_null_name() -> None:
    assert normalise_row(2, 0, 2, 0, 0, 8, "f", "text").data == b"text"
    assert normalise_row(2, 0, 2, 0, 0, 8, None, None).name == ""  # type: ignore[arg-type]
    assert normalise_row(2, 0, 2, 0, 0, 8, "f", b"").data == b""


def test_null_name_row_is_rejected() -> None:
    with pytest.raises(CorruptDatabase):
        load_memdb([V, normalise_row(2, 0, 2, 0, 0, 8, None, b"x")])  # type: ignore[arg-type]


def test_type_masked_to_8_bits_loads() -> None:
    db = load_memdb([V, normalise_row(2, 0, 2, 0, 0, 0x104, "d", None)])
    attr = db.getattr("d")
    assert attr is not None
    assert attr.is_dir
