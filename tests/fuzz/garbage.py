"""Garbage for the decoders and the DFSM: mutations of real messages, and what a message is.

Pure and without hypothesis, so that the rogue CPG member (tests/cluster/rogue.py) draws from the
same mutations with ``random.Random`` as the fuzz tests do with hypothesis
(tests/fuzz/strategies.py).

A :class:`Mutation` is a value (kind, position, width, value); :func:`apply` carries it out on a
buffer. Positions are taken modulo the buffer's length, so any drawn integer is a valid position
and shrinks well. ``classify`` tells, with our own codecs, what the DFSM of a group would make of
a message: the rogue sends only messages the codecs reject (never a well-formed lie), and the
DFSM fuzz knows which messages may legitimately change the application's data.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from errors import WireFormatError
from wire import dcdb, kvstore
from wire import dfsm as wire

EXTREME_U8 = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
EXTREME_U16 = (0, 1, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)
EXTREME_U32 = (0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
EXTREME_U64 = (0, 1, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFE, 0xFFFFFFFFFFFFFFFF)
EXTREMES = {1: EXTREME_U8, 2: EXTREME_U16, 4: EXTREME_U32, 8: EXTREME_U64}
WIDTH_FORMAT = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}
LYING_DELTAS = (-41, -33, -9, -2, -1, 1, 2, 8, 40, 4096, 1 << 20)
"""Added to the buffer's length to make a length field lie by a little or by a lot."""
HEADER_SPAN = 96
"""Most length and type fields of every layout lie in the first 96 bytes (fuse 20, update 41,
index 32, clog entry 44, DFSM state header 32 + payload headers)."""

KINDS = ("flip", "byte", "field", "lying", "truncate", "extend", "insert", "delete", "splice")


@dataclass(frozen=True, slots=True)
class Mutation:
    """One change to a buffer.

    ``flip``: toggle bit ``value % 8`` of byte ``pos``; ``byte``: set byte ``pos`` to ``value``;
    ``field``: overwrite ``width`` bytes at ``pos`` with the little-endian ``value`` (an extreme);
    ``lying``: the same with len(buf) + ``value`` (a length field that lies); ``truncate``: cut at
    ``pos``; ``extend``: append ``data``; ``insert``: insert ``data`` at ``pos``; ``delete``: drop
    ``width`` bytes at ``pos``; ``splice``: keep ``buf[:pos]`` and append ``data`` (the tail of
    another message).
    """

    kind: str
    pos: int = 0
    width: int = 1
    value: int = 0
    data: bytes = b""
    header: bool = True
    """Aim ``pos`` at the first HEADER_SPAN bytes (where the length and type fields are)."""


def _position(buf: bytes, mutation: Mutation, room: int = 1) -> int:
    span = len(buf) - room + 1
    if mutation.header:
        span = min(span, HEADER_SPAN)
    return mutation.pos % span if span > 0 else 0


def apply(buf: bytes, mutation: Mutation) -> bytes:
    """``buf`` with ``mutation`` carried out (a mutation that does not fit leaves it alone)."""
    kind = mutation.kind
    if kind in ("extend", "splice") or (kind == "insert" and not buf):
        if kind == "splice":
            return buf[: _position(buf, mutation, 0) if buf else 0] + mutation.data
        return buf + mutation.data
    if not buf:
        return buf
    if kind == "truncate":
        return buf[: _position(buf, mutation, 0) if len(buf) > 1 else 0]
    if kind == "insert":
        at = _position(buf, mutation, 0)
        return buf[:at] + mutation.data + buf[at:]
    if kind == "delete":
        at = _position(buf, mutation)
        return buf[:at] + buf[at + max(mutation.width, 1) :]
    if kind in ("field", "lying"):
        width = mutation.width if mutation.width in WIDTH_FORMAT else 4
        if len(buf) < width:
            return buf
        at = _position(buf, mutation, width)
        value = mutation.value if kind == "field" else len(buf) + mutation.value
        raw = struct.pack(WIDTH_FORMAT[width], value % (1 << (8 * width)))
        return buf[:at] + raw + buf[at + width :]
    at = _position(buf, mutation)
    old = buf[at]
    new = old ^ (1 << (mutation.value % 8)) if kind == "flip" else mutation.value & 0xFF
    return buf[:at] + bytes([new]) + buf[at + 1 :]


def apply_all(buf: bytes, mutations: Sequence[Mutation]) -> bytes:
    """``buf`` after every mutation, in order."""
    for mutation in mutations:
        buf = apply(buf, mutation)
    return buf


