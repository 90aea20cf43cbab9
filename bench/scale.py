"""How the cluster figures grow with the cluster: 3, 5 and 7 nodes (issue 9's scale run).

Run as root from the repository root: ``.venv/bin/python bench/scale.py [--sizes 3 5 7]
[--files 10000] [--size 2048] [--writes 300] [--json FILE] [--plot FILE]``.
For each size it brings up a test cluster (lab/cluster.py: one network namespace per node,
corosync with token 500 ms), then:

* resync: nodes 1..n-1 start on a database of ``--files`` files of ``--size`` bytes (built once
  with ``python -m tools create-db``; 10,000 x 2 KiB = 20 MB), node n on an empty one; the time
  from starting node n's daemon until its memdb index equals node 1's;
* write latency: ``--writes`` sequential creations of a 2 KiB file through node 1, every node up
  (each answered once delivered in total order and confirmed by a majority), p50 and p99;
* memory: VmRSS of every daemon afterwards, each holding the whole tree;
* CPU: the CPU time all daemons and all corosyncs used during the resync and per write
  (schedstat of every thread): on this machine every node shares the same two cores, so wall
  time also moves with scheduling, CPU time much less.

Everything is torn down after each size, also after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.cluster import CorosyncLab, NodeDaemon, wait_same_index
from lab.daemon import REPO
from lab.nodes import start_nodes, wait_writable

SYNC_S = 600.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def rss_mib(pidfile: Path) -> float:
    """VmRSS of the daemon whose pid file this is, in MiB."""
    pid = int(pidfile.read_text().split()[0])
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_s(pids: list[int]) -> float:
    """CPU seconds of every thread of these processes so far (schedstat's first field)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):  # a thread or the process ended meanwhile
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
    return total / 1e9


def seed_files(root: Path, files: int, size: int) -> Path:
    """A folder of ``files`` files of ``size`` bytes."""
    src = root / "seed-src"
    src.mkdir()
    for k in range(files):
        (src / f"f{k:06d}.cfg").write_bytes(os.urandom(size // 2).hex().encode())
    return src


def seed_db(src: Path, corosync_conf: Path, db: Path) -> Path:
    """A config.db with the seed files and the cluster's corosync.conf (the operator tool writes
    it; without corosync.conf in the tree a daemon runs in local mode, as the original)."""
    shutil.copyfile(corosync_conf, src / "corosync.conf")
    subprocess.run(
        [sys.executable, "-m", "tools", "create-db", str(src), str(db)],
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return db


def one_size(root: Path, n: int, src: Path, writes: int) -> dict[str, object]:
    lab = CorosyncLab(root)
    try:
        lab.up(n)
        seed = seed_db(src, lab.corosync_conf_path(1), root / "seed.db")
        for i in range(1, n):
            (root / f"pmxcfs{i}").mkdir(parents=True)
            shutil.copyfile(seed, root / f"pmxcfs{i}" / "config.db")
        daemons = start_nodes(lab, root, range(1, n))
        wait_same_index([d.db for d in daemons], timeout=SYNC_S)
        corosyncs = [pid for i in range(1, n + 1) if (pid := lab.pid(i)) is not None]
        cpu0 = cpu_s(corosyncs), cpu_s([daemon_pid(d) for d in daemons])
        t0 = time.perf_counter()
        last = lab.start_pmxcfs(
            n, root / f"pmxcfs{n}", ["--corosync-conf", str(lab.corosync_conf_path(n))], local=False
        )
        mounted = time.perf_counter() - t0
        wait_same_index([daemons[0].db, last.db], timeout=SYNC_S)
        resync = time.perf_counter() - t0
        daemons.append(last)
        pids = [daemon_pid(d) for d in daemons]
        cpu1 = cpu_s(corosyncs), cpu_s(pids)
        for d in daemons:
            wait_writable(d)

        data = b"z" * 2047 + b"\n"
        d1 = daemons[0]
        d1.path("lat").mkdir()
        lat = []
        cpu2 = cpu_s(corosyncs), cpu_s(pids)
        for k in range(writes):
            t = time.perf_counter()
            d1.path(f"lat/f{k}.cfg").write_bytes(data)
            lat.append(time.perf_counter() - t)
        wait_same_index([d.db for d in daemons], timeout=SYNC_S)
        cpu3 = cpu_s(corosyncs), cpu_s(pids)
        rss = [rss_mib(d.base / "pid") for d in daemons]
        return {
            "nodes": n,
            "resync_s": resync,
            "joiner_ready_s": mounted,
            "write_p50_ms": pct(lat, 50) * 1e3,
            "write_p99_ms": pct(lat, 99) * 1e3,
            "writes": writes,
            "rss_mib_max": max(rss),
            "rss_mib_mean": sum(rss) / len(rss),
            "rss_mib": rss,
            "resync_cpu_corosync_s": cpu1[0] - cpu0[0],
            "resync_cpu_daemons_s": cpu1[1] - cpu0[1],
            "write_cpu_corosync_ms": (cpu3[0] - cpu2[0]) * 1e3 / writes,
            "write_cpu_daemons_ms": (cpu3[1] - cpu2[1]) * 1e3 / writes,
        }
    finally:
        lab.down()


def daemon_pid(daemon: NodeDaemon) -> int:
    """The daemon's pid (nsenter execs it, so it is the process the lab started)."""
    assert daemon.proc is not None
    return daemon.proc.pid


def plot(results: list[dict[str, object]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nodes = [int(str(r["nodes"])) for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(nodes, [r["write_p50_ms"] for r in results], "o-", label="write p50")
    left.plot(nodes, [r["write_p99_ms"] for r in results], "s--", label="write p99")
    left.set_xlabel("nodes")
    left.set_ylabel("ms")
    left.set_xticks(nodes)
    left.legend()
    left.set_title("2 KiB file creation through node 1")
    right.plot(nodes, [r["resync_s"] for r in results], "o-", color="tab:green", label="resync (s)")
    right.set_xlabel("nodes")
    right.set_ylabel("s")
    right.set_xticks(nodes)
    right.set_title("joiner catching up 10,000 files (20 MB)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 5, 7])
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, FUSE)", file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        src = seed_files(Path(tmp), args.files, args.size)
        for n in args.sizes:
            print(f"running {n} nodes ...", file=sys.stderr)
            results.append(one_size(Path(tmp) / f"n{n}", n, src, args.writes))
    data_mib = args.files * args.size / 2**20
    print(f"{'nodes':>5} {'write p50':>10} {'write p99':>10} {'resync':>8} {'RSS max':>9} {'RSS mean':>9}")
    for r in results:
        print(
            f"{r['nodes']:>5} {r['write_p50_ms']:>7.1f} ms {r['write_p99_ms']:>7.1f} ms"
            f" {r['resync_s']:>6.2f} s {r['rss_mib_max']:>5.0f} MiB {r['rss_mib_mean']:>5.0f} MiB"
        )
    print(f"data: {args.files} files x {args.size} B = {data_mib:.1f} MiB; RSS limit 3x data + 60 MB")
    print(
        f"{'nodes':>5} {'resync CPU: daemons':>20} {'corosyncs':>10}"
        f" {'per write: daemons':>19} {'corosyncs':>10}"
    )
    for r in results:
        print(
            f"{r['nodes']:>5} {r['resync_cpu_daemons_s']:>18.2f} s {r['resync_cpu_corosync_s']:>8.2f} s"
            f" {r['write_cpu_daemons_ms']:>16.2f} ms {r['write_cpu_corosync_ms']:>7.2f} ms"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
