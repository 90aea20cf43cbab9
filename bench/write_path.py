"""What one tool-level write costs on a real cluster: latency, CPU per daemon, messages, commits.

Run as root from the repository root:
``.venv/bin/python bench/write_path.py [--nodes 1 3] [--writes 300] [--profile DIR]``.
Each node runs our daemon behind bench/counting_main.py (the real daemon, with counters) in the
test lab (one network namespace per node, corosync token 500 ms). Node 1 writes, one operation
after the other, as the Proxmox tools do:

* ``create``: open O_CREAT|O_TRUNC, write 500 B, close (a new file);
* ``overwrite``: the same on an existing file;
* ``temp+rename``: a temp file written and closed, then renamed over the config;
* ``lock``: mkdir and rmdir of a lock folder below priv/lock;
* ``config change``: lock, temp+rename, unlock (what a `qm set` does to /etc/pve).

Per operation: latency p50/p99, and on node 1 and node 2 the CPU time of the daemon, the CPG
messages sent and delivered, the actor messages handled (thread hand-offs), asks, and SQLite
commits. The same-run baseline: before each operation, bench/cpg_floor.c (compiled here with gcc
against libcpg-dev) multicasts ``--writes`` messages of a WRITE's size from node 1 and waits for
each one's delivery, with a member on every other node: the least any daemon that answers after
delivery pays per message. Each operation is set beside that round trip times the DCDB messages
the original sends for it (``ORIGINAL_MESSAGES``). With ``--profile DIR``, py-spy samples node 1
and node 2 during one more pass of ``create`` (not in the figures) and the samples are summed by
stage (py-spy's raw output is kept in DIR).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cpg_floor import build_floor, round_trips
from lab.cluster import CorosyncLab, NodeDaemon
from lab.nodes import start_nodes

BENCH = Path(__file__).resolve().parent
DATA = b"x" * 499 + b"\n"
FLOOR_SIZE = 560
"""Bytes per floor message: a WRITE of DATA (DFSM and fuse headers, the path, 500 bytes)."""
ORIGINAL_MESSAGES = {"create": 2, "overwrite": 2, "temp+rename": 3, "lock": 2, "config change": 5}
"""DCDB messages the C pmxcfs multicasts, each awaited, per operation (ours sends the same)."""

STAGES = (
    ("pykka/", "pykka: mailboxes, futures"),
    ("threading.py", "thread hand-off (locks, conditions)"),
    ("queue.py", "thread hand-off (locks, conditions)"),
    ("logging/", "logging"),
    ("fuse.py", "fusepy callbacks"),
    ("fusefs/", "FUSE operations"),
    ("bindings/", "ctypes: libcpg, libqb, corosync"),
    ("wire/", "wire codecs"),
    ("dfsm/", "DFSM state machine"),
    ("dcdb/", "DCDB apply and sync"),
    ("db/", "SQLite store"),
    ("sqlite3", "SQLite store"),
    ("memdb/", "tree and snapshot"),
    ("pyrsistent/", "tree and snapshot"),
    ("status/", "status state"),
    ("actors/", "actors and their glue"),
    ("daemon/", "daemon"),
)
"""Where a sample's innermost known frame lies, first match wins (checked leaf to root)."""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Counts:
    """Asks a daemon behind counting_main.py for its counters."""

    def __init__(self, fifo_dir: Path) -> None:
        self.dir = fifo_dir

    def read(self) -> dict[str, int]:
        with open(self.dir / "ask", "w") as ask:
            ask.write("?\n")
        with open(self.dir / "answer") as answer:
            result: dict[str, int] = json.loads(answer.readline())
        return result


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def operations(mount: Path) -> dict[str, Callable[[int], None]]:
    def create(k: int) -> None:
        (mount / f"bench/c{k}.cfg").write_bytes(DATA)

    def overwrite(k: int) -> None:
        (mount / "bench/one.cfg").write_bytes(DATA)

    def temp_rename(k: int) -> None:
        tmp = mount / f"bench/one.cfg.tmp.{k}"
        tmp.write_bytes(DATA)
        os.rename(tmp, mount / "bench/one.cfg")

    def lock(k: int) -> None:
        folder = mount / "priv/lock/bench"
        folder.mkdir()
        folder.rmdir()

    def config_change(k: int) -> None:
        folder = mount / "priv/lock/bench"
        folder.mkdir()
        temp_rename(k)
        folder.rmdir()

    return {
        "create": create,
        "overwrite": overwrite,
        "temp+rename": temp_rename,
        "lock": lock,
        "config change": config_change,
    }


