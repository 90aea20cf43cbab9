"""StatusActor: owns the cluster status (status.c, logger.c) and the status files.

It keeps the tracked-file counters, the vmlist snapshot, the cluster configuration and who is
online, the per-node kv tables, node IPs and RRD data, the cluster log and the debug flag; it
renders .version, .members, .vmlist, .clusterlog, .rrd and .debug from them, one content
snapshot per file regenerated on getattr as the original does.

In cluster mode it is the kvstore group's application state: the cluster actor hands it
delivered UPDATE and LOG messages and the members' STATE rings, and it tells the cluster actor
what to broadcast (its own updates and log entries, its kv entries after each sync, its IP).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pykka
from pyrsistent import pmap

from actors.messages import (
    AttachKvstore,
    BroadcastKv,
    BroadcastLog,
    ChangeRefused,
    ClusterConfigChanged,
    GetClogState,
    GetClusterLog,
    GetHealthReport,
    GetRrdDump,
    GetStatus,
    GetStatusText,
    GroupModeChanged,
    KvDelivered,
    KvstoreSynced,
    LogClusterMessage,
    LogDelivered,
    MembershipChanged,
    MergeClogStates,
    ModeChosen,
    QuorumChanged,
    ReadStatusFile,
    RenderStatusFile,
    ServiceStateChanged,
    SetStatus,
    TreeChanged,
    TreeReloaded,
    TruncateStatusFile,
    VmListChanged,
    WriteStatusFile,
)
from actors.serving import ServingActor
from corosync.config import ClusterConfig
from errors import BadStatusValue, NotFound, StatusFileRefused, WireFormatError
from memdb.records import VmListSnapshot
from memdb.snapshot import Published
from status.clusterlog import DEFAULT_DUMP_MAX, MAX_PRIORITY, ClusterLog, new_entry, to_ascii
from status.health import Health, Refusal
from status.kvtables import NODEIP_KEY, IpSet, RrdUpdate, SetOutcome, StatusTables, check_local_size
from status.published import EMPTY_STATUS, StatusSnapshot, kv_values, kv_versions
from status.render import render_members, render_version, render_vmlist
from status.tracked import TRACKED_FILES
from wire.kvstore import ClogEntry, decode_clog

log = logging.getLogger(__name__)

STATUS_FILES = (".version", ".members", ".vmlist", ".rrd", ".clusterlog", ".debug")
"""The original's function files at the root of the mount, listed by readdir."""
PUBLISHED_FILES = (".members", ".debug")
"""Rendered after every change of the status state and published for readers (no ask).

Only files that no event of the fs actor changes. .version and .vmlist are rendered by the
readers from this actor's and the fs actor's snapshots (status/published.py): the fs actor
publishes its part before it answers a writer, so the writer sees its change there at once.
.clusterlog and .rrd are rendered by the readers from the published log and RRD table (.rrd's
entries age with the reader's clock). .health follows the fs actor's ChangeRefused and stays
asked: the ask queues behind the refusal told before the writer was answered, so the writer
sees its refusal there; it is a diagnostic file, not a hot path."""
READ_REQUESTS = (
    RenderStatusFile,
    ReadStatusFile,
    GetStatusText,
    GetStatus,
    GetClusterLog,
    GetRrdDump,
    GetHealthReport,
    GetClogState,
)
"""Requests that change no status state: no publication after them."""
HIDDEN_STATUS_FILES = (".health",)
"""Ours: reachable by name, not listed, so that the root listing stays the original's. A tree
written by the C pmxcfs may hold a root entry of that name: the FUSE layer then serves the entry
(``fusefs/operations.py``), and the report is read with ``python -m tools health`` only."""

LOG_PRIORITY_INFO = 6
MAX_EARLY_UPDATES = 1000
"""Remote status updates kept while the nodelist is unknown (startup); later ones are dropped."""

RrdSink = Callable[[str, bytes], object]
"""Writes one RRD update (key without ``rrd/``, the value as received) to its RRD file."""


