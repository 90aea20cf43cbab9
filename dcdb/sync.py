"""DCDB state exchange: leader choice, the UPDATE set, UPDATE records, and the commit.

Pure functions over memdb and the wire values (pmxcfs-cluster.md 2.6-2.9). Every node runs
them on the same inputs and reaches the same decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from errors import CorruptDatabase
from memdb.entry import Entry
from memdb.loader import load_memdb
from memdb.records import DT_DIR, Row, version_row
from memdb.tree import MemDb
from wire.dcdb import MemdbIndex, UpdateRecord, decode_index


@dataclass(frozen=True, slots=True)
class MemberIndex:
    """One member's STATE: its (nodeid, pid) and its raw and decoded index."""

    nodeid: int
    pid: int
    raw: bytes
    index: MemdbIndex


def parse_states(states: Iterable[tuple[int, int, bytes]]) -> list[MemberIndex]:
    """Decode every STATE blob, sorted by (nodeid, pid); WireFormatError if one is malformed."""
    parsed = [MemberIndex(nodeid, pid, raw, decode_index(raw)) for nodeid, pid, raw in states]
    return sorted(parsed, key=lambda m: (m.nodeid, m.pid))


def choose_leader(members: Sequence[MemberIndex]) -> MemberIndex:
    """The highest version, then the highest root mtime, then the lowest (nodeid, pid)."""
    leader = members[0]
    for member in members[1:]:
        idx, best = member.index, leader.index
        if idx.version > best.version or (idx.version == best.version and idx.mtime > best.mtime):
            leader = member
    return leader


def synced_members(members: Sequence[MemberIndex], leader: MemberIndex) -> frozenset[tuple[int, int]]:
    """The leader and every member whose index is byte-identical to the leader's."""
    return frozenset((m.nodeid, m.pid) for m in members if m is leader or m.raw == leader.raw)


def update_inodes(master: MemdbIndex, others: Iterable[MemdbIndex]) -> list[int]:
    """Master inodes some other member lacks or holds differently (2.8), without duplicates."""
    wanted: dict[int, None] = {}
    for other in others:
        theirs = other.entries
        pos = 0
        for entry in master.entries:
            while pos < len(theirs) and theirs[pos].inode < entry.inode:
                pos += 1
            if pos >= len(theirs) or theirs[pos] != entry:
                wanted[entry.inode] = None
    return list(wanted)


def update_record(entry: Entry) -> UpdateRecord:
    """The UPDATE payload of one tree entry (the root travels as a DIR with an empty name)."""
    return UpdateRecord(
        parent=entry.parent,
        inode=entry.inode,
        version=entry.version,
        writer=entry.writer,
        mtime=entry.mtime,
        type=DT_DIR if entry.inode == 0 else entry.type,
        name=entry.name,
        data=entry.data,
    )


def _row(record: UpdateRecord) -> Row:
    if record.inode == 0:
        return version_row(record.version, record.writer, record.mtime)
    return Row(
        record.inode,
        record.parent,
        record.version,
        record.writer,
        record.mtime,
        record.type,
        record.name,
        record.data or None,
    )


@dataclass(frozen=True, slots=True)
class Commit:
    """The result of applying the leader's UPDATEs: the new tree and the store changes."""

    memdb: MemDb
    delete_inodes: tuple[int, ...]
    rows: tuple[Row, ...]


def build_commit(
    local: MemDb, master: MemdbIndex, master_raw: bytes, records: Sequence[UpdateRecord]
) -> Commit:
    """Local rows minus inodes the master lacks, replaced by the received records (2.9).

    Raises CorruptDatabase if the result is not a consistent tree or its index differs from
    the master's: the commit must reproduce the master exactly.
    """
    keep = {entry.inode for entry in master.entries}
    received = {record.inode: _row(record) for record in records}
    delete = tuple(sorted(e.inode for e in local.entries() if e.inode != 0 and e.inode not in keep))
    rows = {e.inode: e.row() for e in local.entries() if e.inode != 0 and e.inode in keep}
    root = local.root
    rows[0] = version_row(root.version, root.writer, root.mtime)
    rows.update(received)
    memdb = load_memdb(rows.values(), clock=local.clock)
    if memdb.encode_index() != master_raw:
        raise CorruptDatabase(reason="new index does not match master index")
    return Commit(memdb=memdb, delete_inodes=delete, rows=tuple(received.values()))
