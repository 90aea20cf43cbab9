#!/usr/bin/env python3
"""The floor of the binding: a bare in-memory fusepy file system, mounted as pmxcfs mounts.

A dict of paths, no actors, no database, no checks beyond existence: what a FUSE file system in
Python costs with fusepy and libfuse 2 alone. Same mount options as pmxcfs (allow_other,
default_permissions, big_writes, multi-threaded) and direct I/O on every handle, so that
bench/fsbench.py on this mount beside ours shows what our own code adds.

    python3 bench/barefs.py MOUNTPOINT      # foreground; unmount or SIGTERM to stop
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fusefs.libfuse import FUSE, FuseOSError, Operations
from fusefs.operations import MOUNT_OPTIONS


class BareFs(Operations):  # type: ignore[misc]
    """Files and directories in one dict, guarded by one lock."""

    def __init__(self) -> None:
        now = time.time()
        self._lock = threading.Lock()
        self._dirs: dict[str, set[str]] = {"/": set()}
        self._files: dict[str, bytes] = {}
        self._mtime: dict[str, float] = {"/": now}
        # a status file of a one-node cluster's size: fsbench's "members" loop reads it on both mounts
        self._files["/.members"] = b'{\n"nodename": "bench",\n"version": 0\n}\n'
        self._mtime["/.members"] = now
        self._dirs["/"].add(".members")

    def _parent(self, path: str) -> tuple[str, str]:
        head, _, name = path.rpartition("/")
        return head or "/", name

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        with self._lock:
            if path in self._dirs:
                return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2, "st_mtime": self._mtime[path]}
            data = self._files.get(path)
            if data is None:
                raise FuseOSError(errno.ENOENT)
            return {
                "st_mode": stat.S_IFREG | 0o640,
                "st_nlink": 1,
                "st_size": len(data),
                "st_mtime": self._mtime[path],
            }

    def readdir(self, path: str, fh: int) -> list[str]:
        with self._lock:
            return [".", "..", *self._dirs.get(path, ())]

    def open(self, path: str, fi: Any) -> int:
        with self._lock:
            if path not in self._files:
                raise FuseOSError(errno.ENOENT)
        fi.direct_io = 1
        return 0

    def create(self, path: str, mode: int, fi: Any) -> int:
        parent, name = self._parent(path)
        with self._lock:
            if parent not in self._dirs:
                raise FuseOSError(errno.ENOENT)
            self._files[path] = b""
            self._mtime[path] = time.time()
            self._dirs[parent].add(name)
        fi.direct_io = 1
        return 0

    def read(self, path: str, size: int, offset: int, fh: Any) -> bytes:
        with self._lock:
            return self._files[path][offset : offset + size]

    def write(self, path: str, data: bytes, offset: int, fh: Any) -> int:
        with self._lock:
            old = self._files[path]
            self._files[path] = old[:offset].ljust(offset, b"\0") + data + old[offset + len(data) :]
            self._mtime[path] = time.time()
        return len(data)

    def truncate(self, path: str, length: int, fh: Any = None) -> int:
        with self._lock:
            self._files[path] = self._files[path][:length].ljust(length, b"\0")
        return 0

    def unlink(self, path: str) -> int:
        parent, name = self._parent(path)
        with self._lock:
            del self._files[path]
            self._dirs[parent].discard(name)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        parent, name = self._parent(path)
        with self._lock:
            self._dirs[path] = set()
            self._mtime[path] = time.time()
            self._dirs[parent].add(name)
        return 0

    def rmdir(self, path: str) -> int:
        parent, name = self._parent(path)
        with self._lock:
            if self._dirs[path]:
                raise FuseOSError(errno.ENOTEMPTY)
            del self._dirs[path]
            self._dirs[parent].discard(name)
        return 0

    def rename(self, old: str, new: str) -> int:
        (op, on), (np_, nn) = self._parent(old), self._parent(new)
        with self._lock:
            self._files[new] = self._files.pop(old)
            self._mtime[new] = time.time()
            self._dirs[op].discard(on)
            self._dirs[np_].add(nn)
        return 0

    def utimens(self, path: str, times: Any = None) -> int:
        return 0

    def chmod(self, path: str, mode: int) -> int:
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        return 0


def main() -> None:
    mount = sys.argv[1]
    os.makedirs(mount, exist_ok=True)
    FUSE(BareFs(), mount, fsname="barefs", **MOUNT_OPTIONS)


if __name__ == "__main__":
    main()
