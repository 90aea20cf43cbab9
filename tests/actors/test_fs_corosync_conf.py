"""The fs actor keeps the host's corosync.conf in step (local.md 5.4): after delivered changes
of corosync.conf (reload only for this node's own) and after a sync commit (no reload)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.db_actor import DbActor
from actors.fs_actor import FsActor
from actors.messages import (
    ActivateTree,
    ApplyDelivered,
    BuildUpdates,
    CommitSync,
    GetIndex,
    LoadTree,
    OpenStore,
    PrepareStore,
)
from daemon.corosync_conf import HostCorosyncConf
from dcdb.apply import Delivered
from errors import NotFound
from replication.outcome import ChangeOutcome
from tests.fakes.actors import NOW, Recorder, q
from wire.dcdb import DcdbMessageType, FuseMessage, decode_index

T = 1_800_000_000
TIMEOUT_S = 10.0


def conf(version: int) -> bytes:
    return f"totem {{\n  cluster_name: lab\n  config_version: {version}\n}}\n".encode()


class Runs:
    """Stands in for corosync-cfgtool -R."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.called = threading.Event()

    def __call__(self, command: Sequence[str]) -> int:
        self.calls.append(tuple(command))
        self.called.set()
        return 0


@pytest.fixture
def runs() -> Runs:
    return Runs()


@pytest.fixture
def host(tmp_path: Path, runs: Runs) -> HostCorosyncConf:
    return HostCorosyncConf(str(tmp_path / "etc-corosync.conf"), reload_delay=0.0, run=runs)


def build(db: pykka.ActorRef[Any], host: HostCorosyncConf | None) -> FsActor:
    """An fs actor built without start(), on a fresh tree."""
    actor = FsActor(db, Recorder(), quorate=True, wallclock=lambda: float(NOW), host_conf=host)  # type: ignore[arg-type]
    actor.on_receive(LoadTree(rows=()))
    actor.on_receive(ActivateTree())
    return actor


@pytest.fixture
def fs(db_ref: pykka.ActorRef[Any], host: HostCorosyncConf) -> Iterator[FsActor]:
    actor = build(db_ref, host)
    yield actor
    actor.on_stop()


def deliver(fs: FsActor, subtype: DcdbMessageType, path: str, *, local: bool = False, **kw: Any) -> object:
    message = FuseMessage(path=path, **kw)
    delivered = Delivered(subtype=subtype, message=message, sender=2, time=T, local=local)
    writer: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
    outcome = ChangeOutcome()
    outcome.done(writer)
    fs.on_receive(ApplyDelivered(delivered=delivered, outcome=outcome))
    return writer.get(timeout=0)  # the tree's result, or its error raised here


def write_conf(fs: FsActor, path: str, data: bytes, *, local: bool = False) -> None:
    deliver(fs, DcdbMessageType.CREATE, path, local=local)
    deliver(fs, DcdbMessageType.WRITE, path, local=local, data=data)


def test_a_change_from_this_node_is_written_and_reloaded(
    fs: FsActor, host: HostCorosyncConf, runs: Runs
) -> None:
    Path(host.path).write_bytes(conf(1))
    write_conf(fs, "corosync.conf", conf(2), local=True)
    assert Path(host.path).read_bytes() == conf(2)
    assert Path(host.backup_path).read_bytes() == conf(1)
    assert runs.called.wait(TIMEOUT_S)
    assert runs.calls == [("corosync-cfgtool", "-R")]


def no_reloads(host: HostCorosyncConf, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record reloads scheduled from now on, instead of scheduling them."""
    scheduled: list[int] = []
    monkeypatch.setattr(host, "schedule_reload", lambda: scheduled.append(1))
    return scheduled


def test_a_change_from_another_node_is_written_without_reload(
    fs: FsActor, host: HostCorosyncConf, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduled = no_reloads(host, monkeypatch)
    Path(host.path).write_bytes(conf(1))
    write_conf(fs, "corosync.conf", conf(2), local=False)
    assert Path(host.path).read_bytes() == conf(2)
    assert scheduled == []
    write_conf(fs, "other", b"x", local=True)
    deliver(fs, DcdbMessageType.WRITE, "corosync.conf", local=True, data=conf(3))
    assert scheduled == [1]  # the same change sent by this node reloads


def test_a_rename_onto_corosync_conf_counts(fs: FsActor, host: HostCorosyncConf) -> None:
    Path(host.path).write_bytes(conf(1))
    write_conf(fs, "corosync.conf.new", conf(5))
    assert Path(host.path).read_bytes() == conf(1)  # another file of the tree: nothing
    deliver(fs, DcdbMessageType.RENAME, "corosync.conf.new", to="corosync.conf")
    assert Path(host.path).read_bytes() == conf(5)


def test_a_failed_change_does_not_sync(fs: FsActor, host: HostCorosyncConf) -> None:
    with pytest.raises(NotFound):
        deliver(fs, DcdbMessageType.RENAME, "missing", to="corosync.conf")
    assert not Path(host.path).exists()


def test_without_a_host_file_object_nothing_is_written(db_ref: pykka.ActorRef[Any], tmp_path: Path) -> None:
    actor = build(db_ref, None)
    write_conf(actor, "corosync.conf", conf(2), local=True)
    assert not (tmp_path / "etc-corosync.conf").exists()


def test_a_sync_commit_writes_the_leaders_copy_without_reload(
    fs: FsActor, host: HostCorosyncConf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduled = no_reloads(host, monkeypatch)
    leader_db = DbActor.start(str(tmp_path / "leader.db"))
    q(leader_db, OpenStore())
    q(leader_db, PrepareStore())
    leader = build(leader_db, None)
    write_conf(leader, "corosync.conf", conf(7))
    master = leader.on_receive(GetIndex())
    assert isinstance(master, bytes)
    inodes = tuple(entry.inode for entry in decode_index(master).entries)
    records = leader.on_receive(BuildUpdates(inodes=inodes))
    Path(host.path).write_bytes(conf(6))
    fs.on_receive(CommitSync(master_index=master, records=records))
    assert fs.on_receive(GetIndex()) == master
    assert Path(host.path).read_bytes() == conf(7)
    assert Path(host.backup_path).read_bytes() == conf(6)
    assert scheduled == []
