"""Status files read from published snapshots, on the reader's thread (FUSE, IPC).

The status actor publishes a :class:`StatusSnapshot` after every message that changed its
state: the rendered files no event of the fs actor changes (.members, .debug) and the parts of
.version it owns (start time, cluster-info version, kv versions). The fs actor's tree snapshot
holds the rest: the vmlist and the tracked files' change counters, published before a writer
is answered. :class:`StatusFiles` renders .version and .vmlist from the two, so that a tool
that wrote a config or a guest sees its change in them at once, without asking anyone.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyrsistent import pmap
from pyrsistent.typing import PMap

from memdb.snapshot import Published, TreeSnapshot
from status.render import render_version, render_vmlist

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


EMPTY_STATUS = StatusSnapshot(texts=pmap())


def kv_versions(versions: dict[str, dict[str, int]]) -> KvVersions:
    """The kv versions as an immutable value."""
    return tuple((node, tuple(keys.items())) for node, keys in versions.items())


class StatusFiles:
    """The status files readers can have without asking (None: ask the status actor)."""

    def __init__(self, tree: Published[TreeSnapshot], status: Published[StatusSnapshot]) -> None:
        self._tree = tree
        self._status = status

    def text(self, name: str) -> bytes | None:
        """The current content of status file ``name``, or None if it must be asked for."""
        status = self._status.value
        if name == ".version":
            if not status.starttime:  # nothing published yet
                return None
            tree = self._tree.value
            return render_version(
                starttime=status.starttime,
                clinfo=status.clinfo,
                vmlist=tree.vmlist.version,
                counters=tree.counters,
                kvstore={node: dict(keys) for node, keys in status.kvstore},
            ).encode("utf-8", "surrogateescape")
        if name == ".vmlist":
            return render_vmlist(self._tree.value.vmlist).encode("utf-8", "surrogateescape")
        return status.texts.get(name)
