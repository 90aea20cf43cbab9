"""Immutable snapshots of the tree, published by the fs actor for readers on other threads.

A :class:`TreeSnapshot` holds every entry as an immutable :class:`Node` keyed by inode in a
persistent map (pyrsistent's HAMT), a directory's children as a persistent map name -> inode,
and what readers also need: whether changes are accepted (quorum), the vmlist and statfs.
A change makes a new snapshot that shares everything it does not touch: the changed entry, its
parent's children map and the root's attributes, O(log n) each, whatever the size of the tree.

The fs actor alone makes snapshots and publishes each one in a :class:`Published` cell after
the change is applied and before its writer is answered; a reader takes the cell's value (one
reference read) and works on it without a lock: nothing it reaches can change under it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from pyrsistent import pmap
from pyrsistent.typing import PMap

from memdb.entry import Entry
from memdb.paths import components
from memdb.records import DT_DIR, EntryAttr, StatFs, StoreChange, VmListSnapshot
from memdb.tree import BLOCKSIZE, MAX_FS_SIZE, MAX_INODES, NAMEMAX, MemDb

T = TypeVar("T")

ROOT_INODE = 0
EMPTY_CHILDREN: PMap[str, int] = pmap()
EMPTY_COUNTERS: PMap[str, int] = pmap()


@dataclass(frozen=True, slots=True)
class Node:
    """One entry as readers see it."""

    attr: EntryAttr
    parent: int
    name: str
    data: bytes
    children: PMap[str, int]
    """A directory's children: name -> inode (empty for files)."""
    listing: tuple[str, ...]
    """The children's names in the order readdir gives them (as the tree's: by arrival)."""

    def linked(self, name: str, inode: int) -> Node:
        """This directory with ``name`` -> ``inode`` (added last, or replacing the link)."""
        listing = self.listing if name in self.children else (*self.listing, name)
        return replace(self, children=self.children.set(name, inode), listing=listing)

    def unlinked(self, name: str) -> Node:
        """This directory without ``name``."""
        at = self.listing.index(name)
        listing = self.listing[:at] + self.listing[at + 1 :]
        return replace(self, children=self.children.remove(name), listing=listing)


def node_of(entry: Entry, children: PMap[str, int], listing: tuple[str, ...]) -> Node:
    """The node of ``entry``, with the given children."""
    attr = entry.attr()
    return Node(
        attr=attr, parent=entry.parent, name=entry.name, data=entry.data, children=children, listing=listing
    )


