"""DCDB payloads in group pve_dcdb_v1: tree changes, the memdb index, UPDATE records, verify (dcdb.c).

NORMAL payloads are a "fuse message" (WRITE ... MTIME) or an "unlock message" (UNLOCK_REQUEST,
UNLOCK); ``decode_payload``/``encode_payload`` pick the layout by subtype. The STATE payload is the
memdb index, an UPDATE carries one tree entry, and VERIFY_REQUEST/VERIFY carry the checksum round
(sent by dfsm.c; only DCDB has a checksum callback). Paths are memdb paths without a leading ``/``.
"""

from __future__ import annotations

import operator
import struct
from dataclasses import dataclass
from enum import IntEnum
from itertools import islice
from typing import NamedTuple

from wire._codec import cstring, encode_cstring, fail, need, pack, unpack

FUSE_HEADER = struct.Struct("<IIIII")
"""size, offset, pathlen, tolen, flags (dcdb_send_fuse_message); then path, to, data."""
CSUM_SIZE = 32
"""A SHA-256 digest: lock checksum, index digest, verify checksum (memdb.h ``char digest[32]``)."""
UNLOCK_MIN_SIZE = CSUM_SIZE + 1
"""The shortest unlock message: csum and an empty path's NUL (dcdb_parse_unlock_request)."""
INDEX_HEADER = struct.Struct("<QQIIII")
"""memdb_index_t (memdb.h): version, last_inode, writer, mtime, size (entries), bytes (total)."""
INDEX_ENTRY = struct.Struct(f"<Q{CSUM_SIZE}s")
"""memdb_index_extry_t (memdb.h): inode, then the entry digest (inode not hashed)."""
UPDATE_HEADER = struct.Struct("<QQQIIIIB")
"""dcdb_send_update_inode: parent, inode, version, writer, mtime, size, namelen, type; then name, data."""
VERIFY_REQUEST = struct.Struct("<Q")
"""dfsm_verify_request: the u64 csum_id of this round."""
VERIFY = struct.Struct(f"<Q{CSUM_SIZE}s")
"""The VERIFY reply (dfsm.c): csum_id, then the full-tree checksum."""

DT_DIR = 4
"""dirent.h; the only two inode types memdb knows."""
DT_REG = 8
WRITE_FLAG_TRUNCATE = 1
"""CFS_WRITE flags: truncate the file before writing (any non-zero value truncates)."""


class DcdbMessageType(IntEnum):
    """dcdb_message_t (dcdb.h): the NORMAL subtypes of the DCDB group."""

    WRITE = 1
    MKDIR = 2
    DELETE = 3
    RENAME = 4
    CREATE = 5
    MTIME = 6
    UNLOCK_REQUEST = 7
    UNLOCK = 8


FUSE_TYPES = frozenset(
    {
        DcdbMessageType.WRITE,
        DcdbMessageType.MKDIR,
        DcdbMessageType.DELETE,
        DcdbMessageType.RENAME,
        DcdbMessageType.CREATE,
        DcdbMessageType.MTIME,
    }
)
UNLOCK_TYPES = frozenset({DcdbMessageType.UNLOCK_REQUEST, DcdbMessageType.UNLOCK})


@dataclass(frozen=True, slots=True, kw_only=True)
class FuseMessage:
    """WRITE/MKDIR/DELETE/RENAME/CREATE/MTIME; the subtype lives in the DFSM header."""

    path: str | None
    """The memdb path; None encodes as pathlen 0 (C never sends that)."""
    to: str | None = None
    """RENAME's target; None (tolen 0) for every other subtype."""
    data: bytes = b""
    """WRITE's bytes; its length is the ``size`` field."""
    offset: int = 0
    """WRITE: the file offset (truncate: the new length); MTIME: the new mtime in seconds."""
    flags: int = 0
    """WRITE: WRITE_FLAG_TRUNCATE or 0."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnlockMessage:
    """UNLOCK_REQUEST/UNLOCK: the lock directory's checksum as the sender saw it, and its path."""

    csum: bytes
    path: str


DcdbPayload = FuseMessage | UnlockMessage


