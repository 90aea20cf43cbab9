"""DCDB delivery: a NORMAL message, delivered in total order, applied to the tree (2.1, 2.3).

Every node applies the same message the same way: writer = the sender's node id, mtime = the
sender's header time (MTIME carries its own in the offset field). Pure: the fs actor calls it
and persists the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from errors import InvalidArgument
from memdb.checksum import entry_checksum
from memdb.paths import is_lockdir_path
from memdb.tree import Applied, MemDb
from wire.dcdb import DcdbMessageType, FuseMessage, UnlockMessage


@dataclass(frozen=True, slots=True)
class Delivered:
    """One delivered DCDB NORMAL message."""

    subtype: int
    message: FuseMessage | UnlockMessage
    sender: int
    """The sender's corosync node id: the writer of the change."""
    time: int
    """The sender's header time: the mtime of the change."""
    local: bool = False
    """Sent by this node's own daemon (C: dfsm_nodeid_is_local, node id and pid)."""


def apply_fuse(memdb: MemDb, delivered: Delivered) -> Applied:
    """Run a WRITE/MKDIR/DELETE/RENAME/CREATE/MTIME on the tree; domain errors as the tree raises them."""
    msg = delivered.message
    if not isinstance(msg, FuseMessage) or msg.path is None:
        raise InvalidArgument(str(delivered.subtype), "message without a path")
    path, writer, mtime = msg.path, delivered.sender, delivered.time
    match delivered.subtype:
        case DcdbMessageType.WRITE:
            truncate = msg.flags != 0
            return memdb.write(path, writer, mtime, msg.data, msg.offset, truncate=truncate)
        case DcdbMessageType.MKDIR:
            return memdb.mkdir(path, writer, mtime)
        case DcdbMessageType.DELETE:
            return memdb.delete(path, writer, mtime)
        case DcdbMessageType.RENAME:
            if msg.to is None:
                raise InvalidArgument(path, "rename without a target")
            return memdb.rename(path, msg.to, writer, mtime)
        case DcdbMessageType.CREATE:
            return memdb.create(path, writer, mtime)
        case DcdbMessageType.MTIME:
            return memdb.set_mtime(path, writer, msg.offset)
    raise InvalidArgument(str(delivered.subtype), "not a file system message")


def lock_matches(memdb: MemDb, msg: UnlockMessage) -> bool:
    """The path is an existing lock directory whose checksum is still ``msg.csum`` (2.10)."""
    entry = memdb.lookup(msg.path)
    if entry is None or not entry.is_dir or not is_lockdir_path(msg.path):
        return False
    return entry_checksum(entry) == msg.csum


def unlock_due(memdb: MemDb, msg: UnlockMessage) -> bool:
    """On the lowest node: the lock still matches and has been unchanged for over 120 s."""
    return lock_matches(memdb, msg) and memdb.locks.expired(msg.path.strip("/"), msg.csum)


def apply_unlock(memdb: MemDb, delivered: Delivered) -> Applied | None:
    """UNLOCK: every node deletes the lock if it still matches; None if it changed meanwhile."""
    msg = delivered.message
    if not isinstance(msg, UnlockMessage) or not lock_matches(memdb, msg):
        return None
    return memdb.delete(msg.path, delivered.sender, delivered.time)
