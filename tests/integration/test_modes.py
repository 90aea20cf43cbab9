"""Ownership, modes and other attributes (reference 3.2), and what other users may do
through the kernel's default_permissions."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from lab.daemon import Daemon
from tests.integration.helpers import (
    LINK_NAMES,
    NOBODY,
    STATUS_NAMES,
    WWW_DATA,
    run_as,
    stat_sync,
)

pytestmark = pytest.mark.fuse


def perm(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def make(daemon: Daemon, rel: str, *, is_dir: bool = False, data: bytes = b"data") -> Path:
    path = daemon.path(rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        path.mkdir()
    else:
        path.write_bytes(data)
    return path


def test_root_attributes(pve: Daemon) -> None:
    st = os.stat(pve.mount)
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o755
    assert (st.st_uid, st.st_gid) == (0, WWW_DATA)
    assert st.st_nlink == 2
    assert st.st_mtime == st.st_atime == st.st_ctime == 0


def test_every_entry_is_root_www_data(pve: Daemon) -> None:
    make(pve, "f")
    make(pve, "d", is_dir=True)
    make(pve, "priv/secret")
    for name in ("f", "d", "priv", "priv/secret", *STATUS_NAMES, *LINK_NAMES):
        st = os.lstat(pve.path(name))
        assert (st.st_uid, st.st_gid) == (0, WWW_DATA), name


MODE_CASES = [
    ("dir", True, 0o755),
    ("dir/sub", True, 0o755),
    ("file", False, 0o640),
    ("dir/file", False, 0o640),
    ("priv", True, 0o700),
    ("priv/file", False, 0o600),
    ("priv/sub", True, 0o700),
    ("priv/sub/file", False, 0o600),
    ("nodes/node1/priv", True, 0o700),
    ("nodes/node1/priv/file", False, 0o600),
    ("nodes/other/priv/deep/file", False, 0o600),
    ("nodes/node1/qemu-server", True, 0o755),
    ("nodes/node1/x/priv", True, 0o755),  # only nodes/<one component>/priv is private
    ("a/priv", True, 0o755),
    ("private", True, 0o755),
    ("privfile", False, 0o640),
    # OpenVZ action scripts: 0666 | 0100 (owner execute), then & 0750 -> 0740
    ("vps.mount", False, 0o740),
    ("101.start", False, 0o740),
    ("nodes/node1/openvz/101.premount", False, 0o740),
    ("dir/999.postumount", False, 0o740),
    ("vps.umount", False, 0o740),
    ("102.stop", False, 0o740),
    ("priv/101.stop", False, 0o700),
    ("0101.start", False, 0o640),
    ("101.startx", False, 0o640),
    ("abc.mount", False, 0o640),
    ("vps.mount.bak", False, 0o640),
]


def test_modes_of_tree_entries(pve: Daemon) -> None:
    for rel, is_dir, _ in MODE_CASES:
        if not pve.path(rel).exists():
            make(pve, rel, is_dir=is_dir)
    for rel, is_dir, mode in MODE_CASES:
        st = os.lstat(pve.path(rel))
        assert (stat.S_ISDIR(st.st_mode), stat.S_ISREG(st.st_mode)) == (is_dir, not is_dir), rel
        assert (rel, oct(stat.S_IMODE(st.st_mode))) == (rel, oct(mode))


def test_file_and_directory_attributes(pve: Daemon) -> None:
    small = make(pve, "small", data=b"x" * 100)
    big = make(pve, "big", data=b"x" * 5000)
    empty = make(pve, "empty", data=b"")
    folder = make(pve, "folder", is_dir=True)
    os.utime(small, (1_600_000_000, 1_600_000_000))
    st = os.stat(small)
    assert (st.st_size, st.st_nlink) == (100, 1)
    assert st.st_atime == st.st_mtime == st.st_ctime == 1_600_000_000
    # st_blocks counts 4 KiB units, as the original (quirk 14)
    assert os.stat(small).st_blocks == 1
    assert os.stat(big).st_blocks == 2
    assert os.stat(empty).st_blocks == 0
    st = os.stat(folder)
    assert (st.st_size, st.st_nlink) == (0, 2)


def test_status_file_attributes(pve: Daemon) -> None:
    for name in STATUS_NAMES:
        stat_sync(pve.path(name))
        st = os.lstat(pve.path(name))
        assert stat.S_ISREG(st.st_mode), name
        assert stat.S_IMODE(st.st_mode) == (0o640 if name == ".debug" else 0o440), name
        assert st.st_nlink == 1, name
        assert st.st_mtime == st.st_atime == st.st_ctime == 0, name
        assert st.st_size == len(pve.path(name).read_bytes()), name


def test_symlink_attributes(pve: Daemon) -> None:
    for name in LINK_NAMES:
        st = os.lstat(pve.path(name))
        assert stat.S_ISLNK(st.st_mode), name
        assert stat.S_IMODE(st.st_mode) == 0o755, name
        assert st.st_size == len(os.readlink(pve.path(name))), name
        assert st.st_mtime == 0, name


def test_the_links_lead_into_the_node_directory(pve: Daemon) -> None:
    make(pve, "nodes/node1/qemu-server/100.conf", data=b"memory: 512\n")
    make(pve, "nodes/node1/lxc", is_dir=True)
    assert pve.path("qemu-server/100.conf").read_bytes() == b"memory: 512\n"
    assert sorted(os.listdir(pve.path("local"))) == ["lxc", "qemu-server"]
    assert os.listdir(pve.path("lxc")) == []
    assert not pve.path("openvz").exists()  # dangles until nodes/node1/openvz exists


# ----- other users -----------------------------------------------------------------------


def test_www_data_reads_but_never_writes(public_pve: Daemon) -> None:
    pve = public_pve
    make(pve, "user.cfg", data=b"user:root@pam:1:0:::\n")
    make(pve, "nodes/node1/qemu-server/100.conf", data=b"memory: 512\n")
    make(pve, "priv/shadow.cfg", data=b"secret\n")
    make(pve, "nodes/node1/priv/key", data=b"secret\n")
    p = pve.path
    results = run_as(
        WWW_DATA,
        WWW_DATA,
        [
            ("read", p("user.cfg")),
            ("read", p("qemu-server/100.conf")),
            ("listdir", p("nodes/node1")),
            ("read", p(".version")),
            ("read", p(".debug")),
            ("readlink", p("local")),
            ("write", p("user.cfg")),
            ("write", p(".debug")),
            ("create", p("new.cfg")),
            ("mkdir", p("newdir")),
            ("read", p("priv/shadow.cfg")),
            ("listdir", p("priv")),
            ("read", p("nodes/node1/priv/key")),
            ("listdir", p("nodes/node1/priv")),
        ],
    )
    assert results[0] == ("ok", "user:root@pam:1:0:::\n")
    assert results[1] == ("ok", "memory: 512\n")
    assert results[2] == ("ok", ["priv", "qemu-server"])
    assert results[3][0] == "ok"
    assert results[4] == ("ok", "0\n")
    assert results[5] == ("ok", "nodes/node1")
    assert results[6:] == [("errno", errno.EACCES)] * 8
    assert p("user.cfg").read_bytes() == b"user:root@pam:1:0:::\n"
    assert not p("new.cfg").exists()
    assert not p("newdir").exists()


def test_others_list_public_dirs_but_read_no_file(public_pve: Daemon) -> None:
    pve = public_pve
    make(pve, "user.cfg")
    make(pve, "nodes/node1/qemu-server/100.conf")
    make(pve, "priv/shadow.cfg")
    p = pve.path
    results = run_as(
        NOBODY,
        NOBODY,
        [
            ("listdir", pve.mount),
            ("listdir", p("nodes/node1/qemu-server")),
            ("stat", p("user.cfg")),
            ("read", p("user.cfg")),
            ("read", p("qemu-server/100.conf")),
            ("read", p(".version")),
            ("read", p(".vmlist")),
            ("read", p(".debug")),
            ("listdir", p("priv")),
            ("read", p("priv/shadow.cfg")),
            ("write", p("user.cfg")),
        ],
    )
    assert results[0][0] == "ok"
    assert {"nodes", "priv", "user.cfg", *STATUS_NAMES, *LINK_NAMES} <= set(results[0][1])
    assert results[1] == ("ok", ["100.conf"])
    assert results[2] == ("ok", stat.S_IFREG | 0o640)
    assert results[3:] == [("errno", errno.EACCES)] * 8
