"""Status files read from published snapshots, on the reader's thread (FUSE, IPC).

The status actor publishes a :class:`StatusSnapshot` after every message that changed its
state: the rendered files no event of the fs actor changes (.members, .debug) and the parts of
.version it owns (start time, cluster-info version, kv versions). The fs actor's tree snapshot
holds the rest: the vmlist and the tracked files' change counters, published before a writer
is answered. :class:`StatusFiles` renders .version and .vmlist from the two, so that a tool
that wrote a config or a guest sees its change in them at once, without asking anyone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pyrsistent import pmap
from pyrsistent.typing import PMap

from errors import NotFound
from memdb.snapshot import Published, TreeSnapshot
from status.clusterlog import DEFAULT_DUMP_MAX, dump_json
from status.kvtables import RRD_DUMP_CACHE_S, RrdEntries, rrd_text
from status.render import render_version, render_vmlist
from wire.kvstore import ClogEntry

EMPTY_KV: PMap[str, PMap[str, bytes]] = pmap()
KvVersions = tuple[tuple[str, tuple[tuple[str, int], ...]], ...]
"""Node -> key -> version, in .version's order, as nested tuples."""


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """What the status actor publishes."""

    texts: PMap[str, bytes]
    """Rendered status files: name -> content."""
    starttime: int = 0
    clinfo: int = 0
    kvstore: KvVersions = ()
    nodename: str = ""
    """This node's name: GET_STATUS without a node name asks for its values."""
    kv: PMap[str, PMap[str, bytes]] = EMPTY_KV
    """Node -> key -> raw kv value (GET_STATUS; rrd/ and nodeip keys are not kept)."""
    log: tuple[ClogEntry, ...] = ()
    """The cluster log, oldest first (.clusterlog, GET_CLUSTER_LOG)."""
    rrd: RrdEntries = ()
    """The RRD table (.rrd, GET_RRD_DUMP); entries past their age are skipped by the reader."""


EMPTY_STATUS = StatusSnapshot(texts=pmap())
EMPTY_VALUES: PMap[str, bytes] = pmap()


def kv_values(values: dict[str, dict[str, bytes]]) -> PMap[str, PMap[str, bytes]]:
    """The kv values as an immutable value."""
    return pmap({node: pmap(keys) for node, keys in values.items()})


def kv_versions(versions: dict[str, dict[str, int]]) -> KvVersions:
    """The kv versions as an immutable value."""
    return tuple((node, tuple(keys.items())) for node, keys in versions.items())


class StatusFiles:
    """The status files readers can have without asking (None: ask the status actor)."""

    def __init__(
        self,
        tree: Published[TreeSnapshot],
        status: Published[StatusSnapshot],
        *,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self._tree = tree
        self._status = status
        self._wallclock = wallclock
        self._rrd_made: tuple[bytes, float] | None = None
        """The last RRD dump and when it was made: answered again for RRD_DUMP_CACHE_S, as
        the original does. Replaced in one step by whichever reader makes a new one."""
        self._memo: dict[str, tuple[tuple[object, ...], bytes]] = {}
        """The last rendering of .version and .vmlist with the values it was made from (held,
        so compared by identity). Readers on any thread may replace an entry; each entry is
        an immutable pair, set in one step, and any entry is a correct rendering of its key."""

    def text(self, name: str) -> bytes | None:
        """The current content of status file ``name``, or None if it must be asked for."""
        status = self._status.value
        if name == ".version":
            if not status.starttime:  # nothing published yet
                return None
            tree = self._tree.value
            return self._rendered(
                name, (status, tree.counters, tree.vmlist), lambda: version_text(status, tree)
            )
        if name == ".vmlist":
            vmlist = self._tree.value.vmlist
            return self._rendered(name, (vmlist,), lambda: render_vmlist(vmlist))
        if name == ".clusterlog":
            return self.cluster_log(DEFAULT_DUMP_MAX, "")
        if name == ".rrd":
            dump = self.rrd_dump()
            return None if dump is None else dump[0]
        return status.texts.get(name)

    def cluster_log(self, limit: int, user: str) -> bytes | None:
        """GET_CLUSTER_LOG and .clusterlog: the newest ``limit`` entries (``user``'s only if given)."""
        status = self._status.value
        if not status.nodename:  # nothing published yet
            return None
        if limit == DEFAULT_DUMP_MAX and not user:
            log = status.log
            return self._rendered(".clusterlog", (log,), lambda: dump_json(log))
        return dump_json(status.log, limit, user).encode("utf-8", "surrogateescape")

    def rrd_dump(self) -> tuple[bytes, bool] | None:
        """The .rrd text and whether it was made now (False: the one made < 2 s ago)."""
        status = self._status.value
        if not status.nodename:  # nothing published yet
            return None
        now = self._wallclock()
        made = self._rrd_made
        if made is not None and 0 <= now - made[1] < RRD_DUMP_CACHE_S:
            return made[0], False
        text = rrd_text(status.rrd, now).encode("utf-8", "surrogateescape")
        self._rrd_made = (text, now)
        return text, True

    def status_value(self, nodename: str, key: str) -> bytes | None:
        """GET_STATUS: a node's kv value (this node's for ''); None if it must be asked for.

        Raises:
            NotFound: no such node or key.
        """
        status = self._status.value
        if not status.nodename:  # nothing published yet
            return None
        value = status.kv.get(nodename or status.nodename, EMPTY_VALUES).get(key)
        if value is None:
            raise NotFound(key, f"no status value of node {nodename or status.nodename!r}")
        return value

    def _rendered(self, name: str, inputs: tuple[object, ...], render: Callable[[], str]) -> bytes:
        memo = self._memo.get(name)
        if memo is not None and all(a is b for a, b in zip(memo[0], inputs, strict=True)):
            return memo[1]
        text = render().encode("utf-8", "surrogateescape")
        self._memo[name] = (inputs, text)
        return text


def version_text(status: StatusSnapshot, tree: TreeSnapshot) -> str:
    """.version from the status actor's and the fs actor's snapshots."""
    return render_version(
        starttime=status.starttime,
        clinfo=status.clinfo,
        vmlist=tree.vmlist.version,
        counters=tree.counters,
        kvstore={node: dict(keys) for node, keys in status.kvstore},
    )
