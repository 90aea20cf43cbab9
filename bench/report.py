"""Every benchmark in one run, with its baseline measured in the same invocation, as a report.

Run as root from the repository root (``bash scripts/bench.sh`` installs what it needs first):

    .venv/bin/python bench/report.py [--quick] [--out bench/results]

It writes ``<out>/report.md`` (medians, ratios to the baseline, the C pmxcfs figures given in
the issues for this kind of machine) and ``<out>/latency.png`` (latency distributions):

* file system, local mode: bench/fsbench.py's workloads on our mount and on tmpfs (the
  baseline, interleaved run by run), and per-operation latencies of small-file create+write and
  read on both;
* IPC: GET_CONFIG calls per second (bench/ipc.py) and, as its baseline, open+read+close of the
  same file through the mount;
* the floor of the binding: bench/fsbench.py's reads on our mount and on a bare in-memory
  fusepy file system (bench/barefs.py, the baseline, interleaved), and IPC calls per second per
  request from a compiled libqb client (bench/ipcc_loop.c, bench/ipc_compiled.py) against the
  C pmxcfs's figures;
* cluster mode on a 3-node test cluster (network namespaces): per-write latency of small-file
  creations on node 1, with the same creations on a local-mode daemon as the baseline; the
  time from starting corosync on 3 nodes to all quorate and mounted; and from
  bench/replication.py the creations on a 1-node cluster and the resync of a restarted node
  that missed 10,000 files;
* the write path (bench/write_path.py) on 1 and 3 nodes: p50 of a create, an overwrite, a temp
  file + rename and a whole config change, each against its same-run floor: a compiled CPG
  client's round trip (bench/cpg_floor.c) times the messages the original sends for it; and the
  restarted node's resync against the same client carrying as many UPDATEs;
* scale (bench/scale.py): write latency p50/p99, a joiner's resync of 10,000 x 2 KiB files and
  the daemons' RSS on 3, 5 and 7 nodes, plotted in ``<out>/scale.png``;
* disk writes per temp-file update (bench/diskwrites.py) against the original's commit pattern
  replayed on the same schema, and a resync's records stored batched against one transaction
  each (bench/sync_commit.py).

Everything it starts is torn down afterwards, also on an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from lab.cluster import CorosyncLab, end_process  # noqa: E402
from lab.daemon import Daemon  # noqa: E402
from lab.nodes import start_nodes  # noqa: E402


def _bench_module(name: str) -> ModuleType:
    """One of the other bench scripts (bench/ipc.py would shadow the ipc package by name)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


fsbench = _bench_module("fsbench")
ipc_rate = _bench_module("ipc").one_run
ipc_compiled = _bench_module("ipc_compiled")
replication = _bench_module("replication")
diskwrites = _bench_module("diskwrites")
sync_commit = _bench_module("sync_commit")
scale = _bench_module("scale")
write_path = _bench_module("write_path")
cpg_floor = _bench_module("cpg_floor")

C_FIGURES = {
    "create+write 1000 files (s)": 0.18,
    "read 1000 files (s)": 0.09,
    "GET_CONFIG calls/s": 8600.0,
    "cluster: 1000 creations, 1 node (s)": 0.59,
}
"""The C pmxcfs on this kind of machine, as the issues give them."""
FILE = b"x" * 500


@dataclass
class Report:
    """Rows of (what, ours, baseline, unit) and latency samples (label -> seconds)."""

    rows: list[tuple[str, float, float | None, str]] = field(default_factory=list)
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, what: str, ours: float, baseline: float | None, unit: str) -> None:
        self.rows.append((what, ours, baseline, unit))
        base = f"{baseline:.4g}" if baseline is not None else "-"
        print(f"{what:45} {ours:12.4g} {base:>12} {unit}", file=sys.stderr)


def per_op(count: int, op: Callable[[int], object]) -> list[float]:
    """Latency of each of ``count`` calls of ``op``."""
    out = []
    for k in range(count):
        t0 = time.perf_counter()
        op(k)
        out.append(time.perf_counter() - t0)
    return out


