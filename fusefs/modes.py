"""Ownership and permission bits as the original reports them (section 3.2)."""

from __future__ import annotations

import stat

from memdb.paths import is_openvz_script, is_private

STATUS_FILE_MODE = stat.S_IFREG | 0o440
DEBUG_FILE_MODE = stat.S_IFREG | 0o640
ROOT_MODE = stat.S_IFDIR | 0o755


def memdb_mode(path: str, *, is_dir: bool, writable: bool) -> int:
    """The mode of a tree entry: plugin bits by quorum, then the private/public mask."""
    if is_dir:
        mode = stat.S_IFDIR | (0o777 if writable else 0o555)
    else:
        mode = stat.S_IFREG | (0o666 if writable else 0o444)
        if is_openvz_script(path.rpartition("/")[2]):
            mode |= 0o100
    return _mask(path, mode)


def link_mode(path: str, *, writable: bool) -> int:
    """The mode of the symlinks local, qemu-server, lxc and openvz."""
    return _mask(path, stat.S_IFLNK | (0o777 if writable else 0o555))


def _mask(path: str, mode: int) -> int:
    if is_private(path):
        return mode & ~0o077
    if stat.S_ISREG(mode):
        return mode & ~0o027
    return mode & ~0o022


def supported_mode(path: str) -> int:
    """The only permission bits chmod accepts (and which change nothing)."""
    return 0o600 if is_private(path) else 0o640
