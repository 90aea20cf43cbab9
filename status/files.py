"""The function files at the mount's root (status.c): their names, contents and .debug.

Each file is rendered from the status actor's parts (:class:`Sources`). An ask renders a
file's content and fixes it for the reads that follow (the original regenerates it at
getattr); .debug alone takes a write. After every change the status actor publishes
:meth:`FunctionFiles.snapshot`, from which readers render most files without asking
(status/published.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pyrsistent import pmap

from errors import NotFound, StatusFileRefused
from memdb.records import VmListSnapshot
from status.clusterlog import ClusterLog
from status.health import Health
from status.kvstate import KvState
from status.membership import Membership
from status.published import StatusSnapshot, kv_values, kv_versions
from status.render import render_members, render_version, render_vmlist

log = logging.getLogger("actors.status_actor")
"""The status actor's logger: these lines keep the tag they had before the split."""

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
HIDDEN_STATUS_FILES = (".health",)
"""Ours: reachable by name, not listed, so that the root listing stays the original's. A tree
written by the C pmxcfs may hold a root entry of that name: the FUSE layer then serves the entry
(``fusefs/operations.py``), and the report is read with ``python -m tools health`` only."""
TEXT_FILES = (".version", ".members", ".vmlist")
"""The files IPC asks for as text (GET_FS_VERSION, GET_CLUSTER_INFO, GET_GUEST_LIST)."""


@dataclass(frozen=True, slots=True)
class Sources:
    """What the function files are rendered from: the status actor's parts as they are now."""

    nodename: str
    starttime: int
    counters: Mapping[str, int]
    """The tracked files' change counters."""
    vmlist: VmListSnapshot
    membership: Membership
    kv: KvState
    log: ClusterLog
    health: Health


class FunctionFiles:
    """The function files' contents as last rendered for a reader, and the debug flag."""

    def __init__(
        self,
        sources: Callable[[], Sources],
        *,
        debug: bool,
        set_debug: Callable[[bool], None] | None,
    ) -> None:
        self.debug = debug
        """What .debug shows; written through the file."""
        self._sources = sources
        self._set_debug = set_debug
        self._contents: dict[str, bytes] = {}
        """Name -> the content last rendered, which reads are answered from."""

    def render(self, name: str) -> int:
        """Render ``name`` anew and keep it for the reads that follow; answers its size."""
        data = self._generate(name, self._sources()).encode("utf-8", "surrogateescape")
        self._contents[name] = data
        return len(data)

    def read(self, name: str, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` of the content last rendered (rendered if none)."""
        data = self._contents.get(name)
        if data is None:
            self.render(name)
            data = self._contents[name]
        return data[offset : offset + size]

    def write(self, name: str, data: bytes, offset: int) -> int:
        """Only .debug takes writes: "0" or "1" and a newline, at offset 0; answers 2."""
        if name != ".debug" or offset != 0 or data[:2] not in (b"0\n", b"1\n"):
            raise StatusFileRefused(name, "only .debug takes a write, of '0' or '1' and a newline")
        self.debug = data[:2] == b"1\n"
        if self._set_debug is not None:
            self._set_debug(self.debug)
        log.info("debug level is now %d", int(self.debug))
        self.render(name)
        return 2

    def truncate(self, name: str) -> None:
        """Only .debug may be truncated (a shell's ``echo 1 >`` does), to no effect."""
        if name != ".debug":
            raise StatusFileRefused(name, "status files can't be truncated")

    def text(self, name: str) -> bytes:
        """The current content of one of TEXT_FILES, for IPC."""
        if name not in TEXT_FILES:
            raise NotFound(name, "no such status text")
        return self._generate(name, self._sources()).encode("utf-8", "surrogateescape")

    def snapshot(self) -> StatusSnapshot:
        """What the status actor publishes: PUBLISHED_FILES rendered, .version's parts, data."""
        src = self._sources()
        texts = {
            name: self._generate(name, src).encode("utf-8", "surrogateescape") for name in PUBLISHED_FILES
        }
        return StatusSnapshot(
            texts=pmap(texts),
            starttime=src.starttime,
            clinfo=src.membership.clinfo,
            kvstore=kv_versions(src.kv.tables.versions()),
            nodename=src.nodename,
            kv=kv_values(src.kv.tables.values()),
            log=src.log.entries(),
            rrd=src.kv.rrd_entries(),
        )

    def _generate(self, name: str, src: Sources) -> str:
        """The text of status file ``name`` now."""
        match name:
            case ".version":
                return render_version(
                    starttime=src.starttime,
                    clinfo=src.membership.clinfo,
                    vmlist=src.vmlist.version,
                    counters=src.counters,
                    kvstore=src.kv.tables.versions(),
                )
            case ".members":
                return _members(src)
            case ".vmlist":
                return render_vmlist(src.vmlist)
            case ".rrd":
                return src.kv.rrd_text()[0]
            case ".clusterlog":
                return src.log.dump_json()
            case ".debug":
                return "1\n" if self.debug else "0\n"
            case ".health":
                return src.health.render()
        raise NotFound(name, "no such status file")


def _members(src: Sources) -> str:
    """.members: this node, and in cluster mode the cluster and every node with its IP."""
    m, ips = src.membership, src.kv.tables.ips
    return render_members(
        nodename=src.nodename, clinfo=m.clinfo, config=m.config, quorate=m.quorate, online=m.online, ips=ips
    )
