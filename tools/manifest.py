"""The export manifest: every entry's metadata, so that an import rebuilds the same tree.

An export holds ``manifest.json`` and the files under ``tree/``. The manifest keeps what the
file system can't: inode numbers, versions, writers, mtimes and the root's global version,
plus each file's size and SHA-256 and the SHA-256 of the memdb index (the value the cluster
compares), which the import must reproduce.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from errors import InvalidArgument
from memdb.paths import is_reserved_name
from memdb.records import DT_DIR, DT_REG, Row, version_row

if TYPE_CHECKING:
    from collections.abc import Mapping

    from memdb.entry import Entry
    from memdb.tree import MemDb

FORMAT = "pmxcfs-tree-export"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
TREE_DIR = "tree"
"""The folder (or tar prefix) that holds the tree's files and directories."""

_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1
_TYPE_NAMES = {DT_REG: "file", DT_DIR: "dir"}
_TYPES = {name: value for value, name in _TYPE_NAMES.items()}


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One entry of the tree (never the root)."""

    inode: int
    parent: int
    version: int
    writer: int
    mtime: int
    type: int
    name: str
    path: str
    """Its path in the tree, as found under ``tree/``."""
    size: int
    """Content length (0 for directories)."""
    sha256: str
    """SHA-256 of the content, hex ("" for directories)."""

    @property
    def is_dir(self) -> bool:
        """True for directories."""
        return self.type == DT_DIR

    def row(self, data: bytes) -> Row:
        """The store row of this entry with its content."""
        return Row(
            self.inode, self.parent, self.version, self.writer, self.mtime, self.type, self.name, data or None
        )


@dataclass(frozen=True, slots=True)
class Manifest:
    """The root's state, the index checksum and every entry by inode."""

    version: int
    writer: int
    mtime: int
    index_sha256: str
    entries: tuple[ManifestEntry, ...]

    def version_row(self) -> Row:
        """The ``__version__`` row."""
        return version_row(self.version, self.writer, self.mtime)


def check_name(name: str, where: str) -> None:
    """Refuse names that can't be one file name on disk or in a tar ('', '.', '..', '/', NUL)."""
    if is_reserved_name(name) or "/" in name or "\0" in name:
        raise InvalidArgument(where, f"name {name!r} can't be exported as a file name")


def entry_path(memdb: MemDb, entry: Entry) -> str:
    """The path of a loaded entry (its parents are known to reach the root)."""
    names = []
    while entry is not memdb.root:
        names.append(entry.name)
        entry = memdb.index[entry.parent]
    return "/".join(reversed(names))


def from_memdb(memdb: MemDb) -> Manifest:
    """The manifest of a loaded tree; refuses names that can't be exported."""
    entries = []
    for entry in sorted(memdb.entries(), key=lambda e: e.inode):
        if entry is memdb.root:
            continue
        check_name(entry.name, f"inode {entry.inode}")
        digest = hashlib.sha256(entry.data).hexdigest() if not entry.is_dir else ""
        entries.append(
            ManifestEntry(
                inode=entry.inode,
                parent=entry.parent,
                version=entry.version,
                writer=entry.writer,
                mtime=entry.mtime,
                type=entry.type,
                name=entry.name,
                path=entry_path(memdb, entry),
                size=len(entry.data),
                sha256=digest,
            )
        )
    root = memdb.root
    index_sha = hashlib.sha256(memdb.encode_index()).hexdigest()
    return Manifest(root.version, root.writer, root.mtime, index_sha, tuple(entries))


