"""Helpers and fixtures of the actor tests: options for a tmp DB, a timed ask, a recording
stand-in, raw rows; started actors, an fs actor driven on the test thread.

The fixtures reach every test through ``pytest_plugins`` in tests/conftest.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

import main
from actors.db_actor import DbActor
from actors.fs_actor import FsActor
from actors.messages import ActivateTree, LoadTree, OpenStore, PrepareStore, Request, ServiceStateChanged, ask
from daemon.options import Options

TIMEOUT = 10.0
"""Every ask in these tests waits at most this long."""

NOW = 1_700_000_000
"""The fixed wall clock of the fs actors built without start()."""


def make_options(db: Path, *, local: bool = False, nodename: str = "node1") -> Options:
    base = db.parent
    return Options(
        foreground=True,
        debug=False,
        local=local,
        mount=str(base / "mnt"),
        db=str(db),
        rundir=str(base / "run"),
        nodename=nodename,
        pidfile=str(base / "pmxcfs.pid"),
        lock_wait=1.0,
        # never the real /etc/corosync/corosync.conf: cluster mode keeps the host file in step
        corosync_conf=str(base / "host-corosync.conf"),
    )


def q(ref: pykka.ActorRef[Any], message: Request[Any]) -> Any:
    """Ask with the test timeout."""
    return ask(ref, message, timeout=TIMEOUT)


class Recorder:
    """Stands in for the status actor: records what is told to it.

    ``services`` keeps the last ServiceStateChanged per corosync service (what .health shows),
    also across ``clear``.
    """

    def __init__(self) -> None:
        self.told: list[object] = []
        self.services: dict[str, bool] = {}

    def tell(self, message: object) -> None:
        self.told.append(message)
        if isinstance(message, ServiceStateChanged):
            self.services[message.name] = message.connected

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.told if isinstance(m, kind)]

    def clear(self) -> None:
        self.told.clear()


def raw_rows(path: Path) -> dict[int, tuple]:
    """inode -> (parent, version, writer, mtime, type, name, data), through a separate connection."""
    con = sqlite3.connect(path)
    try:
        return {
            r[0]: r[1:]
            for r in con.execute("SELECT inode, parent, version, writer, mtime, type, name, data FROM tree")
        }
    finally:
        con.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "config.db"


@pytest.fixture
def start_daemon(db_path: Path) -> Iterator[Callable[..., main.Actors]]:
    """Start the actors the way main does (start_actors + load_tree); stopped after the test."""
    started: list[main.Actors] = []

    def start(*, local: bool = False) -> main.Actors:
        opts = make_options(db_path, local=local)
        actors = main.start_actors(opts)
        started.append(actors)
        main.load_tree(actors, opts)
        return actors

    yield start
    for actors in started:
        if actors.fs.is_alive() or actors.db.is_alive():
            actors.stop()


@pytest.fixture
def daemon(start_daemon: Callable[..., main.Actors]) -> main.Actors:
    """Actors on a fresh tmp DB, in local mode (quorate)."""
    return start_daemon()


@pytest.fixture
def db_ref(db_path: Path) -> pykka.ActorRef[Any]:
    """A started DbActor whose store is opened and prepared."""
    ref = DbActor.start(str(db_path))
    q(ref, OpenStore())
    q(ref, PrepareStore())
    return ref


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def fs(db_ref: pykka.ActorRef[Any], recorder: Recorder, db_path: Path) -> FsActor:
    """An FsActor built without start(): handlers are called directly on the test thread."""
    actor = FsActor(db_ref, recorder, quorate=True, wallclock=lambda: float(NOW))  # type: ignore[arg-type]
    actor.on_receive(LoadTree(rows=()))
    actor.on_receive(ActivateTree())
    recorder.clear()
    return actor
