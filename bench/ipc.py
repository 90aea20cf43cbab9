#!/usr/bin/env python3
"""IPC benchmark: GET_CONFIG calls per second from one client against a running pmxcfs.

Each run connects a fresh client (ipc/client.py, ctypes over libqb) and calls GET_CONFIG on
one file in a loop for ``--seconds``, checking every answer; the median of ``--runs`` runs is
reported beside the C pmxcfs figure for this kind of machine (8,600/s; the aim is half).

    python bench/ipc.py --mount /etc/pve                 # writes and removes a 500-byte file
    python bench/ipc.py --path datacenter.cfg             # an existing file, read only
    python bench/ipc.py --name pve2-test --mount /tmp/pve/mnt --runs 5 --json out.json

With ``--clients N`` it also runs N client processes at once and reports their total rate.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ipc.client import PveIpcClient

C_RATE = 8600.0
"""GET_CONFIG calls/s of the C pmxcfs from one client, as given for this machine."""
TARGET_FACTOR = 0.5
FILE_SIZE = 500


def one_run(name: str, path: str, expected: bytes, seconds: float) -> float:
    """Calls per second of one client calling GET_CONFIG for ``seconds``."""
    with PveIpcClient(name, timeout_ms=30_000) as client:
        for _ in range(100):  # warm up: first-call costs and the loop's caches
            client.get_config(path)
        calls = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(200):
                data = client.get_config(path)
            if data != expected:
                raise RuntimeError(f"GET_CONFIG {path}: unexpected answer ({len(data)} bytes)")
            calls += 200
            now = time.perf_counter()
            if now >= deadline:
                return calls / (now - start)


def _worker(args: tuple[str, str, bytes, float]) -> float:
    return one_run(*args)


def parallel_run(name: str, path: str, expected: bytes, seconds: float, clients: int) -> float:
    """Total calls per second of ``clients`` processes at once."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(clients) as pool:
        rates = pool.map(_worker, [(name, path, expected, seconds)] * clients)
    return sum(rates)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", default="pve2", help="IPC service name (default: %(default)s)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--mount", help="the daemon's mount: a 500-byte bench file is written there")
    where.add_argument("--path", help="an existing file of the tree (memdb path) to read")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each run")
    parser.add_argument("--clients", type=int, default=0, help="also run this many clients at once")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    bench_file: Path | None = None
    if args.mount:
        rel = f"ipc-bench-{os.getpid()}.cfg"
        bench_file = Path(args.mount) / rel
        bench_file.write_bytes(b"x" * (FILE_SIZE - 1) + b"\n")
        path = rel
    else:
        path = args.path
    try:
        with PveIpcClient(args.name, timeout_ms=30_000) as client:
            expected = client.get_config(path)
        rates = [one_run(args.name, path, expected, args.seconds) for _ in range(args.runs)]
        total = parallel_run(args.name, path, expected, args.seconds, args.clients) if args.clients else None
    finally:
        if bench_file is not None:
            bench_file.unlink(missing_ok=True)

    median = statistics.median(rates)
    aim = C_RATE * TARGET_FACTOR
    print(f"GET_CONFIG {path} ({len(expected)} B), one client, {args.runs} runs of {args.seconds} s:")
    print(f"  median {median:,.0f}/s  (min {min(rates):,.0f}, max {max(rates):,.0f})")
    verdict = "met" if median >= aim else "NOT met"
    print(f"  C pmxcfs {C_RATE:,.0f}/s; aim >= {aim:,.0f}/s: {verdict} ({median / C_RATE:.2f}x C)")
    if total is not None:
        print(f"  {args.clients} clients at once: {total:,.0f}/s in total")
    if args.json:
        figures = {"path": path, "size": len(expected), "rates": rates, "median": median, "c_rate": C_RATE}
        if total is not None:
            figures |= {"clients": args.clients, "parallel_total": total}
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
