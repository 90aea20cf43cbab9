"""PveOperations on real started actors and a tmp config.db, called directly (no mount).

After each test that expects no store failure, the tree in RAM is checked against what the
database holds (the s3ql habit of ending every test with fsck).
"""

from __future__ import annotations

import grp
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import main
from actors.db_actor import DbActor
from actors.fs_actor import FsActor
from actors.messages import CommitPending, GetIndex, Lookup, QuorumChanged, Request, ask
from actors.status_actor import StatusActor
from daemon.options import Options
from fusefs.libfuse import FuseOSError
from fusefs.operations import PveOperations
from memdb.loader import load_memdb, normalise_row
from memdb.snapshot import Published, empty_snapshot
from status.published import EMPTY_STATUS, StatusFiles
from tests.expected import LINK_NAMES, PLUGIN_NAMES, STATUS_NAMES  # noqa: F401 - re-exported
from tests.vectors import VECTORS

WWW_GID = grp.getgrnam("www-data").gr_gid
NODENAME = "node1"
TIMEOUT = 10.0


class FileInfo:
    """What fusepy hands open/create/flush with raw_fi: the open flags, the cache flags, fh."""

    def __init__(self, flags: int = os.O_RDONLY) -> None:
        self.flags = flags
        self.direct_io = 0
        self.keep_cache = 1
        self.fh = 0


@dataclass
class Pve:
    """Started actors, the operations on top, and the DB file."""

    actors: main.Actors
    ops: PveOperations
    db_path: Path

    def ask(self, message: Request[Any]) -> Any:
        return ask(self.actors.fs, message, timeout=TIMEOUT)

    def set_quorate(self, quorate: bool) -> None:
        """Tell the fs actor and wait for it to have handled the event (an ask queues behind it)."""
        self.actors.fs.tell(QuorumChanged(quorate=quorate))
        assert self.ask(Lookup(path="")).writable is quorate

    def create(self, path: str) -> None:
        """create as libfuse runs it: the op, then a getattr of the new entry."""
        self.ops.create(path, 0o644, FileInfo())
        self.ops.getattr(path)

    def mkdir(self, path: str) -> None:
        self.ops.mkdir(path, 0o755)
        self.ops.getattr(path)

    def write_file(self, path: str, data: bytes) -> None:
        self.create(path)
        assert self.ops.write(path, data, 0, FileInfo()) == len(data)


def errno_of(call: Callable[..., Any], *args: Any) -> int:
    with pytest.raises(FuseOSError) as info:
        call(*args)
    return info.value.errno


def db_matches_tree(pve: Pve) -> None:
    """The rows in the file load into exactly the tree the fs actor holds, once every handle is
    closed (the tests call write without the kernel's flush at close: commit the deferred rows)."""
    pve.ask(CommitPending())
    con = sqlite3.connect(pve.db_path)
    try:
        rows = [
            normalise_row(*r)
            for r in con.execute("SELECT inode, parent, version, writer, mtime, type, name, data FROM tree")
        ]
    finally:
        con.close()
    assert load_memdb(rows).encode_index() == pve.ask(GetIndex())


def _options(db_path: Path, *, local: bool) -> Options:
    return Options(
        foreground=True,
        debug=False,
        local=local,
        mount=str(db_path.parent / "mnt"),
        db=str(db_path),
        rundir=str(db_path.parent / "run"),
        nodename=NODENAME,
        pidfile=str(db_path.parent / "pid"),
        lock_wait=1.0,
    )


@pytest.fixture
def start_pve(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Pve]]:
    """Start db, status and fs actors as main does and load the DB; checked and stopped after."""
    started: list[Pve] = []

    def start(*, vector: bool = False, local: bool = True) -> Pve:
        db_path = tmp_path / f"config{len(started)}.db"
        if vector:
            shutil.copyfile(VECTORS / "config.db", db_path)
        db = DbActor.start(str(db_path))
        # no set_debug: a .debug write must not change the test process's logging
        published = Published(EMPTY_STATUS)
        status = StatusActor.start(NODENAME, published=published)
        tree = Published(empty_snapshot())
        fs = FsActor.start(db, status, quorate=False, tree=tree)
        actors = main.Actors(
            db=db,
            status=status,
            fs=fs,
            tree=tree,
            published=published,
            status_files=StatusFiles(tree, published),
        )
        main.load_tree(actors, _options(db_path, local=local))
        ops = PveOperations(
            fs, status, tree, actors.status_files, nodename=NODENAME, www_gid=WWW_GID, timeout=TIMEOUT
        )
        pve = Pve(actors, ops, db_path)
        started.append(pve)
        return pve

    yield start
    check = not request.node.get_closest_marker("allow_error_logs")
    for pve in started:
        if check and pve.actors.fs.is_alive():
            db_matches_tree(pve)
        pve.actors.stop()


@pytest.fixture
def pve(start_pve: Callable[..., Pve]) -> Pve:
    """A fresh DB in local mode (quorate)."""
    return start_pve()