class IndexEntry(NamedTuple):
    """One index record: an inode and the SHA-256 of the entry without its inode.

    A named tuple, not a dataclass: a STATE carries one per tree entry, and every member's is
    decoded at each membership change (10,000 entries decode ~5x faster this way).
    """

    inode: int
    digest: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class MemdbIndex:
    """The STATE payload: the root's version/writer/mtime and every entry's digest, by inode."""

    version: int
    last_inode: int
    writer: int
    mtime: int
    entries: tuple[IndexEntry, ...]
    """Sorted ascending by inode, root (inode 0) included."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateRecord:
    """One tree entry as the sync leader sends it; ``data`` only for files."""

    parent: int
    inode: int
    version: int
    writer: int
    mtime: int
    type: int
    """DT_DIR or DT_REG; the root is sent as DT_DIR with the name ''."""
    name: str
    data: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyRequest:
    """VERIFY_REQUEST: the lowest node asks everyone to compute the tree checksum."""

    csum_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Verify:
    """VERIFY: the requester's checksum for round ``csum_id``."""

    csum_id: int
    csum: bytes


def decode_fuse(buf: bytes) -> FuseMessage:
    """A fuse message (dcdb_parse_fuse_message's checks, plus no NUL inside a string).

    Raises:
        WireFormatError: truncated, a length mismatch, or a string not NUL-terminated.
    """
    size, offset, pathlen, tolen, flags = unpack(FUSE_HEADER, buf, 0, "fuse message")
    expected = FUSE_HEADER.size + size + pathlen + tolen
    if len(buf) != expected:
        raise fail("fuse message", 0, f"length {len(buf)} != 20 + size + pathlen + tolen = {expected}")
    pos = FUSE_HEADER.size
    path = cstring(buf, pos, pathlen, "fuse message path") if pathlen else None
    pos += pathlen
    to = cstring(buf, pos, tolen, "fuse message to") if tolen else None
    pos += tolen
    return FuseMessage(path=path, to=to, data=bytes(buf[pos:]), offset=offset, flags=flags)


def encode_fuse(msg: FuseMessage) -> bytes:
    """The payload of a fuse message."""
    path = encode_cstring(msg.path, "fuse message path") if msg.path is not None else b""
    to = encode_cstring(msg.to, "fuse message to") if msg.to is not None else b""
    header = pack(FUSE_HEADER, "fuse message", len(msg.data), msg.offset, len(path), len(to), msg.flags)
    return header + path + to + msg.data


def decode_unlock(buf: bytes) -> UnlockMessage:
    """An unlock message: 32-byte checksum, then the NUL-terminated path filling the rest.

    Raises:
        WireFormatError: shorter than 33 bytes, or the path not NUL-terminated at the end.
    """
    need(buf, 0, UNLOCK_MIN_SIZE, "unlock message")
    path = cstring(buf, CSUM_SIZE, len(buf) - CSUM_SIZE, "unlock message path")
    return UnlockMessage(csum=bytes(buf[:CSUM_SIZE]), path=path)


def encode_unlock(msg: UnlockMessage) -> bytes:
    """The payload of an unlock message."""
    if len(msg.csum) != CSUM_SIZE:
        raise fail("unlock message csum", 0, f"cannot encode {len(msg.csum)} bytes, needs {CSUM_SIZE}")
    return msg.csum + encode_cstring(msg.path, "unlock message path")


def decode_payload(subtype: int, buf: bytes) -> DcdbPayload:
    """The NORMAL payload of DCDB subtype ``subtype``.

    Raises:
        WireFormatError: an unknown subtype (C leaves the group) or a malformed payload.
    """
    if subtype in UNLOCK_TYPES:
        return decode_unlock(buf)
    if subtype in FUSE_TYPES:
        return decode_fuse(buf)
    raise fail("DCDB message subtype", 0, f"unknown subtype {subtype}")


def encode_payload(msg: DcdbPayload) -> bytes:
    """The NORMAL payload bytes of ``msg``."""
    if isinstance(msg, UnlockMessage):
        return encode_unlock(msg)
    return encode_fuse(msg)


def decode_index(buf: bytes) -> MemdbIndex:
    """The memdb index of a STATE message.

    Raises:
        WireFormatError: truncated, ``bytes`` not the blob's length or not 32 + 40 * size, or
            the inodes not strictly ascending.
    """
    version, last_inode, writer, mtime, size, total = unpack(INDEX_HEADER, buf, 0, "memdb index")
    if total != len(buf):
        raise fail("memdb index", 28, f"bytes field {total} != blob length {len(buf)}")
    if total != INDEX_HEADER.size + INDEX_ENTRY.size * size:
        raise fail(
            "memdb index", 24, f"{size} entries need {INDEX_HEADER.size + INDEX_ENTRY.size * size} bytes"
        )
    entries = tuple(map(IndexEntry._make, INDEX_ENTRY.iter_unpack(memoryview(buf)[INDEX_HEADER.size :])))
    inodes = [entry[0] for entry in entries]
    if not all(map(operator.lt, inodes, islice(inodes, 1, None))):
        k = next(k for k in range(1, len(inodes)) if inodes[k] <= inodes[k - 1])
        pos = INDEX_HEADER.size + k * INDEX_ENTRY.size
        raise fail("memdb index", pos, f"inode {inodes[k]} after {inodes[k - 1]}: not ascending")
    return MemdbIndex(version=version, last_inode=last_inode, writer=writer, mtime=mtime, entries=entries)


