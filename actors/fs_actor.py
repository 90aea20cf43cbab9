"""FsActor: the only owner of the in-memory tree (memdb).

Changes are applied here, persisted through the db actor (a leaf it may ask), and
announced to the status actor by tell. A file's creation and writes through a handle are
persisted when that handle is closed or fsynced (CommitPending), or with the next other change,
in one transaction: a config written in several chunks costs one commit, not one per chunk.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors.messages import (
    ActivateTree,
    ApplyDelivered,
    AttachCluster,
    BuildUpdates,
    CheckUnlock,
    CommitPending,
    CommitSync,
    CreateFile,
    DcdbApplyFailed,
    DcdbSynced,
    Deferred,
    GetChecksum,
    GetIndex,
    GetStatFs,
    ListDir,
    LoadTree,
    Lookup,
    LookupReply,
    MakeDir,
    Persist,
    QuorumChanged,
    ReadConfig,
    ReadFile,
    Remove,
    Rename,
    ReplaceRows,
    SetMtime,
    SetQuorate,
    TreeChanged,
    TreeReloaded,
    Truncate,
    VmListChanged,
    WriteFile,
    ask,
)
from actors.serving import ServingActor
from dcdb.apply import Delivered, apply_fuse, apply_unlock, unlock_due
from dcdb.sync import build_commit, update_record
from errors import (
    CorruptDatabase,
    ErrorLatched,
    InternalError,
    NotFound,
    NotPermitted,
    NotQuorate,
    PmxcfsError,
    StorageError,
    WireFormatError,
)
from memdb.loader import load_memdb
from memdb.records import Row, StoreChange
from memdb.snapshot import Published, TreeSnapshot, empty_snapshot
from memdb.tree import Applied, MemDb
from replication.pending import PendingChange
from replication.proposer import Proposer
from replication.refusals import RefusalLog
from status.tracked import TRACKED_FILES, TRACKED_PATHS
from wire.dcdb import (
    DcdbMessageType,
    UnlockMessage,
    UpdateRecord,
    decode_index,
)

log = logging.getLogger(__name__)

DB_TIMEOUT_S = 30.0
"""How long a change waits for its commit before the caller gets EIO."""

LOCAL_WRITER = 0
"""Writer id of every change in local mode."""


def tracked_paths(applied: Applied) -> tuple[str, ...]:
    """The tracked files (.version counters) a change touched."""
    return tuple(p for p in applied.paths if p in TRACKED_PATHS)


class FsActor(ServingActor):
    """Owns the tree, its vmlist and lock table; applies every change in order.

    Answers (asked): at startup LoadTree, ActivateTree, SetQuorate, AttachCluster; reads Lookup,
    ReadFile, ListDir, GetStatFs; changes CreateFile, WriteFile, Truncate, MakeDir, Remove,
    Rename, SetMtime (applied here in local mode, proposed to the cluster otherwise) and
    CommitPending; for the DCDB application GetIndex, BuildUpdates, CommitSync, GetChecksum,
    CheckUnlock, ReadConfig. Accepts (told): ApplyDelivered, DcdbSynced, QuorumChanged. Readers on other
    threads read the published snapshot (``tree``) instead of asking.
    """

    def __init__(
        self,
        db: pykka.ActorRef[Any],
        status: pykka.ActorRef[Any] | None,
        *,
        quorate: bool,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        tree: Published[TreeSnapshot] | None = None,
        refusals: RefusalLog | None = None,
    ) -> None:
        super().__init__()
        self.tree = tree if tree is not None else Published(empty_snapshot(writable=quorate))
        """The latest snapshot of the tree for readers on other threads (memdb/snapshot.py):
        published after every change, before its writer is answered."""
        self._db = db
        self._status = status
        self._quorate = quorate
        self._clock = clock
        self._wallclock = wallclock
        self._memdb = MemDb(clock=clock)
        self._cluster: pykka.ActorRef[Any] | None = None
        """Cluster mode: changes go there and come back as ApplyDelivered, in total order."""
        self._refusals = refusals or RefusalLog(status, clock=clock, wallclock=wallclock)
        self._proposer: Proposer | None = None
        """Cluster mode: sends changes to the cluster actor."""
        self._pending: dict[int, Row] = {}
        """Rows of files created or written through a handle, by inode, not yet committed."""
        self._pending_version: StoreChange | None = None
        """The version row of the last deferred change."""
        self._batched = False
        """Rows of other nodes' changes wait in ``_pending`` for the mailbox to run empty."""
        self._out_of_sync: str | None = None
        """Why a delivered change could not be applied: later ones are not applied either,
        until the group has left, rejoined and synced again (DcdbSynced)."""

    def receive(self, message: object) -> object:
        """Dispatch one message; then commit other nodes' changes held while more were queued."""
        try:
            return self._dispatch(message)
        finally:
            if self._batched and self.actor_inbox.empty():
                self._commit_batch()

    def _dispatch(self, message: object) -> object:
        match message:
            case Lookup(path=path):
                return LookupReply(self._memdb.getattr(path), self._quorate)
            case ReadFile(path=path, size=size, offset=offset):
                return self._memdb.read(path, size, offset)
            case ListDir(path=path):
                return self._memdb.readdir(path)
            case GetStatFs():
                return self._memdb.statfs()
            case GetIndex():
                return self._memdb.encode_index()
            case DcdbSynced():  # the sync round brought back (or found) what was skipped
                self._out_of_sync = None
                return None
            case QuorumChanged(quorate=quorate) | SetQuorate(quorate=quorate):
                self._quorate = quorate
                self.tree.publish(self.tree.value.with_writable(quorate))
                return None
            case ApplyDelivered(delivered=delivered, pending=pending):
                return self._on_delivered(delivered, pending)
            case CheckUnlock(message=unlock):
                return unlock_due(self._memdb, unlock)
            case BuildUpdates(inodes=inodes):
                return tuple(update_record(self._memdb.index[inode]) for inode in inodes)
            case CommitSync(master_index=master, records=records):
                self._commit_sync(master, records)
                return None
            case CommitPending():
                self._commit_pending()
                return None
            case GetChecksum():
                return self._memdb.checksum()
            case ReadConfig(path=path):
                return self._read_config(path)
            case AttachCluster(cluster=cluster):
                self._cluster = cluster
                self._proposer = Proposer(cluster, self._refusals)
                return None
            case LoadTree(rows=rows):
                self._memdb = load_memdb(rows, clock=self._clock)
                self._publish_all()
                return None
            case ActivateTree():
                self._activate()
                return None
            case CreateFile() | WriteFile() | Truncate() | MakeDir() | Remove() | Rename() | SetMtime():
                return self._change(message)
            case _:
                return self.unexpected(message)

    def _read_config(self, path: str) -> bytes | None:
        """A file's bytes, None if it is missing."""
        try:
            return self._memdb.read_all(path)
        except NotFound:
            return None

    def _change(self, message: object) -> object:
        """A change request: applied here (local mode) or proposed to the cluster."""
        if self._proposer is not None:
            return self._propose(message, self._proposer)  # it reports its refusals itself
        try:
            return self._change_now(message)
        except PmxcfsError as exc:
            self._refusals.refused(message, exc)
            raise

    def _change_now(self, message: object) -> object:
        now = int(self._wallclock()) & 0xFFFFFFFF
        memdb = self._memdb
        match message:
            case WriteFile(path=path, data=data, offset=offset):
                return self._commit(lambda: memdb.write(path, LOCAL_WRITER, now, data, offset), defer=True)
            case CreateFile(path=path):
                self._commit(lambda: memdb.create(path, LOCAL_WRITER, now), defer=True)
                return memdb.getattr(path)
            case Truncate(path=path, size=size):
                return self._commit(lambda: memdb.truncate(path, LOCAL_WRITER, now, size))
            case MakeDir(path=path):
                self._commit(lambda: memdb.mkdir(path, LOCAL_WRITER, now))
                return memdb.getattr(path)
            case Remove(path=path):
                return self._commit(lambda: memdb.delete(path, LOCAL_WRITER, now))
            case Rename(src=src, dst=dst):
                return self._commit(lambda: memdb.rename(src, dst, LOCAL_WRITER, now))
            case SetMtime(path=path, mtime=mtime):
                return self._commit(lambda: self._utimens(path, mtime, now))
            case _:
                return self.unexpected(message)

    def _propose(self, message: object, proposer: Proposer) -> object:
        """Cluster mode: multicast the change; the caller's answer comes after its delivery.

        The FUSE layer proposes its changes itself (replication/proposer.py); what still comes here
        is utimens, whose mtime 0 on a lock needs the tree's lock table, and requests of tests.
        """
        if isinstance(message, SetMtime) and message.mtime == 0 and self._quorate:
            csum = self._memdb.lock_checksum(message.path)
            if csum is not None:  # an unlock request; the MTIME 0 below then fails with EACCES
                unlock = UnlockMessage(csum=csum, path=message.path.strip("/"))
                proposer.send_unlock_request(unlock)
        reply = proposer.send(message, writable=self._quorate)
        if reply is None:
            return self.unexpected(message)
        return Deferred(reply)

    def _utimens(self, path: str, mtime: int, now: int) -> Applied:
        """Set the mtime; mtime 0 on an expired lock removes the lock (local unlock)."""
        if mtime == 0:
            unlocked = self._memdb.unlock_if_expired(path, LOCAL_WRITER, now)
            if unlocked is not None:
                log.info("removed expired lock %s", path)
                return unlocked
        return self._memdb.set_mtime(path, LOCAL_WRITER, mtime)

    def _commit(self, operation: Callable[[], Applied], *, defer: bool = False) -> int:
        """Apply one change to the tree, persist it, announce it; return its result.

        With ``defer`` (a file's creation or a write, which the writer's close or fsync
        follows) the row waits in ``_pending``; any other change commits it too.
        """
        if not self._quorate:
            raise NotQuorate(reason="cluster not quorate - the tree is read-only")
        applied = operation()
        tracked = tracked_paths(applied)
        self._publish(applied, tracked)
        try:
            change = applied.change
            if change is not None and defer and change.upsert is not None and change.delete_inode is None:
                self._pending[change.upsert.inode] = change.upsert
                self._pending_version = StoreChange(change.version, change.writer, change.mtime)
            elif change is not None:
                self._persist(change)
        finally:
            # The tree has changed even if the commit failed (the original keeps it too),
            # so readers must see the new counters either way.
            self._announce(tracked, vmlist_changed=applied.vmlist_changed)
        return applied.result

    def _persist(self, change: StoreChange) -> None:
        """Commit ``change`` after the deferred rows, in one transaction; latch on failure."""
        earlier = tuple(StoreChange(0, 0, 0, upsert=row) for row in self._pending.values())
        self._pending.clear()
        self._pending_version = None
        self._batched = False
        persist = Persist(change=change, earlier=earlier)
        try:
            try:
                ask(self._db, persist, timeout=DB_TIMEOUT_S)
            except InternalError as exc:  # a bug in the db actor's handler: its transaction rolled back
                log.warning("database write failed (%s); trying it once more", exc)
                ask(self._db, persist, timeout=DB_TIMEOUT_S)
        except (StorageError, InternalError, pykka.Timeout, pykka.ActorDeadError) as exc:
            self._memdb.latched = True
            log.critical("database write failed, refusing all changes until restart: %s", exc)
            raise ErrorLatched(reason=str(exc)) from exc

    def _commit_pending(self) -> None:
        """Commit the deferred rows now (a close or fsync of a written file)."""
        if self._pending_version is not None:
            self._persist(self._pending_version)

    def _commit_batch(self) -> None:
        """The mailbox ran empty: commit the other nodes' changes held for a batch."""
        with contextlib.suppress(ErrorLatched):  # logged and latched; the next change is refused
            self._commit_pending()

    def _on_delivered(self, delivered: Delivered, pending: PendingChange | None) -> int | None:
        """Apply a delivered change; its result goes to ``pending`` (our own) and is returned.

        A tree error (ENOENT and the like) is the change's result on every node. If the node
        cannot apply changes (not quorate, or a failed commit latched), it must leave the group
        and resync (or stop): the cluster actor is told, and nothing is applied until then.
        """
        try:
            if self._out_of_sync is not None:
                raise NotPermitted(
                    reason=f"this node left the cluster while applying it ({self._out_of_sync})"
                )
            result = self._apply_delivered(delivered)
        except (NotQuorate, ErrorLatched) as exc:
            fatal = isinstance(exc, ErrorLatched)
            self._out_of_sync = "database write failed" if fatal else "received write while not quorate"
            if self._cluster is not None:
                self._cluster.tell(
                    DcdbApplyFailed(reason=f"{self._out_of_sync} - trigger resync", fatal=fatal)
                )
            if pending is not None:
                pending.failed(NotPermitted(reason="this node left the cluster while applying it"))
            return None
        except PmxcfsError as exc:
            if pending is None:
                log.debug("delivered change refused here too: %s", exc)
                return None
            pending.failed(exc)
            return None
        if pending is not None:
            pending.applied(result)
        return result

    def _apply_delivered(self, delivered: Delivered) -> int:
        """Apply a delivered DCDB message, as the sender's node id at the sender's time."""
        if delivered.subtype == DcdbMessageType.UNLOCK:
            return self._commit(lambda: apply_unlock(self._memdb, delivered) or Applied(0, None))
        # Our own creations and writes wait for our writer's close; other nodes' are committed
        # at once (their writers' closes are not seen here), or with the next ones while more
        # deliveries wait in the mailbox (one transaction for a burst, nobody waits on them).
        defer = delivered.local and delivered.subtype in (DcdbMessageType.CREATE, DcdbMessageType.WRITE)
        batch = not delivered.local and not self.actor_inbox.empty()
        result = self._commit(lambda: apply_fuse(self._memdb, delivered), defer=defer or batch)
        if batch and self._pending_version is not None:
            self._batched = True
        return result

    def on_stop(self) -> None:
        """Commit deferred rows."""
        with contextlib.suppress(ErrorLatched):  # logged; no close acknowledged these rows
            self._commit_pending()

    def _commit_sync(self, master: bytes, records: tuple[UpdateRecord, ...]) -> None:
        """Take the leader's state: build and check the new tree, store it, swap it in."""
        self._memdb.check_writable()
        self._commit_pending()  # the sync writes only rows that differ from our tree: store it first
        try:
            commit = build_commit(self._memdb, decode_index(master), master, records)
            ask(
                self._db,
                ReplaceRows(delete_inodes=commit.delete_inodes, rows=commit.rows),
                timeout=DB_TIMEOUT_S,
            )
        except (CorruptDatabase, WireFormatError, StorageError, InternalError, pykka.Timeout) as exc:
            self._memdb.latched = True
            log.critical("sync commit failed, refusing all changes until restart: %s", exc)
            raise ErrorLatched(reason=str(exc)) from exc
        self._memdb = commit.memdb
        self._publish_all(reloaded=True)
        log.info("synced: the tree is now at version %d", commit.memdb.root.version)
        if self._status is not None:
            self._status.tell(TreeReloaded())
            self._status.tell(VmListChanged(snapshot=self._memdb.vmlist.snapshot()))

    def _publish(self, applied: Applied, tracked: tuple[str, ...]) -> None:
        """A new snapshot for readers: the one the change made, sharing all else."""
        snapshot = self.tree.value
        if applied.change is not None:
            snapshot = snapshot.with_change(self._memdb, applied.change)
        if tracked:
            snapshot = snapshot.with_counted(tracked)
        if applied.vmlist_changed:
            snapshot = snapshot.with_vmlist(self._memdb.vmlist.snapshot())
        self.tree.publish(snapshot)

    def _publish_all(self, *, reloaded: bool = False) -> None:
        """A snapshot of the whole tree (after a load or a sync): O(n).

        With ``reloaded`` every tracked file's counter goes up, as TreeReloaded does it.
        """
        counters = self.tree.value.counters
        snapshot = TreeSnapshot.of(self._memdb, writable=self._quorate, counters=counters)
        self.tree.publish(snapshot.with_counted(TRACKED_FILES) if reloaded else snapshot)

    def _announce(self, tracked: tuple[str, ...], *, vmlist_changed: bool) -> None:
        """Tell the status actor what the published snapshot already holds."""
        if self._status is None:
            return
        if tracked:
            self._status.tell(TreeChanged(paths=tracked))
        if vmlist_changed:
            self._status.tell(VmListChanged(snapshot=self.tree.value.vmlist))

    def _activate(self) -> None:
        if self._memdb.root.version == 0:
            change = self._memdb.start_fresh(int(self._wallclock()))
            ask(self._db, Persist(change=change), timeout=DB_TIMEOUT_S)
        self._publish_all(reloaded=True)
        if self._status is not None:
            self._status.tell(TreeReloaded())
            self._status.tell(VmListChanged(snapshot=self._memdb.vmlist.snapshot()))
