"""Every request, reply and event that crosses between actors: frozen values only.

A ``Request[T]`` is asked and answers T; anything else is an event and is told.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from corosync.config import ClusterConfig
from dcdb.apply import Delivered
from memdb.records import EntryAttr, Row, StatFs, StoreChange, VmListSnapshot
from wire.dcdb import FuseMessage, UnlockMessage, UpdateRecord
from wire.kvstore import ClogEntry

if TYPE_CHECKING:
    import pykka

    from replication.pending import PendingChange


T = TypeVar("T")


class Request(Generic[T]):
    """Marker: the sender asks and expects a reply of type T."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Deferred:
    """An answer that comes later: the actor hands back a future another actor will resolve.

    Used where the result depends on something outside the asked actor, such as a cluster
    change that returns only once it was delivered in total order and applied. ``ask``
    waits for it within the same timeout, so callers never see this type.
    """

    future: pykka.Future[Any]


def ask(ref: pykka.ActorRef[Any], message: Request[T], *, timeout: float) -> T:
    """Ask ``ref`` and wait at most ``timeout`` seconds; errors raised by the actor re-raise here."""
    deadline = time.monotonic() + timeout
    answer = ref.ask(message, timeout=timeout)
    if isinstance(answer, Deferred):
        answer = answer.future.get(timeout=max(0.0, deadline - time.monotonic()))
    return cast("T", answer)


