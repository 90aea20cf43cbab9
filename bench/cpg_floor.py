"""The same-run floor of replication: bench/cpg_floor.c, a compiled CPG client, on the test lab.

Any daemon that replicates over CPG pays at least what this client measures on the same
cluster: ``round_trips`` (one multicast until its own delivery, one after the other: what each
awaited message of a change costs) and ``stream`` (messages sent back to back until the last
came back: what a sync leader's UPDATEs cost). Every other node runs a member that receives,
as another node's daemon does. Needs gcc, pkg-config and libcpg-dev.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import compiled
from lab.cluster import CorosyncLab, end_process

SOURCE = Path(__file__).resolve().with_name("cpg_floor.c")
GROUP = "pmxcfs_bench_floor"
TIMEOUT_S = 300.0


def build_floor(out_dir: Path) -> Path:
    """Compile the client into ``out_dir``."""
    return compiled.build(SOURCE, out_dir, "libcpg")


@contextmanager
def _members(lab: CorosyncLab, nodes: int, binary: Path) -> Iterator[None]:
    """A receiving member of the floor group on nodes 2..nodes, ended (by pid) afterwards."""
    members = []
    try:
        for i in range(2, nodes + 1):
            member = lab.node_popen(i, [str(binary), GROUP], stdout=subprocess.PIPE, text=True)
            members.append(member)
            assert member.stdout is not None
            if member.stdout.readline().strip() != "joined":
                raise RuntimeError(f"cpg_floor member on node {i} did not join")
        yield
    finally:
        for member in members:
            end_process(member, 10)


def _run(lab: CorosyncLab, nodes: int, binary: Path, args: list[str]) -> list[int]:
    with _members(lab, nodes, binary):
        argv = [str(binary), GROUP, str(nodes), *args]
        done = lab.node_exec(1, argv, capture_output=True, text=True, check=True, timeout=TIMEOUT_S)
    return [int(line) for line in done.stdout.split()]


def round_trips(lab: CorosyncLab, nodes: int, binary: Path, count: int, size: int) -> list[float]:
    """Seconds from each multicast of ``size`` bytes on node 1 until its delivery there."""
    return [ns / 1e9 for ns in _run(lab, nodes, binary, [str(count), str(size)])]


def stream(lab: CorosyncLab, nodes: int, binary: Path, count: int, size: int) -> float:
    """Seconds to multicast ``count`` messages of ``size`` bytes back to back until the last came back."""
    (ns,) = _run(lab, nodes, binary, [str(count), str(size), "stream"])
    return ns / 1e9
