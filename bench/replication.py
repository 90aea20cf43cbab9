"""Replication speed of our daemons on a test cluster: write latency, and the resync of a restarted node.

Run as root from the repository root:
``.venv/bin/python bench/replication.py [--writes 1000] [--files 10000] [--only resync] [--no-floor]``.
It uses the test harness (lab/cluster.py): one network namespace per node, corosync with
token 500 ms, one pmxcfs per node in cluster mode. Measured:

* write latency from one node of a 3-node cluster, ``--writes`` sequential writes: creating a
  small file (open O_CREAT, write, close: a CREATE and a WRITE message, each answered after its
  delivery in total order), and overwriting one file (a truncate and a WRITE);
* the same file creations on a 1-node cluster, the setting of the C pmxcfs figure (1,000 file
  creations in 0.59 s here; the aim is at most 1.2 times that);
* the resync of a restarted node: node 3's daemon is stopped, ``--files`` small files are created
  through node 1, node 3's daemon is started again on its old database, and the time until its
  memdb index equals node 1's is taken (also: until it is mounted, and until it logs "dcdb synced");
  then, on the same cluster, the same-run floor: bench/cpg_floor.c (compiled here; needs gcc and
  libcpg-dev) multicasts as many UPDATE-sized messages back to back from node 1 to members on
  nodes 2 and 3, the time until the last came back (what corosync alone needs for the stream).

Everything is torn down afterwards, also after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cpg_floor import build_floor, stream
from lab.cluster import CorosyncLab, read_index, wait_same_index
from lab.nodes import start_nodes

C_PMXCFS_1000_CREATES_S = 0.59
"""The C pmxcfs: 1,000 file creations on a 1-node cluster on this machine."""
TARGET_FACTOR = 1.2
SYNC_S = 600.0


def timed(count: int, op: Callable[[int], object]) -> tuple[float, list[float]]:
    """Run op(0..count-1) one after the other; the total and each call's seconds."""
    lat = []
    start = time.perf_counter()
    for k in range(count):
        t0 = time.perf_counter()
        op(k)
        lat.append(time.perf_counter() - t0)
    return time.perf_counter() - start, lat


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def root_version(db: Path) -> int | None:
    """The version row of a node's database (cheap; read-only)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT version FROM tree WHERE inode = 0").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return None if row is None else int(row[0])


def latency_3_nodes(root: Path, writes: int, rows: list[tuple[str, str]]) -> None:
    lab = CorosyncLab(root)
    try:
        lab.up(3)
        d1, _, _ = start_nodes(lab, root, range(1, 4))
        d1.path("lat").mkdir()
        data = b"x" * 200 + b"\n"
        total, lat = timed(writes, lambda k: d1.path(f"lat/f{k}.cfg").write_bytes(data))
        rows.append(
            (
                f"3 nodes: create+write of {writes} files (node 1)",
                f"{total:.2f} s; p50 {pct(lat, 50) * 1e3:.1f} ms, p99 {pct(lat, 99) * 1e3:.1f} ms",
            )
        )
        d1.path("lat/one.cfg").write_bytes(data)
        total, lat = timed(writes, lambda k: d1.path("lat/one.cfg").write_bytes(b"%d " % k + data))
        rows.append(
            (
                f"3 nodes: overwrite one file x{writes} (node 1)",
                f"{total:.2f} s; p50 {pct(lat, 50) * 1e3:.1f} ms, p99 {pct(lat, 99) * 1e3:.1f} ms",
            )
        )
    finally:
        lab.down()


def latency_1_node(root: Path, writes: int, rows: list[tuple[str, str]]) -> None:
    lab = CorosyncLab(root)
    try:
        lab.up(1)
        (d1,) = start_nodes(lab, root, range(1, 2))
        d1.path("lat").mkdir()
        data = b"x" * 200 + b"\n"
        total, lat = timed(writes, lambda k: d1.path(f"lat/f{k}.cfg").write_bytes(data))
        c_figure = C_PMXCFS_1000_CREATES_S * writes / 1000
        ratio = total / c_figure
        verdict = "met" if ratio <= TARGET_FACTOR else "NOT met"
        rows.append(
            (
                f"1 node: create+write of {writes} files",
                f"{total:.2f} s; p50 {pct(lat, 50) * 1e3:.1f} ms, p99 {pct(lat, 99) * 1e3:.1f} ms; "
                f"C pmxcfs {c_figure:.2f} s -> {ratio:.1f}x (aim <= {TARGET_FACTOR}x: {verdict})",
            )
        )
    finally:
        lab.down()


UPDATE_SIZE = 190
"""Bytes of one UPDATE of the resync's files: DFSM state header, update header, name, 101 bytes."""


