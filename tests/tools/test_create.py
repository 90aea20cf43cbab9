"""create-db: as create_pmxcfs_db (top-level regular files, writer 0, mtime = start time)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from daemon.process import LOCKFILE_NAME
from memdb.loader import load_memdb
from memdb.records import DT_REG
from tests.fakes.clock import Clock
from tests.tools.helpers import run, sha256, side_files
from tools.create import create_db
from tools.dbfile import read_rows
from tools.progress import Progress

START = 1_750_000_000


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """Regular files (a dot file too), plus what the original skips: a folder and a symlink."""
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "user.cfg").write_bytes(b"user:root@pam:1:0::::::\n")
    (folder / "datacenter.cfg").write_bytes(b"keyboard: en-us\n")
    (folder / ".hidden").write_bytes(b"")
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.cfg").write_bytes(b"not taken")
    (folder / "link.cfg").symlink_to(folder / "user.cfg")
    return folder


def _create(src: Path, db: Path) -> None:
    create_db(str(src), str(db), Progress(enabled=False), clock=Clock(START + 0.7))


def test_files_become_top_level_files(src: Path, tmp_path: Path) -> None:
    db = tmp_path / "config.db"
    _create(src, db)
    memdb = load_memdb(read_rows(str(db)))
    assert sorted(memdb.readdir("")) == [".hidden", "datacenter.cfg", "user.cfg"]
    assert memdb.read_all("user.cfg") == b"user:root@pam:1:0::::::\n"
    assert memdb.read_all(".hidden") == b""
    # version 1 when fresh, then create + write per file, in name order
    assert (memdb.root.version, memdb.root.writer, memdb.root.mtime) == (7, 0, START)
    attrs = [memdb.getattr(n) for n in (".hidden", "datacenter.cfg", "user.cfg")]
    assert [(a.inode, a.version, a.writer, a.mtime, a.type) for a in attrs if a] == [
        (2, 3, 0, START, DT_REG),
        (4, 5, 0, START, DT_REG),
        (6, 7, 0, START, DT_REG),
    ]
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    assert side_files(db) == []


def test_cli_create_then_check(capsys: pytest.CaptureFixture[str], src: Path, tmp_path: Path) -> None:
    db = tmp_path / "config.db"
    result = run(capsys, "create-db", src, db)
    assert (result.code, result.out, result.err) == (0, f"{db}: added 3 file(s), version 7\n", "")
    assert run(capsys, "check", db).out == f"{db}: OK (4 rows, version 7)\n"


def test_empty_folder_gives_a_fresh_database(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _create(tmp_path / "empty", tmp_path / "config.db")
    rows = read_rows(str(tmp_path / "config.db"))
    assert [(r.inode, r.name, r.version, r.writer, r.mtime) for r in rows] == [
        (0, "__version__", 1, 0, START)
    ]


def test_existing_database_gets_the_files_added(src: Path, tmp_path: Path) -> None:
    db = tmp_path / "config.db"
    other = tmp_path / "more"
    other.mkdir()
    (other / "storage.cfg").write_bytes(b"dir: local\n")
    _create(other, db)
    _create(src, db)
    memdb = load_memdb(read_rows(str(db)))
    assert sorted(memdb.readdir("")) == [".hidden", "datacenter.cfg", "storage.cfg", "user.cfg"]
    assert memdb.root.version == 3 + 6


@pytest.mark.parametrize("argv", [[], ["only-one"], ["a", "b", "c"]])
def test_usage_error_exits_255(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    result = run(capsys, "create-db", *argv)
    assert result.code == 255
    assert result.err.startswith("usage: pmxcfs-tool create-db [-h] [--progress] dir dbfile\n")


def test_missing_folder_exits_255(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = run(capsys, "create-db", tmp_path / "nope", tmp_path / "config.db")
    assert result.code == 255
    assert (
        result.err
        == f"pmxcfs-tool create-db: {tmp_path / 'nope'}: unable to open dir: No such file or directory\n"
    )
    assert not (tmp_path / "config.db").exists()


def test_file_over_1_mib_fails_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], src: Path, tmp_path: Path
) -> None:
    (src / "zz-big").write_bytes(b"x" * (1024 * 1024 + 1))
    result = run(capsys, "create-db", src, tmp_path / "config.db")
    assert result.code == 255
    assert result.err == (
        "pmxcfs-tool create-db: zz-big: memdb_write failed: 1048577 bytes is over the 1048576-byte limit\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_name_taken_fails_and_leaves_the_database(
    capsys: pytest.CaptureFixture[str], src: Path, tmp_path: Path
) -> None:
    db = tmp_path / "config.db"
    _create(src, db)
    before = sha256(db)
    result = run(capsys, "create-db", src, db)
    assert result.code == 255
    assert result.err == "pmxcfs-tool create-db: .hidden: memdb_create failed: file exists\n"
    assert sha256(db) == before


def test_corrupt_existing_database_is_refused(
    capsys: pytest.CaptureFixture[str], src: Path, tmp_path: Path
) -> None:
    db = tmp_path / "config.db"
    db.write_bytes(b"garbage" * 1000)
    result = run(capsys, "create-db", src, db)
    assert result.code == 255
    assert result.err == f"pmxcfs-tool create-db: {db}: file is not a database\n"
    assert db.read_bytes() == b"garbage" * 1000


def test_database_in_use_by_a_daemon_is_refused(
    capsys: pytest.CaptureFixture[str], src: Path, tmp_path: Path
) -> None:
    db = tmp_path / "config.db"
    _create(src, db)
    before = sha256(db)
    with open(tmp_path / LOCKFILE_NAME, "ab") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run(capsys, "create-db", tmp_path / "src", db)
    assert result.code == 255
    assert "another pmxcfs is running on this database" in result.err
    assert sha256(db) == before


def test_special_files_are_skipped_silently(
    capsys: pytest.CaptureFixture[str], src: Path, tmp_path: Path
) -> None:
    os.mkfifo(src / "fifo")  # not a regular file (the original checks d_type)
    (src / "dangling").symlink_to(src / "missing")
    result = run(capsys, "create-db", src, tmp_path / "config.db")
    assert (result.code, result.err) == (0, "")
    assert result.out == f"{tmp_path / 'config.db'}: added 3 file(s), version 7\n"


def test_unreadable_file_is_named_and_skipped(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, src: Path, tmp_path: Path
) -> None:
    real_open = open

    def refusing_open(path, *args, **kwargs):
        if str(path).endswith("user.cfg"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refusing_open)  # root reads any mode: refuse by hand
    result = run(capsys, "create-db", src, tmp_path / "config.db")
    monkeypatch.undo()
    assert result.code == 0
    assert result.err == f"skipping {src / 'user.cfg'}: Permission denied\n"
    assert result.out == f"{tmp_path / 'config.db'}: added 2 file(s), version 5\n"
    assert sorted(load_memdb(read_rows(str(tmp_path / "config.db"))).readdir("")) == [
        ".hidden",
        "datacenter.cfg",
    ]
