"""Our daemons in cluster mode inside the lab's nodes: start them and wait until they take writes."""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from pathlib import Path

from lab.cluster import CorosyncLab, NodeDaemon
from lab.probes import wait_until, write_errno

QUORATE_S = 10.0
"""Daemon started or partition healed to quorate (corosync itself needs ~1.2 s for 3 nodes)."""


def start_nodes(
    lab: CorosyncLab,
    tmp_path: Path,
    nodes: Sequence[int],
    extra: Sequence[str] = (),
    wrapper: Callable[[int], Sequence[str]] | None = None,
) -> list[NodeDaemon]:
    """Our daemons in cluster mode on tmp_path/pmxcfs<i> (kept across restarts), started side by
    side; returns once each is mounted and accepts a change.

    No write is made before every started daemon logged "node has quorum": a daemon whose DCDB
    group is already synced but that has not learnt quorum yet leaves the group when a peer's
    write arrives (see test_peer_writes_while_nodes_start_nobody_leaves), which would make any
    test that writes right after the start flaky. ``wrapper(i)`` runs node i's main.py behind
    a script (bench/counting_main.py).
    """
    daemons = [
        lab.start_pmxcfs(
            i,
            tmp_path / f"pmxcfs{i}",
            ["--corosync-conf", str(lab.corosync_conf_path(i)), *extra],
            local=False,
            wait=False,
            wrapper=wrapper(i) if wrapper is not None else (),
        )
        for i in nodes
    ]
    for pve in daemons:
        pve.wait_ready()
    for pve in daemons:
        pve.wait_for_line(lambda line: "node has quorum" in line, timeout=QUORATE_S)
    for pve in daemons:
        wait_writable(pve)
    return daemons


def start_daemon(lab: CorosyncLab, tmp_path: Path, i: int, extra: Sequence[str] = ()) -> NodeDaemon:
    """Node i's daemon (again) on tmp_path/pmxcfs<i>; returns once mounted, without writing."""
    args = ["--corosync-conf", str(lab.corosync_conf_path(i)), *extra]
    return lab.start_pmxcfs(i, tmp_path / f"pmxcfs{i}", args, local=False)


def wait_writable(pve: NodeDaemon, writable: bool = True, timeout: float = QUORATE_S) -> None:
    """Wait until a write through the mount succeeds (or fails with EACCES)."""
    want = None if writable else errno.EACCES
    probe = pve.path(f"probe-{pve.nodename}.cfg")
    last: list[int | None] = [0]

    def check() -> bool:
        last[0] = write_errno(probe)
        return last[0] == want

    wait_until(check, timeout, lambda: f"{pve.mount}: write gave errno {last[0]}, want {want}")
