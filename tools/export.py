"""export: the whole tree of a database into a directory or a tar file, with its manifest.

Layout (the same in both forms)::

    manifest.json        every entry's metadata (tools/manifest.py)
    tree/<path>          each directory and file of the tree, with its content

Modes follow what the mount shows (fusefs/modes.py): ``priv/`` and ``nodes/*/priv/`` are
0700/0600, the rest 0755/0640; a directory export's top folder is 0700 as a whole.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from typing import TYPE_CHECKING

from errors import StorageError
from fusefs.modes import memdb_mode
from tools import manifest as mf
from tools.dbfile import publish, read_tree, refuse_existing, temp_beside

if TYPE_CHECKING:
    from memdb.tree import MemDb
    from tools.manifest import Manifest, ManifestEntry
    from tools.progress import Progress

TAR_SUFFIXES = {".tar": "", ".tar.gz": "gz", ".tgz": "gz", ".tar.xz": "xz"}
"""Destinations ending like this are written as tar files, compressed as named."""


def tar_compression(dest: str) -> str | None:
    """The compression of a tar file ``dest`` ("", "gz" or "xz"); None if it names a directory."""
    for suffix, compression in TAR_SUFFIXES.items():
        if dest.endswith(suffix):
            return compression
    return None


def entry_mode(entry: ManifestEntry) -> int:
    """Permission bits of an exported entry: what the (writable) mount shows."""
    return memdb_mode(entry.path, is_dir=entry.is_dir, writable=True) & 0o7777


def export_tree(dbfile: str, dest: str, progress: Progress) -> Manifest:
    """Export ``dbfile`` (read-only) to ``dest``, which must not exist yet."""
    refuse_existing(dest)
    memdb = read_tree(dbfile)
    manifest = mf.from_memdb(memdb)
    compression = tar_compression(dest)
    progress.start("export", len(manifest.entries), "entries")
    if compression is None:
        _write_dir(memdb, manifest, dest, progress)
    else:
        _write_tar(memdb, manifest, dest, compression, progress)
    progress.finish()
    return manifest


def _write_dir(memdb: MemDb, manifest: Manifest, dest: str, progress: Progress) -> None:
    parent = os.path.dirname(os.path.abspath(dest))
    try:
        work = tempfile.mkdtemp(prefix=f".{os.path.basename(dest)}.", dir=parent)  # mode 0700
    except OSError as exc:
        raise StorageError(parent, f"can't write here: {exc.strerror}") from exc
    try:
        _fill_dir(memdb, manifest, work, progress)
        refuse_existing(dest)
        os.rename(work, dest)
    except OSError as exc:
        raise StorageError(dest, f"export failed: {exc}") from exc
    finally:
        if os.path.isdir(work):
            _remove_tree(work)


def _fill_dir(memdb: MemDb, manifest: Manifest, work: str, progress: Progress) -> None:
    _write_file(os.path.join(work, mf.MANIFEST_NAME), mf.encode(manifest), 0o600, None)
    top = os.path.join(work, mf.TREE_DIR)
    os.mkdir(top)
    os.chmod(top, 0o755)
    ordered = sorted(manifest.entries, key=lambda e: e.path.count("/"))
    for entry in ordered:
        path = os.path.join(top, entry.path)
        if entry.is_dir:
            os.mkdir(path, 0o700)
        else:
            _write_file(path, memdb.index[entry.inode].data, entry_mode(entry), entry.mtime)
        progress.advance()
    for entry in reversed(ordered):  # deepest first: setting a folder's mtime is the last change in it
        if entry.is_dir:
            path = os.path.join(top, entry.path)
            os.chmod(path, entry_mode(entry))
            os.utime(path, (entry.mtime, entry.mtime))


def _write_file(path: str, data: bytes, mode: int, mtime: int | None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if mtime is not None:
            os.utime(fd, (mtime, mtime))
    finally:
        os.close(fd)


def _remove_tree(top: str) -> None:
    for folder, dirs, files in os.walk(top, topdown=False):
        for name in files:
            os.unlink(os.path.join(folder, name))
        for name in dirs:
            os.rmdir(os.path.join(folder, name))
    os.rmdir(top)


def _open_tar(path: str, compression: str) -> tarfile.TarFile:
    if compression == "gz":
        return tarfile.TarFile.gzopen(path, "w", format=tarfile.PAX_FORMAT)
    if compression == "xz":
        return tarfile.TarFile.xzopen(path, "w", format=tarfile.PAX_FORMAT)
    return tarfile.TarFile.taropen(path, "w", format=tarfile.PAX_FORMAT)


def _write_tar(memdb: MemDb, manifest: Manifest, dest: str, compression: str, progress: Progress) -> None:
    tmp = temp_beside(dest)
    try:
        with _open_tar(tmp, compression) as tar:
            _add(tar, mf.MANIFEST_NAME, mf.encode(manifest), 0o600, manifest.mtime)
            _add(tar, mf.TREE_DIR, None, 0o755, manifest.mtime)
            for entry in sorted(manifest.entries, key=lambda e: e.path):
                data = None if entry.is_dir else memdb.index[entry.inode].data
                _add(tar, f"{mf.TREE_DIR}/{entry.path}", data, entry_mode(entry), entry.mtime)
                progress.advance()
        publish(tmp, dest)
    except OSError as exc:
        raise StorageError(dest, f"export failed: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _add(tar: tarfile.TarFile, name: str, data: bytes | None, mode: int, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime = mode, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