def encode(manifest: Manifest) -> bytes:
    """The manifest as JSON (ASCII; names that are not UTF-8 keep their bytes as escapes)."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "root": {"version": manifest.version, "writer": manifest.writer, "mtime": manifest.mtime},
        "index_sha256": manifest.index_sha256,
        "entries": [_encode_entry(e) for e in manifest.entries],
    }
    return (json.dumps(doc, indent=1, ensure_ascii=True) + "\n").encode("ascii")


def _encode_entry(entry: ManifestEntry) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "inode": entry.inode,
        "parent": entry.parent,
        "version": entry.version,
        "writer": entry.writer,
        "mtime": entry.mtime,
        "type": _TYPE_NAMES[entry.type],
        "name": entry.name,
        "path": entry.path,
    }
    if not entry.is_dir:
        doc["size"], doc["sha256"] = entry.size, entry.sha256
    return doc


def decode(data: bytes, source: str) -> Manifest:
    """Parse and validate a manifest; raise InvalidArgument naming what is wrong."""
    try:
        doc = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgument(source, f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument(source, "manifest is not a JSON object")
    _expect(doc.get("format") == FORMAT, source, f"not a {FORMAT} manifest")
    version = doc.get("format_version")
    _expect(version == FORMAT_VERSION, source, f"manifest format_version {version!r} is not {FORMAT_VERSION}")
    root, index_sha, raw_entries = doc.get("root"), doc.get("index_sha256"), doc.get("entries")
    if not isinstance(root, dict):
        raise InvalidArgument(source, "manifest has no root object")
    if not isinstance(index_sha, str) or len(index_sha) != 64:
        raise InvalidArgument(source, "manifest has no index_sha256")
    if not isinstance(raw_entries, list):
        raise InvalidArgument(source, "manifest has no entries list")
    entries = tuple(_decode_entry(raw, f"{source}: entry {n}") for n, raw in enumerate(raw_entries))
    manifest = Manifest(
        version=_int(root, "version", _U64, f"{source}: root"),
        writer=_int(root, "writer", _U32, f"{source}: root"),
        mtime=_int(root, "mtime", _U32, f"{source}: root"),
        index_sha256=index_sha,
        entries=entries,
    )
    _check_paths(manifest, source)
    return manifest


def _decode_entry(raw: object, where: str) -> ManifestEntry:
    if not isinstance(raw, dict):
        raise InvalidArgument(where, "not a JSON object")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in _TYPES:
        raise InvalidArgument(where, f"type {kind!r} is neither 'file' nor 'dir'")
    name, path = raw.get("name"), raw.get("path")
    if not isinstance(name, str) or not isinstance(path, str):
        raise InvalidArgument(where, "name and path must be strings")
    check_name(name, where)
    is_dir = kind == "dir"
    size = 0 if is_dir else _int(raw, "size", _U32, where)
    digest = "" if is_dir else raw.get("sha256")
    if not isinstance(digest, str) or (not is_dir and len(digest) != 64):
        raise InvalidArgument(where, "sha256 must be 64 hex digits")
    return ManifestEntry(
        inode=_int(raw, "inode", _U64, where),
        parent=_int(raw, "parent", _U64, where),
        version=_int(raw, "version", _U64, where),
        writer=_int(raw, "writer", _U32, where),
        mtime=_int(raw, "mtime", _U32, where),
        type=_TYPES[kind],
        name=name,
        path=path,
        size=size,
        sha256=digest,
    )


def _check_paths(manifest: Manifest, source: str) -> None:
    """Each entry's path must be the one its parents give, and they must reach the root."""
    by_inode = {e.inode: e for e in manifest.entries}
    _expect(len(by_inode) == len(manifest.entries), source, "manifest lists an inode twice")
    _expect(0 not in by_inode, source, "manifest lists inode 0 as an entry")
    for entry in manifest.entries:
        where = f"{source}: inode {entry.inode}"
        names = [entry.name]
        parent = entry.parent
        while parent != 0:
            node = by_inode.get(parent)
            if node is None:
                raise InvalidArgument(where, f"its parent {parent} is not in the manifest")
            _expect(len(names) <= len(by_inode), where, "its parents form a cycle")
            names.append(node.name)
            parent = node.parent
        path = "/".join(reversed(names))
        _expect(path == entry.path, where, f"path {entry.path!r} does not match its parents ({path!r})")


def _int(doc: Mapping[str, object], key: str, top: int, where: str) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
        raise InvalidArgument(where, f"{key} must be an integer from 0 to {top}")
    return value


def _expect(condition: bool, where: str, reason: str) -> None:
    if not condition:
        raise InvalidArgument(where, reason)
