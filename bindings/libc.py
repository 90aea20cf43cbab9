"""The few libc calls the standard library lacks: umount2."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

MNT_FORCE = 1
"""Force the unmount even if busy (sys/mount.h)."""
MNT_DETACH = 2
"""Lazy unmount: detach now, clean up when no longer busy (sys/mount.h)."""

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int


def umount2(target: str, flags: int) -> None:
    """Unmount ``target``; raises OSError with the errno on failure."""
    if _libc.umount2(os.fsencode(target), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)