def resync(
    root: Path, files: int, rows: list[tuple[str, str]], floor: Path | None = None
) -> tuple[float, float | None]:
    """Node 3 catches up ``files`` files: seconds from its start to an identical index and, with
    ``floor`` (a built bench/cpg_floor.c), seconds corosync alone takes to carry as many UPDATEs
    of their size from node 1 to nodes 2 and 3 (the same cluster, right after)."""
    lab = CorosyncLab(root)
    try:
        lab.up(3)
        d1, d2, d3 = start_nodes(lab, root, range(1, 4))
        wait_same_index([d1.db, d2.db, d3.db], timeout=SYNC_S)
        lab.stop_pmxcfs(3)
        folders = max(1, files // 100)
        for f in range(folders):
            d1.path(f"sync/d{f}").mkdir(parents=True)
        data = b"y" * 100 + b"\n"
        t0 = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: d1.path(f"sync/d{k % folders}/f{k}.cfg").write_bytes(data), range(files)))
        created = time.perf_counter() - t0
        target = wait_same_index([d1.db, d2.db], timeout=SYNC_S)
        want_version = root_version(d1.db)
        rows.append((f"create {files} files via node 1 (16 threads), 2 nodes up", f"{created:.2f} s"))

        t0 = time.perf_counter()
        d3 = lab.start_pmxcfs(
            3, root / "pmxcfs3", ["--corosync-conf", str(lab.corosync_conf_path(3))], local=False
        )
        mounted = time.perf_counter() - t0
        d3.wait_for_line(lambda line: "dcdb synced" in line, timeout=SYNC_S)
        synced = time.perf_counter() - t0
        deadline = time.monotonic() + SYNC_S
        while root_version(d3.db) != want_version or read_index(d3.db) != target:
            if time.monotonic() > deadline:
                raise RuntimeError(f"node 3 not in sync after {SYNC_S} s")
            time.sleep(0.02)  # polling the database: the daemon offers nothing to wait on
        same = time.perf_counter() - t0
        rows.append(
            (
                f"resync of restarted node 3 (+{files} files)",
                f"mounted {mounted:.2f} s, 'dcdb synced' {synced:.2f} s, identical index {same:.2f} s",
            )
        )
        carried = None
        if floor is not None:
            updates = files + folders + 2  # every file and folder, the sync folder, the root
            carried = stream(lab, 3, floor, updates, UPDATE_SIZE)
            rows.append((f"corosync alone carrying {updates} UPDATEs (compiled client)", f"{carried:.2f} s"))
        return same, carried
    finally:
        lab.down()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writes", type=int, default=1000, help="sequential writes per latency run (1000)")
    parser.add_argument(
        "--files", type=int, default=10000, help="files the restarted node must catch up (10000)"
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the compiled CPG baseline")
    parser.add_argument("--only", nargs="+", default=[], help="only these runs: latency-3 latency-1 resync")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, FUSE)", file=sys.stderr)
        return 2
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-replication-") as tmp:
        root = Path(tmp)
        floor = None if args.no_floor else build_floor(root)
        for name, run in (
            ("latency-3", lambda: latency_3_nodes(root / "lat3", args.writes, rows)),
            ("latency-1", lambda: latency_1_node(root / "lat1", args.writes, rows)),
            ("resync", lambda: resync(root / "resync", args.files, rows, floor)),
        ):
            if args.only and name not in args.only:
                continue
            print(f"running {name} ...", file=sys.stderr)
            run()
    width = max(len(name) for name, _ in rows)
    print(f"{'measurement':<{width}}  result")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
