"""The barrier messages of the majority confirmation (corosync/confirm.py): our own format.

Only our daemons send them, each to a CPG group of its own node, so no other implementation
ever reads them: an 8-byte little-endian sequence number.
"""

from __future__ import annotations

import struct

BARRIER_GROUP = b"pmxcfs_py_barrier_v2_"
"""The barrier groups' prefix: each node's daemon joins its own, ``<prefix><nodeid>``, so that
no other node is woken by its barriers (totem orders every group on one ring all the same)."""

_BARRIER = struct.Struct("<Q")


def barrier_group(nodeid: int) -> bytes:
    """The CPG group of node ``nodeid``'s barriers."""
    return BARRIER_GROUP + str(nodeid).encode()


def encode_barrier(number: int) -> bytes:
    """The payload of barrier ``number``."""
    return _BARRIER.pack(number)


def decode_barrier(payload: bytes) -> int | None:
    """The barrier's number, or None if ``payload`` is not a barrier."""
    if len(payload) != _BARRIER.size:
        return None
    number: int = _BARRIER.unpack(payload)[0]
    return number
