"""kvstore payloads in group pve_kvstore_v1: key/value updates, cluster log entries, the log ring.

NORMAL subtypes are UPDATE (``key[256]`` + value) and LOG (one clog entry); the STATE payload is
the sender's cluster log ring buffer as ``clog_sort`` lays it out (status.c, logger.c, logger.h).
C leaves stack garbage in the bytes after the key's NUL, and in the 4 padding bytes after a log
entry's strings (clog_pack fills an alloca'd buffer; the bytes travel on in LOG messages and
STATE rings): decoders ignore both, encoders write zeros.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import IntEnum

from wire._codec import (
    TEXT_ENCODING,
    TEXT_ERRORS,
    cstring,
    encode_cstring,
    fail,
    need,
    pack,
    unpack,
    wire_error,
)

KV_KEY_SIZE = 256
"""``char name[256]`` in kvstore_send_update_message (status.c): the key, NUL, then garbage."""
CLOG_ENTRY_HEADER = struct.Struct("<IIIIQQIBBBBI")
"""clog_entry_t up to ``data`` (logger.h): prev, next, uid, time, node_digest, ident_digest, pid,
priority, node_len, ident_len, tag_len, msg_len; the strings follow at offset 44."""
CLOG_ENTRY_SIZE = 48
"""sizeof(clog_entry_t) (logger.h): 44 bytes padded to 8. An entry is 48 + the string lengths."""
CLOG_BASE = struct.Struct("<II")
"""clog_base_t (logger.c): size (the whole buffer), cpos (offset of the newest entry)."""
CLOG_MAX_ENTRY_SIZE = 4096
"""CLOG_MAX_ENTRY_SIZE (logger.h)."""
CLOG_DEFAULT_SIZE = 8192 * 16
"""CLOG_DEFAULT_SIZE (logger.h): the ring C sends as its kvstore STATE."""
FNV1A_64_INIT = 0xCBF29CE484222325
"""FNV1A_64_INIT (logger.c)."""
FNV1A_64_PRIME = 0x100000001B3
_U64 = (1 << 64) - 1


class KvstoreMessageType(IntEnum):
    """kvstore_message_t (status.c): the NORMAL subtypes of the kvstore group."""

    UPDATE = 1
    UPDATE_COMPLETE = 2
    """Defined in C, never sent."""
    LOG = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class KvUpdate:
    """UPDATE: set ``key`` of the sending node to ``value``; an empty value deletes it."""

    key: str
    value: bytes
    """As the client passed it (Perl's values keep their trailing NUL)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClogEntry:
    """One cluster log entry; strings without their NUL, ``msg`` already sanitised by the creator."""

    uid: int
    """The creating process's counter."""
    time: int
    node_digest: int
    """fnv1a_64 of the node name including its NUL."""
    ident_digest: int
    """fnv1a_64 of the ident (user) including its NUL."""
    pid: int
    priority: int
    """syslog priority 0..7."""
    node: str
    ident: str
    tag: str
    msg: str
    prev: int = 0
    """Ring offset of the next older entry (0: none); 0 in LOG messages."""
    next: int = 0
    """Ring offset just past this entry's slot; 0 in LOG messages."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClogSlot:
    """An entry and the ring offset it sits at."""

    offset: int
    entry: ClogEntry


@dataclass(frozen=True, slots=True, kw_only=True)
class ClogState:
    """The kvstore STATE: a cluster log ring buffer."""

    size: int
    """The whole buffer's length, header included (C: CLOG_DEFAULT_SIZE)."""
    cpos: int
    """Offset of the newest entry; 0 if the log is empty."""
    slots: tuple[ClogSlot, ...]
    """The entries reachable from ``cpos``, newest first, as C walks them."""


def fnv1a_64(data: bytes) -> int:
    """64-bit FNV-1a (logger.c fnv_64a_buf); C hashes node and ident including the NUL."""
    value = FNV1A_64_INIT
    for byte in data:
        value = ((value ^ byte) * FNV1A_64_PRIME) & _U64
    return value


def decode_update(buf: bytes) -> KvUpdate:
    """An UPDATE payload (kvstore_parse_update_message's checks); the key's tail is ignored.

    Raises:
        WireFormatError: shorter than 256 bytes, or no NUL in the key field.
    """
    need(buf, 0, KV_KEY_SIZE, "kvstore update key")
    nul = buf.find(0, 0, KV_KEY_SIZE)
    if nul < 0:
        raise fail("kvstore update key", KV_KEY_SIZE - 1, "no NUL in the 256-byte key field")
    key = bytes(buf[:nul]).decode(TEXT_ENCODING, TEXT_ERRORS)
    return KvUpdate(key=key, value=bytes(buf[KV_KEY_SIZE:]))


def encode_update(msg: KvUpdate) -> bytes:
    """The UPDATE payload, with zeros after the key's NUL (C sends garbage there)."""
    key = encode_cstring(msg.key, "kvstore update key")
    if len(key) > KV_KEY_SIZE:
        raise fail("kvstore update key", 0, f"cannot encode {len(key) - 1} bytes, at most {KV_KEY_SIZE - 1}")
    return key.ljust(KV_KEY_SIZE, b"\0") + msg.value


def decode_log(buf: bytes) -> ClogEntry:
    """A LOG payload: exactly one entry (kvstore_parse_log_message's checks).

    Raises:
        WireFormatError: shorter than 48 bytes, a length other than 48 + the string lengths, or a
            string not NUL-terminated at its stated length.
    """
    entry, length = _decode_entry(buf, 0, "log message")
    if len(buf) != length:
        raise fail("log message", 0, f"length {len(buf)} != 48 + string lengths = {length}")
    return entry


def encode_log(entry: ClogEntry) -> bytes:
    """The LOG payload (and the ring image) of ``entry``; its 4 padding bytes are zero."""
    strings = [
        encode_cstring(text, f"log entry {name}")
        for name, text in (("node", entry.node), ("ident", entry.ident), ("tag", entry.tag))
    ]
    for name, raw in zip(("node", "ident", "tag"), strings, strict=True):
        if len(raw) > 255:
            raise fail(f"log entry {name}", 0, f"cannot encode {len(raw)} bytes with NUL, at most 255")
    msg = encode_cstring(entry.msg, "log entry msg")
    header = pack(
        CLOG_ENTRY_HEADER,
        "log entry",
        entry.prev,
        entry.next,
        entry.uid,
        entry.time,
        entry.node_digest,
        entry.ident_digest,
        entry.pid,
        entry.priority,
        len(strings[0]),
        len(strings[1]),
        len(strings[2]),
        len(msg),
    )
    padding = b"\0" * (CLOG_ENTRY_SIZE - CLOG_ENTRY_HEADER.size)
    return header + b"".join(strings) + msg + padding


KvstorePayload = KvUpdate | ClogEntry


def decode_payload(subtype: int, buf: bytes) -> KvstorePayload:
    """The NORMAL payload of kvstore subtype ``subtype``.

    Raises:
        WireFormatError: a subtype other than UPDATE or LOG (C logs it and goes on, no leave),
            or a malformed payload (C ignores the message).
    """
    if subtype == KvstoreMessageType.UPDATE:
        return decode_update(buf)
    if subtype == KvstoreMessageType.LOG:
        return decode_log(buf)
    raise fail("kvstore message subtype", 0, f"unknown subtype {subtype}")


def encode_payload(msg: KvstorePayload) -> bytes:
    """The NORMAL payload bytes of ``msg``."""
    if isinstance(msg, KvUpdate):
        return encode_update(msg)
    return encode_log(msg)


def decode_clog(buf: bytes) -> ClogState:
    """A kvstore STATE: the ring buffer, walked from ``cpos`` along ``prev`` as logger.c does.

    The walk stops at prev 0, when prev points forward into space at or before cpos (wrapped
    into overwritten space), or when it lands in (cpos, cpos + 4096].

    Raises:
        WireFormatError: ``size`` not the blob's length (or not > 8), an entry outside the
            buffer or malformed, or a ``prev`` cycle.
    """
    size, cpos = unpack(CLOG_BASE, buf, 0, "clog")
    if size != len(buf) or size <= CLOG_BASE.size:
        raise fail("clog", 0, f"size field {size} for a {len(buf)}-byte state")
    slots: list[ClogSlot] = []
    seen: set[int] = set()
    pos = cpos
    while pos and (pos <= cpos or pos > cpos + CLOG_MAX_ENTRY_SIZE):
        if pos < CLOG_BASE.size or pos in seen:
            problem = "inside the ring header" if pos < CLOG_BASE.size else "seen before: prev cycle"
            raise fail("clog entry", pos, problem)
        seen.add(pos)
        entry, _ = _decode_entry(buf, pos, "clog entry")
        slots.append(ClogSlot(offset=pos, entry=entry))
        if pos < entry.prev <= cpos:
            break
        pos = entry.prev
    return ClogState(size=size, cpos=cpos, slots=tuple(slots))


def encode_clog(state: ClogState) -> bytes:
    """The ring image of ``state``: each slot at its offset, the rest zero."""
    buf = bytearray(state.size)
    buf[: CLOG_BASE.size] = pack(CLOG_BASE, "clog", state.size, state.cpos)
    for slot in state.slots:
        image = encode_log(slot.entry)
        if slot.offset < CLOG_BASE.size or slot.offset + len(image) > state.size:
            raise fail(
                "clog entry", slot.offset, f"cannot place {len(image)} bytes in a {state.size}-byte ring"
            )
        buf[slot.offset : slot.offset + len(image)] = image
    return bytes(buf)


def layout_clog(entries: Sequence[ClogEntry], size: int = CLOG_DEFAULT_SIZE) -> ClogState:
    """A fresh ring holding ``entries`` (oldest first) as clog_sort writes it for a STATE.

    Slots are 8-byte aligned from offset 8; each entry's prev/next are set as clog_alloc_entry
    does. Sorting and trimming are the caller's (the status layer's) business.

    Raises:
        WireFormatError: the entries do not fit without wrapping.
    """
    slots: list[ClogSlot] = []
    cpos = 0
    pos = CLOG_BASE.size
    for entry in entries:
        length = CLOG_ENTRY_SIZE + sum(
            len(text.encode(TEXT_ENCODING, TEXT_ERRORS)) + 1
            for text in (entry.node, entry.ident, entry.tag, entry.msg)
        )
        slot_size = (length + 7) & ~7
        if pos + slot_size >= size:
            raise wire_error("clog", f"entry {len(slots)} would wrap a {size}-byte ring")
        placed = replace(entry, prev=cpos, next=pos + slot_size)
        slots.append(ClogSlot(offset=pos, entry=placed))
        cpos = pos
        pos += slot_size
    return ClogState(size=size, cpos=cpos, slots=tuple(reversed(slots)))


def _decode_entry(buf: bytes, offset: int, what: str) -> tuple[ClogEntry, int]:
    """The entry at ``offset`` and its length (48 + the string lengths)."""
    fields = unpack(CLOG_ENTRY_HEADER, buf, offset, what)
    prev, nxt, uid, time, node_digest, ident_digest, pid, priority = fields[:8]
    lengths = fields[8:]
    length = CLOG_ENTRY_SIZE + sum(lengths)
    need(buf, offset, length, what)
    texts = []
    pos = offset + CLOG_ENTRY_HEADER.size
    for name, strlen in zip(("node", "ident", "tag", "msg"), lengths, strict=True):
        texts.append(cstring(buf, pos, strlen, f"{what} {name}"))
        pos += strlen
    node, ident, tag, msg = texts
    entry = ClogEntry(
        prev=prev,
        next=nxt,
        uid=uid,
        time=time,
        node_digest=node_digest,
        ident_digest=ident_digest,
        pid=pid,
        priority=priority,
        node=node,
        ident=ident,
        tag=tag,
        msg=msg,
    )
    return entry, length
