"""Bytes the daemon writes to disk per typical config update (issue 9's SSD-wear question).

Run as root from the repository root: ``.venv/bin/python bench/diskwrites.py``.
A local-mode daemon (lab/daemon.py) gets updates the way the Proxmox tools make
them: write ``target.cfg.tmp``, then rename it over ``target.cfg``; once with a ~1 KiB config
(500 updates), once with a 512 KiB file (40 updates, four FUSE write chunks each). The
daemon's ``write_bytes`` from /proc/<pid>/io (bytes it caused to be sent to the block layer,
the WAL's automatic checkpoints included) is read before and after the updates (each after a
sync) and divided by the number of updates.

The baseline, in the same invocation: the original's commit pattern (reference 1.6 and 2.4: one
transaction per operation, so a create, each write chunk and a rename each commit) replayed on
the same schema, pragmas and row encoding by our tree and store code in a child process, whose
own ``write_bytes`` is read the same way. We cannot run the C pmxcfs here; this replays what it
writes, operation for operation.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.daemon import Daemon


def io_field(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value)
    raise RuntimeError(f"no {name} in /proc/{pid}/io")


CONTENT = b"dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n" * 16  # ~1 KiB
CHUNK = 128 * 1024
"""The largest FUSE write with big_writes: a bigger write() reaches the daemon in these chunks."""
WORKLOADS = {"config": (CONTENT, 500), "big": (bytes(range(256)) * 2048, 40)}
"""name -> (content, updates): a ~1 KiB config and a 512 KiB file (four FUSE write chunks)."""


def variant(content: bytes, k: int) -> bytes:
    """Update ``k``'s content: the same size, other bytes."""
    return b"%05d" % k + content[5:]


def original_pattern(workload: str, db_path: Path) -> int:
    """The original's transactions for a workload's updates; returns the bytes written."""
    from db.store import Store
    from memdb.records import StoreChange
    from memdb.tree import Applied, MemDb

    content, updates = WORKLOADS[workload]
    store = Store(str(db_path))
    store.connect()
    store.prepare()
    memdb = MemDb()

    def commit(applied: Applied | StoreChange) -> None:
        change = applied if isinstance(applied, StoreChange) else applied.change
        assert change is not None
        store.apply(change)  # one transaction per operation (bdb_backend_write)

    def write_file(path: str, data: bytes) -> None:
        commit(memdb.create(path, 0, 1))
        for offset in range(0, len(data), CHUNK):
            commit(memdb.write(path, 0, 1, data[offset : offset + CHUNK], offset))

    commit(memdb.start_fresh(1))
    write_file("target.cfg", content)
    os.sync()
    before = io_field(os.getpid(), "write_bytes")
    for k in range(updates):
        write_file("target.cfg.tmp", variant(content, k))
        commit(memdb.rename("target.cfg.tmp", "target.cfg", 0, 1))
    os.sync()
    written = io_field(os.getpid(), "write_bytes") - before
    store.close()
    return written


def original_pattern_in_child(workload: str, db_path: Path) -> int:
    """:func:`original_pattern` in a child process, so that its write_bytes are its own."""
    child = subprocess.run(
        [sys.executable, __file__, "--original-pattern", workload, str(db_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout.split()[-1])


def ours(workload: str, base: Path) -> int:
    """A local-mode daemon's bytes written for a workload's updates through the mount."""
    content, updates = WORKLOADS[workload]
    pve = Daemon(base).start()
    try:
        assert pve.proc is not None
        target = pve.mount / "target.cfg"
        target.write_bytes(content)
        os.sync()
        before = io_field(pve.proc.pid, "write_bytes")
        for k in range(updates):
            tmpfile = pve.mount / "target.cfg.tmp"
            tmpfile.write_bytes(variant(content, k))
            os.rename(tmpfile, target)
        os.sync()
        return io_field(pve.proc.pid, "write_bytes") - before
    finally:
        pve.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--original-pattern", nargs=2, metavar=("WORKLOAD", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.original_pattern:  # the child that replays the original's commits
        print(original_pattern(args.original_pattern[0], Path(args.original_pattern[1])))
        return 0
    if os.geteuid() != 0:
        print("run as root (FUSE)", file=sys.stderr)
        return 2
    print("bytes written to disk per update (write a temporary file, rename it over the old one)")
    print(f"{'workload':<26}{'ours':>12}{'original':>12}{'ratio':>8}")
    with tempfile.TemporaryDirectory(prefix="bench-diskwrites-") as tmp:
        for name, (content, updates) in WORKLOADS.items():
            mine = ours(name, Path(tmp) / name) / updates
            original = original_pattern_in_child(name, Path(tmp) / f"{name}-c.db") / updates
            label = f"{name} {len(content) / 1024:.0f} KiB x{updates}"
            print(f"{label:<26}{mine / 1024:>8.1f} KiB{original / 1024:>8.1f} KiB{mine / original:>8.2f}")
    print("aim: ours / original <= 0.50 for the config update")
    return 0


if __name__ == "__main__":
    sys.exit(main())
