"""DFSM message framing: the headers every CPG message of both groups starts with (dfsm.c).

A CPG message is one header followed by the application payload, kept here as bytes; the payloads
are decoded by ``wire.dcdb`` and ``wire.kvstore``. All integers are little-endian (the C structs in
host order on x86_64).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from wire._codec import fail, pack, unpack

BASE_HEADER = struct.Struct("<HHIII")
"""dfsm_message_header_t: type u16, subtype u16, protocol_version u32, time u32, reserved u32."""
NORMAL_HEADER = struct.Struct("<HHIIIQ")
"""dfsm_message_normal_header_t: the base header, then count u64."""
STATE_HEADER = struct.Struct("<HHIIIIIII")
"""dfsm_message_state_header_t: the base header, then epoch, time, nodeid, pid (all u32)."""

DCDB_PROTOCOL_VERSION = 1
"""DCDB_PROTOCOL_VERSION (dcdb.h), group pve_dcdb_v1."""
KVSTORE_PROTOCOL_VERSION = 0
"""The kvstore instance's version passed to dfsm_new (status.c), group pve_kvstore_v1."""


class MessageType(IntEnum):
    """dfsm_message_t (dfsm.c). Types 1..6 are the state messages and carry the sync epoch."""

    NORMAL = 0
    SYNC_START = 1
    STATE = 2
    UPDATE = 3
    UPDATE_COMPLETE = 4
    VERIFY_REQUEST = 5
    VERIFY = 6


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseHeader:
    """The 16 bytes every message starts with; ``type`` is not checked, so a newer peer's can be read."""

    type: int
    subtype: int
    protocol_version: int
    time: int
    """The sender's time(NULL); for NORMAL messages the mtime the application uses."""
    reserved: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Epoch:
    """dfsm_sync_epoch_t: identifies one sync round; state messages of another round are dropped."""

    epoch: int
    """The creator's per-process counter, incremented on each configuration change."""
    time: int
    nodeid: int
    pid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NormalMessage:
    """A NORMAL message: one application message (``subtype`` is its type) under a 24-byte header."""

    subtype: int
    protocol_version: int
    time: int
    count: int
    """The sender's per-group message counter, starting at 1."""
    payload: bytes
    reserved: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class StateMessage:
    """A state message (SYNC_START ... VERIFY) under a 32-byte header carrying the sync epoch."""

    type: MessageType
    protocol_version: int
    time: int
    epoch: Epoch
    payload: bytes
    """STATE: the application state; UPDATE: one record; VERIFY*: see wire.dcdb; else empty."""
    subtype: int = 0
    reserved: int = 0


Message = NormalMessage | StateMessage


def decode_base_header(buf: bytes) -> BaseHeader:
    """The base header alone, so the receiver can check the protocol version before the type."""
    fields = unpack(BASE_HEADER, buf, 0, "DFSM base header")
    return BaseHeader(
        type=fields[0], subtype=fields[1], protocol_version=fields[2], time=fields[3], reserved=fields[4]
    )


def decode(buf: bytes) -> Message:
    """One CPG message of either group.

    Raises:
        WireFormatError: the message is shorter than its header, or its type is unknown.
    """
    base = decode_base_header(buf)
    if base.type == MessageType.NORMAL:
        count = unpack(NORMAL_HEADER, buf, 0, "DFSM NORMAL header")[5]
        return NormalMessage(
            subtype=base.subtype,
            protocol_version=base.protocol_version,
            time=base.time,
            count=count,
            payload=bytes(buf[NORMAL_HEADER.size :]),
            reserved=base.reserved,
        )
    try:
        msg_type = MessageType(base.type)
    except ValueError:
        raise fail("DFSM message type", 0, f"unknown type {base.type}") from None
    epoch, epoch_time, nodeid, pid = unpack(STATE_HEADER, buf, 0, "DFSM state header")[5:]
    return StateMessage(
        type=msg_type,
        subtype=base.subtype,
        protocol_version=base.protocol_version,
        time=base.time,
        epoch=Epoch(epoch=epoch, time=epoch_time, nodeid=nodeid, pid=pid),
        payload=bytes(buf[STATE_HEADER.size :]),
        reserved=base.reserved,
    )


def encode(msg: Message) -> bytes:
    """The bytes of ``msg``: header, then payload."""
    if isinstance(msg, NormalMessage):
        header = pack(
            NORMAL_HEADER,
            "DFSM NORMAL header",
            MessageType.NORMAL,
            msg.subtype,
            msg.protocol_version,
            msg.time,
            msg.reserved,
            msg.count,
        )
        return header + msg.payload
    if msg.type == MessageType.NORMAL:
        raise fail("DFSM state header", 0, "a StateMessage cannot have type NORMAL")
    header = pack(
        STATE_HEADER,
        "DFSM state header",
        msg.type,
        msg.subtype,
        msg.protocol_version,
        msg.time,
        msg.reserved,
        msg.epoch.epoch,
        msg.epoch.time,
        msg.epoch.nodeid,
        msg.epoch.pid,
    )
    return header + msg.payload
