"""This node's cluster log (logger.c): its own entries, the others' deliveries, the sync merge.

The log itself, its dedup, merge and STATE ring are :mod:`status.clusterlog`. Here: an entry
made on this node (LOG_CLUSTER_MSG) gets the node's next uid and is broadcast; an entry another
node broadcast is inserted unless the log holds it already; at a kvstore sync the members'
STATE rings are decoded and merged into this log. Broadcasting is a plain callable the status
actor attaches in cluster mode (it tells the cluster actor).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from errors import WireFormatError
from status.clusterlog import DEFAULT_DUMP_MAX, MAX_PRIORITY, ClusterLog, new_entry, to_ascii
from wire.kvstore import ClogEntry, decode_clog

log = logging.getLogger("actors.status_actor")
"""The status actor's logger: these lines keep the tag they had before the split."""

LOG_PRIORITY_INFO = 6
"""LOG_INFO: the priority of the log's own first entry."""

LogBroadcast = Callable[[ClogEntry], None]
"""Sends one entry as LOG on the kvstore group."""


class LogState:
    """The cluster log as this node keeps it, with the uid of its own last entry."""

    def __init__(self, nodename: str, wallclock: Callable[[], float]) -> None:
        self.log = ClusterLog()
        """The entries of every node, deduplicated."""
        self._nodename = nodename
        self._wallclock = wallclock
        self._uid = 0
        """The uid of this node's last entry."""
        self._broadcast: LogBroadcast | None = None

    def attach(self, broadcast: LogBroadcast) -> None:
        """Cluster mode: broadcast this node's new entries through ``broadcast``."""
        self._broadcast = broadcast

    def add_local(self, *, priority: int, ident: str, tag: str, msg: bytes, pid: int) -> None:
        """cfs_cluster_log: a new entry of this node, inserted and broadcast.

        A priority outside 0..MAX_PRIORITY (7) drops the entry silently; ``msg`` is made ASCII.
        """
        if not 0 <= priority <= MAX_PRIORITY:
            return
        self._uid += 1
        entry = new_entry(
            uid=self._uid,
            time=int(self._wallclock()),
            priority=priority,
            tag=tag,
            pid=pid,
            node=self._nodename,
            ident=ident,
            msg=to_ascii(msg, quote=True),
        )
        if not self.log.insert(entry):
            log.debug("ignore insert of duplicate cluster log (uid %d)", entry.uid)
        if self._broadcast is not None:
            self._broadcast(entry)

    def delivered(self, entry: ClogEntry) -> None:
        """Another node's entry (LOG): inserted unless the log holds it already."""
        if not self.log.insert(entry):
            log.debug("ignore insert of duplicate cluster log (%s uid %d)", entry.node, entry.uid)

    def merge(self, states: tuple[bytes | None, ...]) -> None:
        """Kvstore sync: the members' STATE rings (None: this live log) merged into this log.

        A state that does not decode counts as an empty log (logged).
        """
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
        kept = self.log.merge(logs)
        log.debug("merged %d cluster logs: %d entries", len(states), kept)

    def state(self) -> bytes:
        """This node's STATE for a kvstore sync: every entry, sorted, in a fresh ring."""
        return self.log.state()

    def dump_json(self, max_entries: int, user: str) -> str:
        """GET_CLUSTER_LOG: the newest ``max_entries`` (0: the default 50), ``user``'s if given."""
        return self.log.dump_json(max_entries or DEFAULT_DUMP_MAX, user)
