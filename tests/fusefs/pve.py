"""The PveOperations under test on started actors (Pve), the FileInfo fusepy passes, errno checks.

The fixtures that start them are in tests/fusefs/conftest.py.
"""

from __future__ import annotations

import grp
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import main
from actors.messages import CommitPending, GetIndex, Lookup, QuorumChanged, Request, ask
from fusefs.libfuse import FuseOSError
from fusefs.operations import PveOperations
from memdb.loader import load_memdb, normalise_row

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
