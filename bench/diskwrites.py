"""Bytes the daemon writes to disk per typical config update (issue 9's SSD-wear question).

Run as root from the repository root: ``.venv/bin/python bench/diskwrites.py [--updates 500]``.
A local-mode daemon (tests/integration/daemon.py) gets ``--updates`` config updates the way
the Proxmox tools make them: write ``storage.cfg.tmp.<pid>`` (about 1 KiB), then rename it over
``storage.cfg``. The daemon's ``write_bytes`` from /proc/<pid>/io (bytes it caused to be sent to
the block layer, the WAL's automatic checkpoints included) is read before and after the updates
(each after a sync) and divided by the number of updates.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.daemon import Daemon


def io_field(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value)
    raise RuntimeError(f"no {name} in /proc/{pid}/io")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=500)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root (FUSE)", file=sys.stderr)
        return 2
    content = b"dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n" * 16  # ~1 KiB
    with tempfile.TemporaryDirectory(prefix="bench-diskwrites-") as tmp:
        pve = Daemon(Path(tmp) / "d").start()
        assert pve.proc is not None
        pid = pve.proc.pid
        target = pve.mount / "storage.cfg"
        target.write_bytes(content)
        os.sync()
        before = io_field(pid, "write_bytes")
        for k in range(args.updates):
            tmpfile = pve.mount / f"storage.cfg.tmp.{os.getpid()}"
            tmpfile.write_bytes(content.replace(b"local", b"l%05d" % k))
            os.rename(tmpfile, target)
        os.sync()
        during = io_field(pid, "write_bytes") - before
        pve.stop()
    per_update = during / args.updates
    print(f"{args.updates} updates of {len(content)} B (write a temporary file, rename it over the old one)")
    print(f"daemon wrote {during / 1024:.0f} KiB to the block layer: {per_update / 1024:.1f} KiB per update")
    print("(three changes, each one SQLite transaction in WAL mode, as the original commits them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
