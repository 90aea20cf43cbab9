"""import: a directory or tar file made by export into a new database, identical to the source.

Nothing outside the export is ever read or written: a tar is read in memory (no member is
extracted), a member that is a link, a device or a path leaving the archive is refused, and
a directory is walked without following symbolic links. Every file must match the manifest's
size and SHA-256, the rows must pass the daemon's load checks, and the new database's index
must hash to the manifest's ``index_sha256``.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from typing import TYPE_CHECKING

from errors import CorruptDatabase, InvalidArgument, NotFound
from memdb.loader import load_memdb
from tools import manifest as mf
from tools.dbfile import refuse_existing, write_new_db
from tools.export import TAR_SUFFIXES

if TYPE_CHECKING:
    from tools.manifest import Manifest
    from tools.progress import Progress

Contents = dict[str, bytes]
"""File contents by tree path."""


def import_tree(src: str, dbfile: str, progress: Progress) -> Manifest:
    """Build the new database ``dbfile`` from the export at ``src``."""
    refuse_existing(dbfile)
    if os.path.isdir(src):
        manifest, contents = _read_dir(src, progress)
    elif os.path.isfile(src) and src.endswith(tuple(TAR_SUFFIXES)):
        manifest, contents = _read_tar(src, progress)
    else:
        raise NotFound(src, "neither an export directory nor a .tar/.tar.gz/.tgz/.tar.xz file")
    rows = (manifest.version_row(), *(e.row(contents.get(e.path, b"")) for e in manifest.entries))
    index_sha = hashlib.sha256(load_memdb(rows).encode_index()).hexdigest()
    if index_sha != manifest.index_sha256:
        raise CorruptDatabase(
            src, f"index checksum {index_sha} is not the manifest's {manifest.index_sha256}"
        )
    write_new_db(dbfile, rows)  # reads the new file back: the same index, or no file
    return manifest


def _verify(manifest: Manifest, contents: Contents, kinds: dict[str, bool], src: str) -> None:
    """The tree part of the export must hold exactly the manifest's entries and contents."""
    wanted = {e.path: e for e in manifest.entries}
    for path, is_dir in kinds.items():
        entry = wanted.get(path)
        if entry is None:
            raise InvalidArgument(f"{src}: {mf.TREE_DIR}/{path}", "not in the manifest")
        if entry.is_dir != is_dir:
            raise InvalidArgument(
                f"{src}: {mf.TREE_DIR}/{path}", "file/directory type differs from the manifest"
            )
    for entry in manifest.entries:
        if entry.is_dir:
            continue
        data = contents.get(entry.path)
        where = f"{src}: {mf.TREE_DIR}/{entry.path}"
        if data is None:
            raise NotFound(where, "file of the manifest is missing")
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise CorruptDatabase(where, "content differs from the manifest (size or SHA-256)")


def _read_dir(src: str, progress: Progress) -> tuple[Manifest, Contents]:
    manifest = mf.decode(_read_plain(os.path.join(src, mf.MANIFEST_NAME)), src)
    top = os.path.join(src, mf.TREE_DIR)
    if not stat.S_ISDIR(os.lstat(top).st_mode):
        raise InvalidArgument(top, "not a directory")
    progress.start("import", len(manifest.entries), "entries")
    contents: Contents = {}
    kinds: dict[str, bool] = {}
    _walk(top, "", contents, kinds, progress)
    _verify(manifest, contents, kinds, src)
    progress.finish()
    return manifest, contents


def _walk(folder: str, prefix: str, contents: Contents, kinds: dict[str, bool], progress: Progress) -> None:
    with os.scandir(folder) as found:
        for item in sorted(found, key=lambda e: e.name):
            path = f"{prefix}{item.name}"
            if item.is_dir(follow_symlinks=False):
                kinds[path] = True
                _walk(item.path, f"{path}/", contents, kinds, progress)
            elif item.is_file(follow_symlinks=False):
                kinds[path] = False
                contents[path] = _read_plain(item.path)
            else:
                raise InvalidArgument(item.path, "neither a plain file nor a directory (links are refused)")
            progress.advance()


def _read_plain(path: str) -> bytes:
    """A regular file's bytes, refusing a symbolic link in its last component."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise NotFound(path, "no such file") from None
    except OSError as exc:
        raise InvalidArgument(path, f"can't read: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise InvalidArgument(path, "not a regular file")
        return handle.read()


def _read_tar(src: str, progress: Progress) -> tuple[Manifest, Contents]:
    try:
        with tarfile.open(src, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, src)
            manifest = _tar_manifest(tar, members, src)
            progress.start("import", len(manifest.entries), "entries")
            contents, kinds = _tar_tree(tar, members, manifest, src, progress)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidArgument(src, f"unreadable tar file: {exc}") from exc
    _verify(manifest, contents, kinds, src)
    progress.finish()
    return manifest, contents


def _check_member(member: tarfile.TarInfo, src: str) -> None:
    parts = member.name.split("/")
    if member.name.startswith("/") or ".." in parts:
        raise InvalidArgument(f"{src}: {member.name}", "member path leaves the archive")
    if not (member.isreg() or member.isdir()):
        raise InvalidArgument(f"{src}: {member.name}", "member is a link or special file")


def _tar_manifest(tar: tarfile.TarFile, members: list[tarfile.TarInfo], src: str) -> Manifest:
    found = [m for m in members if m.name == mf.MANIFEST_NAME and m.isreg()]
    if len(found) != 1:
        raise NotFound(f"{src}: {mf.MANIFEST_NAME}", "the archive must hold exactly one manifest")
    handle = tar.extractfile(found[0])
    assert handle is not None  # a regular member always has a file object
    return mf.decode(handle.read(), src)


def _tar_tree(
    tar: tarfile.TarFile, members: list[tarfile.TarInfo], manifest: Manifest, src: str, progress: Progress
) -> tuple[Contents, dict[str, bool]]:
    sizes = {e.path: e.size for e in manifest.entries if not e.is_dir}
    contents: Contents = {}
    kinds: dict[str, bool] = {}
    prefix = f"{mf.TREE_DIR}/"
    for member in members:
        if not member.name.startswith(prefix):
            continue
        path = member.name.removeprefix(prefix).rstrip("/")
        if path in kinds:
            raise InvalidArgument(f"{src}: {member.name}", "member appears twice")
        kinds[path] = member.isdir()
        if member.isreg() and sizes.get(path) == member.size:  # anything else fails in _verify
            handle = tar.extractfile(member)
            assert handle is not None
            contents[path] = handle.read()
        progress.advance()
    return contents, kinds
