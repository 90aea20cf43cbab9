"""Values that leave the tree: entry attributes, store rows, change records, statfs.

All are frozen, so they can travel between actors as messages.
"""

from __future__ import annotations

from dataclasses import dataclass

DT_DIR = 4
"""Entry type of a directory (dirent.h DT_DIR)."""
DT_REG = 8
"""Entry type of a regular file (dirent.h DT_REG)."""

VERSION_ROW_NAME = "__version__"
"""Name of the row (inode 0) that stores the root's version, writer and mtime."""


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the SQLite table ``tree``, decoded to unsigned values."""

    inode: int
    parent: int
    version: int
    writer: int
    mtime: int
    type: int
    name: str
    data: bytes | None


def version_row(version: int, writer: int, mtime: int) -> Row:
    """The inode-0 ``__version__`` row that carries the global version."""
    return Row(0, 0, version, writer, mtime, DT_REG, VERSION_ROW_NAME, None)


@dataclass(frozen=True, slots=True)
class StoreChange:
    """What one tree operation must write to the store, in one transaction."""

    version: int
    """The new global version (written to the __version__ row)."""
    writer: int
    mtime: int
    upsert: Row | None = None
    """The entry row to insert or replace, if any."""
    delete_inode: int | None = None
    """The inode whose row is deleted, if any (delete, or a replaced rename target)."""


@dataclass(frozen=True, slots=True)
class EntryAttr:
    """An entry's attributes without its data."""

    inode: int
    type: int
    size: int
    version: int
    writer: int
    mtime: int

    @property
    def is_dir(self) -> bool:
        """True for directories."""
        return self.type == DT_DIR


@dataclass(frozen=True, slots=True)
class StatFs:
    """What statfs reports (section 3.4 of the local reference)."""

    bsize: int
    blocks: int
    bfree: int
    files: int
    ffree: int
    namemax: int


@dataclass(frozen=True, slots=True)
class VmInfo:
    """One guest in the vmlist."""

    vmid: int
    node: str
    vmtype: str
    version: int


@dataclass(frozen=True, slots=True)
class VmListSnapshot:
    """The whole vmlist at one moment."""

    version: int
    vms: tuple[VmInfo, ...]
