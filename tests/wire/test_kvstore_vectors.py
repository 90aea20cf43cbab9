"""kvstore payloads against every captured kvstore message, both directions.

C leaves garbage after the key's NUL (README "Where the reference doc was wrong", 2) and in the
4 padding bytes after a locally created log entry's strings (not in the README: found here). So
re-encoded bytes are compared with those bytes masked, and ours must be zero there.
"""

from __future__ import annotations

import pytest

from tests.wire import capture
from tests.wire.capture import Line
from wire import dfsm, kvstore
from wire.kvstore import ClogEntry, ClogState, KvUpdate

KV = capture.with_payload("kv")
LOG = capture.with_payload("log")
CLOG = capture.with_payload("clog")
PADDING = kvstore.CLOG_ENTRY_SIZE - kvstore.CLOG_ENTRY_HEADER.size


def _payload(line: Line) -> bytes:
    return dfsm.decode(line.raw).payload


def _check_entry(entry: ClogEntry, d: dict[str, object]) -> None:
    assert (entry.prev, entry.next, entry.uid, entry.time, entry.pid, entry.priority) == (
        d["prev"],
        d["next"],
        d["uid"],
        d["time"],
        d["pid"],
        d["priority"],
    )
    assert (entry.node, entry.ident, entry.tag, entry.msg) == (d["node"], d["ident"], d["tag"], d["msg"])
    assert f"{entry.node_digest:016x}" == d["node_digest"]
    assert f"{entry.ident_digest:016x}" == d["ident_digest"]
    assert entry.node_digest == kvstore.fnv1a_64(entry.node.encode() + b"\0")
    assert entry.ident_digest == kvstore.fnv1a_64(entry.ident.encode() + b"\0")
    lengths = [len(s.encode()) + 1 for s in (entry.node, entry.ident, entry.tag, entry.msg)]
    assert lengths == [d["node_len"], d["ident_len"], d["tag_len"], d["msg_len"]]
    assert kvstore.CLOG_ENTRY_SIZE + sum(lengths) == d["entry_len"]


def _mask_padding(buf: bytes, start: int, length: int) -> bytes:
    """``buf`` with the 4 padding bytes of the entry at ``start`` (``length`` long) zeroed."""
    end = start + length
    return buf[: end - PADDING] + bytes(PADDING) + buf[end:]


def test_every_kvstore_payload_kind_is_present() -> None:
    assert len(KV) == 57 + 134
    assert len(LOG) == 7 + 16
    assert len(CLOG) == 14 + 34


@pytest.mark.parametrize("line", KV, ids=capture.labels(KV))
def test_kv_update(line: Line) -> None:
    msg = dfsm.decode(line.raw)
    assert msg.subtype == kvstore.KvstoreMessageType.UPDATE
    payload = msg.payload
    update = kvstore.decode_payload(msg.subtype, payload)
    assert isinstance(update, KvUpdate)
    d = line.decoded["kv"]
    assert update.key == d["key"]
    assert len(update.value) == d["value_len"]
    assert update.value.decode("utf-8", "replace") == d["value_text"]
    if update.value:
        assert update.value.endswith(b"\0")  # Perl's trailing NUL travels with the value
    key_end = len(update.key.encode()) + 1
    assert any(payload[key_end : kvstore.KV_KEY_SIZE]) == d["key_bytes_after_nul_nonzero"]
    encoded = kvstore.encode_payload(update)
    assert len(encoded) == len(payload)
    assert encoded[:key_end] == payload[:key_end]
    assert encoded[kvstore.KV_KEY_SIZE :] == payload[kvstore.KV_KEY_SIZE :]
    assert not any(encoded[key_end : kvstore.KV_KEY_SIZE])


def test_every_captured_key_tail_is_garbage() -> None:
    assert all(line.decoded["kv"]["key_bytes_after_nul_nonzero"] for line in KV)


@pytest.mark.parametrize("line", LOG, ids=capture.labels(LOG))
def test_log_message(line: Line) -> None:
    msg = dfsm.decode(line.raw)
    assert msg.subtype == kvstore.KvstoreMessageType.LOG
    payload = msg.payload
    entry = kvstore.decode_payload(msg.subtype, payload)
    assert isinstance(entry, ClogEntry)
    _check_entry(entry, line.decoded["log"])
    assert (entry.prev, entry.next) == (0, 0)
    encoded = kvstore.encode_payload(entry)
    assert encoded == _mask_padding(payload, 0, len(payload))


def test_log_padding_is_garbage_in_some_c_messages() -> None:
    # The reference says "send zeros"; C sends whatever alloca left there (clog_pack).
    tails = {_payload(line)[-PADDING:] for line in LOG}
    assert bytes(PADDING) in tails
    assert len(tails) > 1


@pytest.mark.parametrize("line", CLOG, ids=capture.labels(CLOG))
def test_clog_state(line: Line) -> None:
    payload = _payload(line)
    state = kvstore.decode_clog(payload)
    d = line.decoded["clog"]
    assert (state.size, state.cpos) == (d["size"], d["cpos"]) == (kvstore.CLOG_DEFAULT_SIZE, state.cpos)
    assert len(state.slots) == len(d["entries_newest_first"])
    masked = payload
    for slot, de in zip(state.slots, d["entries_newest_first"], strict=True):
        assert slot.offset == de["offset"]
        _check_entry(slot.entry, de)
        masked = _mask_padding(masked, slot.offset, de["entry_len"])
    assert kvstore.encode_clog(state) == masked


@pytest.mark.parametrize("line", CLOG, ids=capture.labels(CLOG))
def test_clog_state_is_clog_sort_layout(line: Line) -> None:
    # STATE rings are written fresh, oldest first from offset 8 (clog_sort): layout_clog rebuilds them.
    state = kvstore.decode_clog(_payload(line))
    oldest_first = [slot.entry for slot in reversed(state.slots)]
    assert kvstore.layout_clog(oldest_first) == state
    times = [(e.time, e.uid) for e in oldest_first]
    assert [t for t, _ in times] == sorted(t for t, _ in times)


def test_empty_clog_round_trip() -> None:
    empty = ClogState(size=kvstore.CLOG_DEFAULT_SIZE, cpos=0, slots=())
    raw = kvstore.encode_clog(empty)
    assert raw[:8] == (131072).to_bytes(4, "little") + bytes(4)
    assert kvstore.decode_clog(raw) == empty
    assert kvstore.layout_clog([]) == empty