# ----- db actor ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenStore(Request[tuple[Row, ...]]):
    """Connect to config.db and return every row; writes nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PrepareStore(Request[None]):
    """Set the pragmas and create the table: the first write to the file."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Persist(Request[None]):
    """Write one change in one transaction, after the deferred ``earlier`` ones (row upserts)."""

    change: StoreChange
    earlier: tuple[StoreChange, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceRows(Request[None]):
    """A cluster sync commit: delete these inodes and upsert these rows in one transaction."""

    delete_inodes: tuple[int, ...]
    rows: tuple[Row, ...]


# ----- fs actor ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadTree(Request[None]):
    """Build the tree from store rows, with the startup checks."""

    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivateTree(Request[None]):
    """After the store is prepared: start a fresh database at version 1, announce the tree."""


@dataclass(frozen=True, slots=True)
class LookupReply:
    """An entry's attributes (None if missing) and whether changes are accepted now."""

    attr: EntryAttr | None
    writable: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Lookup(Request[LookupReply]):
    """getattr of a memdb path."""

    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadFile(Request[bytes]):
    """Bytes [offset, offset+size) of a file."""

    path: str
    size: int
    offset: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ListDir(Request[tuple[str, ...]]):
    """Child names of a directory (nothing for a file or a missing path)."""

    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetStatFs(Request[StatFs]):
    """Usage figures for statfs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MakeDir(Request[EntryAttr | int]):
    """mkdir; answers the new directory's attributes (in cluster mode the applied result, 0)."""

    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Remove(Request[int]):
    """unlink or rmdir (the tree treats both alike)."""

    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateFile(Request[EntryAttr | int]):
    """Create an empty file (fails if the name exists); answers its attributes (cluster mode: 0)."""

    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteFile(Request[int]):
    """Write data at offset; answers the byte count."""

    path: str
    data: bytes
    offset: int


@dataclass(frozen=True, slots=True)
class CommitPending(Request[None]):
    """A file written through a handle is being closed or fsynced: make its changes durable."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Truncate(Request[int]):
    """Set a file's exact size."""

    path: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMtime(Request[int]):
    """utimens; mtime 0 on a lock directory is an unlock request."""

    path: str
    mtime: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Rename(Request[int]):
    """Move src to dst."""

    src: str
    dst: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetIndex(Request[bytes]):
    """The encoded memdb index (cluster state; tests compare its checksum)."""


# ----- fs actor: the DCDB application side (asked by the cluster actor) -----------


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachCluster(Request[None]):
    """Cluster mode: send every change to ``cluster`` instead of applying it directly."""

    cluster: pykka.ActorRef[Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Propose:
    """To the cluster actor: multicast this DCDB message in total order.

    ``reply`` (the future the writer waits on, like pykka's own envelope) hears the local
    result once the message was delivered and applied here and a majority holds it: a value,
    or the tree's error, or the refusal (replication/pending.py). None: fire and forget
    (UNLOCK_REQUEST).
    """

    subtype: int
    message: FuseMessage | UnlockMessage
    reply: PendingChange | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyDelivered:
    """A DCDB message delivered in total order: apply it (told; nobody waits for the fs actor).

    ``pending`` (this node's own changes that a writer waits for) hears the tree's result or
    error (ENOENT and the like). NotQuorate or ErrorLatched mean the node must leave and resync
    (or stop): the fs actor tells the cluster actor DcdbApplyFailed and applies nothing more
    until DcdbSynced.
    """

    delivered: Delivered
    pending: PendingChange | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DcdbSynced:
    """To the fs actor: the dcdb group is synced again, the tree in step with the cluster."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DcdbApplyFailed:
    """The fs actor could not apply a delivered change: the dcdb group leaves (``fatal``: stops)."""

    reason: str
    fatal: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckUnlock(Request[bool]):
    """On the lowest node: does this lock still match and has it expired?"""

    message: UnlockMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildUpdates(Request[tuple[UpdateRecord, ...]]):
    """The leader's UPDATE records for these inodes."""

    inodes: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitSync(Request[None]):
    """An out-of-date node: replace the tree by the leader's state (atomic; latches on failure)."""

    master_index: bytes
    records: tuple[UpdateRecord, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class GetChecksum(Request[bytes]):
    """The full tree checksum (VERIFY)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadConfig(Request[bytes | None]):
    """A whole file of the tree, None if it is missing (the host's corosync.conf follows it)."""

    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetQuorate(Request[None]):
    """Startup: set the quorum flag before the mount (cluster mode starts read-only)."""

    quorate: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class QuorumChanged:
    """Event: the node became quorate or lost quorum."""

    quorate: bool


@dataclass(frozen=True, slots=True)
class RingQuorum:
    """Event: corosync's quorum verdict for a totem ring.

    Sent for every ring and every quorum change within one; the cluster actor acknowledges
    changes by it (corosync/confirm.py).
    """

    ring_seq: int
    quorate: bool


# ----- status actor --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeChanged:
    """Event: a change touched these paths (tracked-file counters)."""

    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeReloaded:
    """Event: the whole tree was (re)loaded; every tracked counter goes up."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VmListChanged:
    """Event: the vmlist is now this."""

    snapshot: VmListSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderStatusFile(Request[int]):
    """Regenerate a status file's snapshot (on getattr); answers its length."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadStatusFile(Request[bytes]):
    """Bytes of a status file's last snapshot."""

    name: str
    size: int
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteStatusFile(Request[int]):
    """A write to a status file (only .debug accepts one)."""

    name: str
    data: bytes
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TruncateStatusFile(Request[None]):
    """A truncate of a status file (only .debug accepts one, as a no-op)."""

    name: str


# ----- status actor: kv store, cluster log, RRD (IPC and the kvstore group) -------


@dataclass(frozen=True, slots=True, kw_only=True)
class GetStatusText(Request[bytes]):
    """A fresh text of ``.version``, ``.members`` or ``.vmlist`` (IPC GET_FS_VERSION, ...)."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetStatus(Request[None]):
    """cfs_status_set (IPC SET_STATUS): ``rrd/<key>``, ``nodeip`` or a kv key of this node.

    An empty value deletes a kv key. In cluster mode the update is also broadcast, even when
    the local store refused it (as the original does).

    Raises:
        FileTooLarge: the value is over 32 KiB.
        BadStatusValue: an ``rrd/`` or ``nodeip`` value that is not NUL-terminated or too long.
    """

    key: str
    value: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class GetStatus(Request[bytes]):
    """The raw kv value ``key`` of ``nodename`` (empty: this node); NotFound if missing."""

    key: str
    nodename: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogClusterMessage(Request[None]):
    """Add a cluster log entry made on this node (IPC LOG_CLUSTER_MSG) and broadcast it.

    ``msg`` is the raw message (sanitised here); a priority above 7 drops the entry silently.
    """

    priority: int
    ident: str
    tag: str
    msg: bytes
    pid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GetClusterLog(Request[str]):
    """The cluster log as JSON, newest first (IPC GET_CLUSTER_LOG; 0 entries means 50)."""

    max_entries: int = 0
    user: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class GetRrdDump(Request[bytes]):
    """The ``.rrd`` text as IPC GET_RRD_DUMP answers it: NUL-terminated when freshly made."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GetHealthReport(Request[bytes]):
    """The ``.health`` text with private paths shown whole (IPC GET_HEALTH, ours: root only)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachKvstore(Request[None]):
    """Cluster mode: local status updates and log entries are broadcast through ``cluster``."""

    cluster: pykka.ActorRef[Any]
    node_ip: str | None = None
    """This node's address (its name resolved at startup), announced as ``nodeip``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastKv:
    """Event to the cluster actor: send UPDATE(key, value) on the kvstore group."""

    key: str
    value: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastLog:
    """Event to the cluster actor: send this log entry as LOG on the kvstore group."""

    entry: ClogEntry


@dataclass(frozen=True, slots=True, kw_only=True)
class GetClogState(Request[bytes]):
    """This node's kvstore STATE: its cluster log, sorted, in a fresh 131072-byte ring."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MergeClogStates(Request[None]):
    """Merge the members' logs (member order; None stands for this node's live log).

    Afterwards the status actor re-broadcasts its kv entries.
    """

    states: tuple[bytes | None, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class KvDelivered:
    """Event: node ``nodeid`` set ``key`` to ``value`` (an UPDATE from another node)."""

    nodeid: int
    key: str
    value: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class LogDelivered:
    """Event: another node broadcast this log entry."""

    entry: ClogEntry


@dataclass(frozen=True, slots=True, kw_only=True)
class KvstoreSynced:
    """Event: the kvstore group finished syncing; publish this node's IP (``nodeip``)."""


# ----- .health: what an operator needs when writes fail ------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeChosen:
    """Event to the status actor: the daemon runs in this mode ("local" or "cluster") for good."""

    mode: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeRefused:
    """Event to the status actor: a change was refused (also logged once by the fs actor)."""

    op: str
    path: str
    shown: str
    """``path`` with the names below private folders hidden, for the .health file."""
    error: str
    """The errno name the caller got (EACCES, EFBIG, ...)."""
    reason: str
    time: int
    latched: bool = False
    """The tree now refuses every change until restart (a failed database write)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceStateChanged:
    """Event to the status actor: a corosync connection (quorum, cmap, kvstore, dcdb) went up or down."""

    name: str
    connected: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupModeChanged:
    """Event to the status actor: the DFSM of a CPG group (kvstore, dcdb) changed its mode."""

    group: str
    mode: str


# ----- corosync services (quorum actor, cluster actor) ----------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FdReadable:
    """Event from the fd poller: a corosync fd is readable (or broken); dispatch it."""

    fd: int
    broken: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """Event from the ticker, once a second: retry services that are down."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfigChanged:
    """Event: the corosync configuration (cluster name, nodelist) was (re)read."""

    config: ClusterConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class MembershipChanged:
    """Event: these node ids are members of the status CPG group (online)."""

    online: frozenset[int]


# ----- ipc -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class GetGuestConfigProperties(Request[bytes]):
    """IPC GET_GUEST_CONFIG_PROPERTY/PROPERTIES: properties of guest configs as JSON text.

    ``vmid`` 0 means every guest of the vmlist, otherwise one guest (>= 100). An empty
    ``properties`` marks a malformed request list: the fs actor answers InvalidArgument,
    but only after the vmlist check, the original's order (memdb/guestconf.py).

    Raises:
        NotFound: ``vmid`` is not in the vmlist.
        InvalidArgument: no properties.
        GuestConfigUnreadable: that one guest's config is missing or empty.
    """

    vmid: int
    properties: tuple[bytes, ...]
