"""Helpers shared by the tests that run our daemons on real corosync clusters."""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.05
"""Deadline polls wait this long between checks."""

_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_STATX_FORCE_SYNC = 0x2000
_STATX_BASIC_STATS = 0x7FF
_libc = ctypes.CDLL(None, use_errno=True)


def wait_until(check: Callable[[], T], timeout: float, what: Callable[[], str]) -> T:
    """Poll ``check`` until it returns a true value (only where no event exists to wait on)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s: {what()}")
        time.sleep(POLL_S)  # deadline poll: the daemon offers nothing to wait on


@dataclass(frozen=True)
class Stat:
    """The fields the tests compare."""

    mode: int
    size: int
    mtime: int


def fresh_stat(path: Path) -> Stat:
    """lstat straight from the daemon (statx with AT_STATX_FORCE_SYNC: no attribute cache)."""
    buf = ctypes.create_string_buffer(256)
    flags = _AT_SYMLINK_NOFOLLOW | _AT_STATX_FORCE_SYNC
    if _libc.statx(_AT_FDCWD, os.fsencode(path), flags, _STATX_BASIC_STATS, buf) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(path))
    raw = buf.raw  # struct statx: mode u16 at 28, size u64 at 40, stx_mtime.tv_sec s64 at 112
    return Stat(
        mode=int.from_bytes(raw[28:30], "little"),
        size=int.from_bytes(raw[40:48], "little"),
        mtime=int.from_bytes(raw[112:120], "little", signed=True),
    )


def fresh_mode(path: Path) -> int:
    """st_mode straight from the daemon."""
    return fresh_stat(path).mode


def write_errno(path: Path, data: bytes = b"probe\n") -> int | None:
    """Write a file through the mount; None on success, else the errno."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        return exc.errno
    return None