def daemon_pid(daemon: NodeDaemon) -> int:
    """The daemon's pid (nsenter execs it, so it is the process the lab started)."""
    assert daemon.proc is not None
    return daemon.proc.pid


def profile_start(pid: int, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "py-spy",
            "record",
            "-r",
            "250",
            "--gil",
            "--nonblocking",
            "--format",
            "raw",
            "-o",
            str(out),
            "--pid",
            str(pid),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stages(raw: Path) -> dict[str, int]:
    """py-spy raw samples summed by stage."""
    found: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = stack.split(";")
        stage = "other (interpreter, imports)"
        for frame in reversed(frames):
            hit = next((name for key, name in STAGES if key in frame), None)
            if hit is not None:
                stage = hit
                break
        found[stage] += int(samples)
    return dict(found)


def run(
    nodes: int,
    writes: int,
    root: Path,
    profile: Path | None,
    only: frozenset[str] = frozenset(),
    floor: Path | None = None,
) -> list[dict[str, object]]:
    """Each operation ``writes`` times on a cluster of ``nodes``; with ``floor`` (a built
    cpg_floor), a pass of the floor before each operation and one row of all its round trips."""
    lab = CorosyncLab(root)
    rows: list[dict[str, object]] = []
    floor_trips: list[float] = []
    try:
        lab.up(nodes)
        fifo_dirs = {}
        for i in range(1, nodes + 1):
            fifo_dirs[i] = root / f"fifo{i}"
            fifo_dirs[i].mkdir(parents=True)
            for name in ("ask", "answer"):
                os.mkfifo(fifo_dirs[i] / name)
        counting = str(BENCH / "counting_main.py")
        daemons = start_nodes(lab, root, range(1, nodes + 1), wrapper=lambda i: (counting, str(fifo_dirs[i])))
        watched: list[tuple[str, NodeDaemon, Counts]] = [("node 1", daemons[0], Counts(fifo_dirs[1]))]
        if nodes > 1:
            watched.append(("node 2", daemons[1], Counts(fifo_dirs[2])))
        mount = daemons[0].mount
        (mount / "bench").mkdir()
        (mount / "priv/lock").mkdir(parents=True, exist_ok=True)
        (mount / "bench/one.cfg").write_bytes(DATA)
        ops = operations(mount)
        for name, op in ops.items():
            if only and name not in only:
                continue
            if floor is not None:  # alternating: the baseline's pass, then ours
                floor_trips += round_trips(lab, nodes, floor, writes, FLOOR_SIZE)
            for k in range(min(20, writes)):  # warm-up: caches, first-time paths
                op(writes + k)
            before = [c.read() for _, _, c in watched]
            latencies = []
            for k in range(writes):
                t0 = time.perf_counter()
                op(k)
                latencies.append(time.perf_counter() - t0)
            after = [c.read() for _, _, c in watched]
            row: dict[str, object] = {
                "nodes": nodes,
                "op": name,
                "p50_ms": pct(latencies, 50) * 1e3,
                "p99_ms": pct(latencies, 99) * 1e3,
            }
            for (label, _, _), b, a in zip(watched, before, after, strict=True):
                row[label] = {k: v / writes for k, v in diff(a, b).items()}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
        if floor_trips:
            floor_row: dict[str, object] = {
                "nodes": nodes,
                "op": "floor",
                "p50_ms": pct(floor_trips, 50) * 1e3,
                "p99_ms": pct(floor_trips, 99) * 1e3,
            }
            rows.append(floor_row)
            print(json.dumps(floor_row), file=sys.stderr)
        if profile is not None:  # a pass of its own: py-spy pauses the process to sample it
            spies = [
                profile_start(daemon_pid(d), profile / f"{nodes}n-{label.replace(' ', '')}.raw")
                for label, d, _ in watched
            ]
            for k in range(writes):
                ops["create"](2 * writes + k)
            for spy in spies:
                spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
                spy.wait(60)
    finally:
        lab.down()
    return rows


def summary(counts: dict[str, float]) -> dict[str, float]:
    """Per operation: CPU ms, CPG sent/delivered, hand-offs, asks, commits."""
    return {
        "cpu_ms": counts.get("cpu_ns", 0) / 1e6,
        "mcast": sum(v for k, v in counts.items() if k.startswith("mcast:")),
        "deliver": sum(v for k, v in counts.items() if k.startswith("deliver:")),
        "handoffs": sum(v for k, v in counts.items() if k.startswith("actor:")),
        "asks": sum(v for k, v in counts.items() if k.startswith("ask:")),
        "commits": counts.get("commit", 0),
    }


def _number(row: dict[str, object], key: str) -> float:
    value = row[key]
    assert isinstance(value, int | float)
    return float(value)


def against_floor(rows: list[dict[str, object]]) -> list[tuple[int, str, float, float]]:
    """(nodes, operation, our p50 ms, the floor's p50 ms times the original's messages)."""
    floors = {row["nodes"]: _number(row, "p50_ms") for row in rows if row["op"] == "floor"}
    found = []
    for row in rows:
        op = str(row["op"])
        if row["nodes"] in floors and op in ORIGINAL_MESSAGES:
            floor = floors[row["nodes"]] * ORIGINAL_MESSAGES[op]
            found.append((int(_number(row, "nodes")), op, _number(row, "p50_ms"), floor))
    return found


def markdown(rows: list[dict[str, object]]) -> str:
    lines = [
        "| nodes | operation | p50 ms | p99 ms | daemon | CPU ms | CPG sent | CPG delivered "
        "| actor messages | asks | commits |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for label in ("node 1", "node 2"):
            counts = row.get(label)
            if not isinstance(counts, dict):
                continue
            s = summary(counts)
            lines.append(
                f"| {row['nodes']} | {row['op']} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {label} "
                f"| {s['cpu_ms']:.2f} | {s['mcast']:.1f} | {s['deliver']:.1f} | {s['handoffs']:.1f} "
                f"| {s['asks']:.1f} | {s['commits']:.2f} |"
            )
    pairs = against_floor(rows)
    if pairs:
        lines += [
            "",
            "| nodes | operation | p50 ms | floor: CPG round trip x the original's messages, ms "
            "| ours / floor |",
            "|---|---|---:|---:|---:|",
        ]
        for nodes, op, ours, floor in pairs:
            lines.append(f"| {nodes} | {op} | {ours:.2f} | {floor:.2f} | {ours / floor:.2f}x |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--profile", type=Path, help="py-spy the create runs; raw samples kept here")
    parser.add_argument("--json", type=Path, help="write every row here")
    parser.add_argument("--ops", nargs="+", default=[], help="only these operations (names as printed)")
    parser.add_argument("--no-floor", action="store_true", help="skip the compiled CPG baseline")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, FUSE)", file=sys.stderr)
        return 2
    if args.profile is not None:
        if shutil.which("py-spy") is None:
            print("--profile needs py-spy on PATH (pip install py-spy)", file=sys.stderr)
            return 2
        args.profile.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-cpg-floor-") as build_dir:
        floor = None if args.no_floor else build_floor(Path(build_dir))
        for nodes in args.nodes:
            with tempfile.TemporaryDirectory(prefix=f"bench-write-path-{nodes}-") as tmp:
                rows.extend(run(nodes, args.writes, Path(tmp), args.profile, frozenset(args.ops), floor))
    print(markdown(rows))
    if args.profile is not None:
        for raw in sorted(args.profile.glob("*.raw")):
            found = stages(raw)
            total = sum(found.values()) or 1
            print(f"\n{raw.name}: {total} samples")
            print("| stage | share |\n|---|---:|")
            for stage, n in sorted(found.items(), key=lambda kv: -kv[1]):
                print(f"| {stage} | {100 * n / total:.1f} % |")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
