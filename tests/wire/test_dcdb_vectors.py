"""DCDB payloads against every captured DCDB message, both directions, and the digests they carry."""

from __future__ import annotations

import pytest

from memdb.checksum import encode_index as memdb_encode_index
from memdb.checksum import entry_checksum, entry_digest, tree_checksum
from memdb.entry import Entry
from tests.wire import capture
from tests.wire.capture import Line
from wire import dcdb, dfsm
from wire.dcdb import DcdbMessageType, FuseMessage, MemdbIndex, UnlockMessage, UpdateRecord
from wire.dfsm import Epoch, NormalMessage, StateMessage

FUSE = capture.with_payload("fuse")
UNLOCK = capture.with_payload("unlock")
INDEX = capture.with_payload("index")
UPDATE = capture.with_payload("update")
VERIFY_REQUEST = capture.with_payload("verify_request")
VERIFY = capture.with_payload("verify")


def _normal(line: Line) -> NormalMessage:
    msg = dfsm.decode(line.raw)
    assert isinstance(msg, NormalMessage)
    return msg


def _state(line: Line) -> StateMessage:
    msg = dfsm.decode(line.raw)
    assert isinstance(msg, StateMessage)
    return msg


def _entry(rec: UpdateRecord) -> Entry:
    return Entry(
        inode=rec.inode,
        parent=rec.parent,
        version=rec.version,
        writer=rec.writer,
        mtime=rec.mtime,
        type=rec.type,
        name=rec.name,
        data=rec.data,
    )


def test_every_dcdb_payload_kind_is_present() -> None:
    # README table, main file, sends + deliveries.
    assert len(FUSE) == 169
    assert len(UNLOCK) == 8 + 3
    assert len(INDEX) == 48
    assert len(UPDATE) == 42 + 109
    assert len(VERIFY_REQUEST) == len(VERIFY) == 4


@pytest.mark.parametrize("line", FUSE, ids=capture.labels(FUSE))
def test_fuse_message(line: Line) -> None:
    msg = _normal(line)
    payload = dcdb.decode_payload(msg.subtype, msg.payload)
    assert isinstance(payload, FuseMessage)
    d = line.decoded["fuse"]
    assert DcdbMessageType(msg.subtype).name == line.decoded["subtype_name"].removeprefix("CFS_")
    assert (payload.offset, payload.flags, payload.path, payload.to) == (
        d["offset"],
        d["flags"],
        d["path"],
        d["to"],
    )
    assert len(payload.data) == d["size"] == d["data_len"]
    if d["data_text"] is not None:
        assert payload.data.decode() == d["data_text"]
    assert dcdb.encode_payload(payload) == msg.payload


@pytest.mark.parametrize("line", UNLOCK, ids=capture.labels(UNLOCK))
def test_unlock_message(line: Line) -> None:
    msg = _normal(line)
    assert msg.subtype in (DcdbMessageType.UNLOCK_REQUEST, DcdbMessageType.UNLOCK)
    payload = dcdb.decode_payload(msg.subtype, msg.payload)
    assert isinstance(payload, UnlockMessage)
    assert (payload.csum.hex(), payload.path) == (
        line.decoded["unlock"]["csum"],
        line.decoded["unlock"]["path"],
    )
    assert dcdb.encode_payload(payload) == msg.payload


@pytest.mark.parametrize("line", INDEX, ids=capture.labels(INDEX))
def test_memdb_index(line: Line) -> None:
    payload = _state(line).payload
    idx = dcdb.decode_index(payload)
    d = line.decoded["index"]
    assert (idx.version, idx.last_inode, idx.writer, idx.mtime) == (
        d["version"],
        d["last_inode"],
        d["writer"],
        d["mtime"],
    )
    assert len(idx.entries) == d["size"]
    assert len(payload) == d["bytes"] == 32 + 40 * d["size"]
    assert [(e.inode, e.digest.hex()) for e in idx.entries] == [
        (e["inode"], e["digest"]) for e in d["entries"]
    ]
    assert idx.entries[0].inode == 0
    assert idx.last_inode == idx.entries[-1].inode
    assert dcdb.encode_index(idx) == payload


@pytest.mark.parametrize("line", UPDATE, ids=capture.labels(UPDATE))
def test_update_record(line: Line) -> None:
    payload = _state(line).payload
    rec = dcdb.decode_update(payload)
    d = line.decoded["update"]
    assert (rec.parent, rec.inode, rec.version, rec.writer, rec.mtime, rec.type, rec.name) == (
        d["parent"],
        d["inode"],
        d["version"],
        d["writer"],
        d["mtime"],
        d["type"],
        d["name"],
    )
    assert len(rec.data) == d["size"] == d["data_len"]
    assert len(rec.name.encode()) + 1 == d["namelen"]
    if d["data_text"] is not None:
        assert rec.data.decode() == d["data_text"]
    assert dcdb.encode_update(rec) == payload


