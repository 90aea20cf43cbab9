"""DbActor: start -> ask -> assert -> stop, on a tmp config.db."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from actors.db_actor import DbActor
from actors.messages import OpenStore, Persist, PrepareStore
from errors import StorageError
from memdb.records import DT_DIR, DT_REG, Row, StoreChange
from tests.fakes.actors import q, raw_rows


def test_open_prepare_persist_round_trip(db_path: Path) -> None:
    ref = DbActor.start(str(db_path))
    assert q(ref, OpenStore()) == ()
    assert q(ref, PrepareStore()) is None
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600
    change = StoreChange(version=2, writer=0, mtime=10, upsert=Row(2, 0, 2, 0, 10, DT_DIR, "d", None))
    assert q(ref, Persist(change=change)) is None
    # committed: another connection sees it while the actor still runs
    assert raw_rows(db_path) == {
        0: (0, 2, 0, 10, 8, "__version__", None),
        2: (0, 2, 0, 10, 4, "d", None),
    }
    ref.stop(block=True, timeout=10)
    assert not os.path.exists(f"{db_path}-wal")

    again = DbActor.start(str(db_path))
    rows = q(again, OpenStore())
    assert sorted(rows, key=lambda r: r.inode) == [
        Row(0, 0, 2, 0, 10, DT_REG, "__version__", None),
        Row(2, 0, 2, 0, 10, DT_DIR, "d", None),
    ]
    again.stop(block=True, timeout=10)


def test_storage_errors_re_raise_in_the_asker(tmp_path: Path) -> None:
    bad = tmp_path / "config.db"
    bad.write_bytes(b"garbage" * 100)
    ref = DbActor.start(str(bad))
    with pytest.raises(StorageError) as info:
        q(ref, OpenStore())
    assert info.value.what == str(bad)
    assert ref.is_alive()  # an answered error does not kill the actor
    ref.stop(block=True, timeout=10)
    assert bad.read_bytes() == b"garbage" * 100


def test_persist_failure_re_raises_storage_error(db_path: Path) -> None:
    ref = DbActor.start(str(db_path))
    q(ref, OpenStore())
    q(ref, PrepareStore())
    con = sqlite3.connect(db_path)
    con.execute("DROP TABLE tree")
    con.commit()
    con.close()
    with pytest.raises(StorageError, match="no such table"):
        q(ref, Persist(change=StoreChange(version=1, writer=0, mtime=1)))


def test_handlers_without_start(db_path: Path) -> None:
    actor = DbActor(str(db_path))
    assert actor.on_receive(OpenStore()) == ()
    assert actor.on_receive(PrepareStore()) is None
    actor.on_receive(Persist(change=StoreChange(version=1, writer=0, mtime=5)))
    assert raw_rows(db_path) == {0: (0, 1, 0, 5, 8, "__version__", None)}
    actor.on_stop()
    assert not os.path.exists(f"{db_path}-wal")
