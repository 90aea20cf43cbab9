"""Memory of a daemon holding many files: RSS against the issue's limit (3x the data + 60 MB).

Run as root from the repository root: ``.venv/bin/python bench/memory.py [--files 10000] [--size 2048]``.
It writes ``--files`` files of ``--size`` bytes into a new database with the operator tool
(``python -m tools create-db``), starts a local-mode daemon on it (lab/daemon.py),
reads every file once through the mount and reports the daemon's VmRSS and VmHWM.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.daemon import REPO, Daemon

MB = 1024 * 1024


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--size", type=int, default=2048)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root (FUSE)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        root = Path(tmp)
        src = root / "src"
        src.mkdir()
        for k in range(args.files):
            (src / f"f{k:06d}.cfg").write_bytes(os.urandom(args.size // 2).hex().encode())
        pve = Daemon(root / "d")
        pve.db.parent.mkdir(parents=True)
        subprocess.run(
            [sys.executable, "-m", "tools", "create-db", str(src), str(pve.db)], cwd=REPO, check=True
        )
        pve.start()
        try:
            assert pve.proc is not None
            after_start = status_kib(pve.proc.pid, "VmRSS")
            for k in range(args.files):
                (pve.mount / f"f{k:06d}.cfg").read_bytes()
            rss, hwm = status_kib(pve.proc.pid, "VmRSS"), status_kib(pve.proc.pid, "VmHWM")
        finally:
            pve.stop()
    data = args.files * args.size
    limit = 3 * data + 60 * MB
    print(f"{args.files} files x {args.size} B = {data / MB:.1f} MiB of data")
    print(
        f"daemon RSS after start {after_start / 1024:.1f} MiB, after reading every file {rss / 1024:.1f} MiB"
    )
    print(f"peak (VmHWM) {hwm / 1024:.1f} MiB; limit 3 x data + 60 MiB = {limit / MB:.1f} MiB: ", end="")
    print("met" if hwm * 1024 <= limit else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
