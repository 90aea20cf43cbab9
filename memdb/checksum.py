"""Entry checksums, the tree checksum and the index the cluster compares (memdb.c)."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memdb.entry import Entry

_FIELDS = struct.Struct("<IIIBQ")
"""writer u32, mtime u32, size u32, type u8, parent u64: packed, little-endian."""
_INODE = struct.Struct("<Q")
_VERSION = struct.Struct("<Q")
INDEX_HEADER = struct.Struct("<QQIIII")
"""version u64, last_inode u64, writer u32, mtime u32, entry count u32, total bytes u32."""
INDEX_ENTRY_SIZE = 40
"""inode u64 + SHA-256 digest."""


def _feed(h: hashlib._Hash, entry: Entry, with_inode: bool) -> None:
    if with_inode:
        h.update(_INODE.pack(entry.inode))
    h.update(_VERSION.pack(entry.version))
    h.update(_FIELDS.pack(entry.writer, entry.mtime, len(entry.data), entry.type, entry.parent))
    h.update(entry.name.encode("utf-8", "surrogateescape"))
    if entry.data:
        h.update(entry.data)


def entry_checksum(entry: Entry) -> bytes:
    """SHA-256 of one entry, inode included (used to identify a lock's state)."""
    h = hashlib.sha256()
    _feed(h, entry, with_inode=True)
    return h.digest()


def entry_digest(entry: Entry) -> bytes:
    """SHA-256 of one entry without its inode (an index record)."""
    h = hashlib.sha256()
    _feed(h, entry, with_inode=False)
    return h.digest()


def tree_checksum(entries: Iterable[Entry]) -> bytes:
    """One SHA-256 over every entry, root included, sorted by inode."""
    h = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e.inode):
        _feed(h, entry, with_inode=True)
    return h.digest()


def encode_index(root: Entry, entries: Iterable[Entry]) -> bytes:
    """The memdb index: a 32-byte header, then (inode, digest) for each entry by inode."""
    ordered = sorted(entries, key=lambda e: e.inode)
    count = len(ordered)
    last_inode = ordered[-1].inode if ordered else 0
    total = INDEX_HEADER.size + INDEX_ENTRY_SIZE * count
    parts = [INDEX_HEADER.pack(root.version, last_inode, root.writer, root.mtime, count, total)]
    for entry in ordered:
        parts.append(_INODE.pack(entry.inode))
        parts.append(entry_digest(entry))
    return b"".join(parts)
