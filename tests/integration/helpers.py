"""Helpers for the integration tests: errno checks, fresh status reads, tree snapshots,
running code as another user, and C-schema databases."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import random
import select
import shutil
import sqlite3
import stat
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lab.daemon import Daemon
from memdb.tree import MAX_FILE_SIZE
from tests.expected import LINK_NAMES, PLUGIN_NAMES, STATUS_NAMES  # noqa: F401 - re-exported
from tests.require import require
from tests.vectors import VECTORS

T = TypeVar("T")

"""Golden data from a real C pmxcfs; read only, copy before use."""


WWW_DATA = 33
NOBODY = 65534

SYSTEM_PYTHON = "/usr/bin/python3"
"""Children that run as another user need an interpreter outside /root."""

TREE_DDL = (
    "CREATE TABLE tree (  inode INTEGER PRIMARY KEY NOT NULL,  parent INTEGER NOT NULL "
    "CHECK(typeof(parent)=='integer'),  version INTEGER NOT NULL CHECK(typeof(version)=='integer'),  "
    "writer INTEGER NOT NULL CHECK(typeof(writer)=='integer'),  mtime INTEGER NOT NULL "
    "CHECK(typeof(mtime)=='integer'),  type INTEGER NOT NULL CHECK(typeof(type)=='integer'),  "
    "name TEXT NOT NULL,  data BLOB)"
)
"""The original's schema, as in config.db.sql."""


# ----- errno ---------------------------------------------------------------------------


def expect_errno(code: int | tuple[int, ...], func: Callable[..., Any], *args: Any, **kwargs: Any) -> OSError:
    """Call ``func`` and assert it fails with ``code`` (or one of several codes)."""
    codes = code if isinstance(code, tuple) else (code,)
    names = [errno.errorcode[c] for c in codes]
    error: OSError | None = None
    try:
        func(*args, **kwargs)
    except OSError as exc:
        error = exc
    if error is None:
        pytest.fail(f"expected {names}, but {getattr(func, '__name__', func)}{args} succeeded")
    got = error.errno
    assert got in codes, f"expected {names}, got {errno.errorcode.get(got, got)}: {error}"
    return error


def os_errno(call: Callable[[], object]) -> int | None:
    """The errno ``call`` fails with; None if it succeeds."""
    try:
        call()
    except OSError as exc:
        return exc.errno
    return None


# ----- waiting -------------------------------------------------------------------------


def wait_for(condition: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``condition`` until it returns a true value; only where no event exists."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_pid_exit(pid: int, timeout: float) -> None:
    """Wait for a process that is not our child to end, through a pidfd (an event)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"process {pid} still running after {timeout} s"
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# ----- fresh attributes and status files -----------------------------------------------

_AT_FDCWD = -100
_AT_STATX_FORCE_SYNC = 0x2000
_STATX_BASIC_STATS = 0x7FF
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def stat_sync(path: Path) -> None:
    """statx(AT_STATX_FORCE_SYNC): the kernel skips its attribute cache and asks the daemon
    (FUSE_GETATTR), which is what regenerates a status file's snapshot (3.8)."""
    buf = ctypes.create_string_buffer(256)
    rc = _libc.statx(_AT_FDCWD, os.fsencode(path), _AT_STATX_FORCE_SYNC, _STATX_BASIC_STATS, buf)
    if rc != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(path))


