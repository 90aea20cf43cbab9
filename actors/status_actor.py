"""StatusActor: owns the status files (.version .members .vmlist .clusterlog .rrd .debug).

It keeps the state they are made of (tracked-file counters, the vmlist snapshot, the
cluster log, the debug flag) and one content snapshot per file, regenerated on getattr as
the original does, so that reads after a stat see one consistent text.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import pykka

from actors.messages import (
    ClusterConfig,
    ClusterConfigChanged,
    MembershipChanged,
    QuorumChanged,
    ReadStatusFile,
    RenderStatusFile,
    TreeChanged,
    TreeReloaded,
    TruncateStatusFile,
    VmListChanged,
    WriteStatusFile,
)
from errors import NotFound, StatusFileRefused
from memdb.records import VmListSnapshot
from status.clusterlog import ClusterLog, LogEntry, to_ascii
from status.render import render_members, render_rrd, render_version, render_vmlist
from status.tracked import TRACKED_FILES

log = logging.getLogger(__name__)

STATUS_FILES = (".version", ".members", ".vmlist", ".rrd", ".clusterlog", ".debug")
"""The function files at the root of the mount."""

LOG_PRIORITY_INFO = 6


class StatusActor(pykka.ThreadingActor):
    """Owns the status state and renders the status files.

    Accepts: TreeChanged, TreeReloaded, VmListChanged, ClusterConfigChanged,
    MembershipChanged, QuorumChanged (events); RenderStatusFile,
    ReadStatusFile, WriteStatusFile, TruncateStatusFile (asked by the FUSE layer).
    """

    def __init__(
        self,
        nodename: str,
        *,
        debug: bool = False,
        set_debug: Callable[[bool], None] | None = None,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._nodename = nodename
        self._debug = debug
        self._set_debug = set_debug
        self._wallclock = wallclock
        self._starttime = int(wallclock())
        self._clinfo = 0
        self._counters = dict.fromkeys(TRACKED_FILES, 0)
        self._vmlist = VmListSnapshot(version=0, vms=())
        self._kv: dict[str, int] = {}
        self._rrd: dict[str, str] = {}
        self._log = ClusterLog()
        self._log_uid = 0
        self._snapshots: dict[str, bytes] = {}
        self._cluster: ClusterConfig | None = None
        self._quorate = False
        self._online: frozenset[int] = frozenset()
        self._log_local(ident="root", tag="cluster", pid=os.getpid(), msg=b"starting cluster log")

    def on_receive(self, message: object) -> object:
        """Dispatch one message."""
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
                self._clinfo += 1
                return None
            case MembershipChanged(online=online):
                self._online = online
                self._clinfo += 1
                return None
            case QuorumChanged(quorate=quorate):
                self._quorate = quorate
                return None
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
            case _:
                return super().on_receive(message)

    def _log_local(self, *, ident: str, tag: str, pid: int, msg: bytes) -> None:
        self._log_uid += 1
        entry = LogEntry(
            uid=self._log_uid,
            time=int(self._wallclock()),
            priority=LOG_PRIORITY_INFO,
            tag=tag,
            pid=pid,
            node=self._nodename,
            ident=ident,
            msg=to_ascii(msg, quote=True),
        )
        self._log.insert(entry)

    def _generate(self, name: str) -> str:
        match name:
            case ".version":
                return render_version(
                    starttime=self._starttime,
                    clinfo=self._clinfo,
                    vmlist=self._vmlist.version,
                    counters=self._counters,
                    kvstore={self._nodename: self._kv},
                )
            case ".members":
                return render_members(
                    nodename=self._nodename,
                    clinfo=self._clinfo,
                    config=self._cluster,
                    quorate=self._quorate,
                    online=self._online,
                )
            case ".vmlist":
                return render_vmlist(self._vmlist)
            case ".rrd":
                return render_rrd(self._rrd)
            case ".clusterlog":
                return self._log.dump_json()
            case ".debug":
                return "1\n" if self._debug else "0\n"
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
