"""MemDb: the in-memory tree and its operations, with the original's checks in order.

Pure logic, no I/O: each change returns an Applied record that says what to store and
what changed. The owner (actors/fs_actor.py) persists it and latches on failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from errors import (
    AccessDenied,
    AlreadyExists,
    DirectoryNotEmpty,
    ErrorLatched,
    FileTooLarge,
    InvalidArgument,
    NotADirectory,
    NotFound,
)
from memdb.checksum import encode_index, entry_checksum, tree_checksum
from memdb.entry import Entry
from memdb.locks import LockTable
from memdb.paths import (
    LOCK_DIR,
    components,
    is_lockdir_path,
    is_reserved_name,
    parse_vm_config_path,
    split_parent,
)
from memdb.records import DT_DIR, DT_REG, EntryAttr, StatFs, StoreChange
from memdb.vmlist import VmList

MAX_FILE_SIZE = 1024 * 1024
"""MEMDB_MAX_FILE_SIZE: writes and truncates beyond this fail with EFBIG."""
MAX_FS_SIZE = 128 * 1024 * 1024
"""MEMDB_MAX_FSSIZE: only reported by statfs."""
MAX_INODES = 256 * 1024
"""MEMDB_MAX_INODES: only reported by statfs."""
BLOCKSIZE = 4096
"""MEMDB_BLOCKSIZE: statfs f_bsize and the unit of st_blocks."""
NAMEMAX = 256
"""statfs f_namemax."""


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of one successful change."""

    result: int
    """What the caller gets: bytes written for a write, else 0."""
    change: StoreChange | None
    """What to persist; None for a no-op."""
    paths: tuple[str, ...] = ()
    """Paths whose tracked-file counters go up (mkdir counts none)."""
    vmlist_changed: bool = False


def _ceil_blocks(size: int) -> int:
    return (size + BLOCKSIZE - 1) // BLOCKSIZE


def check_extent(path: str, offset: int, count: int) -> None:
    """A write of ``count`` bytes at ``offset`` must end within 1 MiB; checked before anything else.

    Raises:
        InvalidArgument: a negative offset.
        FileTooLarge: beyond MAX_FILE_SIZE (EFBIG), whatever the file.
    """
    if offset < 0:
        raise InvalidArgument(path, "negative offset")
    if offset + count > MAX_FILE_SIZE:
        raise FileTooLarge(path, f"{offset + count} bytes is over the {MAX_FILE_SIZE}-byte limit")


