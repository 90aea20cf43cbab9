"""PveOperations on real started actors and a tmp config.db, called directly (no mount).

After each test that expects no store failure, the tree in RAM is checked against what the
database holds (the s3ql habit of ending every test with fsck). Pve and the other helpers the
tests import are in tests/fusefs/pve.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import main
from actors.db_actor import DbActor
from actors.fs_actor import FsActor
from actors.status_actor import StatusActor
from daemon.options import Options
from fusefs.operations import PveOperations
from memdb.snapshot import Published, empty_snapshot
from status.published import EMPTY_STATUS, StatusFiles
from tests.fusefs.pve import NODENAME, TIMEOUT, WWW_GID, Pve, db_matches_tree
from tests.vectors import VECTORS


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
