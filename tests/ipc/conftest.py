"""Fixtures for the IPC tests: a real fs actor on a tmp DB, a scripted status actor, a served name.

The classes and the content behind them are in tests/ipc/backends.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.db_actor import DbActor
from actors.fs_actor import FsActor
from actors.messages import ActivateTree, LoadTree, OpenStore, PrepareStore, ask
from ipc.server import IpcServer
from memdb.snapshot import Published, empty_snapshot
from tests.ipc.backends import TIMEOUT, FakeStatus, Status, Tree, fill, no_texts


@pytest.fixture
def status() -> Status:
    received: list[object] = []
    answers: dict[type, object] = {}
    return Status(FakeStatus.start(received, answers), received, answers)


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """A started fs actor (local mode, no status actor) on a fresh tmp database."""
    db = DbActor.start(str(tmp_path / "config.db"))
    published = Published(empty_snapshot(writable=True))
    fs = FsActor.start(db, None, quorate=True, tree=published)
    rows = ask(db, OpenStore(), timeout=TIMEOUT)
    ask(fs, LoadTree(rows=rows), timeout=TIMEOUT)
    ask(db, PrepareStore(), timeout=TIMEOUT)
    ask(fs, ActivateTree(), timeout=TIMEOUT)
    return Tree(fs, published)


@pytest.fixture
def service_name() -> str:
    """A name no other test or daemon serves (abstract sockets are per network namespace)."""
    return f"pve2-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def server(tree: Tree, status: Status, service_name: str) -> Iterator[IpcServer]:
    """An IPC server in this process on the tree and the scripted status actor."""
    fill(tree)
    srv = IpcServer(tree.published, status.ref, no_texts(), www_gid=33, name=service_name, timeout=TIMEOUT)
    srv.start()
    yield srv
    srv.stop()
