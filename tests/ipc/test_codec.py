"""ipc/codec.py: both directions against the requests and responses captured from a C pmxcfs."""

from __future__ import annotations

import json
import struct
from functools import cache
from typing import Any

import pytest

from errors import InvalidArgument, UnknownRequest
from ipc import codec
from ipc.codec import Op
from tests.vectors import VECTORS


@cache
def captures() -> tuple[dict[str, Any], ...]:
    with open(VECTORS / "ipc-capture.jsonl") as lines:
        return tuple(json.loads(line) for line in lines)


def capture(note: str, op: str | None = None) -> dict[str, Any]:
    found = [c for c in captures() if c["note"] == note and (op is None or c["op"] == op)]
    assert found, note
    return found[0]


def raw(c: dict[str, Any]) -> bytes:
    return bytes.fromhex(c["request_hex"])


def decoded(c: dict[str, Any]) -> codec.IpcRequest:
    buf = raw(c)
    op_id, size = codec.request_header(buf)
    assert size == len(buf)
    return codec.decode_request(codec.operation(op_id), buf)


def test_every_captured_request_decodes_or_fails_as_c_answered() -> None:
    for c in captures():
        buf = raw(c)
        op_id, size = codec.request_header(buf)
        assert (op_id, size) == (c["request_header"]["id"], c["request_header"]["size"])
        try:
            codec.decode_request(codec.operation(op_id), buf)
        except UnknownRequest:
            assert c["error"] == -44, c["note"]
        except InvalidArgument:
            assert c["error"] == -22, c["note"]


@pytest.mark.parametrize(
    ("note", "op", "expected"),
    [
        ("kv/test from node2", "SET_STATUS", codec.SetStatus("kv/test", b'{"hello":"from node2"}\0')),
        ("kv/tmp delete (no value)", "SET_STATUS", codec.SetStatus("kv/tmp", b"")),
        ("nodeip", "SET_STATUS", codec.SetStatus("nodeip", b"10.214.0.2\0")),
        ("local node (empty nodename)", "GET_STATUS", codec.GetStatus("kv/ipc-test", "")),
        ("remote node1", "GET_STATUS", codec.GetStatus("kv/test", "node1")),
        ("leading slash", "GET_CONFIG", codec.GetConfig("/corosync.conf")),
        ("directory -> ENOENT", "GET_CONFIG", codec.GetConfig("testdir")),
        (
            "log utf8/quote/ctrl",
            "LOG_CLUSTER_MSG",
            codec.LogMessage(6, "root@pam", "pvedaemon", 'hello from node2 "quoted" \xe4 tab\there'.encode()),
        ),
        ("log prio 3", "LOG_CLUSTER_MSG", codec.LogMessage(3, "alice@pve", "qm", b"error level message")),
        ("all users, max 0(=50)", "GET_CLUSTER_LOG", codec.GetClusterLog(50, "")),
        ("user root@pam max 3", "GET_CLUSTER_LOG", codec.GetClusterLog(3, "root@pam")),
        ("all vms, memory", "GET_GUEST_CONFIG_PROPERTY", codec.GuestProperties(0, (b"memory",))),
        ("vm 999 missing", "GET_GUEST_CONFIG_PROPERTY", codec.GuestProperties(999, (b"name",))),
        (
            "all vms, name+memory",
            "GET_GUEST_CONFIG_PROPERTIES",
            codec.GuestProperties(0, (b"name", b"memory")),
        ),
        ("vm 200 name", "GET_GUEST_CONFIG_PROPERTIES", codec.GuestProperties(200, (b"name",))),
        (
            "valid token",
            "VERIFY_TOKEN",
            codec.VerifyToken(b"root@pam!test 11111111-2222-3333-4444-555555555555"),
        ),
    ],
)
def test_captured_requests_decode(note: str, op: str, expected: codec.IpcRequest) -> None:
    assert decoded(capture(note, op)) == expected


def test_header_only_requests() -> None:
    assert decoded(capture("", "GET_FS_VERSION")) == codec.StatusText(".version")
    assert decoded(capture("", "GET_CLUSTER_INFO")) == codec.StatusText(".members")
    assert decoded(capture("", "GET_GUEST_LIST")) == codec.StatusText(".vmlist")
    assert decoded(capture("", "GET_RRD_DUMP")) == codec.RrdDump()
    with pytest.raises(InvalidArgument):
        decoded(capture("bad size -> EINVAL"))
    with pytest.raises(UnknownRequest):
        codec.operation(capture("unknown op -> ECHRNG")["id"])
    with pytest.raises(UnknownRequest):
        codec.operation(9)  # the unused number


