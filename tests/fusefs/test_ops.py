"""The operation table (3.3) as the FUSE layer decides it, and the status files (3.8)."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import time

import pytest

from actors.messages import Lookup, ReadFile
from tests.expected import LINK_NAMES, PLUGIN_NAMES, STATUS_NAMES
from tests.fusefs.pve import WWW_GID, FileInfo, Pve, errno_of

NS = 1_000_000_000
ROOT_AND_PLUGINS = ["/", *(f"/{n}" for n in PLUGIN_NAMES)]
BELOW_PLUGINS = ["/local/x", "/qemu-server/100.conf", "/lxc/x", "/openvz/x", "/.version/x", "/.debug/x"]


# ----- names the tree can't take ---------------------------------------------------


@pytest.mark.parametrize("path", ROOT_AND_PLUGINS + BELOW_PLUGINS)
def test_name_changing_ops_refuse_the_root_and_plugin_names(pve: Pve, path: str) -> None:
    ops = pve.ops
    assert errno_of(ops.mkdir, path, 0o755) == errno.EACCES
    assert errno_of(ops.rmdir, path) == errno.EACCES
    assert errno_of(ops.unlink, path) == errno.EACCES
    assert errno_of(ops.create, path, 0o644, FileInfo()) == errno.EACCES
    assert errno_of(ops.utimens, path, (NS, NS)) == errno.EACCES
    assert pve.ask(Lookup(path=path.lstrip("/"))).attr is None or path == "/"


@pytest.mark.parametrize("path", ROOT_AND_PLUGINS + BELOW_PLUGINS)
def test_rename_refuses_the_root_and_plugin_names_on_either_side(pve: Pve, path: str) -> None:
    pve.create("/f")
    assert errno_of(pve.ops.rename, "/f", path) == errno.EACCES
    assert errno_of(pve.ops.rename, path, "/g") == errno.EACCES
    assert pve.ask(Lookup(path="f")).attr is not None


@pytest.mark.parametrize("path", BELOW_PLUGINS)
def test_paths_below_a_plugin_have_no_handler(pve: Pve, path: str) -> None:
    ops = pve.ops
    fi = FileInfo()
    assert errno_of(ops.getattr, path) == errno.EACCES
    assert errno_of(ops.open, path, fi) == errno.EACCES
    assert errno_of(ops.read, path, 10, 0, fi) == errno.EACCES
    assert errno_of(ops.write, path, b"1\n", 0, fi) == errno.EACCES
    assert errno_of(ops.truncate, path, 0) == errno.EACCES
    assert errno_of(ops.readdir, path, 0) == errno.EACCES
    assert errno_of(ops.readlink, path) == errno.EACCES


@pytest.mark.parametrize("path", ["/", *(f"/{n}" for n in LINK_NAMES)])
def test_root_and_links_can_not_be_opened_read_written_or_truncated(pve: Pve, path: str) -> None:
    fi = FileInfo()
    assert errno_of(pve.ops.open, path, fi) == errno.EACCES
    assert errno_of(pve.ops.read, path, 10, 0, fi) == errno.EACCES
    assert errno_of(pve.ops.write, path, b"x", 0, fi) == errno.EACCES
    assert errno_of(pve.ops.truncate, path, 0) == errno.EACCES


@pytest.mark.parametrize("name", STATUS_NAMES)
def test_status_files_can_not_be_listed_or_touched(pve: Pve, name: str) -> None:
    assert errno_of(pve.ops.readdir, f"/{name}", 0) == errno.EACCES
    assert errno_of(pve.ops.utimens, f"/{name}", (NS, NS)) == errno.EACCES
    assert errno_of(pve.ops.readlink, f"/{name}") == errno.EACCES


@pytest.mark.parametrize("name", LINK_NAMES)
def test_links_can_not_be_listed(pve: Pve, name: str) -> None:
    assert errno_of(pve.ops.readdir, f"/{name}", 0) == errno.EACCES


def test_readlink(pve: Pve) -> None:
    assert pve.ops.readlink("/local") == "nodes/node1"
    assert pve.ops.readlink("/qemu-server") == "nodes/node1/qemu-server"
    assert pve.ops.readlink("/lxc") == "nodes/node1/lxc"
    assert pve.ops.readlink("/openvz") == "nodes/node1/openvz"
    pve.create("/f")
    pve.mkdir("/d")
    for path in ("/", "/f", "/d", "/missing"):
        assert errno_of(pve.ops.readlink, path) == errno.EACCES


# ----- open and create ---------------------------------------------------------------


@pytest.mark.parametrize("path", [f"/{n}" for n in STATUS_NAMES])
def test_status_files_open_with_direct_io(pve: Pve, path: str) -> None:
    fi = FileInfo()
    assert pve.ops.open(path, fi) == 0
    assert (fi.direct_io, fi.keep_cache) == (1, 0)


@pytest.mark.parametrize("flags", [os.O_RDONLY, os.O_WRONLY, os.O_RDWR])
def test_tree_files_open_with_direct_io(pve: Pve, flags: int) -> None:
    pve.create("/f")
    for _ in range(2):  # also when opened again unchanged: no page cache (issue 13)
        fi = FileInfo()
        fi.flags = flags
        assert pve.ops.open("/f", fi) == 0
        assert (fi.direct_io, fi.keep_cache) == (1, 0)


def test_create_sets_direct_io(pve: Pve) -> None:
    fi = FileInfo()
    assert pve.ops.create("/f", 0o644, fi) == 0
    assert fi.direct_io == 1
    pve.ops.getattr("/f")


def test_create_ignores_the_mode(pve: Pve) -> None:
    pve.ops.create("/f", 0o777, FileInfo())
    assert pve.ops.getattr("/f")["st_mode"] & 0o7777 == 0o640
    pve.ops.mkdir("/d", 0o700)
    assert pve.ops.getattr("/d")["st_mode"] & 0o7777 == 0o755


def test_open_of_a_missing_memdb_file_is_enoent(pve: Pve) -> None:
    assert errno_of(pve.ops.open, "/missing", FileInfo()) == errno.ENOENT


def test_open_ignores_flags_and_quorum(pve: Pve) -> None:
    pve.create("/f")
    pve.set_quorate(False)
    fi = FileInfo()
    assert pve.ops.open("/f", fi) == 0
    assert (fi.direct_io, fi.keep_cache) == (1, 0)


def _stored(pve: Pve, name: str) -> bytes | None:
    """The data column of the row named ``name`` in config.db (None if there is no such row)."""
    con = sqlite3.connect(pve.db_path)
    try:
        row = con.execute("SELECT data FROM tree WHERE name = ?", (name,)).fetchone()
    finally:
        con.close()
    return None if row is None else (row[0] or b"")


def test_a_written_file_is_committed_when_its_handle_is_flushed(pve: Pve) -> None:
    created = FileInfo(os.O_WRONLY | os.O_CREAT)
    pve.ops.create("/w.cfg", 0o644, created)
    assert pve.ops.write("/w.cfg", b"one", 0, created) == 3
    assert pve.ops.write("/w.cfg", b"two", 3, created) == 3
    assert _stored(pve, "w.cfg") is None  # not one commit per chunk
    reader = FileInfo(os.O_RDONLY)
    assert pve.ops.open("/w.cfg", reader) == 0
    assert pve.ops.flush("/w.cfg", reader) == 0  # a reader's close commits nothing
    assert _stored(pve, "w.cfg") is None
    assert pve.ops.flush("/w.cfg", created) == 0
    assert _stored(pve, "w.cfg") == b"onetwo"

    writer = FileInfo(os.O_RDWR)
    assert pve.ops.open("/w.cfg", writer) == 0
    assert pve.ops.write("/w.cfg", b"TWO", 3, writer) == 3
    assert pve.ops.fsync("/w.cfg", 0, writer) == 0
    assert _stored(pve, "w.cfg") == b"oneTWO"


# ----- reads, writes, truncates --------------------------------------------------------


def test_read_and_write(pve: Pve) -> None:
    fi = FileInfo()
    pve.create("/f")
    assert pve.ops.write("/f", b"hello world", 0, fi) == 11
    assert pve.ops.write("/f", b"W", 6, fi) == 1
    assert pve.ops.read("/f", 100, 0, fi) == b"hello World"
    assert pve.ops.read("/f", 3, 2, fi) == b"llo"
    assert pve.ops.read("/f", 10, 11, fi) == b""
    assert pve.ops.read("/f", 10, 100, fi) == b""
    assert pve.ops.truncate("/f", 5) == 0
    assert pve.ops.read("/f", 100, 0, fi) == b"hello"
    assert pve.ops.truncate("/f", 7, fi) == 0
    assert pve.ops.read("/f", 100, 0, fi) == b"hello\0\0"
    assert pve.ops.getattr("/f")["st_size"] == 7


def test_memdb_errors_map_to_errno(pve: Pve) -> None:
    fi = FileInfo()
    pve.mkdir("/d")
    pve.create("/d/x")
    pve.create("/f")
    assert errno_of(pve.ops.read, "/d", 10, 0, fi) == errno.ENOENT
    assert errno_of(pve.ops.read, "/missing", 10, 0, fi) == errno.ENOENT
    assert errno_of(pve.ops.write, "/missing", b"x", 0, fi) == errno.ENOENT
    assert errno_of(pve.ops.write, "/d", b"x", 0, fi) == errno.ENOTDIR
    assert errno_of(pve.ops.write, "/f", b"x", 1 << 20, fi) == errno.EFBIG
    assert errno_of(pve.ops.truncate, "/f", (1 << 20) + 1) == errno.EFBIG
    assert errno_of(pve.ops.create, "/f", 0o644, fi) == errno.EEXIST
    assert errno_of(pve.ops.create, "/d", 0o644, fi) == errno.ENOTDIR
    assert errno_of(pve.ops.create, "/nodir/f", 0o644, fi) == errno.ENOENT
    assert errno_of(pve.ops.create, "/f/x", 0o644, fi) == errno.ENOTDIR
    assert errno_of(pve.ops.mkdir, "/d", 0o755) == errno.EEXIST
    assert errno_of(pve.ops.mkdir, "/f/x", 0o755) == errno.ENOTDIR
    assert errno_of(pve.ops.rmdir, "/d") == errno.ENOTEMPTY
    assert errno_of(pve.ops.unlink, "/missing") == errno.ENOENT
    assert errno_of(pve.ops.rename, "/missing", "/x") == errno.ENOENT
    assert errno_of(pve.ops.rename, "/f", "/nodir/x") == errno.ENOENT
    assert errno_of(pve.ops.utimens, "/missing", (NS, NS)) == errno.ENOENT
    pve.mkdir("/e")
    pve.create("/e/y")
    assert errno_of(pve.ops.rename, "/f", "/e") == errno.ENOTEMPTY


def test_vmid_conflict_is_eexist(pve: Pve) -> None:
    for d in ("/nodes", "/nodes/node1", "/nodes/node1/qemu-server", "/nodes/node2", "/nodes/node2/lxc"):
        pve.mkdir(d)
    pve.create("/nodes/node1/qemu-server/100.conf")
    assert errno_of(pve.ops.create, "/nodes/node2/lxc/100.conf", 0o644, FileInfo()) == errno.EEXIST
    pve.create("/nodes/node2/lxc/100.conf.tmp")
    assert (
        errno_of(pve.ops.rename, "/nodes/node2/lxc/100.conf.tmp", "/nodes/node2/lxc/100.conf") == errno.EEXIST
    )


def test_locks(pve: Pve) -> None:
    for d in ("/priv", "/priv/lock", "/priv/lock/l"):
        pve.mkdir(d)
    assert errno_of(pve.ops.mkdir, "/priv/lock/l", 0o755) == errno.EEXIST
    # a fresh lock: the unlock request is a plain mtime 0, below the current mtime
    assert errno_of(pve.ops.utimens, "/priv/lock/l", (0, 0)) == errno.EACCES
    assert errno_of(pve.ops.rename, "/priv/lock/l", "/priv/lock/m") == errno.EACCES
    assert pve.ops.rmdir("/priv/lock/l") == 0


def test_utimens_uses_the_mtime_seconds_only(pve: Pve) -> None:
    pve.create("/f")
    assert pve.ops.utimens("/f", (5 * NS, 1700000000 * NS + 999_999_999)) == 0
    st = pve.ops.getattr("/f")
    assert st["st_mtime"] == st["st_atime"] == 1700000000 * NS
    before = int(time.time())
    assert pve.ops.utimens("/f", None) == 0
    mtime = pve.ops.getattr("/f")["st_mtime"] // NS
    assert before <= mtime <= int(time.time())


def test_rename_moves_within_the_tree(pve: Pve) -> None:
    pve.mkdir("/d")
    pve.write_file("/f", b"data")
    inode = pve.ask(Lookup(path="f")).attr.inode
    assert pve.ops.rename("/f", "/d/g") == 0
    assert pve.ask(Lookup(path="d/g")).attr.inode == inode
    assert pve.ask(ReadFile(path="d/g", size=10, offset=0)) == b"data"
    assert errno_of(pve.ops.getattr, "/f") == errno.ENOENT
    assert pve.ops.unlink("/d/g") == 0
    assert pve.ops.rmdir("/d") == 0


# ----- chmod and chown change nothing --------------------------------------------------


@pytest.mark.parametrize(
    ("path", "mode", "ok"),
    [
        ("/f", 0o640, True),
        ("/f", 0o100640, True),  # the type bits are ignored
        ("/d", 0o040640, True),  # dirs too: 0640, not 0755
        ("/d", 0o755, False),
        ("/f", 0o600, False),
        ("/f", 0o644, False),
        ("/f", 0o4640, False),
        ("/f", 0o1640, False),
        ("/priv", 0o600, True),
        ("/priv/x", 0o600, True),
        ("/nodes/n1/priv/key", 0o600, True),
        ("/priv", 0o640, False),
        ("/priv", 0o700, False),
        ("/missing", 0o640, True),  # no existence check
        ("/.version", 0o640, True),
        ("/local", 0o640, True),
        ("/", 0o640, True),
    ],
)
def test_chmod(pve: Pve, path: str, mode: int, ok: bool) -> None:
    pve.create("/f")
    pve.mkdir("/d")
    before = pve.ops.getattr("/f")
    if ok:
        assert pve.ops.chmod(path, mode) == 0
    else:
        assert errno_of(pve.ops.chmod, path, mode) == errno.EPERM
    assert pve.ops.getattr("/f") == before


@pytest.mark.parametrize(
    ("uid", "gid", "ok"),
    [
        (0, WWW_GID, True),
        (-1, -1, True),
        (0, -1, True),
        (-1, WWW_GID, True),
        (1, WWW_GID, False),
        (1000, -1, False),
        (0, WWW_GID + 1, False),
        (-1, 0 if WWW_GID else 1, False),
    ],
)
def test_chown(pve: Pve, uid: int, gid: int, ok: bool) -> None:
    pve.create("/f")
    before = pve.ops.getattr("/f")
    if ok:
        assert pve.ops.chown("/f", uid, gid) == 0
    else:
        assert errno_of(pve.ops.chown, "/f", uid, gid) == errno.EPERM
    assert pve.ops.getattr("/f") == before


def test_chmod_and_chown_work_without_quorum(pve: Pve) -> None:
    pve.create("/f")
    pve.set_quorate(False)
    assert pve.ops.chmod("/f", 0o640) == 0
    assert pve.ops.chown("/f", 0, WWW_GID) == 0


# ----- status files ---------------------------------------------------------------------


def _read_status(pve: Pve, name: str) -> bytes:
    pve.ops.getattr(name)  # getattr refreshes the snapshot, as the kernel's lookup does
    fi = FileInfo()
    pve.ops.open(name, fi)
    return pve.ops.read(name, 1 << 20, 0, fi)


def test_debug_write_semantics(pve: Pve) -> None:
    fi = FileInfo()
    assert _read_status(pve, "/.debug") == b"0\n"
    assert pve.ops.truncate("/.debug", 0) == 0  # what makes `echo 1 > .debug` work
    assert pve.ops.write("/.debug", b"1\n", 0, fi) == 2
    assert _read_status(pve, "/.debug") == b"1\n"
    assert pve.ops.write("/.debug", b"0\nignored", 0, fi) == 2
    assert _read_status(pve, "/.debug") == b"0\n"
    for data, offset in ((b"1", 0), (b"2\n", 0), (b"yes\n", 0), (b"1\n", 1), (b"", 0)):
        assert errno_of(pve.ops.write, "/.debug", data, offset, fi) == errno.EIO
    assert _read_status(pve, "/.debug") == b"0\n"


def test_debug_works_without_quorum(pve: Pve) -> None:
    pve.set_quorate(False)
    assert pve.ops.write("/.debug", b"1\n", 0, FileInfo()) == 2
    assert _read_status(pve, "/.debug") == b"1\n"
    assert pve.ops.write("/.debug", b"0\n", 0, FileInfo()) == 2


@pytest.mark.parametrize("name", [n for n in STATUS_NAMES if n != ".debug"])
def test_other_status_files_answer_eio_to_writes_and_truncates(pve: Pve, name: str) -> None:
    fi = FileInfo()
    before = _read_status(pve, f"/{name}")
    assert errno_of(pve.ops.write, f"/{name}", b"1\n", 0, fi) == errno.EIO
    assert errno_of(pve.ops.write, f"/{name}", b"x", 5, fi) == errno.EIO
    assert errno_of(pve.ops.truncate, f"/{name}", 0) == errno.EIO
    assert _read_status(pve, f"/{name}") == before


def test_a_status_file_open_reads_one_version(pve: Pve) -> None:
    # fixed at open (the original: at the last getattr), so chunked reads never tear; the
    # next open sees the change, without asking anyone
    fi = FileInfo()
    pve.ops.open("/.version", fi)
    first = pve.ops.read("/.version", 1 << 20, 0, fi)
    pve.write_file("/storage.cfg", b"x")
    assert pve.ops.read("/.version", 100, 0, fi) + pve.ops.read("/.version", 1 << 20, 100, fi) == first
    assert pve.ops.flush("/.version", fi) == 0  # its close
    again = FileInfo()
    pve.ops.open("/.version", again)
    now = json.loads(pve.ops.read("/.version", 1 << 20, 0, again))
    before = json.loads(first)
    assert now["storage.cfg"] == before["storage.cfg"] + 2  # its create and its write
    assert {k: v for k, v in now.items() if k != "storage.cfg"} == {
        k: v for k, v in before.items() if k != "storage.cfg"
    }


def test_status_texts(pve: Pve) -> None:
    assert _read_status(pve, "/.members") == b'{\n"nodename": "node1",\n"version": 0\n}\n'
    assert _read_status(pve, "/.vmlist") == b'{\n"version": 0\n\n}\n'
    assert _read_status(pve, "/.rrd") == b""
    assert b'"msg": "starting cluster log"' in _read_status(pve, "/.clusterlog")
    assert _read_status(pve, "/.version").startswith(b'{\n"starttime": ')


# ----- without quorum ----------------------------------------------------------------


def test_not_quorate_refuses_every_change_with_eacces(pve: Pve) -> None:
    fi = FileInfo()
    pve.mkdir("/d")
    pve.write_file("/f", b"data")
    pve.set_quorate(False)
    assert errno_of(pve.ops.mkdir, "/e", 0o755) == errno.EACCES
    assert errno_of(pve.ops.rmdir, "/d") == errno.EACCES
    assert errno_of(pve.ops.unlink, "/f") == errno.EACCES
    assert errno_of(pve.ops.create, "/g", 0o644, fi) == errno.EACCES
    assert errno_of(pve.ops.write, "/f", b"x", 0, fi) == errno.EACCES
    assert errno_of(pve.ops.truncate, "/f", 0) == errno.EACCES
    assert errno_of(pve.ops.utimens, "/f", (NS, NS)) == errno.EACCES
    assert errno_of(pve.ops.rename, "/f", "/h") == errno.EACCES
    # reads are not affected
    assert pve.ops.read("/f", 10, 0, fi) == b"data"
    assert set(pve.ops.readdir("/", 0)) >= {"d", "f"}
    assert pve.ops.statfs("/")["f_files"] == 262144
    assert pve.ops.readlink("/local") == "nodes/node1"
    pve.set_quorate(True)
    assert pve.ops.mkdir("/e", 0o755) == 0
    pve.ops.getattr("/e")


@pytest.mark.allow_error_logs
def test_a_latched_store_answers_eio(pve: Pve) -> None:
    fi = FileInfo()
    pve.write_file("/f", b"data")
    con = sqlite3.connect(pve.db_path)
    con.execute("DROP TABLE tree")
    con.commit()
    con.close()
    assert errno_of(pve.ops.mkdir, "/d", 0o755) == errno.EIO
    assert errno_of(pve.ops.write, "/f", b"x", 0, fi) == errno.EIO
    assert errno_of(pve.ops.create, "/f", 0o644, fi) == errno.EIO  # the latch comes first
    assert errno_of(pve.ops.unlink, "/missing") == errno.EIO
    assert pve.ops.read("/f", 10, 0, fi) == b"data"
    assert pve.ops.getattr("/d")["st_mode"] & 0o777 == 0o755