@pytest.mark.parametrize("line", VERIFY_REQUEST, ids=capture.labels(VERIFY_REQUEST))
def test_verify_request(line: Line) -> None:
    payload = _state(line).payload
    msg = dcdb.decode_verify_request(payload)
    assert msg.csum_id == line.decoded["verify_request"]["csum_id"] == 1
    assert dcdb.encode_verify_request(msg) == payload


@pytest.mark.parametrize("line", VERIFY, ids=capture.labels(VERIFY))
def test_verify(line: Line) -> None:
    payload = _state(line).payload
    msg = dcdb.decode_verify(payload)
    assert (msg.csum_id, msg.csum.hex()) == (
        line.decoded["verify"]["csum_id"],
        line.decoded["verify"]["csum"],
    )
    assert dcdb.encode_verify(msg) == payload


# --- the digests: UPDATE records against the leader's STATE index (README "DCDB index digests") ---


def _rounds() -> dict[Epoch, tuple[str, list[UpdateRecord], MemdbIndex]]:
    """Per sync round: the leader, the records it sent, and its own STATE index."""
    sent = [line for line in capture.lines() if line.dir == "send" and line.group == capture.DCDB_GROUP]
    leaders: dict[Epoch, str] = {}
    records: dict[Epoch, list[UpdateRecord]] = {}
    indexes: dict[tuple[Epoch, str], MemdbIndex] = {}
    for line in sent:
        msg = dfsm.decode(line.raw)
        if not isinstance(msg, StateMessage):
            continue
        if msg.type == dfsm.MessageType.STATE:
            indexes[msg.epoch, line.capture_node] = dcdb.decode_index(msg.payload)
        elif msg.type == dfsm.MessageType.UPDATE:
            assert leaders.setdefault(msg.epoch, line.capture_node) == line.capture_node
            records.setdefault(msg.epoch, []).append(dcdb.decode_update(msg.payload))
    return {epoch: (leader, records[epoch], indexes[epoch, leader]) for epoch, leader in leaders.items()}


ROUNDS = _rounds()


def test_three_rounds_sent_updates() -> None:
    # B (17 to node2), D (21 to node3), G3 (4 to node1): 42 sent UPDATEs.
    assert sorted(len(records) for _, records, _ in ROUNDS.values()) == [4, 17, 21]


@pytest.mark.parametrize("epoch", list(ROUNDS), ids=[f"epoch{e.epoch}-node{e.nodeid}" for e in ROUNDS])
def test_update_records_hash_to_leader_index(epoch: Epoch) -> None:
    _, records, idx = ROUNDS[epoch]
    digests = {e.inode: e.digest for e in idx.entries}
    for rec in records:
        assert entry_digest(_entry(rec)) == digests[rec.inode], rec
    if len(records) == len(idx.entries):  # a fresh node got the whole tree
        root = next(_entry(r) for r in records if r.inode == 0)
        assert (root.version, root.writer, root.mtime) == (idx.version, idx.writer, idx.mtime)
        assert memdb_encode_index(root, [_entry(r) for r in records]) == dcdb.encode_index(idx)


def _full_tree(size: int) -> list[UpdateRecord]:
    return next(records for _, records, idx in ROUNDS.values() if len(records) == len(idx.entries) == size)


def _by_path(records: list[UpdateRecord]) -> dict[str, UpdateRecord]:
    by_inode = {r.inode: r for r in records}

    def path(rec: UpdateRecord) -> str:
        return rec.name if rec.parent == 0 else f"{path(by_inode[rec.parent])}/{rec.name}"

    return {path(r): r for r in records if r.inode != 0}


def test_root_record_is_a_directory_named_empty() -> None:
    for _, records, _ in ROUNDS.values():
        for rec in records:
            if rec.inode == 0:
                assert (rec.type, rec.name, rec.parent, rec.data) == (dcdb.DT_DIR, "", 0, b"")


def test_verify_checksum_is_the_tree_checksum() -> None:
    # Phase E verifies the 21-entry tree node3 received in phase D (nothing changed in between).
    tree = [_entry(r) for r in _full_tree(21)]
    (line,) = [line for line in VERIFY if line.dir == "send"]
    assert dcdb.decode_verify(_state(line).payload).csum == tree_checksum(tree)


def test_unlock_checksum_is_the_lock_entry_checksum() -> None:
    # Phase F: UNLOCK_REQUEST from node3 and node1's UNLOCK for priv/lock/old, untouched since D.
    lock = _by_path(_full_tree(21))["priv/lock/old"]
    sent = [_normal(line) for line in UNLOCK if line.dir == "send"]
    unlocks = [dcdb.decode_unlock(m.payload) for m in sent]
    old = [u for u in unlocks if u.path == "priv/lock/old"]
    assert len(old) == 2
    for msg in old:
        assert msg.csum == entry_checksum(_entry(lock))
