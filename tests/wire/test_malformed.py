"""Truncated and corrupted input: every decoder raises WireFormatError, never IndexError/struct.error.

Deterministic loops over real messages: every truncation point, and every header byte set to a
few extreme values (the random and mutated inputs are in tests/fuzz/, with hypothesis).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import replace

import pytest

from errors import WireFormatError
from tests.wire import capture
from wire import dcdb, dfsm, kvstore
from wire.dcdb import FuseMessage, IndexEntry, MemdbIndex, UnlockMessage, UpdateRecord, Verify
from wire.dfsm import Epoch, MessageType, NormalMessage, StateMessage
from wire.kvstore import ClogEntry, ClogSlot, ClogState, KvUpdate

Decoder = Callable[[bytes], object]


def _payload(kind: str, pick: Callable[[capture.Line], bool] = lambda _: True) -> bytes:
    line = next(line for line in capture.with_payload(kind) if pick(line))
    return dfsm.decode(line.raw).payload


def _fuse_decoder(buf: bytes) -> object:
    return dcdb.decode_payload(dcdb.DcdbMessageType.RENAME, buf)


SAMPLES: list[tuple[str, Decoder, bytes]] = [
    ("fuse-rename", _fuse_decoder, _payload("fuse", lambda line: line.decoded["fuse"]["tolen"] > 0)),
    ("fuse-write", dcdb.decode_fuse, _payload("fuse", lambda line: 0 < line.decoded["fuse"]["size"] < 200)),
    ("unlock", dcdb.decode_unlock, _payload("unlock")),
    ("index", dcdb.decode_index, _payload("index")),
    ("update-file", dcdb.decode_update, _payload("update", lambda line: line.decoded["update"]["size"] > 0)),
    (
        "update-root",
        dcdb.decode_update,
        _payload("update", lambda line: line.decoded["update"]["inode"] == 0),
    ),
    ("verify-request", dcdb.decode_verify_request, _payload("verify_request")),
    ("verify", dcdb.decode_verify, _payload("verify")),
    ("log", kvstore.decode_log, _payload("log")),
    (
        "clog",
        kvstore.decode_clog,
        _payload("clog", lambda line: len(line.decoded["clog"]["entries_newest_first"]) > 5),
    ),
]
SAMPLE_IDS = [name for name, _, _ in SAMPLES]
EXTREMES = (0x00, 0x01, 0x7F, 0x80, 0xFF)


def _decode_or_error(decoder: Decoder, buf: bytes) -> None:
    """Decode ``buf``: success and WireFormatError are fine, any other exception fails the test."""
    try:
        decoder(buf)
    except WireFormatError as exc:
        error = exc
    else:
        return
    assert "at offset" in str(error)


@pytest.mark.parametrize(("name", "decoder", "payload"), SAMPLES, ids=SAMPLE_IDS)
def test_every_truncation_is_rejected(name: str, decoder: Decoder, payload: bytes) -> None:
    assert decoder(payload) is not None
    for cut in range(len(payload)):
        with pytest.raises(WireFormatError):
            decoder(payload[:cut])


@pytest.mark.parametrize(("name", "decoder", "payload"), SAMPLES, ids=SAMPLE_IDS)
def test_every_extension_is_rejected(name: str, decoder: Decoder, payload: bytes) -> None:
    for extra in (b"\0", b"\x01", b"\0" * 8, b"\xff" * 41):
        with pytest.raises(WireFormatError):
            decoder(payload + extra)


@pytest.mark.parametrize(("name", "decoder", "payload"), SAMPLES, ids=SAMPLE_IDS)
def test_header_bytes_set_to_extremes(name: str, decoder: Decoder, payload: bytes) -> None:
    for pos in range(min(len(payload), 96)):
        for value in EXTREMES:
            _decode_or_error(decoder, payload[:pos] + bytes([value]) + payload[pos + 1 :])


def test_kv_update_truncation() -> None:
    payload = _payload("kv", lambda line: line.decoded["kv"]["value_len"] > 0)
    for cut in range(kvstore.KV_KEY_SIZE):
        with pytest.raises(WireFormatError):
            kvstore.decode_update(payload[:cut])
    for cut in range(kvstore.KV_KEY_SIZE, len(payload) + 1):  # a shorter value is still a value
        assert kvstore.decode_update(payload[:cut]).value == payload[kvstore.KV_KEY_SIZE : cut]


@pytest.mark.parametrize(
    "line", [capture.first(k) for k in ("fuse", "index", "kv", "update")], ids=capture.Line.label
)
def test_whole_message_truncation(line: capture.Line) -> None:
    header = dfsm.NORMAL_HEADER.size if line.decoded["type"] == 0 else dfsm.STATE_HEADER.size
    for cut in range(header):
        with pytest.raises(WireFormatError):
            dfsm.decode(line.raw[:cut])
    for cut in range(header, len(line.raw) + 1):
        assert len(dfsm.decode(line.raw[:cut]).payload) == cut - header


@pytest.mark.parametrize(
    "line", [capture.first(k) for k in ("fuse", "index", "clog")], ids=capture.Line.label
)
def test_dfsm_header_bytes_set_to_extremes(line: capture.Line) -> None:
    for pos in range(dfsm.STATE_HEADER.size):
        for value in EXTREMES:
            _decode_or_error(dfsm.decode, line.raw[:pos] + bytes([value]) + line.raw[pos + 1 :])


def test_error_names_what_and_offset() -> None:
    with pytest.raises(WireFormatError) as info:
        dcdb.decode_update(bytes(30))
    assert str(info.value) == "WireFormatError 'update': at offset 0: truncated: needs 41 bytes, 30 left"
    assert (info.value.what, isinstance(info.value, ValueError)) == ("update", True)


# --- dfsm ---


def test_unknown_message_type() -> None:
    raw = dfsm.encode(_state_msg(MessageType.SYNC_START))
    bad = struct.pack("<H", 7) + raw[2:]
    with pytest.raises(WireFormatError, match="unknown type 7"):
        dfsm.decode(bad)
    assert dfsm.decode_base_header(bad).type == 7  # a newer peer's header still reads


def test_base_header_truncated() -> None:
    with pytest.raises(WireFormatError, match="at offset 0: truncated"):
        dfsm.decode_base_header(b"\0" * 15)


def test_state_message_cannot_be_normal() -> None:
    with pytest.raises(WireFormatError):
        dfsm.encode(_state_msg(MessageType.NORMAL))


def test_out_of_range_header_fields() -> None:
    with pytest.raises(WireFormatError, match="cannot encode"):
        dfsm.encode(NormalMessage(subtype=1, protocol_version=1, time=0, count=-1, payload=b""))
    with pytest.raises(WireFormatError, match="cannot encode"):
        dfsm.encode(NormalMessage(subtype=1 << 16, protocol_version=1, time=0, count=1, payload=b""))


def _state_msg(kind: MessageType) -> StateMessage:
    epoch = Epoch(epoch=1, time=2, nodeid=3, pid=4)
    return StateMessage(type=kind, protocol_version=1, time=5, epoch=epoch, payload=b"")


# --- dcdb ---


def _fuse(size: int, offset: int, pathlen: int, tolen: int, flags: int, rest: bytes) -> bytes:
    return dcdb.FUSE_HEADER.pack(size, offset, pathlen, tolen, flags) + rest


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (_fuse(0, 0, 3, 0, 0, b"ab\0\0"), "length 24 != 20"),
        (_fuse(1, 0, 3, 0, 0, b"ab\0"), "length 23 != 20"),
        (_fuse(0, 0, 3, 0, 0, b"abc"), "not NUL-terminated"),
        (_fuse(0, 0, 3, 0, 0, b"a\0\0"), "NUL before the stated end"),
        (_fuse(0, 0, 3, 2, 0, b"ab\0xy"), "not NUL-terminated"),
        (_fuse(0, 0, 0xFFFFFFFF, 0, 0, b"ab\0"), "length 23 != 20"),
        (b"\0" * 19, "truncated"),
    ],
)
def test_bad_fuse_message(raw: bytes, reason: str) -> None:
    with pytest.raises(WireFormatError, match=reason):
        dcdb.decode_fuse(raw)


def test_fuse_message_without_path() -> None:
    msg = FuseMessage(path=None)
    assert dcdb.encode_fuse(msg) == bytes(20)
    assert dcdb.decode_fuse(bytes(20)) == msg


def test_unknown_dcdb_subtype() -> None:
    for subtype in (0, 9, 0xFFFF):
        with pytest.raises(WireFormatError, match=f"unknown subtype {subtype}"):
            dcdb.decode_payload(subtype, bytes(40))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (bytes(32), "truncated"),
        (bytes(32) + b"ab", "not NUL-terminated"),
        (bytes(32) + b"a\0b\0", "NUL before"),
    ],
)
def test_bad_unlock_message(raw: bytes, reason: str) -> None:
    with pytest.raises(WireFormatError, match=reason):
        dcdb.decode_unlock(raw)


def test_unlock_with_empty_path_is_the_minimum() -> None:
    assert dcdb.decode_unlock(bytes(33)) == UnlockMessage(csum=bytes(32), path="")


def _index(size: int, total: int, entries: bytes) -> bytes:
    return dcdb.INDEX_HEADER.pack(1, 2, 3, 4, size, total) + entries


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (_index(1, 72, bytes(39)), "bytes field 72 != blob length 71"),
        (_index(2, 72, bytes(40)), "2 entries need 112 bytes"),
        (_index(0, 72, bytes(40)), "0 entries need 32 bytes"),
        (_index(0xFFFFFFFF, 32, b""), "entries need"),
        (_index(2, 112, struct.pack("<Q32sQ32s", 5, bytes(32), 5, bytes(32))), "not ascending"),
        (_index(2, 112, struct.pack("<Q32sQ32s", 5, bytes(32), 4, bytes(32))), "at offset 72"),
    ],
)
def test_bad_index(raw: bytes, reason: str) -> None:
    with pytest.raises(WireFormatError, match=reason):
        dcdb.decode_index(raw)


def test_empty_index_round_trip() -> None:
    idx = MemdbIndex(version=1, last_inode=0, writer=0, mtime=0, entries=())
    assert dcdb.decode_index(dcdb.encode_index(idx)) == idx


def _update(kind: int, size: int, namelen: int, rest: bytes) -> bytes:
    return dcdb.UPDATE_HEADER.pack(0, 5, 6, 1, 2, size, namelen, kind) + rest


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (_update(5, 0, 2, b"a\0"), "unknown inode type 5"),
        (_update(0, 0, 2, b"a\0"), "unknown inode type 0"),
        (_update(8, 1, 2, b"a\0"), "length 43 != 41"),
        (_update(8, 0, 2, b"ab\0"), "length 44 != 41"),
        (_update(4, 1, 2, b"a\0x"), "directory with size 1"),
        (_update(8, 0, 0, b""), "length 0"),
        (_update(8, 0, 2, b"ab"), "not NUL-terminated"),
        (_update(8, 0, 0xFFFFFFFF, b"a\0"), "length 43 != 41"),
        (_update(8, 0, 1, b"\0")[:40], "truncated"),  # C checks only 40 of the 41 header bytes
    ],
)
def test_bad_update(raw: bytes, reason: str) -> None:
    with pytest.raises(WireFormatError, match=reason):
        dcdb.decode_update(raw)


@pytest.mark.parametrize("length", [0, 7, 9, 39, 41])
def test_verify_lengths_are_exact(length: int) -> None:
    decoder = dcdb.decode_verify_request if length < 20 else dcdb.decode_verify
    with pytest.raises(WireFormatError, match="must be exactly"):
        decoder(bytes(length))


@pytest.mark.parametrize(
    "encode",
    [
        lambda: dcdb.encode_fuse(FuseMessage(path="a\0b")),
        lambda: dcdb.encode_fuse(FuseMessage(path="a", offset=-1)),
        lambda: dcdb.encode_unlock(UnlockMessage(csum=bytes(31), path="a")),
        lambda: dcdb.encode_index(
            MemdbIndex(
                version=0, last_inode=0, writer=0, mtime=0, entries=(IndexEntry(inode=0, digest=b"x"),)
            )
        ),
        lambda: dcdb.encode_update(
            UpdateRecord(parent=0, inode=1, version=1, writer=0, mtime=0, type=1, name="a")
        ),
        lambda: dcdb.encode_update(
            UpdateRecord(parent=0, inode=1, version=1, writer=0, mtime=0, type=4, name="a", data=b"x")
        ),
        lambda: dcdb.encode_verify(Verify(csum_id=1, csum=bytes(33))),
    ],
)
def test_bad_dcdb_values_are_refused_by_encoders(encode: Callable[[], bytes]) -> None:
    with pytest.raises(WireFormatError):
        encode()


# --- kvstore ---


def test_unknown_kvstore_subtype() -> None:
    for subtype in (0, kvstore.KvstoreMessageType.UPDATE_COMPLETE, 4):
        with pytest.raises(WireFormatError, match=f"unknown subtype {int(subtype)}"):
            kvstore.decode_payload(subtype, bytes(300))


def test_kv_key_without_nul() -> None:
    with pytest.raises(WireFormatError, match="no NUL"):
        kvstore.decode_update(b"k" * 256 + b"v\0")


def test_kv_key_limits() -> None:
    longest = KvUpdate(key="k" * 255, value=b"v\0")
    assert kvstore.decode_update(kvstore.encode_update(longest)) == longest
    with pytest.raises(WireFormatError, match="at most 255"):
        kvstore.encode_update(KvUpdate(key="k" * 256, value=b""))
    assert kvstore.decode_update(bytes(256)) == KvUpdate(key="", value=b"")


def _entry(**changes: object) -> ClogEntry:
    fields: dict[str, object] = {
        "uid": 1,
        "time": 100,
        "node_digest": kvstore.fnv1a_64(b"node1\0"),
        "ident_digest": kvstore.fnv1a_64(b"root\0"),
        "pid": 42,
        "priority": 6,
        "node": "node1",
        "ident": "root",
        "tag": "cluster",
        "msg": "hello",
    }
    fields.update(changes)
    return ClogEntry(**fields)  # type: ignore[arg-type]


def test_bad_log_string_lengths() -> None:
    raw = bytearray(kvstore.encode_log(_entry()))
    assert kvstore.decode_log(bytes(raw)) == _entry()
    raw[37] = 5  # node_len 6 -> 5: "node1" loses its NUL, and the total is one short
    with pytest.raises(WireFormatError):
        kvstore.decode_log(bytes(raw))
    raw[37], raw[38] = 7, 4  # node "node1\0r", ident "oot\0": same total, NUL inside node
    with pytest.raises(WireFormatError, match="NUL before the stated end"):
        kvstore.decode_log(bytes(raw))
    raw[37], raw[38] = 0, 11
    with pytest.raises(WireFormatError, match="length 0"):
        kvstore.decode_log(bytes(raw))


def test_log_string_limits() -> None:
    with pytest.raises(WireFormatError, match="at most 255"):
        kvstore.encode_log(_entry(tag="t" * 255))
    assert kvstore.decode_log(kvstore.encode_log(_entry(tag="t" * 254))).tag == "t" * 254


def test_fnv1a_64_known_values() -> None:
    assert kvstore.fnv1a_64(b"") == 0xCBF29CE484222325
    assert kvstore.fnv1a_64(b"a") == 0xAF63DC4C8601EC8C  # the published FNV-1a 64 test vector
    assert f"{kvstore.fnv1a_64(b'node1' + bytes(1)):016x}" == "e6f5e3c220c8fefc"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (struct.pack("<II", 8, 0), "size field 8"),
        (struct.pack("<II", 16, 0), "size field 16 for a 8-byte"),
        (struct.pack("<II", 64, 4) + bytes(56), "inside the ring header"),
        (struct.pack("<II", 64, 32) + bytes(56), "truncated"),
    ],
)
def test_bad_clog(raw: bytes, reason: str) -> None:
    with pytest.raises(WireFormatError, match=reason):
        kvstore.decode_clog(raw)


# --- the ring walk (logger.c clog_dump/clog_sort) ---

RING = 16384


def _ring(cpos: int, placed: list[tuple[int, int, int]]) -> bytes:
    """A ring with entries (offset, prev, uid)."""
    slots = tuple(ClogSlot(offset=o, entry=_entry(prev=p, uid=u)) for o, p, u in placed)
    return kvstore.encode_clog(ClogState(size=RING, cpos=cpos, slots=slots))


def _walk(raw: bytes) -> list[int]:
    return [slot.entry.uid for slot in kvstore.decode_clog(raw).slots]


def test_walk_stops_at_prev_zero() -> None:
    assert _walk(_ring(200, [(8, 0, 1), (200, 8, 2)])) == [2, 1]


def test_walk_stops_when_prev_points_forward_to_at_most_cpos() -> None:
    # The entry at 8 claims 200 as its predecessor: wrapped into overwritten space.
    assert _walk(_ring(200, [(8, 200, 1), (200, 8, 2)])) == [2, 1]


def test_walk_stops_just_after_the_newest_entry() -> None:
    # prev lands in (cpos, cpos + 4096]: that space may be half overwritten.
    assert _walk(_ring(8, [(8, 1000, 2), (1000, 0, 1)])) == [2]


def test_walk_follows_prev_beyond_the_newest_entry_window() -> None:
    assert _walk(_ring(8, [(8, 5000, 3), (5000, 4000, 2), (4000, 0, 1)])) == [3, 2]  # 4000 <= 8 + 4096
    assert _walk(_ring(8, [(8, 5000, 3), (5000, 9000, 2), (9000, 0, 1)])) == [3, 2, 1]


def test_walk_refuses_a_prev_cycle() -> None:
    # C would loop forever on this ring.
    with pytest.raises(WireFormatError, match="prev cycle"):
        kvstore.decode_clog(_ring(8, [(8, 5000, 3), (5000, 9000, 2), (9000, 5000, 1)]))


def _append(ring: bytearray, entry: ClogEntry) -> int:
    """clog_alloc_entry + clog_copy: put ``entry`` after the newest one, wrapping to 8."""
    size, cpos = struct.unpack_from("<II", ring)
    realsize = (len(kvstore.encode_log(entry)) + 7) & ~7
    pos = struct.unpack_from("<I", ring, cpos + 4)[0] if cpos else 8
    if pos + realsize >= size:
        pos = 8
    image = kvstore.encode_log(replace(entry, prev=cpos, next=pos + realsize))
    ring[pos : pos + len(image)] = image
    struct.pack_into("<II", ring, 0, size, pos)
    return pos


def test_walk_of_a_wrapped_ring_returns_the_newest_intact_entries() -> None:
    size = kvstore.CLOG_MAX_ENTRY_SIZE * 10  # the smallest ring clog_new accepts
    ring = bytearray(size)
    struct.pack_into("<II", ring, 0, size, 0)
    written: dict[int, ClogEntry] = {}
    for uid in range(1, 301):
        entry = _entry(uid=uid, time=1000 + uid, msg="x" * (37 * uid % 1500))
        _append(ring, entry)
        written[uid] = entry
        state = kvstore.decode_clog(bytes(ring))
        uids = [slot.entry.uid for slot in state.slots]
        assert uids == list(range(uid, uid - len(uids), -1))
        for slot in state.slots:
            assert replace(slot.entry, prev=0, next=0) == written[slot.entry.uid]
        walked = sum(slot.entry.next - slot.offset for slot in state.slots)
        assert walked <= size - 8
        if uid > 100:  # wrapped several times: the walk still covers most of the ring
            assert walked >= size - 8 - 3 * kvstore.CLOG_MAX_ENTRY_SIZE