class MemDb:
    """The tree, its global version, the vmlist, the lock table and the error latch."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        """This node's clock for lock ages (monotonic seconds)."""
        self.root = Entry(inode=0, parent=0, version=0, writer=0, mtime=0, type=DT_DIR, name="")
        self.index: dict[int, Entry] = {0: self.root}
        self.vmlist = VmList()
        self.locks = LockTable(clock)
        self.latched = False
        """The error latch: set when a store write failed; every change then fails."""

    # ----- lookups ---------------------------------------------------------------

    def lookup(self, path: str) -> Entry | None:
        """The entry at ``path``; a walk through a file finds nothing."""
        entry = self.root
        for name in components(path):
            if not entry.is_dir:
                return None
            found = entry.children.get(name)
            if found is None:
                return None
            entry = found
        return entry

    def _parent_for_change(self, dirname: str) -> Entry:
        parent = self.lookup(dirname) if dirname != "." else self.root
        if parent is None:
            raise NotFound(dirname, "parent directory does not exist")
        if not parent.is_dir:
            raise NotADirectory(dirname, "parent is not a directory")
        return parent

    def check_writable(self) -> None:
        """Raise ErrorLatched once a store write has failed."""
        if self.latched:
            raise ErrorLatched(reason="an earlier database write failed; restart needed")

    def _bump(self, writer: int, mtime: int) -> int:
        self.root.version += 1
        self.root.writer = writer
        self.root.mtime = mtime
        return self.root.version

    def _change(self, upsert: Entry | None = None, delete_inode: int | None = None) -> StoreChange:
        return StoreChange(
            version=self.root.version,
            writer=self.root.writer,
            mtime=self.root.mtime,
            upsert=upsert.row() if upsert is not None else None,
            delete_inode=delete_inode,
        )

    def start_fresh(self, mtime: int) -> StoreChange:
        """Set a fresh tree (version 0) to version 1 with writer 0; returns the version row."""
        self.root.version, self.root.writer, self.root.mtime = 1, 0, mtime
        return self._change()

    def getattr(self, path: str) -> EntryAttr | None:
        """The attributes at ``path``, or None if it does not exist."""
        entry = self.lookup(path)
        return entry.attr() if entry is not None else None

    def read(self, path: str, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes from ``offset``; empty at or past the end."""
        entry = self.lookup(path)
        if entry is None or entry.is_dir:
            raise NotFound(path, "no such file")
        return entry.data[offset : offset + size]

    def read_all(self, path: str) -> bytes:
        """The whole content of a file."""
        entry = self.lookup(path)
        if entry is None or entry.is_dir:
            raise NotFound(path, "no such file")
        return entry.data

    def readdir(self, path: str) -> tuple[str, ...]:
        """Child names; a missing path or a file lists nothing."""
        entry = self.lookup(path)
        if entry is None or not entry.is_dir:
            return ()
        return tuple(entry.children)

    def statfs(self) -> StatFs:
        """Block and inode usage against the reported (not enforced) limits."""
        used = sum(len(e.data) for e in self.index.values())
        total_blocks = MAX_FS_SIZE // BLOCKSIZE
        free = total_blocks - _ceil_blocks(used)
        return StatFs(
            bsize=BLOCKSIZE,
            blocks=total_blocks,
            bfree=free,
            files=MAX_INODES,
            ffree=MAX_INODES - len(self.index),
            namemax=NAMEMAX,
        )

    def entries(self) -> Iterator[Entry]:
        """Every entry, root included."""
        return iter(self.index.values())

    def checksum(self) -> bytes:
        """The tree checksum (memdb_compute_checksum)."""
        return tree_checksum(self.index.values())

    def encode_index(self) -> bytes:
        """The index the cluster compares (memdb_encode_index)."""
        return encode_index(self.root, self.index.values())

    # ----- changes ---------------------------------------------------------------

    def mkdir(self, path: str, writer: int, mtime: int) -> Applied:
        """Create a directory."""
        self.check_writable()
        dirname, name = split_parent(path)
        parent = self._parent_for_change(dirname)
        if is_reserved_name(name):
            raise AccessDenied(path, "reserved name")
        if name in parent.children:
            raise AlreadyExists(path, "name exists")
        version = self._bump(writer, mtime)
        entry = Entry(
            inode=version,
            parent=parent.inode,
            version=version,
            writer=writer,
            mtime=mtime,
            type=DT_DIR,
            name=name,
        )
        parent.children[name] = entry
        self.index[entry.inode] = entry
        if dirname == LOCK_DIR:
            self.locks.reset(f"{dirname}/{name}", entry_checksum(entry))
        return Applied(result=0, change=self._change(upsert=entry))

    def create(self, path: str, writer: int, mtime: int) -> Applied:
        """Create an empty file (fails if the name exists)."""
        return self.write(path, writer, mtime, b"", 0, truncate=False, create=True)

    def truncate(self, path: str, writer: int, mtime: int, size: int) -> Applied:
        """Set a file's exact size (zero-filled when it grows)."""
        return self.write(path, writer, mtime, b"", size, truncate=True)

    def write(
        self,
        path: str,
        writer: int,
        mtime: int,
        data: bytes,
        offset: int,
        *,
        truncate: bool = False,
        create: bool = False,
    ) -> Applied:
        """Write ``data`` at ``offset`` (memdb_pwrite); returns the byte count."""
        self.check_writable()
        check_extent(path, offset, len(data))
        dirname, name = split_parent(path)
        parent = self._parent_for_change(dirname)
        if is_reserved_name(name):
            raise AccessDenied(path, "reserved name")
        vm = parse_vm_config_path(f"{dirname}/{name}")
        if vm is not None and self.vmlist.conflicts(vm.vmid, vm.node, vm.vmtype):
            raise AlreadyExists(path, f"VMID {vm.vmid} already exists on another node or type")
        entry = parent.children.get(name)
        if entry is not None and entry.is_dir:
            raise NotADirectory(path, "is a directory")
        if entry is not None and create:
            raise AlreadyExists(path, "file exists")
        if entry is None and not create:
            raise NotFound(path, "no such file")
        version = self._bump(writer, mtime)
        if entry is None:
            entry = Entry(version, parent.inode, version, writer, mtime, DT_REG, name)
            parent.children[name] = entry
            self.index[version] = entry
        entry.version, entry.writer, entry.mtime = version, writer, mtime
        entry.data = _new_content(entry.data, data, offset, truncate)
        if vm is not None:
            self.vmlist.register(vm.vmid, vm.node, vm.vmtype)
        return Applied(
            result=len(data),
            change=self._change(upsert=entry),
            paths=(path,),
            vmlist_changed=vm is not None,
        )

    def set_mtime(self, path: str, writer: int, mtime: int) -> Applied:
        """Set an entry's mtime (memdb_mtime); refreshes a lock held by the same writer."""
        self.check_writable()
        dirname, name = split_parent(path)
        parent = self._parent_for_change(dirname)
        if is_reserved_name(name):
            raise AccessDenied(path, "reserved name")
        entry = parent.children.get(name)
        if entry is None:
            raise NotFound(path, "no such file or directory")
        is_lock = dirname == LOCK_DIR and entry.is_dir
        if is_lock and mtime < entry.mtime:
            raise AccessDenied(path, "lock is held (mtime may not go back)")
        if is_lock and writer != entry.writer:
            raise AccessDenied(path, "lock belongs to another node")
        version = self._bump(writer, mtime)
        entry.version, entry.writer, entry.mtime = version, writer, mtime
        if is_lock:
            self.locks.reset(f"{dirname}/{name}", entry_checksum(entry))
        return Applied(result=0, change=self._change(upsert=entry), paths=(path,))

    def lock_checksum(self, path: str) -> bytes | None:
        """The checksum of the lock directory at ``path``, if it is one."""
        entry = self.lookup(path)
        if entry is None or not entry.is_dir or not is_lockdir_path(path):
            return None
        return entry_checksum(entry)

    def unlock_if_expired(self, path: str, writer: int, mtime: int) -> Applied | None:
        """Delete the lock at ``path`` if it has been unchanged too long, else None."""
        csum = self.lock_checksum(path)
        if csum is None or not self.locks.expired(path.strip("/"), csum):
            return None
        return self.delete(path, writer, mtime)

    def delete(self, path: str, writer: int, mtime: int) -> Applied:
        """Remove a file or an empty directory (memdb_delete: unlink and rmdir)."""
        self.check_writable()
        entry = self.lookup(path)
        if entry is None:
            raise NotFound(path, "no such file or directory")
        if entry is self.root:
            raise AccessDenied(path, "the root can't be removed")
        if entry.is_dir and entry.children:
            raise DirectoryNotEmpty(path, "directory not empty")
        if entry.is_dir:
            self.locks.drop(path.strip("/"))
        parent = self.index[entry.parent]
        del parent.children[entry.name]
        del self.index[entry.inode]
        self._bump(writer, mtime)
        vm = None if entry.is_dir else parse_vm_config_path(path.strip("/"))
        if vm is not None:
            self.vmlist.remove(vm.vmid)
        return Applied(
            result=0,
            change=self._change(delete_inode=entry.inode),
            paths=(path,),
            vmlist_changed=vm is not None,
        )

    def rename(self, src: str, dst: str, writer: int, mtime: int) -> Applied:
        """Move or rename an entry, replacing a file or empty dir at ``dst``."""
        self.check_writable()
        entry = self.lookup(src)
        if entry is None:
            raise NotFound(src, "no such file or directory")
        if entry is self.root:
            raise AccessDenied(src, "the root can't be renamed")
        dst_dir, dst_name = split_parent(dst)
        src_vm = parse_vm_config_path(src.strip("/"))
        dst_vm = parse_vm_config_path(f"{dst_dir}/{dst_name}")
        if not entry.is_dir and dst_vm is not None:
            same_guest = src_vm is not None and src_vm.vmid == dst_vm.vmid
            if not same_guest and self.vmlist.conflicts(dst_vm.vmid, dst_vm.node, dst_vm.vmtype):
                raise AlreadyExists(dst, f"VMID {dst_vm.vmid} already exists on another node or type")
        if entry.is_dir and is_lockdir_path(src):
            raise AccessDenied(src, "locks can't be renamed")
        target = self.lookup(dst)
        if target is entry:
            return Applied(result=0, change=None)
        if target is self.root:
            raise AccessDenied(dst, "the root can't be replaced")
        if target is not None and target.is_dir and target.children:
            raise DirectoryNotEmpty(dst, "target directory not empty")
        new_parent = self._parent_for_change(dst_dir)
        if entry.is_dir and entry.children:
            raise DirectoryNotEmpty(src, "only empty directories can be renamed")
        if self._is_ancestor(entry, new_parent):
            raise InvalidArgument(dst, "can't move a directory into itself")
        if target is not None:
            del new_parent.children[target.name]
            del self.index[target.inode]
        del self.index[entry.parent].children[entry.name]
        version = self._bump(writer, mtime)
        entry.parent, entry.name = new_parent.inode, dst_name
        entry.version, entry.writer, entry.mtime = version, writer, mtime
        new_parent.children[dst_name] = entry
        vm_changed = False
        if not entry.is_dir:
            if src_vm is not None:
                self.vmlist.remove(src_vm.vmid)
            if dst_vm is not None:
                self.vmlist.register(dst_vm.vmid, dst_vm.node, dst_vm.vmtype)
            vm_changed = src_vm is not None or dst_vm is not None
        replaced = target.inode if target is not None else None
        return Applied(
            result=0,
            change=self._change(upsert=entry, delete_inode=replaced),
            paths=(src, dst),
            vmlist_changed=vm_changed,
        )

    def _is_ancestor(self, entry: Entry, node: Entry) -> bool:
        while True:
            if node is entry:
                return True
            if node is self.root:
                return False
            node = self.index[node.parent]

    def rebuild_locks(self) -> None:
        """Register every directory directly under priv/lock, each with age 0."""
        self.locks.clear()
        lockdir = self.lookup(LOCK_DIR)
        if lockdir is None or not lockdir.is_dir:
            return
        for child in lockdir.children_view():
            if child.is_dir:
                self.locks.reset(f"{LOCK_DIR}/{child.name}", entry_checksum(child))


def _new_content(old: bytes, data: bytes, offset: int, truncate: bool) -> bytes:
    """The file content after writing ``data`` at ``offset`` (memdb_pwrite step 9)."""
    end = offset + len(data)
    if end > len(old):
        # Grow, zero-filling any gap (the original leaves no buffer for an empty file).
        return old[:offset] + b"\0" * (offset - len(old)) + data
    if truncate:
        return old[:offset] + data
    return old[:offset] + data + old[end:]