def random_mutation(rng: random.Random, others: Sequence[bytes] = ()) -> Mutation:
    """One mutation drawn with ``rng`` (the rogue's counterpart of strategies.mutations)."""
    kind = rng.choice(KINDS)
    header = rng.random() < 0.7
    pos = rng.randrange(1 << 20)
    width = rng.choice((1, 2, 4, 8))
    if kind == "field":
        return Mutation(kind, pos, width, rng.choice(EXTREMES[width]), header=header)
    if kind == "lying":
        return Mutation(kind, pos, rng.choice((4, 8)), rng.choice(LYING_DELTAS), header=header)
    if kind in ("extend", "insert"):
        data = rng.choice((b"\0", b"\xff" * 8, rng.randbytes(rng.randrange(1, 64))))
        return Mutation(kind, pos, data=data, header=header)
    if kind == "splice" and others:
        other = rng.choice(others)
        return Mutation(kind, pos, data=other[rng.randrange(len(other) + 1) :], header=header)
    return Mutation(kind if kind != "splice" else "truncate", pos, width, rng.randrange(256), header=header)


# ----- what a DFSM makes of a message ---------------------------------------------------------

SHORT = "short"
"""Shorter than its header: the DFSM leaves."""
NEWER = "newer"
"""A newer protocol version: VERSION_ERROR, permanent until restart (dfsm.c, as in C)."""
OLDER = "older"
"""An older protocol version: ignored."""
BAD_TYPE = "bad-type"
"""A state header of an unknown type: ignored in SYNCED, LEAVE while syncing."""
BAD_PAYLOAD = "bad-payload"
"""A good header whose payload the codec (or the application) rejects."""
WELL_FORMED = "well-formed"
"""A message the codecs accept: the application may act on it."""

DCDB_GROUP = "pve_dcdb_v1"
KVSTORE_GROUP = "pve_kvstore_v1"
VERSION = {DCDB_GROUP: wire.DCDB_PROTOCOL_VERSION, KVSTORE_GROUP: wire.KVSTORE_PROTOCOL_VERSION}

T = wire.MessageType
_PAYLOAD_FREE = (T.SYNC_START, T.UPDATE_COMPLETE)
"""The DFSM does not look at these payloads."""


def _dcdb_state(msg_type: int) -> Callable[[bytes], object] | None:
    return {
        T.STATE: dcdb.decode_index,
        T.UPDATE: dcdb.decode_update,
        T.VERIFY_REQUEST: dcdb.decode_verify_request,
        T.VERIFY: dcdb.decode_verify,
    }.get(T(msg_type))


def _kvstore_state(msg_type: int) -> Callable[[bytes], object] | None:
    # kvstore has no update phase: an UPDATE is never applied, so it counts as a bad payload
    return {
        T.STATE: kvstore.decode_clog,
        T.VERIFY_REQUEST: dcdb.decode_verify_request,
        T.VERIFY: dcdb.decode_verify,
    }.get(T(msg_type))


def classify(group: str, data: bytes) -> str:
    """What the DFSM of ``group`` (and its application's codec) makes of ``data``."""
    ours = VERSION[group]
    if len(data) < wire.BASE_HEADER.size:
        return SHORT
    base = wire.decode_base_header(data)
    if base.protocol_version > ours:
        return NEWER
    if base.protocol_version < ours:
        return OLDER
    if base.type == T.NORMAL:
        if len(data) < wire.NORMAL_HEADER.size:
            return SHORT
        decode_payload = dcdb.decode_payload if group == DCDB_GROUP else kvstore.decode_payload
        return _judge(lambda: decode_payload(base.subtype, data[wire.NORMAL_HEADER.size :]))
    if len(data) < wire.STATE_HEADER.size:
        return SHORT
    if base.type not in set(T):
        return BAD_TYPE
    if base.type in _PAYLOAD_FREE:
        return WELL_FORMED
    decoder = (_dcdb_state if group == DCDB_GROUP else _kvstore_state)(base.type)
    if decoder is None:
        return BAD_PAYLOAD
    return _judge(lambda: decoder(data[wire.STATE_HEADER.size :]))


def _judge(decode: Callable[[], object]) -> str:
    try:
        decode()
    except WireFormatError:
        return BAD_PAYLOAD
    return WELL_FORMED


def with_version(data: bytes, version: int) -> bytes:
    """``data`` with its protocol_version field (bytes 4..8) set, if it is long enough."""
    if len(data) < 8:
        return data
    return data[:4] + struct.pack("<I", version) + data[8:]


def with_epoch(data: bytes, epoch: wire.Epoch) -> bytes:
    """A state message stamped with ``epoch`` (so that it passes the epoch check)."""
    if len(data) < wire.STATE_HEADER.size:
        return data
    stamp = struct.pack("<IIII", epoch.epoch, epoch.time, epoch.nodeid, epoch.pid)
    return data[:16] + stamp + data[32:]


def read_epoch(data: bytes) -> wire.Epoch | None:
    """The epoch of a state message, or None."""
    if len(data) < wire.STATE_HEADER.size or data[0:2] == b"\0\0":
        return None
    epoch, time, nodeid, pid = struct.unpack_from("<IIII", data, 16)
    return wire.Epoch(epoch=epoch, time=time, nodeid=nodeid, pid=pid)
