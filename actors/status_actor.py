"""StatusActor: owns the cluster status (status.c, logger.c) and serves the status files.

It owns the state and hands each message to the part that holds what the message is about
(the logic lives in ``status/``):

- :class:`~status.tracked.ChangeCounters` and the vmlist snapshot: what the fs actor reports;
- :class:`~status.membership.Membership`: the corosync nodelist, who is online, quorum, and
  the cluster-info version;
- :class:`~status.kvstate.KvState`: every node's kv values, IPs and RRD data, the updates that
  came before the nodelist, this node's ``nodeip`` announcement;
- :class:`~status.logstate.LogState`: the cluster log, this node's entries, the sync merge;
- :class:`~status.health.Health`: the .health report;
- :class:`~status.files.FunctionFiles`: .version, .members, .vmlist, .rrd, .clusterlog, .debug
  and .health rendered from the above, one content per file fixed at each render as the
  original regenerates it on getattr, and the debug flag.

After every message but a read it publishes a :class:`~status.published.StatusSnapshot`.

In cluster mode it is the kvstore group's application state: the cluster actor hands it
delivered UPDATE and LOG messages and the members' STATE rings, and it tells the cluster actor
what to broadcast (its own updates and log entries, its kv entries after each sync, its IP).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pykka

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
from memdb.records import VmListSnapshot
from memdb.snapshot import Published
from status.files import FunctionFiles, Sources
from status.health import Health, Refusal
from status.kvstate import KvState, RrdSink
from status.logstate import LOG_PRIORITY_INFO, LogState
from status.membership import Membership
from status.published import EMPTY_STATUS, StatusSnapshot
from status.tracked import ChangeCounters

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


class StatusActor(ServingActor):
    """Owns the status state and serves the status files.

    Accepts (told) TreeChanged, TreeReloaded, VmListChanged (the fs actor); ChangeRefused
    (whichever thread learns of a refusal); ClusterConfigChanged, QuorumChanged (the quorum
    actor); MembershipChanged, GroupModeChanged, KvDelivered, LogDelivered, KvstoreSynced (the
    cluster actor); ServiceStateChanged (the quorum and cluster actors); ModeChosen (main).

    Answers (asked) RenderStatusFile, ReadStatusFile, WriteStatusFile, TruncateStatusFile (the
    FUSE layer); GetStatusText, SetStatus, GetStatus, LogClusterMessage, GetClusterLog,
    GetRrdDump, GetHealthReport (the IPC server); AttachKvstore, GetClogState, MergeClogStates
    (the cluster actor).
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
        """What readers on other threads read without asking (status/published.py), published
        after every change."""
        self._nodename = nodename
        self._starttime = int(wallclock())
        self._counters = ChangeCounters()
        self._vmlist = VmListSnapshot(version=0, vms=())
        self._membership = Membership()
        self._kv = KvState(nodename, self._membership, node_ip=node_ip, rrd=rrd, wallclock=wallclock)
        self._clog = LogState(nodename, wallclock)
        self._health = Health(nodename)
        self._files = FunctionFiles(self._sources, debug=debug, set_debug=set_debug)
        self._clog.add_local(
            priority=LOG_PRIORITY_INFO,
            ident="root",
            tag="cluster",
            msg=b"starting cluster log",
            pid=os.getpid(),
        )
        self._publish()

    def receive(self, message: object) -> object:
        """Handle one message; after any but a read, publish the status anew."""
        answer = self._handle(message)
        if not isinstance(message, READ_REQUESTS):
            self._publish()
        return answer

    def _handle(self, message: object) -> object:
        """Hand ``message`` to the part of the state it is about; answer what it answers."""
        match message:
            case TreeChanged(paths=paths):
                self._counters.changed(paths)
            case TreeReloaded():
                self._counters.reloaded()
            case VmListChanged(snapshot=snapshot):
                self._vmlist = snapshot
            case ClusterConfigChanged(config=config):
                self._membership.configure(config)
                self._kv.nodelist_read()
            case MembershipChanged(online=online):
                self._membership.set_online(online)
                self._health = self._health.with_online(online)
            case QuorumChanged(quorate=quorate):
                self._membership.quorate = quorate
                self._health = self._health.with_quorate(quorate)
            case ModeChosen(mode=mode):
                self._health = self._health.with_mode(mode, quorate=self._membership.quorate)
            case ChangeRefused():
                self._health = self._health.with_refusal(refusal_of(message), latched=message.latched)
            case ServiceStateChanged(name=name, connected=connected):
                self._health = self._health.with_service(name, connected)
            case GroupModeChanged(group=group, mode=mode):
                self._health = self._health.with_sync(group, mode)
            case RenderStatusFile(name=name):
                return self._files.render(name)
            case ReadStatusFile(name=name, size=size, offset=offset):
                return self._files.read(name, size, offset)
            case WriteStatusFile(name=name, data=data, offset=offset):
                return self._files.write(name, data, offset)
            case TruncateStatusFile(name=name):
                self._files.truncate(name)
            case GetStatusText(name=name):
                return self._files.text(name)
            case SetStatus(key=key, value=value):
                self._kv.set_local(key, value)
            case GetStatus(key=key, nodename=nodename):
                return self._kv.get(nodename, key)
            case LogClusterMessage(priority=priority, ident=ident, tag=tag, msg=msg, pid=pid):
                self._clog.add_local(priority=priority, ident=ident, tag=tag, msg=msg, pid=pid)
            case GetClusterLog(max_entries=max_entries, user=user):
                return self._clog.dump_json(max_entries, user)
            case GetRrdDump():
                return self._kv.rrd_dump()
            case GetHealthReport():
                return self._health.render(full=True).encode("utf-8", "surrogateescape")
            case AttachKvstore(cluster=cluster, node_ip=node_ip):
                self._attach(cluster, node_ip)
            case GetClogState():
                return self._clog.state()
            case MergeClogStates(states=states):
                self._clog.merge(states)
                self._kv.rebroadcast()
            case KvDelivered(nodeid=nodeid, key=key, value=value):
                self._kv.set_remote(nodeid, key, value)
            case LogDelivered(entry=entry):
                self._clog.delivered(entry)
            case KvstoreSynced():
                self._kv.synced()
            case _:
                return self.unexpected(message)
        return None

    def _attach(self, cluster: pykka.ActorRef[Any], node_ip: str | None) -> None:
        """Cluster mode: this node's log entries and kv updates are told to ``cluster`` to broadcast."""
        self._clog.attach(lambda entry: cluster.tell(BroadcastLog(entry=entry)))
        self._kv.attach(lambda key, value: cluster.tell(BroadcastKv(key=key, value=value)), node_ip)

    def _sources(self) -> Sources:
        """The parts the status files are rendered from, as they are now."""
        return Sources(
            nodename=self._nodename,
            starttime=self._starttime,
            counters=self._counters.counts,
            vmlist=self._vmlist,
            membership=self._membership,
            kv=self._kv,
            log=self._clog.log,
            health=self._health,
        )

    def _publish(self) -> None:
        """Publish the status files' snapshot, if anything in it changed."""
        snapshot = self._files.snapshot()
        if snapshot != self.published.value:
            self.published.publish(snapshot)


def refusal_of(message: ChangeRefused) -> Refusal:
    """The refused change as .health keeps it."""
    return Refusal(message.time, message.op, message.path, message.error, message.reason, message.shown)