@pytest.mark.parametrize(
    ("note", "op", "payload"),
    [
        (
            "kv/test from node2",
            "SET_STATUS",
            codec.set_status_payload(b"kv/test", b'{"hello":"from node2"}\0'),
        ),
        ("kv/tmp delete (no value)", "SET_STATUS", codec.set_status_payload(b"kv/tmp", None)),
        ("remote node1", "GET_STATUS", codec.get_status_payload(b"kv/test", b"node1")),
        ("missing key", "GET_STATUS", codec.get_status_payload(b"nope")),
        ("", "GET_CONFIG", codec.string_payload(b"nodes/node1/qemu-server/100.conf")),
        ("log prio 3", "LOG_CLUSTER_MSG", codec.log_payload(3, b"alice@pve", b"qm", b"error level message")),
        ("user root@pam max 3", "GET_CLUSTER_LOG", codec.cluster_log_payload(3, b"root@pam")),
        ("all users, max 0(=50)", "GET_CLUSTER_LOG", codec.cluster_log_payload(0, b"")),
        ("vm 100 name", "GET_GUEST_CONFIG_PROPERTY", codec.guest_property_payload(100, b"name")),
        (
            "all vms, name+memory",
            "GET_GUEST_CONFIG_PROPERTIES",
            codec.guest_properties_payload(0, (b"name", b"memory")),
        ),
        ("invalid token", "VERIFY_TOKEN", codec.string_payload(b"root@pam!test wrong")),
        ("", "GET_RRD_DUMP", b""),
    ],
)
def test_client_packing_reproduces_the_perl_bytes(note: str, op: str, payload: bytes) -> None:
    c = capture(note, op)
    assert codec.encode_request(Op[op], payload) == raw(c)


def test_responses_as_captured() -> None:
    """Header fields and data equal C's; C's padding bytes are stack garbage, ours zeros."""
    for c in captures():
        data = bytes.fromhex(c["response_data_hex"])
        ours = codec.encode_response(c["id"], c["error"], data)
        theirs = bytes.fromhex(c["response_hex"])
        assert len(ours) == len(theirs) == c["response_header"]["size"]
        for offset in (0, 8, 16):
            assert ours[offset : offset + 4] == theirs[offset : offset + 4], c["note"]
        assert ours[24:] == theirs[24:]
        assert ours[4:8] + ours[12:16] + ours[20:24] == bytes(12)
        assert codec.decode_response(ours) == codec.Response(c["id"], c["error"], data)


def test_error_responses_carry_no_data() -> None:
    assert codec.encode_response(6, -2, b"ignored") == struct.pack("<i4xi4xi4x", 6, 24, -2)


def test_decode_response_checks_the_size() -> None:
    with pytest.raises(InvalidArgument):
        codec.decode_response(b"\0" * 10)
    with pytest.raises(InvalidArgument):
        codec.decode_response(codec.encode_response(1, 0, b"abc") + b"x")


def req(op: Op, payload: bytes) -> bytes:
    return codec.encode_request(op, payload)


@pytest.mark.parametrize(
    ("op", "payload"),
    [
        (Op.GET_FS_VERSION, b"x"),
        (Op.GET_RRD_DUMP, b"\0"),
        (Op.SET_STATUS, b"k" * 255),  # one byte short of the name field
        (Op.GET_STATUS, bytes(511)),
        (Op.GET_CONFIG, b""),
        (Op.LOG_CLUSTER_MSG, b""),
        (Op.LOG_CLUSTER_MSG, b"\x05\x02\x02a\0b\0"),  # no message byte
        (Op.LOG_CLUSTER_MSG, b"\x05\x02\x02ab\0c\0"),  # ident not NUL-terminated where it says
        (Op.LOG_CLUSTER_MSG, b"\x05\x02\x02a\0bcdx"),  # tag and message not terminated
        (Op.LOG_CLUSTER_MSG, b"\x05\x02\x02a\0b\0msg"),  # the last byte is not NUL
        (Op.LOG_CLUSTER_MSG, b"\x05\xff\xffa\0b\0c\0"),  # lengths beyond the request
        (Op.GET_CLUSTER_LOG, bytes(16)),
        (Op.GET_GUEST_CONFIG_PROPERTY, b"\x01\0\0"),  # shorter than the vmid
        (Op.GET_GUEST_CONFIG_PROPERTY, struct.pack("<I", 99) + b"name\0"),
        (Op.GET_GUEST_CONFIG_PROPERTIES, struct.pack("<I", 1) + b"\x01a\0"),
        (Op.VERIFY_TOKEN, b"\0"),
        (Op.VERIFY_TOKEN, b"a\nb\0"),
        (Op.VERIFY_TOKEN, b"a\0b\0"),
        (Op.VERIFY_TOKEN, b"ab"),
    ],
)
def test_malformed_requests_are_invalid(op: Op, payload: bytes) -> None:
    with pytest.raises(InvalidArgument):
        codec.decode_request(op, req(op, payload))