def read_status(
    daemon: Daemon,
    name: str,
    until: Callable[[str], bool] | None = None,
    timeout: float = 5.0,
) -> str:
    """Read a status file after a forced getattr (which regenerates it).

    With ``until``, repeat (stat, read) until the text satisfies it: the kernel may still
    answer from its 1 s attribute cache, so this polls with a deadline.
    """
    path = daemon.path(name)
    deadline = time.monotonic() + timeout
    while True:
        stat_sync(path)
        os.stat(path)
        text = path.read_text()
        if until is None or until(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never matched within {timeout} s; last text:\n{text}")


def read_json(daemon: Daemon, name: str, until: Callable[[Any], bool] | None = None) -> Any:
    """A status file parsed as JSON (optionally polled until ``until`` holds)."""
    if until is None:
        return json.loads(read_status(daemon, name))
    return json.loads(read_status(daemon, name, lambda text: until(json.loads(text))))


def vmlist(daemon: Daemon, until: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """.vmlist as {"version": n, "ids": {vmid: {...}}} (ids empty when there are none)."""
    data = read_json(daemon, ".vmlist", None if until is None else lambda d: until({"ids": {}, **d}))
    return {"ids": {}, **data}


# ----- tree snapshots ------------------------------------------------------------------


def snapshot_tree(mount: Path) -> dict[str, tuple[Any, ...]]:
    """Every tree entry (status files and links excluded) -> (kind, mode, size, mtime_ns, content)."""
    result: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(mount):
        rel_dir = os.path.relpath(dirpath, mount)
        if rel_dir == ".":
            dirnames[:] = [n for n in dirnames if n not in PLUGIN_NAMES]
            filenames = [n for n in filenames if n not in PLUGIN_NAMES]
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            st = os.lstat(full)
            if stat.S_ISDIR(st.st_mode):
                result[rel] = ("dir", st.st_mode, st.st_size, st.st_mtime_ns, None)
            else:
                with open(full, "rb") as handle:
                    content = handle.read()
                result[rel] = ("file", st.st_mode, st.st_size, st.st_mtime_ns, content)
    return result


def entry_count(mount: Path) -> int:
    """statfs: f_files - f_ffree, the number of tree entries including the root."""
    info = os.statvfs(mount)
    return info.f_files - info.f_ffree


# ----- other users ---------------------------------------------------------------------

_CHILD = r"""
import json, os, sys
out = []
for op, path, *rest in json.loads(sys.argv[1]):
    arg = rest[0] if rest else ""
    try:
        if op == "read":
            with open(path, "rb") as f:
                value = f.read().decode("latin-1")
        elif op == "size":
            with open(path, "rb") as f:
                value = len(f.read())
        elif op == "write":
            fd = os.open(path, os.O_WRONLY)
            try:
                value = os.write(fd, b"x")
            finally:
                os.close(fd)
        elif op == "append":
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            os.close(fd)
            value = None
        elif op == "truncate":
            value = os.truncate(path, 0)
        elif op == "create":
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            os.close(fd)
            value = None
        elif op == "mkdir":
            value = os.mkdir(path)
        elif op == "unlink":
            value = os.unlink(path)
        elif op == "rmdir":
            value = os.rmdir(path)
        elif op == "rename":
            value = os.rename(path, arg)
        elif op == "symlink":
            value = os.symlink(arg, path)
        elif op == "listdir":
            value = sorted(os.listdir(path))
        elif op == "stat":
            value = os.stat(path).st_mode
        elif op == "readlink":
            value = os.readlink(path)
        else:
            raise ValueError(op)
        out.append(["ok", value])
    except OSError as exc:
        out.append(["errno", exc.errno])
print(json.dumps(out))
"""
"""File operations for run_as; each item is [op, path] or [op, path, arg] (rename, symlink).
"read" answers the content, "size" its length. Runs with the system Python (the test's
interpreter lives below /root)."""


def run_child_as(
    uid: int, gid: int, script: str, payload: object, timeout: float = 60
) -> list[tuple[str, Any]]:
    """Run ``script`` with the system Python as uid:gid (no supplementary groups).

    The script gets ``payload`` as JSON in argv[1] and prints a JSON list of lists.
    """
    require(
        [] if os.access(SYSTEM_PYTHON, os.X_OK) else [SYSTEM_PYTHON], "tests that run code as another user"
    )
    done = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-c", script, json.dumps(payload)],
        user=uid,
        group=gid,
        extra_groups=[],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [tuple(item) for item in json.loads(done.stdout)]  # type: ignore[misc]


def run_as(
    uid: int, gid: int, ops: Sequence[tuple[str, Path] | tuple[str, Path, str]]
) -> list[tuple[str, Any]]:
    """Run file operations in a child process as uid:gid (no supplementary groups).

    Returns per op ("ok", value) or ("errno", code).
    """
    return run_child_as(uid, gid, _CHILD, [[op, str(path), *rest] for op, path, *rest in ops])


# ----- databases -----------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_vector_db(dest: Path) -> Path:
    """Copy the C-written config.db to ``dest`` (never open the original in place)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(VECTORS / "config.db", dest)
    return dest


def vector_rows(tmp: Path) -> list[tuple[int, int, int, int, int, int, str, bytes | None]]:
    """All rows of the C-written config.db (read from a private copy)."""
    copy = copy_vector_db(tmp / "vector-copy" / "config.db")
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        return list(conn.execute("SELECT inode, parent, version, writer, mtime, type, name, data FROM tree"))


def vector_tree(tmp: Path) -> dict[str, tuple[str, int, bytes | None]]:
    """The C-written database as memdb paths -> (kind, mtime, data)."""
    rows = vector_rows(tmp)
    by_inode = {row[0]: row for row in rows if row[0] != 0}

    def path_of(inode: int) -> str:
        parts = []
        while inode != 0:
            row = by_inode[inode]
            parts.append(row[6])
            inode = row[1]
        return "/".join(reversed(parts))

    return {
        path_of(inode): ("dir" if row[5] == 4 else "file", row[4], row[7]) for inode, row in by_inode.items()
    }


def execute_sql(db: Path, *statements: str | tuple[str, Sequence[Any]]) -> None:
    """Run statements on a database file and close it (which checkpoints a WAL)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        for statement in statements:
            if isinstance(statement, tuple):
                conn.execute(statement[0], statement[1])
            else:
                conn.execute(statement)
        conn.commit()


# ----- corrupt databases (refused at startup, left alone) ----------------------------------

ROW_MTIME = 1795608486
"""The mtime of the rows the corruptions add."""


def corrupt_random(db: Path) -> None:
    db.write_bytes(random.Random(42).randbytes(16384))


def corrupt_truncated(db: Path) -> None:
    copy_vector_db(db)
    db.write_bytes(db.read_bytes()[:3000])


def vector_with(*statements: str) -> Callable[[Path], None]:
    def make(db: Path) -> None:
        copy_vector_db(db)
        execute_sql(db, *statements)

    return make


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "random-bytes": corrupt_random,
    "truncated": corrupt_truncated,
    "duplicate-name": vector_with(
        f"INSERT INTO tree VALUES(100, 0, 5, 0, {ROW_MTIME}, 8, 'datacenter.cfg', X'00')"
    ),
    "missing-parent": vector_with(
        f"INSERT INTO tree VALUES(100, 777, 5, 0, {ROW_MTIME}, 8, 'orphan', X'00')"
    ),
    "directory-with-data": vector_with(
        f"INSERT INTO tree VALUES(100, 0, 5, 0, {ROW_MTIME}, 4, 'dir', X'00')"
    ),
    "unknown-type": vector_with(f"INSERT INTO tree VALUES(100, 0, 5, 0, {ROW_MTIME}, 10, 'odd', NULL)"),
    "empty-name": vector_with(f"INSERT INTO tree VALUES(100, 0, 5, 0, {ROW_MTIME}, 8, '', NULL)"),
    "root-with-other-name": vector_with("UPDATE tree SET name = 'other' WHERE inode = 0"),
    "parent-is-a-file": vector_with(f"INSERT INTO tree VALUES(100, 19, 5, 0, {ROW_MTIME}, 8, 'child', NULL)"),
    # a file row whose inode earlier rows use as their parent (the C code would silently
    # drop those children; the reference asks a reimplementation to reject it)
    "file-used-as-parent-later": vector_with(
        f"INSERT INTO tree VALUES(150, 200, 5, 0, {ROW_MTIME}, 8, 'child', NULL)",
        f"INSERT INTO tree VALUES(200, 0, 5, 0, {ROW_MTIME}, 8, 'plainfile', X'00')",
    ),
    "duplicate-vmid": vector_with(
        f"INSERT INTO tree VALUES(100, 26, 5, 0, {ROW_MTIME}, 8, '100.conf', X'00')"
    ),
    "guest-folder-is-a-file": vector_with(
        f"INSERT INTO tree VALUES(100, 60, 5, 0, {ROW_MTIME}, 8, 'lxc', X'00')"
    ),
}


# ----- the 1 MiB limit -------------------------------------------------------------------------


def pwrite_errno(path: Path, data: bytes, offset: int, flags: int = os.O_WRONLY) -> int | None:
    fd = os.open(path, flags)
    try:
        return os_errno(lambda: os.pwrite(fd, data, offset))
    finally:
        os.close(fd)


def append_errno(path: Path, data: bytes) -> int | None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        return os_errno(lambda: os.write(fd, data))
    finally:
        os.close(fd)


def check_write_limits(mount: Path, name: str = "limits.cfg") -> None:
    """The issue's cases on one mount; each refused write leaves the file as it was."""
    f = mount / name
    near_full = bytes(range(256)) * 4096
    f.write_bytes(near_full[:1_048_500])
    assert append_errno(f, b"x" * 100) == errno.EFBIG
    assert f.read_bytes() == near_full[:1_048_500]

    f.write_bytes(b"c" * 4000)
    assert pwrite_errno(f, b"d" * 8192, 1_044_580) == errno.EFBIG
    assert pwrite_errno(f, b"d" * 8192, 1_044_580, os.O_RDWR) == errno.EFBIG
    assert pwrite_errno(f, b"x", 1 << 32) == errno.EFBIG  # past a 32-bit offset
    assert pwrite_errno(f, b"x", MAX_FILE_SIZE) == errno.EFBIG
    for size in (5 << 30, 4 << 30, (1 << 32) + 10, MAX_FILE_SIZE + 1):
        assert os_errno(lambda size=size: os.truncate(f, size)) == errno.EFBIG, size
    assert f.read_bytes() == b"c" * 4000
    assert f.stat().st_size == 4000

    # up to the limit is fine
    assert pwrite_errno(f, b"e" * 96, MAX_FILE_SIZE - 96) is None
    assert f.stat().st_size == MAX_FILE_SIZE
    data = f.read_bytes()
    assert data[:4000] == b"c" * 4000
    assert data[-96:] == b"e" * 96
    assert data[4000:-96] == bytes(MAX_FILE_SIZE - 4096)
