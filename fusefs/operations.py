"""The fusepy Operations of /etc/pve: route each path, read or ask the owning actor, map errors.

Runs on libfuse's threads. It holds only actor references, constants and the fs actor's
published tree snapshot: tree reads (getattr, readdir, open, read, statfs) read the latest
immutable snapshot without asking anyone, status files the status actor's (all but .health).
Changes are asked of the fs actor in local mode; in cluster mode they are sent to the cluster
actor from this thread, as the original multicasts them (replication/proposer.py); either way with a
timeout.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import stat
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

import pykka

from actors.messages import (
    CommitPending,
    CreateFile,
    MakeDir,
    ReadStatusFile,
    Remove,
    Rename,
    RenderStatusFile,
    Request,
    SetMtime,
    Truncate,
    TruncateStatusFile,
    WriteFile,
    WriteStatusFile,
    ask,
)
from errno_map import errno_for
from errors import PmxcfsError
from fusefs.libfuse import FuseOSError, Operations
from fusefs.modes import DEBUG_FILE_MODE, ROOT_MODE, STATUS_FILE_MODE, link_mode, memdb_mode, supported_mode
from memdb.records import EntryAttr
from memdb.snapshot import Published, TreeSnapshot
from memdb.tree import BLOCKSIZE
from replication.proposer import Proposer
from status.files import HIDDEN_STATUS_FILES, STATUS_FILES
from status.published import StatusFiles

log = logging.getLogger(__name__)

ASK_TIMEOUT_S = 30.0
"""How long a FUSE thread waits for an actor before it answers EIO."""

MOUNT_OPTIONS: dict[str, bool] = {
    "raw_fi": True,  # open and create set direct_io and keep_cache in the file info
    "foreground": True,
    "allow_other": True,
    "default_permissions": True,
    "big_writes": True,
}
"""fusepy's FUSE() options of the mount: the original's -f, allow_other, default_permissions
and big_writes (bench/barefs.py mounts its floor with the same)."""

LINK_NAMES = ("local", "qemu-server", "openvz", "lxc")
_NS = 1_000_000_000
_WRITABLE = 1
"""The low bit of a file handle: opened for writing (its flush commits the deferred rows)."""


class Route(Enum):
    """Which part of the tree a path belongs to."""

    ROOT = "root"
    STATUS = "status"
    LINK = "link"
    MEMDB = "memdb"
    NONE = "none"
    """Below a status file or link name: nothing handles it (EACCES)."""


def route(path: str) -> tuple[Route, str]:
    """Classify a FUSE path; returns the route and the path without leading slashes."""
    rel = path.lstrip("/")
    if not rel:
        return Route.ROOT, rel
    first, _, rest = rel.partition("/")
    status = first in STATUS_FILES or first in HIDDEN_STATUS_FILES
    if status or first in LINK_NAMES:
        if rest.strip("/"):
            return Route.NONE, rel
        return (Route.STATUS if status else Route.LINK), first
    return Route.MEMDB, rel


def link_targets(nodename: str) -> dict[str, str]:
    """The relative targets of the four symlinks."""
    base = f"nodes/{nodename}"
    return {
        "local": base,
        "qemu-server": f"{base}/qemu-server",
        "openvz": f"{base}/openvz",
        "lxc": f"{base}/lxc",
    }


def _refused(message: object, exc: Exception) -> FuseOSError:
    """The FUSE error for a refused request: its errno, or EIO (timeout, a stopped actor)."""
    code = errno_for(exc)
    log.debug("%s refused: %s", type(message).__name__, exc)
    return FuseOSError(code if code is not None else errno.EIO)


def _refuse(code: int = errno.EACCES) -> FuseOSError:
    return FuseOSError(code)


class PveOperations(Operations):  # type: ignore[misc]
    """/etc/pve as the original's plugin tree: root, status files, links, memdb."""

    use_ns = True
    # Not implemented, as in the original: libfuse answers ENOSYS and the kernel adapts.
    getxattr = setxattr = listxattr = removexattr = None
    symlink = link = mknod = None
    fsyncdir = release = opendir = releasedir = access = None
    lock = bmap = ioctl = destroy = None

    def __init__(
        self,
        fs: pykka.ActorRef[Any],
        status: pykka.ActorRef[Any],
        tree: Published[TreeSnapshot],
        status_files: StatusFiles,
        *,
        nodename: str,
        www_gid: int,
        on_ready: Callable[[], None] | None = None,
        timeout: float = ASK_TIMEOUT_S,
        proposer: Proposer | None = None,
    ) -> None:
        self._fs = fs
        self._proposer = proposer
        """Cluster mode: changes are multicast from the FUSE thread (replication/proposer.py)."""
        self._status = status
        self._tree = tree
        """The fs actor's latest snapshot: tree reads take it (one reference read), never ask."""
        self._status_files = status_files
        """Status files from the published snapshots; .health is asked."""
        self._gid = www_gid
        self._links = link_targets(nodename)
        self._on_ready = on_ready
        self._timeout = timeout
        self._handles = itertools.count(1)
        """File handle numbers (next() on it is atomic: itertools is C code under the GIL)."""
        self._status_reads: dict[int, bytes] = {}
        """A status file's content by file handle, fixed at its open, so that one open reads
        one version (chunked reads included) while the state goes on changing. Each handle
        is used by one open file; dict insert, get and pop are atomic under the GIL. Dropped
        at the handle's flush (its close)."""
        self._warned_tree_health = False
        """A tree entry taking a hidden status file's name was reported (logged once)."""

    def _change(self, message: Request[Any]) -> Any:
        """A change of the tree: straight to the cluster actor in cluster mode, else to the fs actor.

        Cluster mode multicasts it from this thread, as the original's FUSE thread does, and
        waits for its result; utimens goes through the fs actor (an unlock needs its locks).
        """
        proposer = self._proposer
        if proposer is None or isinstance(message, SetMtime):
            return self._ask(self._fs, message)
        try:
            reply = proposer.send(message, writable=self._tree.value.writable)
            assert reply is not None, f"{type(message).__name__} is no DCDB change"
            return reply.get(timeout=self._timeout)
        except (PmxcfsError, pykka.Timeout, pykka.ActorDeadError) as exc:
            raise _refused(message, exc) from exc

    def _ask(self, ref: pykka.ActorRef[Any], message: Request[Any]) -> Any:
        try:
            return ask(ref, message, timeout=self._timeout)
        except (PmxcfsError, pykka.Timeout, pykka.ActorDeadError) as exc:
            raise _refused(message, exc) from exc

    def _stat(
        self, mode: int, size: int, mtime_s: int, nlink: int, blocks: int | None = None
    ) -> dict[str, int]:
        mtime = mtime_s * _NS
        if blocks is None:
            blocks = (size + BLOCKSIZE - 1) // BLOCKSIZE  # in 4 KiB units, as the original
        return {
            "st_mode": mode,
            "st_nlink": nlink,
            "st_size": size,
            "st_uid": 0,
            "st_gid": self._gid,
            "st_atime": mtime,
            "st_mtime": mtime,
            "st_ctime": mtime,
            "st_blocks": blocks,
        }

    def _attr(self, rel: str) -> EntryAttr:
        """The tree entry's attributes from the latest snapshot; ENOENT if there is none."""
        attr = self._tree.value.getattr(rel)
        if attr is None:
            raise FuseOSError(errno.ENOENT)
        return attr

    def _route(self, path: str) -> tuple[Route, str]:
        """route(), except that a hidden status name the tree's root holds is the tree's entry.

        A tree written by the C pmxcfs may hold ``/.health`` (it has no such status file), and
        one can come with a sync or, from a C node, with any change. So the tree is asked (one
        Lookup) on every operation on that name only; every other path is decided by its text.
        """
        kind, rel = route(path)
        if kind is Route.STATUS and rel in HIDDEN_STATUS_FILES and self._tree_holds(rel):
            return Route.MEMDB, rel
        return kind, rel

    def _tree_holds(self, name: str) -> bool:
        """Whether the tree's root holds ``name``; the first time it does, a warning is logged."""
        held = self._tree.value.getattr(name) is not None
        if held and not self._warned_tree_health:
            self._warned_tree_health = True
            log.warning(
                "the tree holds /%s: it is served as a file of the tree, and the health report "
                "by `python -m tools health` only",
                name,
            )
        return held

    # ----- attributes and listing --------------------------------------------------

    def init(self, path: str) -> None:
        """Called by libfuse once the mount answers: report readiness.

        Then look for a tree entry that takes a hidden status file's name, so that its warning
        is logged at startup rather than at the first use of the name.
        """
        if self._on_ready is not None:
            self._on_ready()
        for name in HIDDEN_STATUS_FILES:
            try:
                self._tree_holds(name)
            except FuseOSError:
                log.debug("could not look up /%s at startup", name)

    def getattr(self, path: str, fh: Any = None) -> dict[str, int]:
        """stat: uid 0, gid www-data, modes by quorum and privacy."""
        log.debug("getattr %r", path)
        kind, rel = self._route(path)
        if kind is Route.ROOT:
            return self._stat(ROOT_MODE, 0, 0, 2)
        if kind is Route.STATUS:
            text = self._status_files.text(rel)
            size = len(text) if text is not None else self._ask(self._status, RenderStatusFile(name=rel))
            mode = DEBUG_FILE_MODE if rel == ".debug" else STATUS_FILE_MODE
            return self._stat(mode, size, 0, 1, blocks=0)
        if kind is Route.LINK:
            writable = self._tree.value.writable
            return self._stat(link_mode(rel, writable=writable), len(self._links[rel]), 0, 1, blocks=0)
        if kind is Route.NONE:
            raise _refuse()
        snapshot = self._tree.value
        attr = snapshot.getattr(rel)
        if attr is None:
            raise FuseOSError(errno.ENOENT)
        mode = memdb_mode(rel, is_dir=attr.is_dir, writable=snapshot.writable)
        return self._stat(mode, attr.size, attr.mtime, 2 if attr.is_dir else 1)

    def readdir(self, path: str, fh: int) -> list[str]:
        """Root: the plugin names, then the tree's top level; elsewhere the children."""
        log.debug("readdir %r", path)
        kind, rel = self._route(path)
        if kind is Route.ROOT:
            names = self._tree.value.readdir("")
            plugins = STATUS_FILES + LINK_NAMES
            return [".", "..", *plugins, *(n for n in names if n not in plugins)]
        if kind is not Route.MEMDB:
            raise _refuse()
        return [".", "..", *self._tree.value.readdir(rel)]

    def readlink(self, path: str) -> str:
        """The four node links."""
        kind, rel = route(path)
        if kind is not Route.LINK:
            raise _refuse()
        return self._links[rel]

    def statfs(self, path: str) -> dict[str, int]:
        """Always the tree's figures, whatever the path."""
        info = self._tree.value.statfs()
        return {
            "f_bsize": info.bsize,
            "f_blocks": info.blocks,
            "f_bfree": info.bfree,
            "f_bavail": info.bfree,
            "f_files": info.files,
            "f_ffree": info.ffree,
            "f_namemax": info.namemax,
        }

    # ----- files -------------------------------------------------------------------

    def open(self, path: str, fi: Any) -> int:
        """A tree file must exist; status files always open.

        Every handle uses direct I/O, as the original: each read and write reaches the daemon
        whole (up to 128 KiB), never the kernel's page cache. With cached pages a write across
        1 MiB was split at a page boundary and half applied, and a reader racing an in-place
        rewrite could be served a zero-filled page nobody wrote (issue 13).
        """
        log.debug("open %r", path)
        kind, rel = self._route(path)
        if kind is Route.MEMDB:
            self._attr(rel)
            if fi.flags & os.O_ACCMODE != os.O_RDONLY:
                fi.fh = self._writable_handle()
        elif kind is Route.STATUS:
            text = self._status_files.text(rel)
            if text is not None:  # this open reads this version, whatever comes after
                fi.fh = next(self._handles) << 1
                self._status_reads[fi.fh] = text
        else:
            raise _refuse()
        fi.direct_io = 1
        fi.keep_cache = 0
        return 0

    def create(self, path: str, mode: int, fi: Any) -> int:
        """Create an empty file; the mode is ignored."""
        log.debug("create %r", path)
        rel = self._memdb_path(path)
        self._change(CreateFile(path=rel))  # answered once its snapshot is published
        fi.fh = self._writable_handle()
        fi.direct_io = 1  # as open (the original's create leaves the page cache on)
        return 0

    def _writable_handle(self) -> int:
        """A new file handle with the WRITABLE bit: its flush commits what it wrote."""
        return next(self._handles) << 1 | _WRITABLE

    def flush(self, path: str, fi: Any) -> int:
        """A close: commit what a handle that could write wrote; forget a status file's content.

        A status file's content was fixed at its open. (Not at release: a release callback
        would cost every close of every file one more call into Python. A dup'd status handle
        closed once reads on as the original does: by asking.)
        """
        if fi.fh & _WRITABLE:
            self._ask(self._fs, CommitPending())
        elif fi.fh:
            self._status_reads.pop(fi.fh, None)
        return 0

    def fsync(self, path: str, datasync: int, fi: Any) -> int:
        """As flush for a handle that could write: what was written is committed first."""
        if fi.fh & _WRITABLE:
            self._ask(self._fs, CommitPending())
        return 0

    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        """Bytes of a file, or of a status file's last snapshot."""
        log.debug("read %r %d@%d", path, size, offset)
        kind, rel = self._route(path)
        if kind is Route.MEMDB:
            data = self._tree.value.read(rel, size, offset)
            if data is None:
                raise FuseOSError(errno.ENOENT)
            return data
        if kind is Route.STATUS:
            text = self._status_reads.get(fi.fh) if fi.fh else None
            if text is not None:
                return text[offset : offset + size]
            snapshot: bytes = self._ask(self._status, ReadStatusFile(name=rel, size=size, offset=offset))
            return snapshot
        raise _refuse()

    def write(self, path: str, data: bytes, offset: int, fi: Any) -> int:
        """Write to a file (or turn .debug on and off)."""
        kind, rel = self._route(path)
        if kind is Route.MEMDB:
            written: int = self._change(WriteFile(path=rel, data=data, offset=offset))
            return written
        if kind is Route.STATUS:
            answer: int = self._ask(self._status, WriteStatusFile(name=rel, data=data, offset=offset))
            return answer
        raise _refuse()

    def truncate(self, path: str, length: int, fh: object = None) -> int:
        """Set the exact size (1 MiB at most)."""
        kind, rel = self._route(path)
        if kind is Route.MEMDB:
            self._change(Truncate(path=rel, size=length))
            return 0
        if kind is Route.STATUS:
            self._ask(self._status, TruncateStatusFile(name=rel))
            return 0
        raise _refuse()

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        """Set the mtime (atime is ignored); mtime 0 on a lock is an unlock request."""
        log.debug("utimens %r %r", path, times)
        rel = self._memdb_path(path)
        mtime_ns = times[1] if times is not None else time.time_ns()
        self._change(SetMtime(path=rel, mtime=(mtime_ns // _NS) & 0xFFFFFFFF))
        return 0

    # ----- directories and names ---------------------------------------------------

    def _memdb_path(self, path: str) -> str:
        kind, rel = self._route(path)
        if kind is not Route.MEMDB:
            raise _refuse()
        return rel

    def mkdir(self, path: str, mode: int) -> int:
        """Create a directory; the mode is ignored."""
        log.debug("mkdir %r", path)
        self._change(MakeDir(path=self._memdb_path(path)))
        return 0

    def rmdir(self, path: str) -> int:
        """Remove an empty directory."""
        log.debug("rmdir %r", path)
        self._change(Remove(path=self._memdb_path(path)))
        return 0

    def unlink(self, path: str) -> int:
        """Remove a file."""
        log.debug("unlink %r", path)
        self._change(Remove(path=self._memdb_path(path)))
        return 0

    def rename(self, old: str, new: str) -> int:
        """Rename within the tree; the root and plugin names can't take part."""
        log.debug("rename %r -> %r", old, new)
        self._change(Rename(src=self._memdb_path(old), dst=self._memdb_path(new)))
        return 0

    def chmod(self, path: str, mode: int) -> int:
        """Changes nothing; succeeds only for the one supported mode (0600 private, else 0640)."""
        if stat.S_IMODE(mode) != supported_mode(path.lstrip("/")):
            raise FuseOSError(errno.EPERM)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        """Changes nothing; succeeds only for root and www-data (or -1, unchanged)."""
        if uid not in (0, -1) or gid not in (self._gid, -1):
            raise FuseOSError(errno.EPERM)
        return 0