def test_names_are_cut_where_c_forces_a_nul() -> None:
    long_key = b"k" * 300
    payload = long_key[:256] + b"value"
    assert codec.decode_request(Op.SET_STATUS, req(Op.SET_STATUS, payload)) == codec.SetStatus(
        "k" * 255, b"value"
    )
    path = codec.decode_request(Op.GET_CONFIG, req(Op.GET_CONFIG, b"abc"))  # the last byte becomes NUL
    assert path == codec.GetConfig("ab")
    assert codec.decode_request(
        Op.GET_STATUS, req(Op.GET_STATUS, b"k\0" + bytes(254) + b"n" * 256 + b"xx")
    ) == (codec.GetStatus("k", "n" * 255))


def test_log_strings_as_c_reads_them() -> None:
    # ident_len 0: C checks the tag_len byte before the strings; ident, tag and msg then coincide
    assert codec.decode_request(Op.LOG_CLUSTER_MSG, req(Op.LOG_CLUSTER_MSG, b"\x05\x00\x00hi\0")) == (
        codec.LogMessage(5, "hi", "hi", b"hi")
    )
    # an embedded NUL ends a string early, as C's char pointers do
    assert codec.decode_request(
        Op.LOG_CLUSTER_MSG, req(Op.LOG_CLUSTER_MSG, b"\x07\x04\x02a\0c\0t\0m\0n\0")
    ) == (codec.LogMessage(7, "a", "t", b"m"))
    bytes_in_names = codec.decode_request(
        Op.LOG_CLUSTER_MSG, req(Op.LOG_CLUSTER_MSG, b"\x05\x02\x02\xff\0t\0m\0")
    )
    assert isinstance(bytes_in_names, codec.LogMessage)
    assert bytes_in_names.ident.encode("utf-8", "surrogateescape") == b"\xff"


def test_guest_property_lists() -> None:
    def props(payload: bytes) -> tuple[bytes, ...]:
        request = codec.decode_request(
            Op.GET_GUEST_CONFIG_PROPERTIES,
            req(Op.GET_GUEST_CONFIG_PROPERTIES, struct.pack("<I", 100) + payload),
        )
        assert isinstance(request, codec.GuestProperties)
        assert request.vmid == 100
        return request.properties

    assert props(b"\x02name\0memory\0") == (b"name", b"memory")
    assert props(b"\x00name\0") == ()  # no count
    assert props(b"\x01n") == ()  # too short
    assert props(b"\x02name\0") == ()  # fewer names than counted
    assert props(b"\x01name\0x\0") == ()  # bytes left over
    assert props(b"\x01Name\0") == ()  # must start with a-z
    assert props(b"\x02a\0\0") == ()  # an empty name
    assert props(b"\x01name") == ()  # not terminated
    # op 11 takes any property, even an empty one (it then matches lines starting with ':')
    single = codec.decode_request(
        Op.GET_GUEST_CONFIG_PROPERTY, req(Op.GET_GUEST_CONFIG_PROPERTY, struct.pack("<I", 0) + b"\0")
    )
    assert single == codec.GuestProperties(0, (b"",))
    # op 11 with only the vmid: the vmlist is checked first, so the error comes later (EINVAL)
    assert codec.decode_request(
        Op.GET_GUEST_CONFIG_PROPERTY, req(Op.GET_GUEST_CONFIG_PROPERTY, struct.pack("<I", 100))
    ) == codec.GuestProperties(100, ())


def test_get_health_is_ours_and_takes_no_payload() -> None:
    assert codec.operation(1001) is Op.GET_HEALTH
    assert max(op for op in Op if op is not Op.GET_HEALTH) == 13  # the original's ids stay 1-13
    assert codec.decode_request(Op.GET_HEALTH, req(Op.GET_HEALTH, b"")) == codec.HealthReport()
    with pytest.raises(InvalidArgument):
        codec.decode_request(Op.GET_HEALTH, req(Op.GET_HEALTH, b"\0"))
    assert {Op.SET_STATUS, Op.LOG_CLUSTER_MSG, Op.GET_HEALTH} == codec.ROOT_ONLY_OPS