def small_file_latencies(folder: Path, count: int) -> tuple[list[float], list[float]]:
    """(create+write, read) latencies of ``count`` 500-byte files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    writes = per_op(count, lambda k: (folder / f"f{k}.cfg").write_bytes(FILE))
    reads = per_op(count, lambda k: (folder / f"f{k}.cfg").read_bytes())
    shutil.rmtree(folder, ignore_errors=True)
    return writes, reads


def local_mode(report: Report, root: Path, quick: bool) -> None:
    """Our local-mode daemon against tmpfs, and IPC against reads through the mount."""
    tmpfs = Path(tempfile.mkdtemp(prefix="pmxcfs-bench-", dir="/dev/shm"))
    name = f"pve2-bench-{os.getpid()}"
    pve = Daemon(root / "local", extra_args=("--ipc-name", name)).start()
    try:
        files = 200 if quick else 1000
        cfg = fsbench.Config(2 if quick else 5, files, 100 if quick else 1000, 1.0)
        mounts = [str(tmpfs), str(pve.mount)]
        samples, errors = fsbench.run_all(mounts, cfg)
        if any(errors.values()):
            raise RuntimeError(f"fsbench failed: {errors}")
        for workload in fsbench.WORKLOADS:
            ours, base = samples[str(pve.mount)][workload], samples[str(tmpfs)][workload]
            if ours and base:
                unit = "reads/s" if workload in fsbench.RATE_WORKLOADS else "s"
                report.add(
                    f"fs {workload} ({files} files)", statistics.median(ours), statistics.median(base), unit
                )
        count = 200 if quick else 1000
        w, r = small_file_latencies(pve.mount / "lat", count)
        report.samples["local: create+write"], report.samples["local: read"] = w, r
        w, r = small_file_latencies(tmpfs / "lat", count)
        report.samples["tmpfs: create+write"], report.samples["tmpfs: read"] = w, r
        (pve.mount / "bench.cfg").write_bytes(FILE)
        seconds = 0.5 if quick else 2.0
        rates = [ipc_rate(name, "bench.cfg", FILE, seconds) for _ in range(1 if quick else 3)]
        reads = per_op(2000, lambda k: (pve.mount / "bench.cfg").read_bytes())
        report.add(
            "IPC GET_CONFIG (1 client)", statistics.median(rates), 1 / statistics.median(reads), "calls/s"
        )
        report.notes.append("IPC baseline: open+read+close of the same file through the mount, per second.")
    finally:
        pve.stop()
        shutil.rmtree(tmpfs, ignore_errors=True)


def bare_floor(report: Report, root: Path, quick: bool) -> None:
    """Reads on our mount against a bare fusepy file system; IPC from a compiled client."""
    bare_mount = root / "bare"
    bare_mount.mkdir()
    bare = subprocess.Popen(
        [sys.executable, str(BENCH / "barefs.py"), str(bare_mount)], stdin=subprocess.DEVNULL
    )
    name = f"pve2-floor-{os.getpid()}"
    pve = Daemon(root / "floor", extra_args=("--ipc-name", name)).start()
    try:
        deadline = time.monotonic() + 30
        while not os.path.ismount(bare_mount):  # deadline poll: barefs offers nothing to wait on
            if time.monotonic() > deadline or bare.poll() is not None:
                raise RuntimeError("bench/barefs.py did not mount")
            time.sleep(0.1)
        files = 200 if quick else 1000
        cfg = fsbench.Config(2 if quick else 5, files, 100 if quick else 1000, 1.0)
        samples, errors = fsbench.run_all([str(bare_mount), str(pve.mount)], cfg)
        if any(errors.values()):
            raise RuntimeError(f"fsbench failed: {errors}")
        for workload in ("read", "reread", "stat", "create+write", "overwrite"):
            ours, base = samples[str(pve.mount)][workload], samples[str(bare_mount)][workload]
            report.add(
                f"fs {workload} vs bare fusepy ({files})",
                statistics.median(ours),
                statistics.median(base),
                "s",
            )
        report.add(
            ".members reads/s vs a bare fusepy file of its size",
            statistics.median(samples[str(pve.mount)]["members"]),
            statistics.median(samples[str(bare_mount)]["members"]),
            "reads/s",
        )
        (pve.mount / "bench.cfg").write_bytes(FILE)
        with tempfile.TemporaryDirectory() as tmp:
            binary = ipc_compiled.build(Path(tmp))
            seconds = 0.5 if quick else 2.0
            for op in ipc_compiled.OPS:
                rates = [
                    ipc_compiled.calls_per_second(binary, name, op, seconds, "bench.cfg")
                    for _ in range(1 if quick else 3)
                ]
                report.add(
                    f"IPC {op} (compiled client)",
                    statistics.median(rates),
                    ipc_compiled.C_RATES[op],
                    "calls/s",
                )
        report.notes.append(
            "Floor: bench/barefs.py, a bare in-memory fusepy file system with our mount options. "
            "Compiled-client IPC rows: the baseline column is the C pmxcfs's figure for this kind of machine."
        )
    finally:
        pve.stop()
        end_process(bare, 30)
        if os.path.ismount(bare_mount):
            subprocess.run(["fusermount", "-u", "-z", str(bare_mount)], check=False)


def cluster_mode(report: Report, root: Path, quick: bool) -> None:
    """Write latency on a 3-node cluster against a local-mode daemon; cluster startup time."""
    count = 100 if quick else 1000
    local = Daemon(root / "baseline").start()
    try:
        base = per_op(count, lambda k: (local.mount / f"b{k}.cfg").write_bytes(FILE))
    finally:
        local.stop()
    lab = CorosyncLab(root)
    try:
        t0 = time.monotonic()
        lab.up(3)
        nodes = start_nodes(lab, root / "cluster", [1, 2, 3])
        startup = time.monotonic() - t0
        n1 = nodes[0]
        (n1.mount / "bench").mkdir()
        ours = per_op(count, lambda k: (n1.mount / "bench" / f"c{k}.cfg").write_bytes(FILE))
    finally:
        lab.down()
    report.samples["cluster 3 nodes: create+write"] = ours
    report.samples["local (baseline): create+write"] = base
    report.add(f"cluster: {count} creations, 3 nodes", sum(ours), sum(base), "s")
    report.add("cluster: creation p99 latency, 3 nodes", _pct(ours, 0.99), _pct(base, 0.99), "s")
    report.add("cluster: 3 nodes started to quorate+mounted", startup, None, "s")


def resync_and_one_node(report: Report, root: Path, quick: bool) -> None:
    """bench/replication.py: creations on a 1-node cluster (the C figure's setting) and the
    catch-up of a restarted node, against corosync alone carrying its UPDATEs (same run)."""
    rows: list[tuple[str, str]] = []
    replication.latency_1_node(root / "lat1", 100 if quick else 1000, rows)
    floor = cpg_floor.build_floor(root)
    files = 500 if quick else 5000
    same, carried = replication.resync(root / "resync", files, rows, floor)
    report.add(f"rejoin: +{files} files to identical index vs corosync carrying them", same, carried, "s")
    report.notes += [f"{name}: {value}" for name, value in rows]


def write_path_floor(report: Report, root: Path, quick: bool) -> None:
    """bench/write_path.py: tool-level writes against the compiled CPG round trip (same run)."""
    floor = cpg_floor.build_floor(root)
    ops = frozenset({"create", "overwrite", "temp+rename", "config change"})
    for nodes in (1, 3):
        rows = write_path.run(nodes, 100 if quick else 300, root / f"write-path-{nodes}", None, ops, floor)
        for n, op, ours, base in write_path.against_floor(rows):
            report.add(f"{n} node(s): {op} p50 vs CPG floor", ours, base, "ms")
    report.notes.append(
        "Write-path floor: bench/cpg_floor.c multicasting from node 1 until its own delivery, "
        "times the DCDB messages the original sends for the operation (2, 2, 3, 5), measured "
        "before each operation on the same cluster (bench/write_path.py)."
    )


def disk_writes(report: Report, root: Path) -> None:
    """bench/diskwrites.py: bytes to disk per temp-file update, against the original's pattern."""
    for name, (content, updates) in diskwrites.WORKLOADS.items():
        ours = diskwrites.ours(name, root / f"disk-{name}") / updates
        original = diskwrites.original_pattern_in_child(name, root / f"disk-{name}-c.db") / updates
        report.add(
            f"disk writes per update, {len(content) // 1024 or 1} KiB file",
            ours / 1024,
            original / 1024,
            "KiB",
        )
    report.notes.append(
        "Disk-write baseline: the original's commit pattern (one transaction per create, write "
        "chunk and rename) replayed on the same schema and pragmas (bench/diskwrites.py)."
    )


def resync_store(report: Report, root: Path, quick: bool) -> None:
    """bench/sync_commit.py: the joiner storing a resync's records, batched against per entry."""
    rows = sync_commit.records(1000 if quick else 10000, 2048)
    one = sync_commit.batched(root / "sync-batched.db", rows)
    each = sync_commit.per_entry(root / "sync-each.db", rows)
    report.add(f"resync: store {len(rows)} UPDATE records (2 KiB)", one, each, "s")
    report.notes.append(
        "Resync-store baseline: the same records, one transaction each (bench/sync_commit.py)."
    )


def scale_run(report: Report, root: Path, quick: bool, out: Path) -> None:
    """bench/scale.py: write latency, resync and memory on 3, 5 and 7 nodes."""
    files = 1000 if quick else 10000
    src = scale.seed_files(root, files, 2048)
    results = [scale.one_size(root / f"scale{n}", n, src, 100 if quick else 300) for n in (3, 5, 7)]
    for r in results:
        n = r["nodes"]
        report.add(f"{n} nodes: write p50", r["write_p50_ms"], None, "ms")
        report.add(f"{n} nodes: write p99", r["write_p99_ms"], None, "ms")
        report.add(f"{n} nodes: joiner resync ({files} x 2 KiB)", r["resync_s"], None, "s")
        report.add(f"{n} nodes: daemon RSS, largest", r["rss_mib_max"], None, "MiB")
    scale.plot(results, out / "scale.png")
    report.notes.append("Scale: see scale.png (bench/scale.py).")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def write_markdown(report: Report, out: Path, quick: bool) -> Path:
    lines = [
        "# Benchmark report",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores"
        + (", quick run" if quick else ""),
        "",
        "| what | ours | baseline | ours / baseline | unit |",
        "|---|---:|---:|---:|---|",
    ]
    for what, ours, base, unit in report.rows:
        ratio = f"{ours / base:.2f}x" if base else "-"
        lines.append(f"| {what} | {ours:.4g} | {'-' if base is None else f'{base:.4g}'} | {ratio} | {unit} |")
    lines += ["", "Baselines: tmpfs for the file system, a local-mode daemon for cluster writes.", ""]
    lines += [f"- {note}" for note in report.notes]
    lines += ["", "## The C pmxcfs on this kind of machine (from the issues)", ""]
    lines += [f"- {what}: {value:g}" for what, value in C_FIGURES.items()]
    lines += [
        "",
        "## Latency distributions",
        "",
        "![latency](latency.png)",
        "",
        "| series | p50 | p90 | p99 |",
    ]
    lines.append("|---|---:|---:|---:|")
    for label, values in report.samples.items():
        lines.append(
            f"| {label} | {_pct(values, 0.5) * 1e3:.3f} ms | {_pct(values, 0.9) * 1e3:.3f} ms "
            f"| {_pct(values, 0.99) * 1e3:.3f} ms |"
        )
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def plot(report: Report, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    for label, values in report.samples.items():
        ordered = sorted(v * 1e3 for v in values)
        ax.plot(ordered, [(k + 1) / len(ordered) for k in range(len(ordered))], label=label)
    ax.set_xscale("log")
    ax.set_xlabel("latency per operation (ms, log scale)")
    ax.set_ylabel("fraction of operations")
    ax.set_title("pmxcfs (Python): latency distributions")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    path = out / "latency.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and files (a smoke test)")
    parser.add_argument("--out", default="bench/results", help="folder of report.md and latency.png")
    parser.add_argument("--no-cluster", action="store_true", help="skip the cluster benchmarks")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("run as root (FUSE mounts, network namespaces)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report()
    root = Path(tempfile.mkdtemp(prefix="pmxcfs-bench-"))
    try:
        local_mode(report, root, args.quick)
        bare_floor(report, root, args.quick)
        if not args.no_cluster:
            cluster_mode(report, root, args.quick)
            resync_and_one_node(report, root, args.quick)
            write_path_floor(report, root, args.quick)
            scale_run(report, root, args.quick, out)
        disk_writes(report, root)
        resync_store(report, root, args.quick)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"wrote {write_markdown(report, out, args.quick)} and {plot(report, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
