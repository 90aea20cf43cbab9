"""This node's side of the kvstore group's kv data (status.c): updates, early ones, ``nodeip``.

A local update (SET_STATUS, ``cfs_status_set``) is stored, then broadcast; an UPDATE from
another node (``cfs_kvstore_node_set``) is stored under the name the corosync nodelist gives
its sender. Both route a key as :mod:`status.kvtables` does: an ``rrd/`` update also goes to its
RRD file, a changed ``nodeip`` bumps the cluster-info version. After each sync of the group
this node announces its IP. Broadcasting is a plain callable the status actor attaches in
cluster mode (it tells the cluster actor); until then local updates are only stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from errors import BadStatusValue
from status.kvtables import (
    NODEIP_KEY,
    IpSet,
    RrdEntries,
    RrdUpdate,
    SetOutcome,
    StatusTables,
    check_local_size,
)
from status.membership import Membership

log = logging.getLogger("actors.status_actor")
"""The status actor's logger: these lines keep the tag they had before the split."""

MAX_EARLY_UPDATES = 1000
"""Remote status updates kept while the nodelist is unknown (startup); later ones are dropped."""

RrdSink = Callable[[str, bytes], object]
"""Writes one RRD update (key without ``rrd/``, the value as received) to its RRD file."""
KvBroadcast = Callable[[str, bytes], None]
"""Sends UPDATE(key, value) on the kvstore group."""


class KvState:
    """Every node's kv values, IPs and RRD data, fed by this node's updates and the others'."""

    def __init__(
        self,
        nodename: str,
        membership: Membership,
        *,
        node_ip: str | None,
        rrd: RrdSink | None,
        wallclock: Callable[[], float],
    ) -> None:
        self.tables = StatusTables(nodename)
        """The kv values with versions, the node IPs, the RRD table."""
        self._nodename = nodename
        self._membership = membership
        self._node_ip = node_ip
        self._rrd = rrd
        self._wallclock = wallclock
        self._broadcast: KvBroadcast | None = None
        self._early: list[tuple[int, str, bytes]] = []
        """Remote updates received before the corosync nodelist was read."""
        self._announce_pending = False
        """The kvstore group synced, but the broadcast or this node's IP was not known yet."""

    def attach(self, broadcast: KvBroadcast, node_ip: str | None) -> None:
        """Cluster mode: broadcast through ``broadcast``; ``node_ip``, if given, is this node's IP."""
        self._broadcast = broadcast
        self._node_ip = node_ip or self._node_ip
        self._announce_if_pending()

    def nodelist_read(self) -> None:
        """The corosync nodelist is known (again): apply the updates kept until then, announce."""
        early, self._early = self._early, []
        for nodeid, key, value in early:
            self.set_remote(nodeid, key, value)
        self._announce_if_pending()

    def synced(self) -> None:
        """The kvstore group synced: announce ``nodeip`` as soon as it can be."""
        self._announce_pending = True
        self._announce_if_pending()

    def set_local(self, key: str, value: bytes) -> None:
        """cfs_status_set: store, then broadcast (even when storing failed, as the original)."""
        check_local_size(key, value)
        try:
            self._apply(self.tables.set(self._nodename, key, value, self._wallclock()))
        finally:
            if self._broadcast is not None:
                self._broadcast(key, value)

    def set_remote(self, nodeid: int, key: str, value: bytes) -> None:
        """cfs_kvstore_node_set: only nodes of the corosync nodelist are listened to.

        Updates that arrive before the nodelist was read once are kept until it is (the
        original drops them; at startup that loses the peers' ``nodeip`` until the next sync).
        """
        if self._membership.config is None:
            if len(self._early) < MAX_EARLY_UPDATES:
                self._early.append((nodeid, key, value))
            return
        node = self._membership.name_of(nodeid)
        if node is None:
            log.debug("ignore status update %r from node %d: not in the nodelist", key, nodeid)
            return
        try:
            self._apply(self.tables.set(node, key, value, self._wallclock()))
        except BadStatusValue as exc:
            log.warning("ignore status update from node %s: %s", node, exc)

    def rebroadcast(self) -> None:
        """After a sync of the group: send this node's kv entries again (cluster mode only)."""
        if self._broadcast is not None:
            for key, value in self.tables.local_items():
                self._broadcast(key, value)

    def get(self, nodename: str, key: str) -> bytes:
        """GET_STATUS: the value of ``key`` as node ``nodename`` (this node if empty) set it.

        Raises:
            NotFound: no such node or key.
        """
        return self.tables.get(nodename or self._nodename, key)

    def rrd_text(self) -> tuple[str, bool]:
        """The .rrd text and whether it was made now (False: the cached text of < 2 s ago)."""
        return self.tables.rrd_dump(self._wallclock())

    def rrd_dump(self) -> bytes:
        """GET_RRD_DUMP: the .rrd text, NUL-terminated when it was made now."""
        text, fresh = self.rrd_text()
        return text.encode("utf-8", "surrogateescape") + (b"\0" if fresh else b"")

    def rrd_entries(self) -> RrdEntries:
        """The RRD table as an immutable value (published for readers)."""
        return self.tables.rrd_entries(self._wallclock())

    def _apply(self, outcome: SetOutcome) -> None:
        """What a stored update does besides: write its RRD file, or bump the cluster info."""
        match outcome:
            case RrdUpdate(key=key, data=data) if self._rrd is not None:
                self._rrd(key, data)
            case IpSet(changed=True):
                self._membership.ip_changed()

    def _announce_if_pending(self) -> None:
        """After each kvstore sync: publish ``nodeip`` (a value set earlier, else ours).

        Waits for the broadcast to be attached and, when this node's name did not resolve,
        for the corosync nodelist (its ring0_addr), which may come a moment after the sync.
        """
        if not self._announce_pending or self._broadcast is None:
            return
        ip = (
            self.tables.ips.get(self._nodename)
            or self._node_ip
            or self._membership.local_address(self._nodename)
        )
        if not ip:
            log.debug("no IP address known for node %s yet; nodeip announced later", self._nodename)
            return
        self._announce_pending = False
        self.set_local(NODEIP_KEY, ip.encode() + b"\0")
