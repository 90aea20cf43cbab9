#!/usr/bin/env python3
"""Small-file benchmark for pmxcfs-style FUSE mounts (stdlib only).

Runs a fixed set of file-system workloads inside a fresh scratch directory
on each given mount point, interleaving the mount points run by run, and
prints the median/min/max wall time of every workload plus the ratio of
each mount point's median to the first one's. See bench/README.md.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

FILE_SIZE = 500
OVERWRITE_SIZE = 4096
BIG_SIZE = 512 * 1024
WRITE_FLAGS = os.O_CREAT | os.O_WRONLY | os.O_TRUNC
SMALL_FILE_WORKLOADS = ("create+write", "read", "reread", "stat", "readdir", "overwrite")
WORKLOADS = (*SMALL_FILE_WORKLOADS, "big-write", "big-read", "members")
RATE_WORKLOADS = frozenset({"members"})
C_TARGETS = {"create+write": 0.18, "read": 0.09}
TARGET_FACTOR = 1.5
TARGET_FILES = 1000


class BenchError(Exception):
    """A workload failed; carries the workload name and offending path."""

    def __init__(self, workload: str, path: str, exc: OSError | None = None, detail: str = "") -> None:
        if exc is not None:
            code = errno.errorcode.get(exc.errno or 0, "?")
            detail = f"errno {exc.errno} ({code}): {exc.strerror}"
        super().__init__(f"workload {workload!r}: {path}: {detail}")


@dataclass(frozen=True)
class Config:
    """Benchmark parameters taken from the command line."""

    runs: int
    files: int
    readdir_count: int
    members_seconds: float


def read_all(fd: int) -> bytes:
    """Reads from ``fd`` until EOF and returns everything read."""
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def write_file(workload: str, path: str, data: bytes, flags: int = WRITE_FLAGS) -> None:
    """Opens ``path``, writes ``data`` in one os.write call, closes it."""
    fd = os.open(path, flags, 0o644)
    try:
        written = os.write(fd, data)
    finally:
        os.close(fd)
    if written != len(data):
        raise BenchError(workload, path, detail=f"short write {written}/{len(data)}")


def read_file(workload: str, path: str, want: bytes) -> None:
    """Opens ``path``, reads it to EOF, closes it and verifies the content."""
    fd = os.open(path, os.O_RDONLY)
    try:
        got = read_all(fd)
    finally:
        os.close(fd)
    if got != want:
        raise BenchError(
            workload,
            path,
            detail=f"content mismatch ({len(got)} bytes read, {len(want)} expected)",
        )


def timed(
    workload: str,
    items: Iterable[tuple[str, Any]],
    op: Callable[[str, str, Any], object],
) -> float:
    """Calls ``op(workload, path, data)`` for each item; returns elapsed seconds.

    Raises:
        BenchError: naming the workload, the path being processed and the errno.
    """
    path = ""
    start = time.perf_counter()
    try:
        for path, data in items:
            op(workload, path, data)
    except OSError as exc:
        raise BenchError(workload, exc.filename or path, exc) from exc
    return time.perf_counter() - start


def do_stat(_workload: str, path: str, _data: object) -> None:
    """Stats ``path``."""
    os.stat(path)


def do_listdir(workload: str, path: str, expected: int) -> None:
    """Lists ``path`` and checks that it has ``expected`` entries."""
    count = len(os.listdir(path))
    if count != expected:
        raise BenchError(workload, path, detail=f"{count} entries, {expected} expected")


def do_overwrite(workload: str, path: str, data: bytes) -> None:
    """Truncates and rewrites the existing file ``path``."""
    write_file(workload, path, data, os.O_WRONLY | os.O_TRUNC)


def wl_members(mount: str, seconds: float) -> float | None:
    """Returns open/read/close rate of ``<mount>/.members``, None if absent."""
    path = os.path.join(mount, ".members")
    if not os.path.isfile(path):
        return None
    count, start = 0, time.perf_counter()
    deadline, now = start + seconds, start
    try:
        while now < deadline or count == 0:
            fd = os.open(path, os.O_RDONLY)
            try:
                read_all(fd)
            finally:
                os.close(fd)
            count += 1
            now = time.perf_counter()
    except OSError as exc:
        raise BenchError("members", path, exc) from exc
    return count / (now - start)


def remove_tree(path: str) -> None:
    """Removes the scratch tree, warning (not failing) on errors."""

    def on_error(_func: object, failed: str, exc_info: tuple) -> None:
        print(f"warning: cleanup of {failed}: {exc_info[1]}", file=sys.stderr)

    shutil.rmtree(path, onerror=on_error)


def make_dir(path: str) -> None:
    """Creates directory ``path``, raising BenchError on failure."""
    try:
        os.mkdir(path)
    except OSError as exc:
        raise BenchError("setup", path, exc) from exc


def run_once(mount: str, cfg: Config, seq: int) -> dict[str, float]:
    """Runs every workload once in a new scratch dir under ``mount``."""
    scratch = os.path.join(mount, f"bench-{os.getpid()}-{seq}")
    folder = os.path.join(scratch, "files")
    make_dir(scratch)
    try:
        make_dir(folder)
        paths = [os.path.join(folder, f"f{i:06d}") for i in range(cfg.files)]
        files = [(p, f"file {i:06d}\n".encode().ljust(FILE_SIZE, b"x")) for i, p in enumerate(paths)]
        small, big = os.path.join(scratch, "small"), os.path.join(scratch, "big")
        big_data = bytes(range(256)) * (BIG_SIZE // 256)
        write_file("overwrite", small, b"")  # setup, untimed
        res = {
            "create+write": timed("create+write", files, write_file),
            "read": timed("read", files, read_file),
            "reread": timed("reread", files, read_file),  # unchanged since their last open
            "stat": timed("stat", files, do_stat),
            "readdir": timed("readdir", [(folder, cfg.files)] * cfg.readdir_count, do_listdir),
            "overwrite": timed("overwrite", [(small, b"o" * OVERWRITE_SIZE)] * cfg.files, do_overwrite),
            "big-write": timed("big-write", [(big, big_data)], write_file),
            "big-read": timed("big-read", [(big, big_data)], read_file),
        }
        members = wl_members(mount, cfg.members_seconds)
        if members is not None:
            res["members"] = members
        return res
    finally:
        remove_tree(scratch)


def summarize(samples: list[float]) -> dict[str, object] | None:
    """Returns median/min/max of ``samples`` (None when empty)."""
    if not samples:
        return None
    return {
        "samples": samples,
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
    }


def target_check(median: float | None, workload: str, cfg: Config) -> dict:
    """Compares a median with the C pmxcfs figure times TARGET_FACTOR."""
    aim = C_TARGETS[workload] * TARGET_FACTOR
    comparable = median is not None and cfg.files == TARGET_FILES
    met = median <= aim if comparable else None
    return {"c_pmxcfs": C_TARGETS[workload], "aim": aim, "median": median, "met": met}


def build_report(mounts: list[str], samples: dict, errors: dict, cfg: Config) -> dict:
    """Builds the JSON-serialisable report of all figures."""
    out: list[dict] = []
    for mount in mounts:
        stats = {w: summarize(samples[mount][w]) for w in WORKLOADS}
        for w, st in stats.items():
            base = out[0]["workloads"][w] if out else st
            if st is not None:
                st["unit"] = "reads/s" if w in RATE_WORKLOADS else "s"
                ok = base is not None and base["median"]
                st["ratio_to_first"] = st["median"] / base["median"] if ok else None
        targets = {w: target_check(stats[w]["median"] if stats[w] else None, w, cfg) for w in C_TARGETS}
        entry = {"path": mount, "workloads": stats, "targets": targets}
        entry["has_members"] = os.path.isfile(os.path.join(mount, ".members"))
        out.append({**entry, "errors": errors[mount]})
    return {"config": vars(cfg), "mounts": out}


def fmt(value: float, workload: str) -> str:
    """Formats a time in ms, or a rate in reads/s."""
    return f"{value:.0f}" if workload in RATE_WORKLOADS else f"{value * 1e3:.3f}"


def print_table(report: dict) -> None:
    """Prints the per-workload table (one row per workload and mount)."""
    cfg, mounts = report["config"], report["mounts"]
    print(
        f"fsbench: {cfg['runs']} runs, {cfg['files']} files, readdir x"
        f"{cfg['readdir_count']}, members {cfg['members_seconds']} s"
    )
    for i, m in enumerate(mounts, 1):
        print(f"  M{i} = {m['path']}")
    print("times in ms (members: reads/s, higher is better); ratio = median / M1 median")
    head = ("workload", "mount", "median", "min", "max", "ratio")
    print("{:<13} {:<5} {:>11} {:>11} {:>11} {:>7}".format(*head))
    for w in WORKLOADS:
        for i, m in enumerate(mounts, 1):
            st, label = m["workloads"][w], (w if i == 1 else "")
            if st is None:
                no_file = w == "members" and not m["has_members"]
                why = "n/a (no .members)" if no_file else "error"
                print(f"{label:<13} M{i:<4}   {why}")
                continue
            ratio = f"{st['ratio_to_first']:.2f}x" if st["ratio_to_first"] else "-"
            nums = " ".join(f"{fmt(st[k], w):>11}" for k in ("median", "min", "max"))
            print(f"{label:<13} M{i:<4} {nums} {ratio:>7}")


def print_targets(report: dict) -> None:
    """Prints the issue targets, whether each mount met them, and any errors."""
    aims = ", ".join(f"{w} {c:.2f} s -> {c * TARGET_FACTOR:.3f} s" for w, c in C_TARGETS.items())
    print(f"targets for {TARGET_FILES} files (C pmxcfs; aim <= {TARGET_FACTOR}x C):")
    print(f"  {aims}")
    verdicts = {True: "met", False: "NOT met", None: "n/a"}
    for i, m in enumerate(report["mounts"], 1):
        parts = []
        for w, t in m["targets"].items():
            med = "-" if t["median"] is None else f"{t['median']:.3f} s"
            parts.append(f"{w} {med} {verdicts[t['met']]}")
        print(f"  M{i}: " + "; ".join(parts))
        for err in m["errors"]:
            print(f"  M{i} ERROR: {err}")


def positive(kind: type) -> Callable[[str], Any]:
    """Returns an argparse type converter accepting values > 0 of ``kind``."""

    def convert(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0: {text}")
        return value

    return convert


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parses and validates the command line."""
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    num, real = positive(int), positive(float)
    p.add_argument("mounts", nargs="+", help="mount points (directories) to test")
    p.add_argument("--runs", type=num, default=5, help="runs per mount point")
    p.add_argument("--files", type=num, default=1000, help="files per run; also overwrites")
    p.add_argument("--readdir-count", type=num, default=1000, help="listdir calls per run")
    p.add_argument("--members-seconds", type=real, default=1.0, help=".members read loop")
    p.add_argument("--json", metavar="FILE", help="also write all figures as JSON")
    args = p.parse_args(argv)
    for mount in args.mounts:
        if not os.path.isdir(mount):
            p.error(f"not a directory: {mount}")
    return args


