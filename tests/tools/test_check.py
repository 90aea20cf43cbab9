"""check: every startup rule named with its inode and path, read-only, exit 1 on errors."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from db.store import Store
from memdb.records import DT_DIR, DT_REG, Row, version_row
from tests.db.vectors import VECTOR_DB
from tests.integration.helpers import CORRUPTIONS
from tests.memdb.helpers import BAD_ROWS
from tests.tools.helpers import run, sha256, side_files, write_db

V = version_row(100, 2, 5555)


def _dir(inode: int, parent: int, name: str) -> Row:
    return Row(inode, parent, inode, 0, 1, DT_DIR, name, None)


def _file(inode: int, parent: int, name: str, data: bytes | None = b"x") -> Row:
    return Row(inode, parent, inode, 0, 1, DT_REG, name, data)


@pytest.fixture
def vector(tmp_path: Path) -> Path:
    path = tmp_path / "config.db"
    shutil.copyfile(VECTOR_DB, path)
    return path


def _check(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, list[str]]:
    before = sha256(path) if path.is_file() else None
    result = run(capsys, "check", path)
    if before is not None:
        assert sha256(path) == before, "check changed the file"
    assert result.err == ""
    return result.code, result.lines


def test_clean_vector_db(capsys: pytest.CaptureFixture[str], vector: Path) -> None:
    code, lines = _check(capsys, vector)
    assert (code, lines) == (0, [f"{vector}: OK (31 rows, version 984)"])
    assert side_files(vector) == []


def test_clean_sample_db(capsys: pytest.CaptureFixture[str], sample_db: Path) -> None:
    code, lines = _check(capsys, sample_db)
    assert (code, lines) == (0, [f"{sample_db}: OK (16 rows, version 23)"])
    assert side_files(sample_db) == []


def test_live_database_is_read_through_its_wal(capsys: pytest.CaptureFixture[str], sample_db: Path) -> None:
    writer = Store(str(sample_db))
    writer.open()
    writer.prepare()
    writer.replace_rows((), (_file(99, 0, "late"), version_row(200, 0, 1)))  # in the WAL only
    try:
        wal = Path(f"{sample_db}-wal")
        wal_before = sha256(wal)
        code, lines = _check(capsys, sample_db)
        assert (code, lines) == (0, [f"{sample_db}: OK (17 rows, version 200)"])
        assert sha256(wal) == wal_before
    finally:
        writer.close()


STORABLE_BAD_ROWS = [p for p in BAD_ROWS if len({r.inode for r in p.values[0]}) == len(p.values[0])]
"""The loader tests' bad row sets that SQLite can hold (inode is the primary key)."""


def test_most_loader_cases_are_storable() -> None:
    assert len(STORABLE_BAD_ROWS) == len(BAD_ROWS) - 2  # the two "strange placeholder" cases repeat an inode


@pytest.mark.parametrize("rows", STORABLE_BAD_ROWS)
def test_every_loader_refusal_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, rows: list[Row]
) -> None:
    path = write_db(tmp_path / "bad.db", rows)
    code, lines = _check(capsys, path)
    assert code == 1
    assert lines[0].startswith("error: ")
    assert lines[-1].startswith(f"{path}: ")
    assert " error(s)" in lines[-1]


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_finds_what_the_daemon_refuses_to_start_with(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "config.db"
    CORRUPTIONS[kind](path)  # the corruptions of tests/integration/test_lifecycle.py
    code, lines = _check(capsys, path)
    assert code == 1, lines
    assert lines[0].startswith("error: ")


NAMED = [
    pytest.param(
        [V, _dir(2, 0, "d"), _file(3, 2, "ok"), _file(4, 9, "orphan")],
        ["error: inode 9: missing directory inode (parent of inodes 4)"],
        id="missing-parent",
    ),
    pytest.param(
        [V, _dir(2, 0, "d"), _file(3, 2, "a"), _file(4, 2, "a")],
        ["error: inode 4 (d/a): found entry with duplicate name 'a' in inode 2"],
        id="duplicate-name",
    ),
    pytest.param(
        [V, _file(2, 0, "f"), _file(3, 2, "child")],
        ["error: inode 3 (f/child): parent 2 is not a directory"],
        id="file-as-parent",
    ),
    pytest.param(
        [V, _file(2, 3, "child"), _file(3, 0, "f")],  # rowid order: the child comes first
        [
            "error: inode 3 (f): a file is used as a parent directory",
            "error: inode 3 (f): missing directory inode (parent of inodes 2)",
        ],
        id="file-as-parent-after-child",
    ),
    pytest.param(
        [_dir(2, 0, "d"), _file(3, 2, "f")],
        ["error: inode 0: entries exist but the version row is missing"],
        id="version-row-missing",
    ),
    pytest.param(
        [V, _dir(2, 0, "top"), _dir(3, 5, "a"), _dir(5, 3, "b"), _file(6, 5, "below")],
        ["error: inode 3: directories 3, 5 form a cycle, not reachable from the root"],
        id="cycle",
    ),
    pytest.param(
        [V, Row(2, 0, 2, 0, 1, 6, "sock", None)],
        ["error: inode 2 (sock): inode has unknown type 6"],
        id="unknown-type",
    ),
    pytest.param(
        [Row(0, 0, 5, 0, 1, DT_REG, "root", None)],
        ["error: inode 0: root inode has unexpected name 'root'"],
        id="root-name",
    ),
    pytest.param(
        [V, _file(101, 0, "future")],
        ["error: inode 101 (future): entry is newer than the database version 100"],
        id="newer-than-version",
    ),
]


@pytest.mark.parametrize(("rows", "expected"), NAMED)
def test_problem_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, rows: list[Row], expected: list[str]
) -> None:
    path = write_db(tmp_path / "bad.db", rows)
    code, lines = _check(capsys, path)
    assert code == 1
    assert lines[:-1] == expected
    version = "version 100" if V in rows else "no version"
    assert lines[-1] == f"{path}: {len(expected)} error(s), 0 warning(s) ({len(rows)} rows, {version})"


