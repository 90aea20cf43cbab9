"""Started actors, wired as main does: start -> ask -> assert -> stop, restarts on the same DB."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import main
from actors.messages import (
    CreateFile,
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
from errors import AlreadyExists, DirectoryNotEmpty, FileTooLarge, NotADirectory, NotFound, NotQuorate
from tests.fakes.actors import q, raw_rows
from tests.vectors import VECTORS

VECTOR_DB = VECTORS / "config.db"


def status_text(actors: main.Actors, name: str) -> str:
    size = q(actors.status, RenderStatusFile(name=name))
    data = q(actors.status, ReadStatusFile(name=name, size=size + 10, offset=0))
    assert len(data) == size
    return data.decode()


def test_fresh_start_is_version_1_and_writable(daemon: main.Actors, db_path: Path) -> None:
    reply = q(daemon.fs, Lookup(path=""))
    assert reply.writable is True
    assert reply.attr is not None
    assert reply.attr.version == 1
    assert raw_rows(db_path)[0][:5] == (0, 1, 0, reply.attr.mtime, 8)
    assert q(daemon.fs, ListDir(path="")) == ()


def test_changes_answer_and_errors_re_raise_in_the_asker(daemon: main.Actors) -> None:
    made = q(daemon.fs, MakeDir(path="d"))
    assert made == q(daemon.fs, Lookup(path="d")).attr
    created = q(daemon.fs, CreateFile(path="d/f"))
    assert created == q(daemon.fs, Lookup(path="d/f")).attr
    assert q(daemon.fs, WriteFile(path="d/f", data=b"0123456789", offset=0)) == 10
    assert q(daemon.fs, WriteFile(path="d/f", data=b"ab", offset=3)) == 2
    assert q(daemon.fs, ReadFile(path="d/f", size=100, offset=0)) == b"012ab56789"
    assert q(daemon.fs, Truncate(path="d/f", size=4)) == 0
    assert q(daemon.fs, SetMtime(path="d/f", mtime=1700000000)) == 0
    assert q(daemon.fs, Lookup(path="d/f")).attr.mtime == 1700000000
    assert q(daemon.fs, Rename(src="d/f", dst="g")) == 0
    assert q(daemon.fs, ReadFile(path="g", size=100, offset=0)) == b"012a"

    with pytest.raises(NotFound):
        q(daemon.fs, WriteFile(path="missing", data=b"x", offset=0))
    with pytest.raises(AlreadyExists):
        q(daemon.fs, CreateFile(path="g"))
    with pytest.raises(NotADirectory):
        q(daemon.fs, MakeDir(path="g/x"))
    with pytest.raises(FileTooLarge):
        q(daemon.fs, Truncate(path="g", size=(1 << 20) + 1))
    q(daemon.fs, CreateFile(path="d/x"))
    with pytest.raises(DirectoryNotEmpty):
        q(daemon.fs, Remove(path="d"))
    # the actor survives answered errors
    assert daemon.fs.is_alive()
    assert q(daemon.fs, Remove(path="d/x")) == 0


def test_changes_survive_a_restart(start_daemon: Callable[..., main.Actors], db_path: Path) -> None:
    first = start_daemon()
    q(first.fs, MakeDir(path="nodes"))
    q(first.fs, CreateFile(path="storage.cfg"))
    q(first.fs, WriteFile(path="storage.cfg", data=b"dir: local\n", offset=0))
    q(first.fs, CreateFile(path="gone"))
    q(first.fs, Remove(path="gone"))
    q(first.fs, CreateFile(path="a"))
    q(first.fs, Rename(src="a", dst="nodes/b"))
    before = {p: q(first.fs, Lookup(path=p)).attr for p in ("", "nodes", "storage.cfg", "nodes/b")}
    first.stop()

    second = start_daemon()
    after = {p: q(second.fs, Lookup(path=p)).attr for p in ("", "nodes", "storage.cfg", "nodes/b")}
    assert after == before
    assert before[""].version == 8
    assert q(second.fs, Lookup(path="gone")).attr is None
    assert q(second.fs, ReadFile(path="storage.cfg", size=100, offset=0)) == b"dir: local\n"
    # numbering goes on from the stored version: the next entry's inode is version + 1
    made = q(second.fs, MakeDir(path="next"))
    assert made.inode == made.version == 9
    # a fresh process: every tracked counter reads 1 after the load
    version = json.loads(status_text(second, ".version"))
    assert version["storage.cfg"] == 1
    assert version["user.cfg"] == 1


def test_tracked_counters_follow_changes(daemon: main.Actors) -> None:
    def counters() -> dict[str, int]:
        return json.loads(status_text(daemon, ".version"))

    assert counters()["storage.cfg"] == 1  # the startup load bumps all
    q(daemon.fs, CreateFile(path="storage.cfg"))  # +1
    q(daemon.fs, WriteFile(path="storage.cfg", data=b"x", offset=0))  # +1
    q(daemon.fs, Truncate(path="storage.cfg", size=0))  # +1
    q(daemon.fs, SetMtime(path="storage.cfg", mtime=5))  # +1
    q(daemon.fs, Rename(src="storage.cfg", dst="user.cfg"))  # +1 each
    q(daemon.fs, MakeDir(path="ha"))  # mkdir never counts
    q(daemon.fs, MakeDir(path="ha/fence.cfg"))
    q(daemon.fs, Remove(path="user.cfg"))  # +1
    c = counters()
    assert c["storage.cfg"] == 6
    assert c["user.cfg"] == 3
    assert c["ha/fence.cfg"] == 1
    assert c["datacenter.cfg"] == 1


def test_vmlist_follows_guest_configs(daemon: main.Actors) -> None:
    assert status_text(daemon, ".vmlist") == '{\n"version": 0\n\n}\n'
    for d in ("nodes", "nodes/node1", "nodes/node1/qemu-server"):
        q(daemon.fs, MakeDir(path=d))
    q(daemon.fs, CreateFile(path="nodes/node1/qemu-server/100.conf"))
    vmlist = json.loads(status_text(daemon, ".vmlist"))
    assert vmlist["ids"] == {
        "100": {"node": "node1", "type": "qemu", "version": vmlist["ids"]["100"]["version"]}
    }
    assert json.loads(status_text(daemon, ".version"))["vmlist"] == vmlist["version"]
    q(daemon.fs, Remove(path="nodes/node1/qemu-server/100.conf"))
    after = json.loads(status_text(daemon, ".vmlist"))
    assert "ids" not in after
    assert after["version"] > vmlist["version"]


def test_the_vector_db_in_local_mode(start_daemon: Callable[..., main.Actors], db_path: Path) -> None:
    shutil.copyfile(VECTOR_DB, db_path)
    actors = start_daemon(local=True)
    reply = q(actors.fs, Lookup(path="nodes/node1/qemu-server/100.conf"))
    assert reply.writable is True
    assert reply.attr is not None
    assert reply.attr.size == 34
    vmlist = json.loads(status_text(actors, ".vmlist"))
    assert {k: (v["node"], v["type"]) for k, v in vmlist["ids"].items()} == {
        "100": ("node1", "qemu"),
        "102": ("node1", "qemu"),
        "101": ("node2", "lxc"),
        "200": ("node2", "qemu"),
        "201": ("node2", "qemu"),
        "300": ("node3", "qemu"),
    }
    # the startup rebuild bumps the list version once and numbers each guest from one counter
    assert vmlist["version"] == 1
    assert sorted(v["version"] for v in vmlist["ids"].values()) == [1, 2, 3, 4, 5, 6]
    # local mode writes continue the C file's numbering
    made = q(actors.fs, MakeDir(path="new"))
    assert made.inode == 985


def test_a_db_with_corosync_conf_is_read_only_without_local(
    start_daemon: Callable[..., main.Actors], db_path: Path
) -> None:
    shutil.copyfile(VECTOR_DB, db_path)
    actors = start_daemon(local=False)
    assert q(actors.fs, Lookup(path="")).writable is False
    with pytest.raises(NotQuorate):
        q(actors.fs, MakeDir(path="x"))
    # reads work
    assert q(actors.fs, ReadFile(path="datacenter.cfg", size=100, offset=0)) == b"keyboard: en-us\n"


def test_creating_corosync_conf_later_does_not_change_the_mode(daemon: main.Actors) -> None:
    q(daemon.fs, CreateFile(path="corosync.conf"))
    assert q(daemon.fs, Lookup(path="")).writable is True
    assert q(daemon.fs, MakeDir(path="still-writable")) is not None


def test_stop_closes_the_database(daemon: main.Actors, db_path: Path) -> None:
    q(daemon.fs, MakeDir(path="d"))
    daemon.stop()
    assert not daemon.db.is_alive()
    assert not Path(f"{db_path}-wal").exists()
    assert 2 in raw_rows(db_path)
