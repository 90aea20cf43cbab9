"""Store.open: the C-written vector loads, bad files fail cleanly, and open writes nothing."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from db.store import Store
from errors import CorruptDatabase, StorageError
from memdb.loader import load_memdb
from memdb.records import DT_DIR, DT_REG, Row
from tests.db.vectors import INSERT_RE, VECTOR_DB, sha256, vector_insert_lines


def _vector_rows_from_sql() -> list[Row]:
    """The rows of config.db.sql, decoded the way the reference says (signed u64, NULL data)."""
    rows = []
    for line in vector_insert_lines():
        m = INSERT_RE.fullmatch(line)
        assert m is not None, line
        inode, parent, version, writer, mtime, type_, name, data = m.groups()
        blob = None if data == "NULL" else bytes.fromhex(data[2:-1])
        rows.append(
            Row(
                int(inode) % (1 << 64),
                int(parent) % (1 << 64),
                int(version) % (1 << 64),
                int(writer),
                int(mtime),
                int(type_),
                name.replace("''", "'"),
                blob,
            )
        )
    return rows


def _open_rows(path: Path) -> tuple[Row, ...]:
    s = Store(str(path))
    try:
        return s.open()
    finally:
        s.close()


def test_vector_rows_come_back_exactly(vector_copy: Path) -> None:
    rows = _open_rows(vector_copy)
    expected = _vector_rows_from_sql()
    assert len(rows) == len(expected) == 31
    assert sorted(rows, key=lambda r: r.inode) == sorted(expected, key=lambda r: r.inode)


def test_vector_db_loads_into_a_tree(vector_copy: Path) -> None:
    memdb = load_memdb(_open_rows(vector_copy))
    root = memdb.root
    assert (root.version, root.writer, root.mtime) == (984, 2, 1795608721)
    assert len(memdb.index) == 31  # 31 rows: the version row becomes the root
    assert memdb.read_all("nodes/node1/qemu-server/100.conf") == b"name: vm100\nmemory: 4096\ncores: 4\n"
    assert memdb.read_all("corosync.conf").startswith(b"totem {\n  version: 2\n")
    assert len(memdb.read_all("corosync.conf")) == 608
    assert memdb.read_all("priv/token.cfg").startswith(b"root@pam!test ")
    corosync = memdb.getattr("corosync.conf")
    assert corosync is not None
    assert (corosync.inode, corosync.version, corosync.writer, corosync.mtime) == (2, 3, 0, 1795608439)
    lock = memdb.getattr("priv/lock/test")
    assert lock is not None
    assert lock.type == DT_DIR
    # inode 13 (101.conf) sits under inode 42, which comes later in rowid order: a placeholder case
    lxc = memdb.getattr("nodes/node2/lxc/101.conf")
    assert lxc is not None
    assert (lxc.inode, lxc.type, lxc.size) == (13, DT_REG, 28)
    assert sorted(memdb.readdir("")) == [
        "corosync.conf",
        "datacenter.cfg",
        "nodes",
        "priv",
        "testdir",
        "user.cfg",
    ]


def test_vector_db_vmlist(vector_copy: Path) -> None:
    memdb = load_memdb(_open_rows(vector_copy))
    vms = {vm.vmid: (vm.node, vm.vmtype) for vm in memdb.vmlist.snapshot().vms}
    assert vms == {
        100: ("node1", "qemu"),
        102: ("node1", "qemu"),
        101: ("node2", "lxc"),
        200: ("node2", "qemu"),
        201: ("node2", "qemu"),
        300: ("node3", "qemu"),
    }


def test_vector_db_statfs(vector_copy: Path) -> None:
    rows = _open_rows(vector_copy)
    memdb = load_memdb(rows)
    info = memdb.statfs()
    total = sum(len(r.data or b"") for r in rows)
    assert info.files - info.ffree == 31
    assert info.bfree == 32768 - (total + 4095) // 4096


def test_open_and_close_write_nothing_to_the_vector_copy(vector_copy: Path) -> None:
    before = sha256(vector_copy)
    assert sha256(VECTOR_DB) == before
    s = Store(str(vector_copy))
    rows = s.open()
    assert rows
    s.close()
    assert sha256(vector_copy) == before
    assert not os.path.exists(f"{vector_copy}-wal")


def test_open_of_a_missing_file_returns_no_rows(tmp_path: Path) -> None:
    assert _open_rows(tmp_path / "new.db") == ()


def test_open_of_a_file_without_the_tree_table_returns_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE other (x)")
    con.commit()
    con.close()
    assert _open_rows(path) == ()


def _assert_refused(path: Path) -> StorageError:
    s = Store(str(path))
    with pytest.raises(StorageError) as info:
        s.open()
    s.close()
    err = info.value
    assert not isinstance(err, CorruptDatabase)
    assert err.what == str(path)
    assert str(path) in str(err)
    assert err.reason
    return err


def test_open_of_garbage_raises_storage_error_and_leaves_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "config.db"
    path.write_bytes(b"this is not an sqlite database\n" * 200)
    before = sha256(path)
    err = _assert_refused(path)
    assert "not a database" in err.reason
    assert sha256(path) == before


def test_open_of_a_truncated_vector_raises_storage_error_and_leaves_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "config.db"
    path.write_bytes(VECTOR_DB.read_bytes()[:8192])
    before = sha256(path)
    _assert_refused(path)
    assert sha256(path) == before


def test_open_of_a_directory_raises_storage_error(tmp_path: Path) -> None:
    folder = tmp_path / "config.db"
    folder.mkdir()
    _assert_refused(folder)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("where", ["missing-dir/config.db", "a-file/config.db"])
def test_open_of_an_unreachable_path_raises_storage_error(tmp_path: Path, where: str) -> None:
    # As root, mode bits don't make a file unreadable: use paths the kernel refuses instead.
    (tmp_path / "a-file").write_bytes(b"x")
    _assert_refused(tmp_path / where)
    assert (tmp_path / "a-file").read_bytes() == b"x"
    assert not (tmp_path / "missing-dir").exists()


def test_open_of_a_tree_table_with_the_wrong_columns_raises_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "config.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE tree (inode INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO tree VALUES (0, '__version__')")
    con.commit()
    con.close()
    before = sha256(path)
    _assert_refused(path)
    assert sha256(path) == before
