"""One node of the in-memory tree."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from memdb.records import DT_DIR, EntryAttr, Row


@dataclass(slots=True, eq=False)
class Entry:
    """A file or directory. Mutable: only the MemDb that holds it changes it."""

    inode: int
    parent: int
    version: int
    writer: int
    mtime: int
    type: int
    name: str
    data: bytes = b""
    """A file's whole content; always empty for directories."""
    children: dict[str, Entry] = field(default_factory=dict)
    """A directory's entries by name; always empty for files."""

    @property
    def is_dir(self) -> bool:
        """True for directories."""
        return self.type == DT_DIR

    @property
    def size(self) -> int:
        """The content length (0 for directories)."""
        return len(self.data)

    def child(self, name: str) -> Entry | None:
        """The child called ``name``, if this is a directory that has one."""
        return self.children.get(name)

    def children_view(self) -> Iterable[Entry]:
        """The children, in insertion order (stands in for the original's hash order)."""
        return self.children.values()

    def attr(self) -> EntryAttr:
        """A frozen copy of the attributes."""
        return EntryAttr(
            inode=self.inode,
            type=self.type,
            size=len(self.data),
            version=self.version,
            writer=self.writer,
            mtime=self.mtime,
        )

    def row(self) -> Row:
        """The store row of this entry (empty data is stored as NULL)."""
        return Row(
            inode=self.inode,
            parent=self.parent,
            version=self.version,
            writer=self.writer,
            mtime=self.mtime,
            type=self.type,
            name=self.name,
            data=self.data or None,
        )
