"""Fixtures for the memdb tests."""

from __future__ import annotations

import pytest

from memdb.tree import MemDb
from tests.fakes.clock import Clock
from tests.memdb.helpers import fresh


@pytest.fixture
def clock() -> Clock:
    return Clock(1000.0)


@pytest.fixture
def db(clock: Clock) -> MemDb:
    """A fresh tree at version 1 (the first entry gets inode 2)."""
    return fresh(clock)


@pytest.fixture
def populated(clock: Clock) -> MemDb:
    """A tree with files, dirs, guest configs and a lock.

    d/            dir with d/sub/x
    e/            empty dir
    f             file "hello"
    nodes/n1/qemu-server/100.conf   (VM 100 on n1, qemu)
    nodes/n1/lxc/, nodes/n2/qemu-server/
    priv/lock/l1  lock dir (writer 0, mtime 1000)
    """
    db = fresh(clock)
    for d in ("d", "d/sub", "e", "nodes", "nodes/n1", "nodes/n1/qemu-server", "nodes/n1/lxc"):
        db.mkdir(d, 0, 500)
    for d in ("nodes/n2", "nodes/n2/qemu-server", "priv", "priv/lock"):
        db.mkdir(d, 0, 500)
    db.create("d/sub/x", 0, 500)
    db.create("f", 0, 500)
    db.write("f", 0, 500, b"hello", 0)
    db.create("nodes/n1/qemu-server/100.conf", 0, 500)
    db.write("nodes/n1/qemu-server/100.conf", 0, 500, b"memory: 512\n", 0)
    db.mkdir("priv/lock/l1", 0, 1000)
    return db
