"""Helpers for the operator tool tests: a CLI runner, databases built through db/store.py."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from db.store import Store
from memdb.loader import load_memdb
from memdb.records import Row
from memdb.tree import MemDb
from tools.cli import main
from tools.dbfile import read_rows

KIB = 1024


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> Result:
    """Run ``pmxcfs-tool argv`` in this process; a usage error's SystemExit becomes its code."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 255
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def write_db(path: Path, rows: Iterable[Row]) -> Path:
    """A database holding exactly these rows (no checks: broken trees are allowed)."""
    store = Store(str(path))
    try:
        store.open()
        store.prepare()
        store.replace_rows((), tuple(rows))
    finally:
        store.close()
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def side_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name + "-"))


def index_of(path: Path) -> bytes:
    """The memdb index of a database file (what the cluster compares)."""
    return load_memdb(read_rows(str(path))).encode_index()


def sample_tree() -> MemDb:
    """A tree with what an export must keep.

    Several writers and mtimes, priv/ files and a lock, an empty file, a name that is not
    UTF-8, 40 KiB of content (several pages), and f moved into a folder with a higher inode.
    """
    db = load_memdb(())
    db.start_fresh(1_700_000_000)
    for path in ("nodes", "nodes/n1", "nodes/n1/qemu-server", "nodes/n1/priv", "priv", "priv/lock"):
        db.mkdir(path, 0, 1_700_000_100)
    db.create("f", 3, 1_700_000_200)
    db.write("f", 3, 1_700_000_201, b"moved file\n", 0)
    db.mkdir("z", 2, 1_700_000_300)
    db.rename("f", "z/f", 2, 1_700_000_301)
    _file(db, "nodes/n1/qemu-server/100.conf", b"memory: 512\n", writer=1)
    _file(db, "nodes/n1/priv/key.pem", b"-----BEGIN KEY-----\n", writer=1)
    _file(db, "priv/authkey.key", b"secret", writer=2)
    _file(db, "empty", b"", writer=0)
    _file(db, "caf\udce9.cfg", b"latin-1 name\n", writer=0)
    _file(db, "big.bin", bytes(range(256)) * 160, writer=4)
    db.mkdir("priv/lock/backup", 1, 1_700_000_900)
    return db


def _file(db: MemDb, path: str, data: bytes, *, writer: int) -> None:
    mtime = 1_700_000_500 + db.root.version
    db.create(path, writer, mtime)
    if data:
        db.write(path, writer, mtime + 1, data, 0)
