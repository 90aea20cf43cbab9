"""Load the real C database (shared/vectors/config.db) and check it against its SQL dump."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from memdb.loader import load_memdb, normalise_row
from memdb.records import DT_DIR, DT_REG, Row
from memdb.tree import MemDb
from tests.vectors import VECTORS

CONFIG_DB = VECTORS / "config.db"
CONFIG_SQL = VECTORS / "config.db.sql"
VMLIST_JSON = VECTORS / "node1-vmlist.json"

_INSERT = re.compile(
    r"^INSERT INTO tree VALUES\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+),"
    r"'((?:[^']|'')*)',(NULL|X'([0-9a-fA-F]*)')\);$"
)


def _read_rows(tmp_path: Path) -> list[Row]:
    assert CONFIG_DB.is_file(), f"missing vector {CONFIG_DB}"
    copy = tmp_path / "config.db"
    shutil.copyfile(CONFIG_DB, copy)
    conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        cur = conn.execute("SELECT inode,parent,version,writer,mtime,type,name,data FROM tree")
        return [normalise_row(*r) for r in cur.fetchall()]
    finally:
        conn.close()


def _dump_rows() -> list[Row]:
    assert CONFIG_SQL.is_file(), f"missing vector {CONFIG_SQL}"
    rows = []
    for line in CONFIG_SQL.read_text().splitlines():
        if not line.startswith("INSERT INTO tree"):
            continue
        m = _INSERT.match(line)
        assert m, line
        ints = [int(x) for x in m.groups()[:6]]
        name = m.group(7).replace("''", "'")
        data = None if m.group(8) == "NULL" else bytes.fromhex(m.group(9))
        rows.append(Row(*ints, name, data))
    return rows


def _paths(rows: list[Row]) -> dict[int, str]:
    by_inode = {r.inode: r for r in rows if r.inode != 0}

    def path(inode: int) -> str:
        row = by_inode[inode]
        return row.name if row.parent == 0 else f"{path(row.parent)}/{row.name}"

    return {inode: path(inode) for inode in by_inode}


@pytest.fixture
def loaded(tmp_path: Path) -> MemDb:
    return load_memdb(_read_rows(tmp_path))


def test_vectors_present() -> None:
    assert CONFIG_DB.is_file()
    assert CONFIG_SQL.is_file()
    assert VMLIST_JSON.is_file()


def test_db_rows_match_dump(tmp_path: Path) -> None:
    db_rows = sorted(_read_rows(tmp_path), key=lambda r: r.inode)
    dump_rows = sorted(_dump_rows(), key=lambda r: r.inode)
    assert len(dump_rows) == 31  # 30 entries + the version row
    assert db_rows == dump_rows


def test_root_state(loaded: MemDb) -> None:
    assert loaded.root.version == 984
    assert loaded.root.writer == 2
    assert loaded.root.mtime == 1795608721


def test_entry_count(loaded: MemDb) -> None:
    entries = [r for r in _dump_rows() if r.inode != 0]
    st = loaded.statfs()
    assert st.files - st.ffree == len(entries) + 1
    assert st.bfree == 32768 - 1  # about 1.5 KiB of data in total


def test_every_file_readable_with_dump_content(loaded: MemDb) -> None:
    rows = _dump_rows()
    paths = _paths(rows)
    files = 0
    for row in rows:
        if row.inode == 0:
            continue
        path = paths[row.inode]
        attr = loaded.getattr(path)
        assert attr is not None, path
        assert (attr.inode, attr.version, attr.writer, attr.mtime, attr.type) == (
            row.inode,
            row.version,
            row.writer,
            row.mtime,
            row.type,
        ), path
        if row.type == DT_REG:
            files += 1
            assert loaded.read_all(path) == (row.data or b""), path
            assert attr.size == len(row.data or b"")
        else:
            assert row.type == DT_DIR
            expected = {
                paths[r.inode].rsplit("/", 1)[-1] for r in rows if r.inode != 0 and r.parent == row.inode
            }
            assert set(loaded.readdir(path)) == expected, path
    assert files == 15


def test_known_contents(loaded: MemDb) -> None:
    assert loaded.read_all("nodes/node1/qemu-server/100.conf") == b"name: vm100\nmemory: 4096\ncores: 4\n"
    assert loaded.read_all("nodes/node2/lxc/101.conf") == b"hostname: ct101\nmemory: 512\n"
    assert loaded.read_all("datacenter.cfg") == b"keyboard: en-us\n"
    assert loaded.read_all("testdir/burst/f4") == b"burst 459\n"
    assert loaded.read_all("corosync.conf") == (VECTORS / "corosync.conf").read_bytes()
    assert set(loaded.readdir("")) == {
        "corosync.conf",
        "nodes",
        "priv",
        "testdir",
        "datacenter.cfg",
        "user.cfg",
    }


def test_out_of_order_parent_in_vector(loaded: MemDb) -> None:
    # 101.conf (inode 13) lives in nodes/node2/lxc (inode 42): a child before its parent
    entry = loaded.lookup("nodes/node2/lxc/101.conf")
    assert entry is not None
    assert (entry.inode, entry.parent) == (13, 42)


def test_vmlist_matches_c(loaded: MemDb) -> None:
    expected = json.loads(VMLIST_JSON.read_text())["ids"]
    got = {str(vm.vmid): (vm.node, vm.vmtype) for vm in loaded.vmlist.snapshot().vms}
    assert got == {vmid: (v["node"], v["type"]) for vmid, v in expected.items()}
    assert loaded.vmlist.version == 1


def test_locks_rebuilt(loaded: MemDb) -> None:
    assert loaded.locks.paths() == ("priv/lock/test",)


def test_next_change_continues_numbering(loaded: MemDb) -> None:
    applied = loaded.create("newfile", 0, 1)
    assert applied.change is not None
    assert applied.change.version == 985
    attr = loaded.getattr("newfile")
    assert attr is not None
    assert attr.inode == 985


def test_round_trip_rows(loaded: MemDb, tmp_path: Path) -> None:
    rows = [r for r in _read_rows(tmp_path) if r.inode != 0]
    mine = sorted((e.row() for e in loaded.entries() if e.inode != 0), key=lambda r: r.inode)
    assert mine == sorted(rows, key=lambda r: r.inode)
