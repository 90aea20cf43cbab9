"""DFSM headers against every captured CPG message, both directions."""

from __future__ import annotations

import pytest

from tests.wire import capture
from tests.wire.capture import DCDB_GROUP, KVSTORE_GROUP, Line
from wire import dfsm
from wire.dfsm import MessageType, NormalMessage, StateMessage

ALL = list(capture.lines())
PROTOCOL = {DCDB_GROUP: dfsm.DCDB_PROTOCOL_VERSION, KVSTORE_GROUP: dfsm.KVSTORE_PROTOCOL_VERSION}


def test_capture_has_every_message() -> None:
    # README: 218 sends and 491 deliveries in the main file; 49 + 40 + 32 header sizes all seen.
    assert sum(line.dir == "send" for line in ALL) == 218
    assert sum(line.dir == "recv" for line in ALL) == 491


@pytest.mark.parametrize("line", ALL, ids=capture.labels(ALL))
def test_decode_matches_capturer(line: Line) -> None:
    msg = dfsm.decode(line.raw)
    d = line.decoded
    assert msg.protocol_version == d["protocol_version"] == PROTOCOL[line.group]
    assert (msg.time, msg.reserved) == (d["time"], d["reserved"])
    assert len(msg.payload) == d["payload_len"]
    if isinstance(msg, NormalMessage):
        assert d["type"] == MessageType.NORMAL
        assert (msg.subtype, msg.count) == (d["subtype"], d["count"])
        assert line.raw[dfsm.NORMAL_HEADER.size :] == msg.payload
    else:
        assert isinstance(msg, StateMessage)
        assert msg.type == d["type"]
        assert msg.type.name == d["type_name"]
        assert msg.subtype == d["subtype"] == 0
        epoch = d["epoch"]
        assert (msg.epoch.epoch, msg.epoch.time, msg.epoch.nodeid, msg.epoch.pid) == (
            epoch["epoch"],
            epoch["time"],
            epoch["nodeid"],
            epoch["pid"],
        )
        assert line.raw[dfsm.STATE_HEADER.size :] == msg.payload


@pytest.mark.parametrize("line", ALL, ids=capture.labels(ALL))
def test_encode_gives_captured_bytes(line: Line) -> None:
    assert dfsm.encode(dfsm.decode(line.raw)) == line.raw


@pytest.mark.parametrize("line", ALL, ids=capture.labels(ALL))
def test_base_header_alone(line: Line) -> None:
    base = dfsm.decode_base_header(line.raw)
    assert (base.type, base.subtype, base.protocol_version) == (
        line.decoded["type"],
        line.decoded["subtype"],
        line.decoded["protocol_version"],
    )


def test_header_sizes() -> None:
    # dfsm.c asserts these at start-up.
    assert (dfsm.BASE_HEADER.size, dfsm.NORMAL_HEADER.size, dfsm.STATE_HEADER.size) == (16, 24, 32)


def test_state_messages_without_payload_are_bare_headers() -> None:
    for name in ("SYNC_START", "UPDATE_COMPLETE"):
        for line in capture.of_type(name) + capture.of_type(name, group=KVSTORE_GROUP):
            msg = dfsm.decode(line.raw)
            assert isinstance(msg, StateMessage)
            assert msg.payload == b""
            assert len(line.raw) == dfsm.STATE_HEADER.size


def test_counts_start_at_one_and_increase() -> None:
    # reference 1.8: per process and per group. Gaps here are the phase-K sends (burst file).
    counts: dict[tuple[str, int], list[int]] = {}
    for line in ALL:
        msg = dfsm.decode(line.raw)
        if line.dir == "send" and isinstance(msg, NormalMessage):
            counts.setdefault((line.group, line.pid), []).append(msg.count)
    assert len(counts) == 8
    for sent in counts.values():
        assert sent[0] == 1
        assert sent == sorted(set(sent))


def test_recv_decodes_like_its_send() -> None:
    sends = {line.id: line for line in ALL if line.dir == "send"}
    for line in ALL:
        if line.dir == "recv":
            msg = dfsm.decode(line.raw)
            match = [s for s in sends.values() if s.raw == line.raw]
            assert match, line.id
            assert dfsm.decode(match[0].raw) == msg


def test_encode_normal_message_from_fields() -> None:
    msg = NormalMessage(subtype=2, protocol_version=1, time=1795608459, count=1, payload=b"x")
    raw = dfsm.encode(msg)
    assert raw[:24].hex() == "00000200010000008bcf066b000000000100000000000000"
    assert dfsm.decode(raw) == msg