class StatusActor(ServingActor):
    """Owns the status state and renders the status files.

    Accepts events TreeChanged, TreeReloaded, VmListChanged, ClusterConfigChanged,
    MembershipChanged, QuorumChanged, KvDelivered, LogDelivered, KvstoreSynced, and for .health
    ModeChosen, ChangeRefused, ServiceStateChanged, GroupModeChanged; requests from
    the FUSE layer (RenderStatusFile, ReadStatusFile, WriteStatusFile, TruncateStatusFile), the
    IPC server (GetStatusText, SetStatus, GetStatus, LogClusterMessage, GetClusterLog,
    GetRrdDump, GetHealthReport) and the cluster actor (AttachKvstore, GetClogState, MergeClogStates).
    """

    def __init__(
        self,
        nodename: str,
        *,
        debug: bool = False,
        set_debug: Callable[[bool], None] | None = None,
        node_ip: str | None = None,
        rrd: RrdSink | None = None,
        wallclock: Callable[[], float] = time.time,
        published: Published[StatusSnapshot] | None = None,
    ) -> None:
        super().__init__()
        self.published = published if published is not None else Published(EMPTY_STATUS)
        """The rendered PUBLISHED_FILES and .version's parts owned here, for readers on other
        threads (status/published.py), after every change."""
        self._nodename = nodename
        self._debug = debug
        self._set_debug = set_debug
        self._node_ip = node_ip
        self._rrd = rrd
        self._wallclock = wallclock
        self._starttime = int(wallclock())
        self._clinfo = 0
        self._counters = dict.fromkeys(TRACKED_FILES, 0)
        self._vmlist = VmListSnapshot(version=0, vms=())
        self._tables = StatusTables(nodename)
        self._log = ClusterLog()
        self._log_uid = 0
        self._snapshots: dict[str, bytes] = {}
        self._cluster: ClusterConfig | None = None
        self._names: dict[int, str] = {}
        """nodeid -> name of the corosync nodelist (remote updates are routed by it)."""
        self._quorate = False
        self._online: frozenset[int] = frozenset()
        self._kvstore: pykka.ActorRef[Any] | None = None
        self._health = Health(nodename)
        self._early: list[tuple[int, str, bytes]] = []
        """Remote updates received before the corosync nodelist was read."""
        self._announce_pending = False
        """The kvstore group synced, but the cluster actor or this node's IP was not known yet."""
        self._log_local(
            LogClusterMessage(
                priority=LOG_PRIORITY_INFO,
                ident="root",
                tag="cluster",
                msg=b"starting cluster log",
                pid=os.getpid(),
            )
        )
        self._publish()

    def receive(self, message: object) -> object:
        """Handle one message; after any but a read, publish the status files anew."""
        answer = self._dispatch(message)
        if not isinstance(message, READ_REQUESTS):
            self._publish()
        return answer

    def _publish(self) -> None:
        """Render PUBLISHED_FILES, take .version's parts, publish them if anything changed."""
        rendered = {name: self._generate(name).encode("utf-8", "surrogateescape") for name in PUBLISHED_FILES}
        snapshot = StatusSnapshot(
            texts=pmap(rendered),
            starttime=self._starttime,
            clinfo=self._clinfo,
            kvstore=kv_versions(self._tables.versions()),
            nodename=self._nodename,
            kv=kv_values(self._tables.values()),
            log=self._log.entries(),
            rrd=self._tables.rrd_entries(self._wallclock()),
        )
        if snapshot != self.published.value:
            self.published.publish(snapshot)

    def _dispatch(self, message: object) -> object:
        match message:
            case TreeChanged(paths=paths):
                for path in paths:
                    if path in self._counters:
                        self._counters[path] += 1
                return None
            case TreeReloaded():
                for path in self._counters:
                    self._counters[path] += 1
                return None
            case VmListChanged(snapshot=snapshot):
                self._vmlist = snapshot
                return None
            case ClusterConfigChanged(config=config):
                self._cluster = config
                self._names = {node.nodeid: node.name for node in config.nodes}
                self._clinfo += 1
                early, self._early = self._early, []
                for nodeid, key, value in early:
                    self._set_remote(nodeid, key, value)
                self._announce_ip_if_pending()
                return None
            case MembershipChanged(online=online):
                self._online = online
                self._clinfo += 1
                self._health = replace(self._health, online=tuple(sorted(online)))
                return None
            case QuorumChanged(quorate=quorate):
                self._quorate = quorate
                self._health = replace(self._health, quorate=quorate)
                return None
            case _:
                return self._on_health(message)

    def _on_health(self, message: object) -> object:
        match message:
            case ModeChosen(mode=mode):
                self._health = replace(self._health, mode=mode, quorate=mode == "local" or self._quorate)
                return None
            case ChangeRefused():
                refusal = Refusal(
                    message.time, message.op, message.path, message.error, message.reason, message.shown
                )
                self._health = self._health.with_refusal(refusal, latched=message.latched)
                return None
            case ServiceStateChanged(name=name, connected=connected):
                self._health = self._health.with_service(name, connected)
                return None
            case GroupModeChanged(group=group, mode=mode):
                self._health = self._health.with_sync(group, mode)
                return None
            case _:
                return self._on_request(message)

    def _on_request(self, message: object) -> object:
        match message:
            case RenderStatusFile(name=name):
                return self._render(name)
            case ReadStatusFile(name=name, size=size, offset=offset):
                return self._snapshot(name)[offset : offset + size]
            case WriteStatusFile(name=name, data=data, offset=offset):
                return self._write(name, data, offset)
            case TruncateStatusFile(name=name):
                if name != ".debug":
                    raise StatusFileRefused(name, "status files can't be truncated")
                return None
            case GetStatusText(name=name):
                if name not in (".version", ".members", ".vmlist"):
                    raise NotFound(name, "no such status text")
                return self._generate(name).encode("utf-8", "surrogateescape")
            case SetStatus(key=key, value=value):
                self._set_local(key, value)
                return None
            case GetStatus(key=key, nodename=nodename):
                return self._tables.get(nodename or self._nodename, key)
            case LogClusterMessage():
                self._log_local(message)
                return None
            case GetClusterLog(max_entries=max_entries, user=user):
                return self._log.dump_json(max_entries or DEFAULT_DUMP_MAX, user)
            case GetRrdDump():
                text, fresh = self._tables.rrd_dump(self._wallclock())
                return text.encode("utf-8", "surrogateescape") + (b"\0" if fresh else b"")
            case GetHealthReport():
                return self._health.render(full=True).encode("utf-8", "surrogateescape")
            case _:
                return self._on_kvstore(message)

    def _on_kvstore(self, message: object) -> object:
        match message:
            case AttachKvstore(cluster=cluster, node_ip=node_ip):
                self._kvstore = cluster
                self._node_ip = node_ip or self._node_ip
                self._announce_ip_if_pending()
                return None
            case GetClogState():
                return self._log.state()
            case MergeClogStates(states=states):
                self._merge(states)
                return None
            case KvDelivered(nodeid=nodeid, key=key, value=value):
                self._set_remote(nodeid, key, value)
                return None
            case LogDelivered(entry=entry):
                if not self._log.insert(entry):
                    log.debug("ignore insert of duplicate cluster log (%s uid %d)", entry.node, entry.uid)
                return None
            case KvstoreSynced():
                self._announce_pending = True
                self._announce_ip_if_pending()
                return None
            case _:
                return self.unexpected(message)

    # ----- kv, nodeip and rrd updates ---------------------------------------------------

    def _set_local(self, key: str, value: bytes) -> None:
        """cfs_status_set: store, then broadcast (even when storing failed, as the original)."""
        check_local_size(key, value)
        try:
            self._apply(self._tables.set(self._nodename, key, value, self._wallclock()))
        finally:
            if self._kvstore is not None:
                self._kvstore.tell(BroadcastKv(key=key, value=value))

    def _set_remote(self, nodeid: int, key: str, value: bytes) -> None:
        """cfs_kvstore_node_set: only nodes of the corosync nodelist are listened to.

        Updates that arrive before the nodelist was read once are kept until it is (the
        original drops them; at startup that loses the peers' ``nodeip`` until the next sync).
        """
        if self._cluster is None:
            if len(self._early) < MAX_EARLY_UPDATES:
                self._early.append((nodeid, key, value))
            return
        node = self._names.get(nodeid)
        if node is None:
            log.debug("ignore status update %r from node %d: not in the nodelist", key, nodeid)
            return
        try:
            self._apply(self._tables.set(node, key, value, self._wallclock()))
        except BadStatusValue as exc:
            log.warning("ignore status update from node %s: %s", node, exc)

    def _apply(self, outcome: SetOutcome) -> None:
        match outcome:
            case RrdUpdate(key=key, data=data) if self._rrd is not None:
                self._rrd(key, data)
            case IpSet(changed=True):
                self._clinfo += 1

    def _announce_ip_if_pending(self) -> None:
        """After each kvstore sync: publish ``nodeip`` (a value set earlier, else ours).

        Waits for the cluster actor to be attached and, when this node's name did not resolve,
        for the corosync nodelist (its ring0_addr), which may come a moment after the sync.
        """
        if not self._announce_pending or self._kvstore is None:
            return
        ip = self._tables.ips.get(self._nodename) or self._node_ip or self._address_from_nodelist()
        if not ip:
            log.debug("no IP address known for node %s yet; nodeip announced later", self._nodename)
            return
        self._announce_pending = False
        self._set_local(NODEIP_KEY, ip.encode() + b"\0")

    def _address_from_nodelist(self) -> str | None:
        """The local node's ring0_addr, when its name did not resolve at startup."""
        if self._cluster is None:
            return None
        for node in self._cluster.nodes:
            if node.nodeid == self._cluster.local_nodeid or node.name == self._nodename:
                return node.address or None
        return None

    # ----- cluster log --------------------------------------------------------------

    def _log_local(self, request: LogClusterMessage) -> None:
        """cfs_cluster_log: a new entry of this node, inserted and broadcast."""
        if not 0 <= request.priority <= MAX_PRIORITY:
            return
        self._log_uid += 1
        entry = new_entry(
            uid=self._log_uid,
            time=int(self._wallclock()),
            priority=request.priority,
            tag=request.tag,
            pid=request.pid,
            node=self._nodename,
            ident=request.ident,
            msg=to_ascii(request.msg, quote=True),
        )
        if not self._log.insert(entry):
            log.debug("ignore insert of duplicate cluster log (uid %d)", entry.uid)
        if self._kvstore is not None:
            self._kvstore.tell(BroadcastLog(entry=entry))

    def _merge(self, states: tuple[bytes | None, ...]) -> None:
        """Kvstore sync: merge the members' logs, then re-broadcast this node's kv entries."""
        logs: list[list[ClogEntry] | None] = []
        for state in states:
            if state is None:
                logs.append(None)
                continue
            try:
                logs.append([slot.entry for slot in decode_clog(state).slots])
            except WireFormatError as exc:
                log.warning("ignore a member's cluster log state: %s", exc)
                logs.append([])
        kept = self._log.merge(logs)
        log.debug("merged %d cluster logs: %d entries", len(states), kept)
        if self._kvstore is not None:
            for key, value in self._tables.local_items():
                self._kvstore.tell(BroadcastKv(key=key, value=value))

    # ----- the status files ------------------------------------------------------------

    def _generate(self, name: str) -> str:
        match name:
            case ".version":
                return render_version(
                    starttime=self._starttime,
                    clinfo=self._clinfo,
                    vmlist=self._vmlist.version,
                    counters=self._counters,
                    kvstore=self._tables.versions(),
                )
            case ".members":
                return render_members(
                    nodename=self._nodename,
                    clinfo=self._clinfo,
                    config=self._cluster,
                    quorate=self._quorate,
                    online=self._online,
                    ips=self._tables.ips,
                )
            case ".vmlist":
                return render_vmlist(self._vmlist)
            case ".rrd":
                return self._tables.rrd_dump(self._wallclock())[0]
            case ".clusterlog":
                return self._log.dump_json()
            case ".debug":
                return "1\n" if self._debug else "0\n"
            case ".health":
                return self._health.render()
        raise NotFound(name, "no such status file")

    def _render(self, name: str) -> int:
        data = self._generate(name).encode("utf-8", "surrogateescape")
        self._snapshots[name] = data
        return len(data)

    def _snapshot(self, name: str) -> bytes:
        data = self._snapshots.get(name)
        if data is None:
            self._render(name)
            data = self._snapshots[name]
        return data

    def _write(self, name: str, data: bytes, offset: int) -> int:
        """Only .debug takes writes: "0" or "1" and a newline, at offset 0; answers 2."""
        if name != ".debug" or offset != 0 or data[:2] not in (b"0\n", b"1\n"):
            raise StatusFileRefused(name, "only .debug takes a write, of '0' or '1' and a newline")
        self._debug = data[:2] == b"1\n"
        if self._set_debug is not None:
            self._set_debug(self._debug)
        log.info("debug level is now %d", int(self._debug))
        self._render(name)
        return 2
