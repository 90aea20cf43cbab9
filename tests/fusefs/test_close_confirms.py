"""Cluster mode: a file's close waits for its create and writes to be held by a majority.

The cluster actor answers a file's create and writes at delivery and publishes what it still
holds of them (``EarlyWrites``); the close (flush, fsync) asks it only if something is held,
and fails with EBUSY if one of this node's early changes was refused since the file's open.
A stand-in proposer plays the cluster actor here; tests/actors/test_confirm.py has the real
bookkeeping, tests/cluster the real thing.
"""

from __future__ import annotations

import errno
import os
from typing import Any

import pykka

from actors.messages import ConfirmWrites, CreateFile, WriteFile, ask
from actors.outcome import EarlyWrites
from fusefs.operations import PveOperations
from memdb.snapshot import Published
from tests.fusefs.conftest import NODENAME, TIMEOUT, WWW_GID, FileInfo, Pve, errno_of


class StandIn:
    """The proposer's face to the FUSE layer: changes go to the fs actor, closes are recorded."""

    def __init__(self, pve: Pve) -> None:
        self._fs = pve.actors.fs
        self.early = Published(EarlyWrites())
        self.confirms: list[ConfirmWrites] = []
        self.answer = 0

    def send(self, request: Any, *, writable: bool) -> pykka.Future[Any]:
        future: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        future.set(ask(self._fs, request, timeout=TIMEOUT))
        return future

    def confirm_writes(self) -> pykka.Future[int]:
        reply: pykka.ThreadingFuture[int] = pykka.ThreadingFuture()
        self.confirms.append(ConfirmWrites(reply=reply))
        reply.set(self.answer)
        return reply


def cluster_ops(pve: Pve, proposer: StandIn) -> PveOperations:
    actors = pve.actors
    return PveOperations(
        actors.fs,
        actors.status,
        actors.tree,
        actors.status_files,
        nodename=NODENAME,
        www_gid=WWW_GID,
        timeout=TIMEOUT,
        proposer=proposer,  # type: ignore[arg-type]
    )


def test_a_close_with_nothing_held_asks_nobody(pve: Pve) -> None:
    proposer = StandIn(pve)
    ops = cluster_ops(pve, proposer)
    fi = FileInfo(os.O_WRONLY)
    ops.create("/a.cfg", 0o640, fi)
    ops.write("/a.cfg", b"x\n", 0, fi)
    assert ops.flush("/a.cfg", fi) == 0
    assert proposer.confirms == []
    assert pve.ask(CreateFile(path="b.cfg")) is not None  # the fs actor still serves


def test_a_close_waits_while_something_is_held(pve: Pve) -> None:
    proposer = StandIn(pve)
    ops = cluster_ops(pve, proposer)
    fi = FileInfo(os.O_WRONLY)
    ops.create("/a.cfg", 0o640, fi)
    proposer.early.publish(EarlyWrites(held=1, cuts=0))
    assert ops.fsync("/a.cfg", 0, fi) == 0
    assert ops.flush("/a.cfg", fi) == 0
    assert len(proposer.confirms) == 2


def test_a_refusal_since_the_open_fails_the_close(pve: Pve) -> None:
    proposer = StandIn(pve)
    ops = cluster_ops(pve, proposer)
    fi = FileInfo(os.O_WRONLY)
    ops.create("/a.cfg", 0o640, fi)
    proposer.early.publish(EarlyWrites(held=1, cuts=0))
    proposer.answer = 1  # the barrier never came back: the change is refused
    assert errno_of(ops.flush, "/a.cfg", fi) == errno.EBUSY
    # a file opened after that refusal closes fine
    proposer.early.publish(EarlyWrites(held=0, cuts=1))
    later = FileInfo(os.O_WRONLY)
    ops.open("/a.cfg", later)
    ops.write("/a.cfg", b"y\n", 0, later)
    assert ops.flush("/a.cfg", later) == 0
    assert pve.ask(WriteFile(path="a.cfg", data=b"z\n", offset=0)) == 2
