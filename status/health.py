""".health: what an operator needs to know when writes fail (our addition; the C pmxcfs has none).

One JSON object: the mode, quorum, whether changes are accepted and if not why, the sync state
of both CPG groups, the database error latch, the last refused change with its reason, and
the state of every corosync connection.

The file is readable by www-data, which can't list ``priv/`` or ``nodes/<node>/priv/``: there a
refused change's path below such a folder is shown as the folder and ``/…`` (``priv/…``). The
full path is in the log and in the report for root (``python -m tools health``, over IPC).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import ujson

from memdb.paths import components

CLUSTER_SERVICES = ("quorum", "cmap", "kvstore", "dcdb")
"""The corosync connections of cluster mode, in the order shown."""
HIDDEN = "…"
"""What stands for the names below a private folder."""


def _private_top(path: str) -> int:
    """How many components of ``path`` name its private folder (priv, nodes/<n>/priv); 0 if none.

    The tree resolves a path by its components, so ``priv//x`` is ``priv/x``.
    """
    parts = components(path)
    if parts[:1] == ["priv"]:
        return 1
    if len(parts) >= 3 and parts[0] == "nodes" and parts[2] == "priv":
        return 3
    return 0


def shown_path(path: str) -> str:
    """``path`` as a reader who can't list private folders may see it: ``priv/…``."""
    top = _private_top(path)
    parts = components(path)
    if not top or len(parts) == top:
        return path
    return "/".join([*parts[:top], HIDDEN])


@dataclass(frozen=True, slots=True)
class Refusal:
    """The last refused change."""

    time: int
    op: str
    path: str
    error: str
    reason: str
    shown: str
    """``path`` with the names below private folders hidden (:func:`shown_path`), for the file."""


@dataclass(frozen=True, slots=True)
class Health:
    """Everything .health shows; updated by replacing fields (frozen)."""

    nodename: str
    mode: str = "starting"
    """"local", "cluster", or "starting" until the database is loaded."""
    quorate: bool = False
    latched: bool = False
    services: dict[str, bool] = field(default_factory=dict)
    sync: dict[str, str] = field(default_factory=dict)
    online: tuple[int, ...] = ()
    refusals: int = 0
    last_refusal: Refusal | None = None

    def with_mode(self, mode: str, *, quorate: bool) -> Health:
        """The mode was chosen; local mode is always quorate, cluster mode as corosync says."""
        return replace(self, mode=mode, quorate=mode == "local" or quorate)

    def with_quorate(self, quorate: bool) -> Health:
        """Corosync's quorum changed."""
        return replace(self, quorate=quorate)

    def with_online(self, online: Iterable[int]) -> Health:
        """The CPG membership changed: ``online`` are the members' node ids."""
        return replace(self, online=tuple(sorted(online)))

    def with_service(self, name: str, connected: bool) -> Health:
        """A connection went up or down (a group that is down has no sync state)."""
        sync = dict(self.sync)
        if not connected and name in sync:
            sync[name] = "down"
        return replace(self, services={**self.services, name: connected}, sync=sync)

    def with_sync(self, group: str, mode: str) -> Health:
        """A group's DFSM changed its mode."""
        return replace(self, sync={**self.sync, group: mode})

    def with_refusal(self, refusal: Refusal, *, latched: bool) -> Health:
        """Count a refused change and keep it as the last one."""
        return replace(
            self, refusals=self.refusals + 1, last_refusal=refusal, latched=self.latched or latched
        )

    def writable_reason(self) -> str | None:
        """Why changes are refused right now, or None if they are accepted."""
        if self.mode == "starting":
            return "starting: the database is not loaded yet"
        if self.latched:
            return "a database write failed: every change is refused until pmxcfs restarts"
        if not self.quorate:
            return "not quorate: the cluster has no quorum, so the tree is read-only"
        if self.mode == "cluster" and not self.services.get("dcdb"):
            return "not connected to the cluster's config group (pve_dcdb_v1): changes answer EBUSY"
        return None

    def render(self, *, full: bool = False) -> str:
        """The JSON text, keys in a fixed order.

        Args:
            full: show the last refused change's path whole, private names included (for
                root only); otherwise as :func:`shown_path` shows it (the file).
        """
        reason = self.writable_reason()
        body: dict[str, object] = {
            "nodename": self.nodename,
            "mode": self.mode,
            "quorate": self.quorate,
            "writable": reason is None,
            "not_writable_because": reason,
            "database": {"error_latched": self.latched},
        }
        if self.mode == "cluster":
            body["corosync"] = {name: bool(self.services.get(name)) for name in CLUSTER_SERVICES}
            body["sync"] = {group: self.sync.get(group, "down") for group in ("dcdb", "kvstore")}
            body["online"] = list(self.online)
        last = self.last_refusal
        body["refused_changes"] = self.refusals
        body["last_refusal"] = (
            None
            if last is None
            else {
                "time": last.time,
                "op": last.op,
                "path": last.path if full else last.shown,
                "error": last.error,
                "reason": last.reason,
            }
        )
        return str(ujson.dumps(body, indent=2, escape_forward_slashes=False)) + "\n"