def run_all(mounts: list[str], cfg: Config) -> tuple[dict, dict[str, list[str]]]:
    """Runs all workloads cfg.runs times, interleaving the mount points.

    Returns:
        (samples, errors): per mount, the samples of each workload and the
        error messages; a mount point is dropped after its first error.
    """
    samples = {m: {w: [] for w in WORKLOADS} for m in mounts}
    errors: dict[str, list[str]] = {m: [] for m in mounts}
    seq = 0
    for run in range(cfg.runs):
        for i, mount in enumerate(mounts, 1):
            if errors[mount]:
                continue
            seq += 1
            print(f"run {run + 1}/{cfg.runs} M{i} {mount}", file=sys.stderr)
            try:
                for w, value in run_once(mount, cfg, seq).items():
                    samples[mount][w].append(value)
            except BenchError as exc:
                print(f"ERROR M{i}: {exc}", file=sys.stderr)
                errors[mount].append(str(exc))
    return samples, errors


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = parse_args(argv)
    cfg = Config(args.runs, args.files, args.readdir_count, args.members_seconds)
    mounts = [os.path.abspath(m) for m in args.mounts]
    try:
        samples, errors = run_all(mounts, cfg)
    except KeyboardInterrupt:
        print("interrupted; scratch directory removed", file=sys.stderr)
        return 130
    report = build_report(mounts, samples, errors, cfg)
    print_table(report)
    print_targets(report)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
    return 1 if any(errors.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
