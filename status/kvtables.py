"""The per-node status tables of status.c: kv values with versions, node IPs, recent RRD data.

``cfs_status_set`` (a local update) and ``cfs_kvstore_node_set`` (an UPDATE from another node)
route a key the same way (reference 3.2): ``rrd/<key>`` into the shared RRD table, ``nodeip``
into the IP table, anything else into the kv table of the node that set it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from errors import BadStatusValue, FileTooLarge, NotFound

MAX_STATUS_SIZE = 32 * 1024
"""CFS_MAX_STATUS_SIZE: a larger local update is refused with EFBIG."""
MAX_RRD_VALUE = 4096
"""An rrd value (with its NUL) must be shorter than this."""
MAX_IP_VALUE = 256
"""A nodeip value (with its NUL) must be shorter than this."""
RRD_PREFIX = "rrd/"
NODEIP_KEY = "nodeip"
RRD_MAX_AGE_S = 300.0
"""RRD entries older than this (by local receive time) are dropped from the dump."""
RRD_DUMP_CACHE_S = 2.0
"""A dump made less than this after the previous one answers the previous text."""


@dataclass(frozen=True, slots=True)
class KvValue:
    """A kv value as the client passed it, and its node-local version (0 when created)."""

    value: bytes
    version: int


@dataclass(frozen=True, slots=True)
class RrdUpdate:
    """An ``rrd/`` update was stored: the RRD file of ``key`` (prefix removed) gets ``data``."""

    key: str
    data: bytes


@dataclass(frozen=True, slots=True)
class IpSet:
    """A ``nodeip`` update was stored; ``changed`` when it differs from the known one."""

    changed: bool


@dataclass(frozen=True, slots=True)
class KvSet:
    """A kv key was set or (empty value) deleted."""


SetOutcome = RrdUpdate | IpSet | KvSet
RrdEntries = tuple[tuple[str, str, float], ...]
"""The RRD table as a value: (key without ``rrd/``, data, local receive time), in arrival order."""


def _c_string(key: str, value: bytes, limit: int) -> str:
    """A NUL-terminated value shorter than ``limit``, as text up to its first NUL."""
    if not value or value[-1] != 0 or len(value) >= limit:
        raise BadStatusValue(key, f"value must be NUL-terminated and shorter than {limit} bytes")
    return value[: value.index(0)].decode("utf-8", "surrogateescape")


def check_local_size(key: str, value: bytes) -> None:
    """The first check of a local update (cfs_status_set).

    Raises:
        FileTooLarge: the value is over 32 KiB.
    """
    if len(value) > MAX_STATUS_SIZE:
        raise FileTooLarge(key, f"status values are at most {MAX_STATUS_SIZE} bytes")


class StatusTables:
    """kv tables per node name (this node's always present), node IPs and the RRD table."""

    def __init__(self, nodename: str) -> None:
        self.nodename = nodename
        self._kv: dict[str, dict[str, KvValue]] = {nodename: {}}
        self._ips: dict[str, str] = {}
        self._rrd: dict[str, tuple[str, float]] = {}
        self._rrd_dump: tuple[str, float] | None = None
        self._rrd_frozen: RrdEntries | None = None
        """:meth:`rrd_entries` until the RRD table changes."""

    def set(self, node: str, key: str, value: bytes, now: float) -> SetOutcome:
        """Store an update of ``node``'s ``key`` (routing of reference 3.2).

        Raises:
            BadStatusValue: an rrd or nodeip value that is not a short NUL-terminated string.
        """
        if key.startswith(RRD_PREFIX):
            data = _c_string(key, value, MAX_RRD_VALUE)
            if not data:
                raise BadStatusValue(key, "empty rrd value")
            self._rrd[key[len(RRD_PREFIX) :]] = (data, now)
            self._rrd_frozen = None
            return RrdUpdate(key[len(RRD_PREFIX) :], value)
        if key == NODEIP_KEY:
            ip = _c_string(key, value, MAX_IP_VALUE)
            changed = self._ips.get(node) != ip
            self._ips[node] = ip
            return IpSet(changed)
        table = self._kv.setdefault(node, {})
        if not value:
            table.pop(key, None)
        else:
            old = table.get(key)
            table[key] = KvValue(value, 0 if old is None else old.version + 1)
        return KvSet()

    def get(self, node: str, key: str) -> bytes:
        """The raw kv value of ``node``.

        Raises:
            NotFound: no such node or key (rrd and nodeip keys are not kept here).
        """
        found = self._kv.get(node, {}).get(key)
        if found is None:
            raise NotFound(key, f"no status value of node {node!r}")
        return found.value

    def local_items(self) -> tuple[tuple[str, bytes], ...]:
        """This node's kv entries, re-broadcast after every kvstore sync."""
        return tuple((key, kv.value) for key, kv in self._kv[self.nodename].items())

    def values(self) -> dict[str, dict[str, bytes]]:
        """Node -> key -> raw value (what GET_STATUS answers)."""
        return {node: {key: kv.value for key, kv in table.items()} for node, table in self._kv.items()}

    def versions(self) -> dict[str, dict[str, int]]:
        """Node -> key -> version for .version: this node first, then nodes with a kv table."""
        return {node: {key: kv.version for key, kv in table.items()} for node, table in self._kv.items()}

    @property
    def ips(self) -> Mapping[str, str]:
        """Node name -> IP, as announced with ``nodeip``."""
        return self._ips

    def rrd_dump(self, now: float) -> tuple[str, bool]:
        """The .rrd text and whether it was made fresh (False: the cached text of < 2 s ago)."""
        if self._rrd_dump is not None and 0 <= now - self._rrd_dump[1] < RRD_DUMP_CACHE_S:
            return self._rrd_dump[0], False
        self._rrd_frozen = None  # prune now, as the original's dump does
        text = rrd_text(self.rrd_entries(now), now)
        self._rrd_dump = (text, now)
        return text, True

    def rrd_entries(self, now: float) -> RrdEntries:
        """The RRD table as an immutable value, the same one until the table changes.

        Building it drops the entries older than RRD_MAX_AGE_S; readers of an older value
        skip those by their receive time (:func:`rrd_text`).
        """
        if self._rrd_frozen is None:
            self._rrd = {key: entry for key, entry in self._rrd.items() if now - entry[1] <= RRD_MAX_AGE_S}
            self._rrd_frozen = tuple((key, data, received) for key, (data, received) in self._rrd.items())
        return self._rrd_frozen


def rrd_text(entries: RrdEntries, now: float) -> str:
    """cfs_rrd_dump's text: ``key:data`` lines of the entries received in the last RRD_MAX_AGE_S."""
    return "".join(f"{key}:{data}\n" for key, data, received in entries if now - received <= RRD_MAX_AGE_S)
