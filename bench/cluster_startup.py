"""Time a 3-node test cluster from nothing to "all quorate and mounted", with our daemons.

Run as root from the repository root: ``.venv/bin/python bench/cluster_startup.py [--nodes 3] [--runs 3]``.
It uses the test harness (lab/cluster.py): one network namespace per node, corosync with
token 500 ms, and one pmxcfs per node in cluster mode. Everything is torn down after each run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.cluster import CorosyncLab


def writable(mount: Path) -> bool:
    """True once the daemon accepts a change (quorate, in cluster mode)."""
    probe = mount / f".bench-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"x")
    except PermissionError:
        return False
    probe.unlink()
    return True


def one_run(nodes: int, root: Path) -> tuple[float, float]:
    """Seconds until corosync is quorate everywhere, and until every daemon is mounted and writable."""
    lab = CorosyncLab(root)
    start = time.perf_counter()
    try:
        lab.up(nodes)
        corosync_ready = time.perf_counter() - start
        daemons = [
            lab.start_pmxcfs(
                i, root / f"pmxcfs{i}", ["--corosync-conf", str(lab.corosync_conf_path(i))], local=False
            )
            for i in range(1, nodes + 1)
        ]
        deadline = time.monotonic() + 60
        while not all(writable(d.mount) for d in daemons):
            if time.monotonic() > deadline:
                raise RuntimeError("daemons did not become writable within 60 s")
            time.sleep(0.02)
        return corosync_ready, time.perf_counter() - start
    finally:
        lab.down()


def main() -> int:
    """Run the measurement and print medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    corosync, total = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
            c, t = one_run(args.nodes, Path(tmp))
        corosync.append(c)
        total.append(t)
        print(f"run {run + 1}: corosync quorate {c:.2f} s, all daemons mounted and writable {t:.2f} s")
    print(
        f"{args.nodes} nodes, median of {args.runs}: corosync {statistics.median(corosync):.2f} s, "
        f"with our daemons {statistics.median(total):.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
