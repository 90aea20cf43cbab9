"""What the IPC server under test serves from: a real fs actor (Tree), a scripted status actor
(FakeStatus, Status), status files that are all asked for, and the content the captured C sweep read.

The fixtures that start them are in tests/ipc/conftest.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.messages import CreateFile, MakeDir, WriteFile, ask
from memdb.snapshot import Published, TreeSnapshot, empty_snapshot
from status.published import EMPTY_STATUS, StatusFiles

TIMEOUT = 10.0


class AskedStatusFiles(StatusFiles):
    """No status file from snapshots: every status text is asked of the (scripted) status actor."""

    def __init__(self) -> None:
        super().__init__(Published(empty_snapshot()), Published(EMPTY_STATUS))

    def text(self, name: str) -> bytes | None:
        return None

    def status_value(self, nodename: str, key: str) -> bytes | None:
        return None

    def cluster_log(self, limit: int, user: str) -> bytes | None:
        return None

    def rrd_dump(self) -> tuple[bytes, bool] | None:
        return None


def no_texts() -> StatusFiles:
    """Status files that are all asked for (the status actor here is a script)."""
    return AskedStatusFiles()


class FakeStatus(pykka.ThreadingActor):
    """Stands in for the status actor: records each request, answers what the test set up."""

    def __init__(self, received: list[object], answers: dict[type, object]) -> None:
        super().__init__()
        self._received = received
        self._answers = answers

    def on_receive(self, message: object) -> object:
        self._received.append(message)
        answer = self._answers.get(type(message))
        if isinstance(answer, BaseException):
            raise answer
        return answer


@dataclass
class Status:
    """A started FakeStatus with what it received and will answer."""

    ref: pykka.ActorRef[Any]
    received: list[object] = field(default_factory=list)
    answers: dict[type, object] = field(default_factory=dict)

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.received if isinstance(m, kind)]


class Tree:
    """The fs actor and a way to fill its tree."""

    def __init__(self, ref: pykka.ActorRef[Any], published: Published[TreeSnapshot]) -> None:
        self.ref = ref
        self.published = published
        """The fs actor's snapshots, which the IPC reads take."""

    def mkdir(self, *paths: str) -> None:
        for path in paths:
            ask(self.ref, MakeDir(path=path), timeout=TIMEOUT)

    def write(self, path: str, data: bytes) -> None:
        ask(self.ref, CreateFile(path=path), timeout=TIMEOUT)
        if data:
            ask(self.ref, WriteFile(path=path, data=data, offset=0), timeout=TIMEOUT)


GUESTS = {
    "nodes/node1/qemu-server/100.conf": (
        b"name: vm100\nmemory: 2048\ncores: 2\nostype: l26\n\n[snap1]\nname: old\n"
    ),
    "nodes/node2/qemu-server/200.conf": b"name: VM200\nmemory: 1024\n",
    "nodes/node2/lxc/101.conf": b"hostname: ct101\nmemory: 512\n",
}
"""Guests giving the property answers captured from the C node, in its vmlist order."""
TOKENS = b"root@pam!test 11111111-2222-3333-4444-555555555555\n"


def fill(tree: Tree) -> None:
    """The content the captured IPC sweep read: guests, a token file, a folder."""
    tree.mkdir("nodes", "nodes/node1", "nodes/node1/qemu-server", "nodes/node2", "nodes/node2/qemu-server")
    tree.mkdir("nodes/node2/lxc", "priv", "testdir", "nodes/node1/priv")
    for path, data in GUESTS.items():
        tree.write(path, data)
    tree.write("priv/token.cfg", TOKENS)
    tree.write("nodes/node1/priv/key", b"secret\n")
    tree.write("datacenter.cfg", b"keyboard: en-us\n")
    tree.write("empty.cfg", b"")
