"""A rogue CPG member: joins pve_dcdb_v1 and pve_kvstore_v1 and multicasts garbage to both.

    python -m tests.cluster.rogue [--seconds 5] [--seed 1] [--rate 100]

Run inside a node's netns (lab.node_popen), as root, from the repository. It uses our bindings
(bindings/libcpg.py), waits until corosync lists it in both groups, then for ``--seconds`` sends
about ``--rate`` messages per second to each group, drawn with ``random.Random(seed)``:

- random bytes, short and long;
- captured C messages cut short or mutated (tests/fuzz/garbage.py);
- good DFSM headers over bad payloads, state messages stamped with the sync epoch it last saw
  (so they pass the epoch check and reach the application);
- length fields claiming huge sizes, and a few messages of hundreds of KiB.

Every message is one our codecs reject (garbage.classify), except SYNC_START, whose payload no
one reads. Two kinds of well-formed message are never sent, because the protocol itself makes
them permanent: a newer protocol version puts every node into VERSION_ERROR until pmxcfs
restarts, and a well-formed STATE that wins the leader choice, followed by UPDATE_COMPLETE,
makes a node commit a tree that cannot match (the database error latch). The C pmxcfs reacts to
both the same way; a rogue with root on a node can always lie in well-formed messages.

Then it leaves both groups and prints one JSON line with what it sent and saw. It never runs
longer than ``--seconds`` plus the join wait; the test ends it by pid if it must.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from bindings.libcpg import CpgAddress, CpgHandle
from errors import CsTryAgain
from tests.fuzz import corpus
from tests.fuzz.garbage import (
    BAD_PAYLOAD,
    BAD_TYPE,
    DCDB_GROUP,
    KVSTORE_GROUP,
    OLDER,
    SHORT,
    VERSION,
    WELL_FORMED,
    apply_all,
    classify,
    random_mutation,
    read_epoch,
    with_epoch,
    with_version,
)
from wire import dcdb, kvstore
from wire import dfsm as wire

JOIN_TIMEOUT_S = 20.0
POLL_S = 0.01
BIG = (128 * 1024, 512 * 1024, 1000 * 1024)
"""Sizes of the occasional big message (corosync's atomic limit is 1047552 bytes)."""
STAMPED = 0.25
"""Share of state messages stamped with the current epoch (the rest are dropped by the epoch check)."""
CATEGORIES = ("random", "truncated", "mutated", "bad-payload", "bad-payload", "huge")
ANSWER = {DCDB_GROUP: 0.5, KVSTORE_GROUP: 1.0}
"""How often a SYNC_START is answered with a bad STATE: in DCDB it makes every node leave; in
kvstore the bad ring is ignored, the round ends and the rogue's NORMAL garbage reaches the app."""
T = wire.MessageType
ZERO_EPOCH = wire.Epoch(epoch=0, time=0, nodeid=0, pid=0)


@dataclass
class RogueGroup:
    """One group: its CPG handle and what the rogue saw in it."""

    group: str
    handle: CpgHandle = field(default_factory=CpgHandle)
    joined: bool = False
    was_joined: bool = False
    """Listed in a confchg at some point (``joined`` is False again after leaving)."""
    epoch: wire.Epoch | None = None
    """The epoch of the last state message delivered (usually the current sync round's)."""
    received: int = 0
    members: tuple[tuple[int, int], ...] = ()
    sync_starts: int = 0
    """SYNC_STARTs of the nodes seen; ANSWER says how many are answered with a bad STATE."""
    answered: int = 0
    """The SYNC_STARTs dealt with so far."""
    sent: Counter[str] = field(default_factory=Counter)
    try_again: int = 0

    def start(self) -> None:
        self.handle.initialize(self._deliver, self._confchg)
        for _ in range(100):
            try:
                self.handle.join(self.group.encode())
                return
            except CsTryAgain:
                self.wait(0.1)
        self.handle.join(self.group.encode())

    def _deliver(self, group: bytes, nodeid: int, pid: int, payload: bytes) -> None:
        self.received += 1
        if pid != os.getpid():
            epoch = read_epoch(payload)
            if epoch is not None:
                self.epoch = epoch
            if payload[:2] == struct.pack("<H", T.SYNC_START):
                self.sync_starts += 1

    def _confchg(
        self,
        group: bytes,
        members: tuple[CpgAddress, ...],
        left: tuple[CpgAddress, ...],
        joined: tuple[CpgAddress, ...],
    ) -> None:
        self.members = tuple((m.nodeid, m.pid) for m in members)
        self.joined = any(m.pid == os.getpid() for m in members)
        self.was_joined = self.was_joined or self.joined

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the handle's fd, then dispatch what came."""
        ready, _, _ = select.select([self.handle.fd()], [], [], timeout)
        if ready:
            self.handle.dispatch()

    def send(self, kind: str, data: bytes) -> None:
        while True:
            try:
                self.handle.mcast([data])
                self.sent[kind] += 1
                return
            except CsTryAgain:
                self.try_again += 1
                self.wait(POLL_S)

    def stop(self) -> None:
        try:
            self.handle.leave(self.group.encode())
            self.wait(0.2)
        finally:
            self.handle.finalize()

    def report(self) -> dict[str, object]:
        return {
            "joined": self.was_joined,
            "sent": sum(self.sent.values()),
            "by_kind": dict(self.sent),
            "try_again": self.try_again,
            "received": self.received,
            "epoch_seen": self.epoch is not None,
            "sync_starts": self.sync_starts,
            "members": self.members,
        }


class Garbage:
    """Draws the rogue's messages for one group."""

    def __init__(self, group: str, rng: random.Random) -> None:
        self.group = group
        self.rng = rng
        self.version = VERSION[group]
        self.messages = corpus.messages(group)
        kinds = ("fuse", "unlock", "index", "update") if group == DCDB_GROUP else ("kv", "log", "clog")
        self.payloads = tuple(raw for kind in kinds for raw in corpus.payloads(kind))
        self.states = corpus.payloads("index" if group == DCDB_GROUP else "clog")

    def next(self, epoch: wire.Epoch | None) -> tuple[str, bytes]:
        """(category, message): a message the DFSM must leave over or ignore."""
        for _ in range(50):
            category = self.rng.choice(CATEGORIES)
            data = getattr(self, "_" + category.replace("-", "_"))(epoch)
            if self.acceptable(data):
                return category, data
        return "short", self.rng.randbytes(self.rng.randrange(wire.BASE_HEADER.size))

    def bad_state(self, epoch: wire.Epoch) -> bytes:
        """A STATE under ``epoch`` whose payload the codec rejects: the answer to a SYNC_START."""
        header = wire.STATE_HEADER.pack(
            T.STATE, 0, self.version, int(time.time()), 0, epoch.epoch, epoch.time, epoch.nodeid, epoch.pid
        )
        for _ in range(50):
            seed = self.rng.choice(self.states)
            changes = [random_mutation(self.rng, self.states) for _ in range(self.rng.randrange(1, 4))]
            data = header + apply_all(seed, changes)
            if classify(self.group, data) == BAD_PAYLOAD:
                return data
        return header + b"\xff" * 7

    def acceptable(self, data: bytes) -> bool:
        kind = classify(self.group, data)
        if kind == WELL_FORMED:
            return wire.decode_base_header(data).type == T.SYNC_START
        return kind in (SHORT, OLDER, BAD_TYPE, BAD_PAYLOAD)

    def _our_version(self, data: bytes) -> bytes:
        versions = (self.version,) * 9 + ((self.version - 1,) if self.version else ())
        return with_version(data, self.rng.choice(versions))

    def _stamp(self, data: bytes, epoch: wire.Epoch | None) -> bytes:
        if epoch is not None and data[:2] != b"\0\0" and self.rng.random() < STAMPED:
            return with_epoch(data, epoch)
        return data

    def _random(self, epoch: wire.Epoch | None) -> bytes:
        size = self.rng.choice((self.rng.randrange(16), *[self.rng.randrange(16, 4096)] * 9))
        return self._stamp(self._our_version(self.rng.randbytes(size)), epoch)

    def _truncated(self, epoch: wire.Epoch | None) -> bytes:
        seed = self.rng.choice(self.messages)
        low = 0 if self.rng.random() < 0.1 else min(wire.BASE_HEADER.size, len(seed) - 1)
        cut = self.rng.randrange(low, len(seed))
        return self._stamp(seed[:cut], epoch)

    def _mutated(self, epoch: wire.Epoch | None) -> bytes:
        seed = self.rng.choice(self.messages)
        changes = [random_mutation(self.rng, self.messages) for _ in range(self.rng.randrange(1, 5))]
        return self._stamp(self._our_version(apply_all(seed, changes)), epoch)

    def _bad_payload(self, epoch: wire.Epoch | None) -> bytes:
        seed = self.rng.choice(self.payloads)
        changes = [random_mutation(self.rng, self.payloads) for _ in range(self.rng.randrange(1, 4))]
        payload = apply_all(seed, changes) if self.rng.random() < 0.8 else self.rng.randbytes(300)
        return self._header(payload, epoch)

    def _header(self, payload: bytes, epoch: wire.Epoch | None) -> bytes:
        """A good header of a random type over ``payload``."""
        msg_type = self.rng.choice((0, 0, 0, 1, 2, 2, 3, 4, 5, 6, self.rng.randrange(7, 0x10000)))
        if msg_type == T.NORMAL:
            subtype = self.rng.choice((*range(1, 9), self.rng.randrange(0x10000)))
            count = self.rng.choice((1, 2, 1 << 32, (1 << 64) - 1, self.rng.randrange(1 << 64)))
            header = wire.NORMAL_HEADER.pack(0, subtype, self.version, int(time.time()), 0, count)
            return header + payload
        stamp = epoch if epoch is not None and self.rng.random() < 0.8 else ZERO_EPOCH
        header = wire.STATE_HEADER.pack(
            msg_type, 0, self.version, int(time.time()), 0, stamp.epoch, stamp.time, stamp.nodeid, stamp.pid
        )
        return header + payload

    def _huge(self, epoch: wire.Epoch | None) -> bytes:
        """Length fields that claim far more than the message holds, or a big message."""
        big = 0xFFFFFFFF
        if self.rng.random() < 0.1:
            return self._header(self.rng.randbytes(self.rng.choice(BIG)), epoch)
        if self.group == DCDB_GROUP:
            payload = self.rng.choice(
                (
                    dcdb.FUSE_HEADER.pack(big, big, big, big, 1) + b"a\0",
                    dcdb.FUSE_HEADER.pack(0, 0, 4, big - 3, 0) + b"abc\0",
                    dcdb.INDEX_HEADER.pack(big, big, 1, 1, big, big) + bytes(40),
                    dcdb.INDEX_HEADER.pack(1, 1, 1, 1, 1 << 26, 32 + 40 * (1 << 26)) + bytes(40),
                    dcdb.UPDATE_HEADER.pack(0, 1, 1, 1, 1, big, big, dcdb.DT_REG) + b"a\0",
                    bytes(32) + b"x" * 5000,
                )
            )
        else:
            payload = self.rng.choice(
                (
                    struct.pack("<II", big, big) + bytes(64),
                    struct.pack("<II", 1 << 20, 8) + bytes(1 << 16),
                    kvstore.CLOG_ENTRY_HEADER.pack(0, 0, 1, 1, 1, 1, 1, 6, 255, 255, 255, big) + b"n\0",
                    b"k" * 256 + b"v" * 1000,
                )
            )
        return self._header(payload, epoch)


def pump(groups: list[RogueGroup], timeout: float) -> None:
    """Wait up to ``timeout`` for either handle's fd, then dispatch what came."""
    by_fd = {group.handle.fd(): group for group in groups}
    ready, _, _ = select.select(list(by_fd), [], [], max(timeout, 0.0))
    for fd in ready:
        by_fd[fd].handle.dispatch()


def run(seconds: float, seed: int, rate: float) -> dict[str, object]:
    rng = random.Random(seed)
    groups = [RogueGroup(DCDB_GROUP), RogueGroup(KVSTORE_GROUP)]
    makers = {g.group: Garbage(g.group, random.Random(rng.random())) for g in groups}
    started: list[RogueGroup] = []
    try:
        for group in groups:
            group.start()
            started.append(group)
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while not all(g.joined for g in groups):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not listed in every group within {JOIN_TIMEOUT_S} s")
            pump(groups, POLL_S)
        print(f"rogue {os.getpid()}: joined both groups", file=sys.stderr, flush=True)
        now = time.monotonic()
        end, next_at = now + seconds, now
        while next_at < end:
            for group in groups:
                maker = makers[group.group]
                if group.answered < group.sync_starts and group.epoch is not None:
                    group.answered = group.sync_starts
                    if maker.rng.random() < ANSWER[group.group]:
                        group.send("answer/bad-payload", maker.bad_state(group.epoch))
                category, data = maker.next(group.epoch)
                group.send(f"{category}/{classify(group.group, data)}", data)
            next_at += 1.0 / rate
            while (left := next_at - time.monotonic()) > 0:
                pump(groups, left)
    finally:
        for group in reversed(started):
            group.stop()
    print(f"rogue {os.getpid()}: left both groups", file=sys.stderr, flush=True)
    return {g.group: g.report() for g in groups}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=100.0, help="messages per second and group")
    args = parser.parse_args()
    print(json.dumps({"pid": os.getpid(), **run(args.seconds, args.seed, args.rate)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
