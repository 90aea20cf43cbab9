"""Two and three in-process nodes joined by the fake cluster: changes replicate in one order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pykka
import pytest

import main
from actors.messages import (
    CreateFile,
    Deferred,
    GetIndex,
    Lookup,
    MakeDir,
    QuorumChanged,
    ReadFile,
    Remove,
    Rename,
    SetMtime,
    Truncate,
    WriteFile,
)
from errors import AlreadyExists, NotFound, NotQuorate
from tests.fakes.actors import make_options, q
from tests.fakes.fake_cluster import FakeBus, GetLog, join
from wire.dcdb import decode_index


@pytest.fixture
def bus() -> pykka.ActorRef[FakeBus]:
    return FakeBus.start()


@pytest.fixture
def nodes(tmp_path: Path, bus: pykka.ActorRef[FakeBus]) -> Callable[[int], list[main.Actors]]:
    def build(count: int) -> list[main.Actors]:
        made = []
        for nodeid in range(1, count + 1):
            opts = make_options(tmp_path / f"n{nodeid}" / "config.db", local=True, nodename=f"node{nodeid}")
            (tmp_path / f"n{nodeid}").mkdir()
            actors = main.start_actors(opts)
            main.load_tree(actors, opts)
            join(bus, nodeid, actors.fs)
            made.append(actors)
        return made

    return build


def test_a_change_on_one_node_is_applied_on_all_as_its_sender(nodes, bus) -> None:
    n1, n2, n3 = nodes(3)
    assert q(n2.fs, MakeDir(path="d")) == 0
    assert q(n2.fs, CreateFile(path="d/f")) == 0
    assert q(n2.fs, WriteFile(path="d/f", data=b"hello", offset=0)) == 5
    for node in (n1, n2, n3):
        attr = q(node.fs, Lookup(path="d/f")).attr
        assert (attr.writer, attr.size) == (2, 5)
        assert q(node.fs, ReadFile(path="d/f", size=10, offset=0)) == b"hello"
    assert len({q(node.fs, GetIndex()) for node in (n1, n2, n3)}) == 1
    assert [b.sender for b in q(bus, GetLog())] == [2, 2, 2]


def test_every_kind_of_change_replicates(nodes) -> None:
    n1, n2 = nodes(2)
    q(n1.fs, CreateFile(path="a"))
    q(n2.fs, WriteFile(path="a", data=b"0123456789", offset=0))
    q(n1.fs, Truncate(path="a", size=4))
    q(n1.fs, Rename(src="a", dst="b"))
    q(n2.fs, SetMtime(path="b", mtime=1234))
    q(n2.fs, CreateFile(path="gone"))
    q(n1.fs, Remove(path="gone"))
    for node in (n1, n2):
        attr = q(node.fs, Lookup(path="b")).attr
        assert (attr.size, attr.mtime) == (4, 1234)
        assert q(node.fs, Lookup(path="gone")).attr is None
    assert q(n1.fs, GetIndex()) == q(n2.fs, GetIndex())


def test_a_refused_change_is_refused_on_every_node_alike(nodes) -> None:
    n1, n2 = nodes(2)
    q(n1.fs, CreateFile(path="x"))
    with pytest.raises(AlreadyExists):
        q(n2.fs, CreateFile(path="x"))
    with pytest.raises(NotFound):
        q(n1.fs, Remove(path="missing"))
    assert q(n1.fs, GetIndex()) == q(n2.fs, GetIndex())


def test_concurrent_writers_converge(nodes) -> None:
    n1, n2, n3 = nodes(3)
    q(n1.fs, CreateFile(path="shared"))
    futures = [
        node.fs.ask(WriteFile(path="shared", data=f"{i}".encode() * 8, offset=0), block=False)
        for i in range(20)
        for node in (n1, n2, n3)
    ]
    for answer in pykka.get_all(futures, timeout=30):
        # a cluster change answers Deferred(reply): the write is done once its reply is
        assert isinstance(answer, Deferred)
        answer.future.get(timeout=30)
    indexes = {q(node.fs, GetIndex()) for node in (n1, n2, n3)}
    assert len(indexes) == 1
    assert decode_index(indexes.pop()).version >= 60  # every write was applied


def test_no_quorum_refuses_before_sending(nodes) -> None:
    n1, n2 = nodes(2)
    n1.fs.tell(QuorumChanged(quorate=False))
    with pytest.raises(NotQuorate):
        q(n1.fs, CreateFile(path="x"))
    assert q(n2.fs, Lookup(path="x")).attr is None
