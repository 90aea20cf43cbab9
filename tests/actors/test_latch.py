"""A failed store write latches the tree: changes refused until restart, reads go on (reference 1.7)."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest

import main
from actors.messages import (
    CommitPending,
    CreateFile,
    GetStatFs,
    ListDir,
    Lookup,
    MakeDir,
    ReadFile,
    ReadStatusFile,
    Remove,
    Rename,
    RenderStatusFile,
    SetMtime,
    Truncate,
    WriteFile,
)
from errors import ErrorLatched
from tests.fakes.actors import q, raw_rows

pytestmark = pytest.mark.allow_error_logs


def break_store(db_path: Path) -> None:
    """Drop the table behind the daemon's back: the next write fails deterministically."""
    con = sqlite3.connect(db_path)
    con.execute("DROP TABLE tree")
    con.commit()
    con.close()


def test_failed_write_latches_and_keeps_the_change_in_memory(
    daemon: main.Actors, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    q(daemon.fs, MakeDir(path="d"))
    q(daemon.fs, CreateFile(path="f"))
    q(daemon.fs, WriteFile(path="f", data=b"before", offset=0))
    version = q(daemon.fs, Lookup(path="")).attr.version
    break_store(db_path)

    assert q(daemon.fs, WriteFile(path="f", data=b"AFTER!", offset=0)) == 6  # committed at close
    with pytest.raises(ErrorLatched):
        q(daemon.fs, CommitPending())  # the close
    assert any(r.levelno >= logging.CRITICAL for r in caplog.records)
    # the in-memory change of the failing operation stays applied
    assert q(daemon.fs, ReadFile(path="f", size=100, offset=0)) == b"AFTER!"
    assert q(daemon.fs, Lookup(path="")).attr.version == version + 1


def test_every_later_change_is_refused(daemon: main.Actors, db_path: Path) -> None:
    q(daemon.fs, MakeDir(path="d"))
    q(daemon.fs, CreateFile(path="f"))
    break_store(db_path)
    with pytest.raises(ErrorLatched):
        q(daemon.fs, MakeDir(path="e"))
    assert q(daemon.fs, Lookup(path="e")).attr is not None
    version = q(daemon.fs, Lookup(path="")).attr.version
    later = [
        MakeDir(path="x"),
        CreateFile(path="y"),
        WriteFile(path="f", data=b"x", offset=0),
        Truncate(path="f", size=0),
        SetMtime(path="f", mtime=1),
        Rename(src="f", dst="g"),
        Remove(path="d"),
        # the latch is checked first: these would otherwise fail differently
        MakeDir(path="d"),
        Remove(path="missing"),
    ]
    for change in later:
        with pytest.raises(ErrorLatched):
            q(daemon.fs, change)
    # nothing moved after the latch
    assert q(daemon.fs, Lookup(path="")).attr.version == version
    assert q(daemon.fs, Lookup(path="x")).attr is None
    assert q(daemon.fs, Lookup(path="g")).attr is None


def test_reads_keep_working_when_latched(daemon: main.Actors, db_path: Path) -> None:
    q(daemon.fs, MakeDir(path="d"))
    q(daemon.fs, CreateFile(path="d/f"))
    q(daemon.fs, WriteFile(path="d/f", data=b"content", offset=0))
    break_store(db_path)
    with pytest.raises(ErrorLatched):
        q(daemon.fs, MakeDir(path="e"))
    assert q(daemon.fs, ReadFile(path="d/f", size=100, offset=0)) == b"content"
    assert sorted(q(daemon.fs, ListDir(path=""))) == ["d", "e"]
    assert q(daemon.fs, Lookup(path="d/f")).attr.size == 7
    # the latch is no quorum loss: the modes stay writable
    assert q(daemon.fs, Lookup(path="d/f")).writable is True
    assert q(daemon.fs, GetStatFs()).files > 0
    size = q(daemon.status, RenderStatusFile(name=".version"))
    assert json.loads(q(daemon.status, ReadStatusFile(name=".version", size=size, offset=0)))


def test_a_dead_db_actor_latches_too(daemon: main.Actors, db_path: Path) -> None:
    q(daemon.fs, MakeDir(path="d"))
    daemon.db.stop(block=True, timeout=10)
    with pytest.raises(ErrorLatched):
        q(daemon.fs, MakeDir(path="e"))
    with pytest.raises(ErrorLatched):
        q(daemon.fs, MakeDir(path="f"))
    assert q(daemon.fs, Lookup(path="e")).attr is not None
    assert 2 in raw_rows(db_path)


def test_tracked_counter_is_bumped_even_when_the_commit_fails(daemon: main.Actors, db_path: Path) -> None:
    q(daemon.fs, CreateFile(path="storage.cfg"))
    size = q(daemon.status, RenderStatusFile(name=".version"))
    before = json.loads(q(daemon.status, ReadStatusFile(name=".version", size=size, offset=0)))
    break_store(db_path)
    with pytest.raises(ErrorLatched):
        q(daemon.fs, Truncate(path="storage.cfg", size=1))
    size = q(daemon.status, RenderStatusFile(name=".version"))
    after = json.loads(q(daemon.status, ReadStatusFile(name=".version", size=size, offset=0)))
    assert after["storage.cfg"] == before["storage.cfg"] + 1
