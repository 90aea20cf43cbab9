"""DCDB sync decisions and the commit, checked against syncs captured from C nodes."""

from __future__ import annotations

import base64
import gzip
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from dcdb.sync import build_commit, choose_leader, parse_states, synced_members, update_inodes, update_record
from errors import CorruptDatabase
from memdb.tree import MemDb
from tests.vectors import VECTORS
from wire.dcdb import decode_index, decode_update

STATE, UPDATE, UPDATE_COMPLETE = 2, 3, 4
HEADER = 32


@dataclass
class Sync:
    """The DCDB state messages sent under one epoch."""

    states: dict[tuple[int, int], bytes] = field(default_factory=dict)
    updates: list[tuple[tuple[int, int], bytes]] = field(default_factory=list)
    completes: list[tuple[int, int]] = field(default_factory=list)


def _payload(line: dict[str, object]) -> bytes:
    if "hex" in line:
        raw = bytes.fromhex(str(line["hex"]))
    else:
        raw = gzip.decompress(base64.b64decode(str(line["gzip_b64"])))
    return raw[HEADER:]


def captured_syncs() -> Iterator[tuple[tuple[int, ...], Sync]]:
    syncs: dict[tuple[int, ...], Sync] = defaultdict(Sync)
    with open(VECTORS / "dfsm-capture.jsonl") as capture:
        for text in capture:
            line = json.loads(text)
            decoded = line.get("decoded") or {}
            if line["dir"] != "send" or line["group"] != "pve_dcdb_v1" or "epoch" not in decoded:
                continue
            epoch = tuple(decoded["epoch"].values())
            sender = (line["nodeid"], line["pid"])
            sync = syncs[epoch]
            if decoded["type"] == STATE:
                sync.states[sender] = _payload(line)
            elif decoded["type"] == UPDATE:
                sync.updates.append((sender, _payload(line)))
            elif decoded["type"] == UPDATE_COMPLETE:
                sync.completes.append(sender)
    yield from ((epoch, sync) for epoch, sync in syncs.items() if sync.completes)


SYNCS = list(captured_syncs())


def test_the_capture_has_syncs() -> None:
    assert len(SYNCS) >= 6
    assert any(sync.updates for _, sync in SYNCS)


@pytest.mark.parametrize(("epoch", "sync"), SYNCS, ids=[str(e[:3]) for e, _ in SYNCS])
def test_leader_and_update_set_match_the_c_nodes(epoch: tuple[int, ...], sync: Sync) -> None:
    members = parse_states((nodeid, pid, raw) for (nodeid, pid), raw in sync.states.items())
    leader = choose_leader(members)
    assert sync.completes == [(leader.nodeid, leader.pid)]
    assert all(sender == (leader.nodeid, leader.pid) for sender, _ in sync.updates)
    others = [m.index for m in members if m is not leader]
    sent = {decode_update(payload).inode for _, payload in sync.updates}
    assert set(update_inodes(leader.index, others)) == sent
    synced = synced_members(members, leader)
    assert (leader.nodeid, leader.pid) in synced
    assert all((m.nodeid, m.pid) in synced for m in members if m.raw == leader.raw)


def test_fresh_node2_commits_to_node1s_index_byte_for_byte() -> None:
    """Phase B: node2 (fresh DB, corosync.conf imported) takes node1's 17 UPDATEs."""
    sync = next(s for _, s in SYNCS if len(s.updates) == 17)
    node2_raw = next(raw for member, raw in sync.states.items() if member[0] == 2)
    node1_raw = next(raw for member, raw in sync.states.items() if member[0] == 1)
    mine = decode_index(node2_raw)
    local = MemDb()
    local.start_fresh(mine.mtime)
    conf = (VECTORS / "corosync.conf").read_bytes()
    local.create("corosync.conf", 0, mine.mtime)
    local.write("corosync.conf", 0, mine.mtime, conf, 0)
    assert local.encode_index() == node2_raw  # our rebuild of node2 is exact
    records = [decode_update(payload) for _, payload in sync.updates]
    commit = build_commit(local, decode_index(node1_raw), node1_raw, records)
    assert commit.memdb.encode_index() == node1_raw
    assert commit.memdb.read_all("corosync.conf") == conf


def _tree(names: list[str], *, writer: int = 1) -> MemDb:
    db = MemDb()
    db.start_fresh(100)
    for i, name in enumerate(names):
        db.create(name, writer, 100 + i)
        db.write(name, writer, 100 + i, name.encode() * 3, 0)
    return db


def test_commit_deletes_what_the_master_lacks_and_takes_the_rest() -> None:
    leader = _tree(["a", "b", "c"])
    leader.delete("b", 1, 200)
    leader.mkdir("d", 1, 201)
    follower = _tree(["a", "b"])
    follower.write("a", 2, 150, b"diverged", 0)
    master_raw = leader.encode_index()
    master = decode_index(master_raw)
    wanted = update_inodes(master, [decode_index(follower.encode_index())])
    records = [update_record(leader.index[inode]) for inode in wanted]
    commit = build_commit(follower, master, master_raw, records)
    assert commit.memdb.encode_index() == master_raw
    assert sorted(commit.memdb.readdir("")) == ["a", "c", "d"]
    assert commit.memdb.read_all("a") == b"aaa"
    assert commit.delete_inodes == (follower.lookup("b").inode,)


def test_commit_refuses_an_incomplete_update_set() -> None:
    leader = _tree(["a", "b"])
    follower = _tree(["a"])
    master_raw = leader.encode_index()
    with pytest.raises(CorruptDatabase, match="does not match"):
        build_commit(follower, decode_index(master_raw), master_raw, [])