def encode_index(idx: MemdbIndex) -> bytes:
    """The STATE payload for ``idx`` (``size`` and ``bytes`` follow from the entries)."""
    size = len(idx.entries)
    total = INDEX_HEADER.size + INDEX_ENTRY.size * size
    parts = [
        pack(INDEX_HEADER, "memdb index", idx.version, idx.last_inode, idx.writer, idx.mtime, size, total)
    ]
    for entry in idx.entries:
        if len(entry.digest) != CSUM_SIZE:
            raise fail("memdb index digest", 0, f"cannot encode {len(entry.digest)} bytes, needs {CSUM_SIZE}")
        parts.append(pack(INDEX_ENTRY, "memdb index entry", entry.inode, entry.digest))
    return b"".join(parts)


def decode_update(buf: bytes) -> UpdateRecord:
    """One UPDATE record (dcdb_parse_update_inode's checks, which read 41 bytes after checking 40).

    Raises:
        WireFormatError: truncated, an unknown type, a length mismatch, a directory with a
            size, or a name not NUL-terminated.
    """
    parent, inode, version, writer, mtime, size, namelen, kind = unpack(UPDATE_HEADER, buf, 0, "update")
    if kind not in (DT_DIR, DT_REG):
        raise fail("update", 40, f"unknown inode type {kind}")
    expected = UPDATE_HEADER.size + namelen + size
    if len(buf) != expected:
        raise fail("update", 0, f"length {len(buf)} != 41 + namelen + size = {expected}")
    if kind == DT_DIR and size:
        raise fail("update", 32, f"directory with size {size}")
    name = cstring(buf, UPDATE_HEADER.size, namelen, "update name")
    data = bytes(buf[UPDATE_HEADER.size + namelen :])
    return UpdateRecord(
        parent=parent,
        inode=inode,
        version=version,
        writer=writer,
        mtime=mtime,
        type=kind,
        name=name,
        data=data,
    )


def encode_update(rec: UpdateRecord) -> bytes:
    """The UPDATE payload for ``rec``."""
    if rec.type not in (DT_DIR, DT_REG):
        raise fail("update", 40, f"cannot encode inode type {rec.type}")
    if rec.type == DT_DIR and rec.data:
        raise fail("update", 32, "cannot encode a directory with data")
    name = encode_cstring(rec.name, "update name")
    header = pack(
        UPDATE_HEADER,
        "update",
        rec.parent,
        rec.inode,
        rec.version,
        rec.writer,
        rec.mtime,
        len(rec.data),
        len(name),
        rec.type,
    )
    return header + name + rec.data


def decode_verify_request(buf: bytes) -> VerifyRequest:
    """A VERIFY_REQUEST payload: exactly 8 bytes (C leaves the group otherwise)."""
    _exact(buf, VERIFY_REQUEST, "verify request")
    return VerifyRequest(csum_id=VERIFY_REQUEST.unpack(buf)[0])


def encode_verify_request(msg: VerifyRequest) -> bytes:
    """The VERIFY_REQUEST payload."""
    return pack(VERIFY_REQUEST, "verify request", msg.csum_id)


def decode_verify(buf: bytes) -> Verify:
    """A VERIFY payload: exactly 40 bytes (C leaves the group otherwise)."""
    _exact(buf, VERIFY, "verify")
    csum_id, csum = VERIFY.unpack(buf)
    return Verify(csum_id=csum_id, csum=csum)


def encode_verify(msg: Verify) -> bytes:
    """The VERIFY payload."""
    if len(msg.csum) != CSUM_SIZE:
        raise fail("verify csum", 8, f"cannot encode {len(msg.csum)} bytes, needs {CSUM_SIZE}")
    return pack(VERIFY, "verify", msg.csum_id, msg.csum)


def _exact(buf: bytes, layout: struct.Struct, what: str) -> None:
    if len(buf) != layout.size:
        raise fail(what, 0, f"length {len(buf)}, must be exactly {layout.size}")
