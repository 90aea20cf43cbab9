"""Cluster mode: a change request goes to the cluster actor as a DCDB message.

The original's FUSE thread multicasts a change itself and waits for its delivery. Ours does the
same through :class:`Proposer`: the checks that need no tree (quorum, the 32-bit extent of a
write) come first, from the published snapshot's writability, then the message is told to the
cluster actor with the writer's reply future. The fs actor learns of the change only when it is
delivered, in total order, like every other node; nothing in between asks it anything.
"""

from __future__ import annotations

from typing import Any

import pykka

from actors.messages import (
    CreateFile,
    MakeDir,
    Propose,
    Remove,
    Rename,
    SetMtime,
    Truncate,
    WriteFile,
)
from errors import NotQuorate, PmxcfsError
from memdb.tree import check_extent
from replication.pending import PendingChange
from replication.refusals import RefusalLog
from wire.dcdb import WRITE_FLAG_TRUNCATE, DcdbMessageType, FuseMessage, UnlockMessage

NOT_QUORATE = "cluster not quorate - the tree is read-only"


def dcdb_message_for(request: object) -> tuple[DcdbMessageType, FuseMessage] | None:
    """The DCDB message that carries a file system change request (C: cfs-plug-memdb.c)."""
    match request:
        case WriteFile(path=path, data=data, offset=offset):
            return DcdbMessageType.WRITE, FuseMessage(path=path, data=data, offset=offset)
        case Truncate(path=path, size=size):
            return DcdbMessageType.WRITE, FuseMessage(path=path, offset=size, flags=WRITE_FLAG_TRUNCATE)
        case CreateFile(path=path):
            return DcdbMessageType.CREATE, FuseMessage(path=path)
        case MakeDir(path=path):
            return DcdbMessageType.MKDIR, FuseMessage(path=path)
        case Remove(path=path):
            return DcdbMessageType.DELETE, FuseMessage(path=path)
        case Rename(src=src, dst=dst):
            return DcdbMessageType.RENAME, FuseMessage(path=src, to=dst)
        case SetMtime(path=path, mtime=mtime):
            return DcdbMessageType.MTIME, FuseMessage(path=path, offset=mtime)
    return None


class Proposer:
    """Sends change requests to the cluster actor; thread-safe (FUSE threads, the fs actor)."""

    def __init__(self, cluster: pykka.ActorRef[Any], refusals: RefusalLog) -> None:
        self._cluster = cluster
        self._refusals = refusals

    def send(self, request: object, *, writable: bool) -> PendingChange | None:
        """Multicast ``request``; its future answers once it is delivered here and settled.

        Returns None if ``request`` is no DCDB change. ``writable``: the tree takes changes
        (quorum). A refusal is reported before it is raised, and later on the future.

        Raises:
            NotQuorate: not writable (EACCES).
            FileTooLarge: a write or truncate past the 32-bit fields (EFBIG), nothing sent.
            pykka.ActorDeadError: the cluster actor is gone.
        """
        proposal = dcdb_message_for(request)
        if proposal is None:
            return None
        try:
            if not writable:
                raise NotQuorate(reason=NOT_QUORATE)
            match request:  # EFBIG before anything is sent, as memdb checks it first
                case WriteFile(path=path, data=data, offset=offset):
                    check_extent(path, offset, len(data))
                case Truncate(path=path, size=size):
                    check_extent(path, size, 0)
        except PmxcfsError as exc:
            self._refusals.refused(request, exc)
            raise
        reply = PendingChange(request, self._refusals)
        subtype, payload = proposal
        self._cluster.tell(Propose(subtype=subtype, message=payload, reply=reply))
        return reply

    def send_unlock_request(self, unlock: UnlockMessage) -> None:
        """Ask the lowest node to remove an expired lock (fire and forget)."""
        self._cluster.tell(Propose(subtype=DcdbMessageType.UNLOCK_REQUEST, message=unlock, reply=None))