@dataclass(frozen=True, slots=True)
class TreeSnapshot:
    """The whole tree at one version, and what reads answer from."""

    nodes: PMap[int, Node]
    writable: bool
    """Quorate (or local mode): changes are accepted."""
    vmlist: VmListSnapshot
    used_bytes: int
    """The sum of every file's size (statfs)."""
    counters: PMap[str, int] = EMPTY_COUNTERS
    """Change counters of the tracked files (.version), counted as the fs actor reports them."""

    @property
    def root(self) -> Node:
        """The root directory's node."""
        return self.nodes[ROOT_INODE]

    def lookup(self, path: str) -> Node | None:
        """The node at ``path``; a walk through a file finds nothing."""
        nodes = self.nodes
        node = nodes[ROOT_INODE]
        for name in components(path):
            inode = node.children.get(name)
            if inode is None:
                return None
            node = nodes[inode]
        return node

    def getattr(self, path: str) -> EntryAttr | None:
        """The attributes at ``path``, or None if it does not exist."""
        node = self.lookup(path)
        return node.attr if node is not None else None

    def read(self, path: str, size: int, offset: int) -> bytes | None:
        """Up to ``size`` bytes from ``offset``; None if ``path`` is not a file."""
        node = self.lookup(path)
        if node is None or node.attr.type == DT_DIR:
            return None
        return node.data[offset : offset + size]

    def read_all(self, path: str) -> bytes | None:
        """A file's whole content; None if ``path`` is not a file."""
        node = self.lookup(path)
        if node is None or node.attr.type == DT_DIR:
            return None
        return node.data

    def readdir(self, path: str) -> tuple[str, ...]:
        """Child names in the tree's order; a missing path or a file lists nothing."""
        node = self.lookup(path)
        return node.listing if node is not None else ()

    def statfs(self) -> StatFs:
        """Block and inode usage against the reported (not enforced) limits."""
        total_blocks = MAX_FS_SIZE // BLOCKSIZE
        return StatFs(
            bsize=BLOCKSIZE,
            blocks=total_blocks,
            bfree=total_blocks - (self.used_bytes + BLOCKSIZE - 1) // BLOCKSIZE,
            files=MAX_INODES,
            ffree=MAX_INODES - len(self.nodes),
            namemax=NAMEMAX,
        )

    # ----- made by the fs actor only ---------------------------------------------------

    @classmethod
    def of(cls, memdb: MemDb, *, writable: bool, counters: PMap[str, int] = EMPTY_COUNTERS) -> TreeSnapshot:
        """A snapshot of the whole tree (at load and after a sync): O(n)."""
        nodes: dict[int, Node] = {}
        used = 0
        no_children: PMap[str, int] = pmap()
        for entry in memdb.entries():
            children = (
                pmap({name: child.inode for name, child in entry.children.items()})
                if entry.children
                else no_children
            )
            nodes[entry.inode] = node_of(entry, children, tuple(entry.children))
            used += len(entry.data)
        vmlist = memdb.vmlist.snapshot()
        return cls(nodes=pmap(nodes), writable=writable, vmlist=vmlist, used_bytes=used, counters=counters)

    def with_writable(self, writable: bool) -> TreeSnapshot:
        """This snapshot with changes accepted or not."""
        return self if writable == self.writable else replace(self, writable=writable)

    def with_counted(self, paths: Iterable[str]) -> TreeSnapshot:
        """This snapshot with one more change counted for each of ``paths``."""
        counters = self.counters
        for path in paths:
            counters = counters.set(path, counters.get(path, 0) + 1)
        return replace(self, counters=counters)

    def with_vmlist(self, vmlist: VmListSnapshot) -> TreeSnapshot:
        """This snapshot with another vmlist."""
        return replace(self, vmlist=vmlist)

    def with_change(self, memdb: MemDb, change: StoreChange) -> TreeSnapshot:
        """The snapshot after ``change`` was applied to ``memdb``: O(log n)."""
        nodes, used = self.nodes, self.used_bytes
        if change.delete_inode is not None:
            nodes, freed = _removed(nodes, change.delete_inode)
            used -= freed
        if change.upsert is not None:
            nodes, grown = _upserted(nodes, memdb.index[change.upsert.inode])
            used += grown
        nodes = nodes.set(ROOT_INODE, replace(nodes[ROOT_INODE], attr=memdb.root.attr()))
        return replace(self, nodes=nodes, used_bytes=used)


def _unlinked(nodes: PMap[int, Node], parent: int, name: str, inode: int) -> PMap[int, Node]:
    """``nodes`` without the link ``name`` -> ``inode`` in ``parent`` (if it is there)."""
    dir_node = nodes.get(parent)
    if dir_node is None or dir_node.children.get(name) != inode:
        return nodes
    return nodes.set(parent, dir_node.unlinked(name))


def _removed(nodes: PMap[int, Node], inode: int) -> tuple[PMap[int, Node], int]:
    """``nodes`` without ``inode``; and the bytes it held."""
    node = nodes.get(inode)
    if node is None:
        return nodes, 0
    nodes = _unlinked(nodes, node.parent, node.name, inode)
    return nodes.remove(inode), len(node.data)


def _upserted(nodes: PMap[int, Node], entry: Entry) -> tuple[PMap[int, Node], int]:
    """``nodes`` with ``entry`` (new, changed or moved) in place; and the change in bytes held."""
    old = nodes.get(entry.inode)
    delta = len(entry.data)
    children: PMap[str, int] = EMPTY_CHILDREN
    listing: tuple[str, ...] = ()
    if old is not None:
        delta -= len(old.data)
        children, listing = old.children, old.listing
        if (old.parent, old.name) != (entry.parent, entry.name):  # moved by a rename
            nodes = _unlinked(nodes, old.parent, old.name, entry.inode)
    nodes = nodes.set(entry.inode, node_of(entry, children, listing))
    if entry.inode != ROOT_INODE:
        parent = nodes[entry.parent]
        if parent.children.get(entry.name) != entry.inode:
            nodes = nodes.set(entry.parent, parent.linked(entry.name, entry.inode))
    return nodes, delta


class Published(Generic[T]):
    """A one-slot cell with the latest immutable value; written by its one owner only.

    Reading it is one reference read; the value itself never changes, so readers on any
    thread need no lock.
    """

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    @property
    def value(self) -> T:
        """The latest published value."""
        return self._value

    def publish(self, value: T) -> None:
        """Replace the value (its owner only)."""
        self._value = value


def empty_snapshot(*, writable: bool = False) -> TreeSnapshot:
    """A tree with only the root, before the database is loaded."""
    return TreeSnapshot.of(MemDb(), writable=writable)
