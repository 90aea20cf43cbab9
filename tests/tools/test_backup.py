"""backup: a consistent copy, also while another connection commits through db/store.py."""

from __future__ import annotations

import queue
import shutil
import stat
import threading
from pathlib import Path

import pytest

from db.store import Store
from memdb.loader import load_memdb
from memdb.records import DT_REG, Row, StoreChange
from tests.db.vectors import VECTOR_DB
from tests.memdb.helpers import rows_of
from tests.tools.helpers import index_of, run, sample_tree, sha256, side_files, write_db
from tools.backup import backup_database
from tools.dbfile import read_rows

FILES = 20
"""Files the live writer rotates through, 3 KiB each (the database spans many pages)."""
BASE_INODE = 100


def _content(k: int) -> bytes:
    return f"commit {k}\n".encode() * 300


def _live_db(tmp_path: Path) -> tuple[Path, int]:
    """The sample tree plus FILES files; returns the path and its version."""
    tree = sample_tree()
    for j in range(FILES):
        tree.create(f"rot{j:02}", 0, 1)
        tree.write(f"rot{j:02}", 0, 1, _content(0), 0)
    return write_db(tmp_path / "config.db", rows_of(tree)), tree.root.version


class Writer(threading.Thread):
    """Another connection to the database (as the daemon's): commits when told to."""

    def __init__(self, path: Path, base: int) -> None:
        super().__init__(daemon=True)
        self.path, self.base = path, base
        self.requests: queue.Queue[int | None] = queue.Queue()
        self.done: queue.Queue[int | Exception] = queue.Queue()
        self.inodes: dict[int, int] = {}

    def run(self) -> None:
        store = Store(str(self.path))
        try:
            rows = store.open()
            store.prepare()
            self.inodes = {int(r.name[3:]): r.inode for r in rows if r.name.startswith("rot")}
            self.done.put(0)
            while (k := self.requests.get()) is not None:
                store.apply(self.change(k))
                self.done.put(k)
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            self.done.put(exc)
        finally:
            store.close()

    def change(self, k: int) -> StoreChange:
        """Commit k: the global version goes to base+k and file rot<k % FILES> says so."""
        version = self.base + k
        j = k % FILES
        row = Row(self.inodes[j], 0, version, 7, k, DT_REG, f"rot{j:02}", _content(k))
        return StoreChange(version=version, writer=7, mtime=k, upsert=row)

    def commit(self, k: int) -> None:
        self.requests.put(k)
        self.wait_for(k)

    def wait_for(self, k: int) -> None:
        got = self.done.get(timeout=10)
        if isinstance(got, Exception):
            raise got
        assert got == k


class CommitEachStep:
    """A progress display that lets the writer commit once between two backup steps."""

    def __init__(self, writer: Writer, first: int) -> None:
        self.writer, self.next, self.steps = writer, first, 0

    def start(self, label: str, total: int | None = None, unit: str = "") -> None:
        pass

    def update(self, done: int, total: int | None = None) -> None:
        self.steps += 1
        assert self.steps < 200, "the backup keeps restarting: it does not hold one snapshot"
        self.writer.commit(self.next)
        self.next += 1

    def advance(self, step: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


def test_backup_during_commits_is_the_state_at_its_start(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db, base = _live_db(tmp_path)
    writer = Writer(db, base)
    writer.start()
    writer.wait_for(0)
    try:
        for k in (1, 2, 3):  # committed before the backup starts: in the WAL, not yet in the file
            writer.commit(k)
        progress = CommitEachStep(writer, 4)
        result = backup_database(str(db), str(tmp_path / "copy.db"), progress, pages_per_step=2)
    finally:
        writer.requests.put(None)
        writer.join(timeout=10)
    assert progress.steps >= 10, "the backup should take many steps, with a commit between each"
    assert result.version == base + 3  # not base + 4 or later: one snapshot, taken at the start
    copy = load_memdb(read_rows(str(tmp_path / "copy.db")))
    for j in range(FILES):
        expected = max((k for k in (1, 2, 3) if k % FILES == j), default=0)
        assert copy.read_all(f"rot{j:02}") == _content(expected), j
    live = load_memdb(read_rows(str(db)))
    assert live.root.version == base + progress.next - 1  # the writer did go on meanwhile
    assert stat.S_IMODE((tmp_path / "copy.db").stat().st_mode) == 0o600
    assert side_files(tmp_path / "copy.db") == []
    assert (
        run(capsys, "check", tmp_path / "copy.db").out
        == f"{tmp_path / 'copy.db'}: OK (36 rows, version {base + 3})\n"
    )


def test_backup_of_a_closed_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "config.db"
    shutil.copyfile(VECTOR_DB, db)
    before = sha256(db)
    result = run(capsys, "backup", "--progress", db, tmp_path / "copy.db")
    assert result.code == 0
    assert result.out == f"{tmp_path / 'copy.db'}: 82 pages, 31 entries, version 984\n"
    assert result.err.splitlines()[-1] == "backup: 82/82 pages"
    assert sha256(db) == before
    assert side_files(db) == []
    assert index_of(tmp_path / "copy.db") == index_of(db)
    assert sorted(read_rows(str(tmp_path / "copy.db")), key=lambda r: r.inode) == sorted(
        read_rows(str(db)), key=lambda r: r.inode
    )


def test_backup_refuses_an_existing_destination(capsys: pytest.CaptureFixture[str], sample_db: Path) -> None:
    dest = sample_db.parent / "copy.db"
    dest.write_bytes(b"keep")
    result = run(capsys, "backup", sample_db, dest)
    assert result.code == 255
    assert result.err == f"pmxcfs-tool backup: {dest}: exists already; give a new path\n"
    assert dest.read_bytes() == b"keep"


def test_backup_refuses_a_broken_source_and_leaves_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = write_db(tmp_path / "bad.db", [Row(2, 9, 2, 0, 1, DT_REG, "orphan", b"x")])
    result = run(capsys, "backup", db, tmp_path / "copy.db")
    assert result.code == 255
    assert result.err == "pmxcfs-tool backup: 9: missing directory inode (parent of inodes 2)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.db"]