def test_all_problems_are_reported_not_only_the_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = [
        V,
        _dir(2, 0, "d"),
        _file(3, 2, "a"),
        _file(4, 2, "a"),
        Row(5, 0, 5, 0, 1, DT_DIR, "full", b"data"),
        _file(6, 0, ""),
        _file(7, 8, "lost"),
    ]
    code, lines = _check(capsys, write_db(tmp_path / "bad.db", rows))
    assert code == 1
    assert lines[:-1] == [
        "error: inode 4 (d/a): found entry with duplicate name 'a' in inode 2",
        "error: inode 5 (full): directory inode contains data",
        "error: inode 6: inode has no name",
        "error: inode 8: missing directory inode (parent of inodes 7)",
    ]


def test_duplicate_vmid_names_both_configs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rows = [
        V,
        _dir(2, 0, "nodes"),
        _dir(3, 2, "n1"),
        _dir(4, 3, "qemu-server"),
        _dir(5, 2, "n2"),
        _dir(6, 5, "lxc"),
        _file(7, 4, "100.conf"),
        _file(8, 6, "100.conf"),
    ]
    code, lines = _check(capsys, write_db(tmp_path / "bad.db", rows))
    assert code == 1
    assert lines[:-1] == [
        "error: nodes/n2/lxc/100.conf: detected duplicate VMID 100 (also nodes/n1/qemu-server/100.conf)"
    ]


def test_corrupt_tree_page(capsys: pytest.CaptureFixture[str], vector: Path) -> None:
    with vector.open("r+b") as handle:  # page 2 is the root page of table tree
        handle.seek(4096)
        handle.write(b"\xff" * 200)
    code, lines = _check(capsys, vector)
    assert code == 1
    assert lines[0] == "error: sqlite: corrupt file: database disk image is malformed"


def test_corrupt_freelist_page(capsys: pytest.CaptureFixture[str], vector: Path) -> None:
    with vector.open("r+b") as handle:  # page 3 is the freelist trunk of the vector
        handle.seek(8192)
        handle.write(b"\xff" * 200)
    code, lines = _check(capsys, vector)
    assert code == 1
    assert lines[0] == "error: sqlite integrity_check: Main freelist: freelist leaf count too big on page 3"
    assert lines[20] == "error: sqlite integrity_check: ... and 61 more line(s)"
    assert lines[-1] == f"{vector}: 21 error(s), 0 warning(s) (31 rows, version 984)"  # the rows still load


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"this is not an sqlite database\n" * 200, "error: file: not an SQLite database (no SQLite header)"),
        (b"", "error: file: is empty: no tree table (not a pmxcfs database)"),
        (VECTOR_DB.read_bytes()[:8192], None),
    ],
    ids=["garbage", "empty", "truncated"],
)
def test_not_a_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, expected: str | None
) -> None:
    path = tmp_path / "config.db"
    path.write_bytes(content)
    code, lines = _check(capsys, path)
    assert code == 1
    if expected is not None:
        assert lines[0] == expected
    else:
        assert lines[0].startswith("error: sqlite")
        assert "malformed" in lines[0] or "integrity_check" in lines[0]


def test_missing_file_and_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, lines = _check(capsys, tmp_path / "nope.db")
    assert (code, lines[0]) == (1, "error: file: does not exist")
    assert not (tmp_path / "nope.db").exists()
    code, lines = _check(capsys, tmp_path)
    assert (code, lines[0]) == (1, "error: file: is a directory, not a database file")
    os.mkfifo(tmp_path / "fifo")  # opening it would block: it must not be opened
    code, lines = _check(capsys, tmp_path / "fifo")
    assert (code, lines[0]) == (1, "error: file: is not a regular file")


def test_sqlite_without_tree_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE other (x)")
    con.commit()
    con.close()
    code, lines = _check(capsys, path)
    assert (code, lines[0]) == (1, "error: schema: no table 'tree' (not a pmxcfs database)")


def test_tree_table_with_wrong_columns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "config.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE tree (inode INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO tree VALUES (0, '__version__')")
    con.commit()
    con.close()
    code, lines = _check(capsys, path)
    assert code == 1
    assert lines[:-1] == [
        "warning: schema: table tree is not declared as the original declares it",
        "error: table tree: select returned error: no such column: t1.parent",
    ]


def test_warnings_alone_exit_zero(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    big = b"x" * (1024 * 1024 + 1)
    path = write_db(tmp_path / "config.db", [V, _file(2, 0, "big", big), _file(3, 0, "a/b")])
    con = sqlite3.connect(path)
    con.execute("CREATE INDEX byname ON tree (name)")
    con.commit()
    con.close()
    code, lines = _check(capsys, path)
    assert code == 0
    assert lines == [
        "warning: schema: extra index 'byname' (the original has only table tree)",
        f"warning: inode 2 (big): file of {len(big)} bytes is over the 1048576-byte limit",
        "warning: inode 3 (a/b): name 'a/b' holds '/' or NUL: no path reaches it",
        f"{path}: 0 error(s), 3 warning(s) (3 rows, version 100)",
    ]


def test_empty_tree_table_is_a_warning(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_db(tmp_path / "config.db", [])
    code, lines = _check(capsys, path)
    assert (code, lines) == (
        0,
        [
            "warning: table tree: no rows: an empty database (the daemon starts it fresh)",
            f"{path}: 0 error(s), 1 warning(s) (0 rows, no version)",
        ],
    )
