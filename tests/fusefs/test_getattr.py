"""getattr: ownership, the mode table by quorum and privacy, and the other attributes (3.2)."""

from __future__ import annotations

import errno
import re
import stat
from collections.abc import Callable

import pytest

from actors.messages import Lookup, SetMtime
from tests.expected import LINK_NAMES, STATUS_NAMES
from tests.fusefs.pve import WWW_GID, FileInfo, Pve, errno_of
from tests.vectors import VECTORS

NS = 1_000_000_000


def build_tree(pve: Pve) -> None:
    for d in (
        "/d",
        "/priv",
        "/priv/sub",
        "/nodes",
        "/nodes/node1",
        "/nodes/node1/priv",
        "/nodes/node1/qemu-server",
        "/nodes/node1/openvz",
        "/nodes/node1/privx",
    ):
        pve.mkdir(d)
    for f in (
        "/f",
        "/d/g",
        "/priv/p",
        "/nodes/node1/priv/k",
        "/nodes/node1/privx/k",
        "/nodes/node1/qemu-server/100.conf",
        "/nodes/node1/openvz/101.mount",
        "/nodes/node1/openvz/vps.start",
        "/nodes/node1/openvz/101.conf",
        "/priv/vps.premount",
        "/d/1.postumount",
        "/d/0.mount",
        "/d/vps.mount.x",
        "/privy",
    ):
        pve.create(f)


# (path, quorate mode, not-quorate mode), type bits included
MODE_TABLE = [
    ("/", stat.S_IFDIR | 0o755, stat.S_IFDIR | 0o755),
    ("/d", stat.S_IFDIR | 0o755, stat.S_IFDIR | 0o555),
    ("/nodes/node1", stat.S_IFDIR | 0o755, stat.S_IFDIR | 0o555),
    ("/f", stat.S_IFREG | 0o640, stat.S_IFREG | 0o440),
    ("/d/g", stat.S_IFREG | 0o640, stat.S_IFREG | 0o440),
    ("/nodes/node1/qemu-server/100.conf", stat.S_IFREG | 0o640, stat.S_IFREG | 0o440),
    ("/privy", stat.S_IFREG | 0o640, stat.S_IFREG | 0o440),
    ("/nodes/node1/privx", stat.S_IFDIR | 0o755, stat.S_IFDIR | 0o555),
    ("/nodes/node1/privx/k", stat.S_IFREG | 0o640, stat.S_IFREG | 0o440),
    # private paths: owner bits only
    ("/priv", stat.S_IFDIR | 0o700, stat.S_IFDIR | 0o500),
    ("/priv/sub", stat.S_IFDIR | 0o700, stat.S_IFDIR | 0o500),
    ("/priv/p", stat.S_IFREG | 0o600, stat.S_IFREG | 0o400),
    ("/nodes/node1/priv", stat.S_IFDIR | 0o700, stat.S_IFDIR | 0o500),
    ("/nodes/node1/priv/k", stat.S_IFREG | 0o600, stat.S_IFREG | 0o400),
    # OpenVZ action scripts get the owner execute bit
    ("/nodes/node1/openvz/101.mount", stat.S_IFREG | 0o740, stat.S_IFREG | 0o540),
    ("/nodes/node1/openvz/vps.start", stat.S_IFREG | 0o740, stat.S_IFREG | 0o540),
    ("/d/1.postumount", stat.S_IFREG | 0o740, stat.S_IFREG | 0o540),
    ("/priv/vps.premount", stat.S_IFREG | 0o700, stat.S_IFREG | 0o500),
    ("/nodes/node1/openvz/101.conf", stat.S_IFREG | 0o640, stat.S_IFREG | 0o440),
    ("/d/0.mount", stat.S_IFREG | 0o640, stat.S_IFREG | 0o440),
    ("/d/vps.mount.x", stat.S_IFREG | 0o640, stat.S_IFREG | 0o440),
    # symlinks
    *[(f"/{n}", stat.S_IFLNK | 0o755, stat.S_IFLNK | 0o555) for n in LINK_NAMES],
    # status files don't depend on quorum
    *[(f"/{n}", stat.S_IFREG | 0o440, stat.S_IFREG | 0o440) for n in STATUS_NAMES if n != ".debug"],
    ("/.debug", stat.S_IFREG | 0o640, stat.S_IFREG | 0o640),
]


@pytest.mark.parametrize(("path", "quorate_mode", "readonly_mode"), MODE_TABLE)
def test_mode_table(pve: Pve, path: str, quorate_mode: int, readonly_mode: int) -> None:
    build_tree(pve)
    st = pve.ops.getattr(path)
    assert oct(st["st_mode"]) == oct(quorate_mode)
    assert (st["st_uid"], st["st_gid"]) == (0, WWW_GID)
    pve.set_quorate(False)
    st = pve.ops.getattr(path)
    assert oct(st["st_mode"]) == oct(readonly_mode)
    assert (st["st_uid"], st["st_gid"]) == (0, WWW_GID)
    pve.set_quorate(True)
    assert oct(pve.ops.getattr(path)["st_mode"]) == oct(quorate_mode)


def test_perl_reads_quorum_from_the_local_link(pve: Pve) -> None:
    assert pve.ops.getattr("/local")["st_mode"] & 0o200
    pve.set_quorate(False)
    assert not pve.ops.getattr("/local")["st_mode"] & 0o200


def test_file_attributes(pve: Pve) -> None:
    pve.write_file("/f", b"x" * 5000)
    pve.ask(SetMtime(path="f", mtime=1700000000))
    st = pve.ops.getattr("/f")
    assert st["st_size"] == 5000
    assert st["st_blocks"] == 2  # 4 KiB units, as the original
    assert st["st_nlink"] == 1
    assert st["st_mtime"] == st["st_atime"] == st["st_ctime"] == 1700000000 * NS


@pytest.mark.parametrize(("size", "blocks"), [(0, 0), (1, 1), (4096, 1), (4097, 2), (1 << 20, 256)])
def test_blocks_are_counted_in_4k_units(pve: Pve, size: int, blocks: int) -> None:
    pve.create("/f")
    pve.ops.truncate("/f", size)
    assert pve.ops.getattr("/f")["st_blocks"] == blocks


def test_dir_attributes(pve: Pve) -> None:
    pve.mkdir("/d")
    pve.create("/d/x")
    st = pve.ops.getattr("/d")
    attr = pve.ask(Lookup(path="d")).attr
    assert (st["st_nlink"], st["st_size"], st["st_blocks"]) == (2, 0, 0)
    assert st["st_mtime"] == attr.mtime * NS


def test_root_attributes(pve: Pve) -> None:
    st = pve.ops.getattr("/")
    assert (st["st_nlink"], st["st_size"], st["st_mtime"], st["st_atime"], st["st_ctime"]) == (2, 0, 0, 0, 0)
    assert (st["st_uid"], st["st_gid"]) == (0, WWW_GID)


@pytest.mark.parametrize("name", LINK_NAMES)
def test_link_attributes(pve: Pve, name: str) -> None:
    st = pve.ops.getattr(f"/{name}")
    target = pve.ops.readlink(f"/{name}")
    assert st["st_size"] == len(target)
    assert (st["st_nlink"], st["st_mtime"]) == (1, 0)


@pytest.mark.parametrize("name", STATUS_NAMES)
def test_status_file_size_is_the_snapshot_length(pve: Pve, name: str) -> None:
    st = pve.ops.getattr(f"/{name}")
    fi = FileInfo()
    pve.ops.open(f"/{name}", fi)
    data = pve.ops.read(f"/{name}", 1 << 20, 0, fi)
    assert st["st_size"] == len(data)
    assert (st["st_nlink"], st["st_mtime"], st["st_atime"], st["st_ctime"]) == (1, 0, 0, 0)


def test_getattr_errors(pve: Pve) -> None:
    assert errno_of(pve.ops.getattr, "/missing") == errno.ENOENT
    pve.create("/f")
    assert errno_of(pve.ops.getattr, "/f/x") == errno.ENOENT
    for path in ("/local/x", "/.version/x", "/qemu-server/100.conf"):
        assert errno_of(pve.ops.getattr, path) == errno.EACCES
    # plugin names are special only at the root
    pve.mkdir("/nodes")
    assert errno_of(pve.ops.getattr, "/nodes/.version") == errno.ENOENT


# ----- the C daemon's own `ls -laR /etc/pve` of the vector DB ---------------------

_LS_LINE = re.compile(
    r"(?P<mode>[-dl][-rwxsStT]{9}) +(?P<nlink>\d+) +(?P<user>\S+) +(?P<group>\S+) +(?P<size>\d+) +"
    r"(?P<mtime>\d+) (?P<name>.+?)(?: -> (?P<target>.+))?"
)


def _listing() -> dict[str, list[dict[str, str]]]:
    sections: dict[str, list[dict[str, str]]] = {}
    current: list[dict[str, str]] = []
    for line in (VECTORS / "node1-etc-pve-ls-laR-epoch.txt").read_text().splitlines():
        if line.endswith(":") and line.startswith("/etc/pve"):
            current = sections.setdefault(line[:-1].removeprefix("/etc/pve") or "/", [])
        elif (m := _LS_LINE.fullmatch(line)) is not None:
            current.append(m.groupdict())
    return sections


def _child(folder: str, name: str) -> str:
    if name == ".":
        return folder
    if name == "..":
        return folder.rpartition("/")[0] or "/"
    return f"{folder.rstrip('/')}/{name}"


def test_getattr_matches_the_c_listing_of_the_vector(start_pve: Callable[..., Pve]) -> None:
    pve = start_pve(vector=True, local=True)
    sections = _listing()
    assert len(sections) == 16
    checked = 0
    for folder, lines in sections.items():
        for line in lines:
            if folder == "/" and line["name"] == "..":
                continue  # the mount point's parent, not ours
            path = _child(folder, line["name"])
            st = pve.ops.getattr(path)
            what = f"{path}: {line}"
            assert stat.filemode(st["st_mode"]) == line["mode"], what
            assert st["st_nlink"] == int(line["nlink"]), what
            assert (line["user"], st["st_uid"]) == ("root", 0), what
            assert (line["group"], st["st_gid"]) == ("www-data", WWW_GID), what
            assert st["st_mtime"] == int(line["mtime"]) * NS, what
            if path.lstrip("/") not in STATUS_NAMES:  # status sizes depend on that daemon's state
                assert st["st_size"] == int(line["size"]), what
            if line["target"] is not None:
                assert pve.ops.readlink(path) == line["target"]
            checked += 1
        if folder != "/":
            names = {ln["name"] for ln in lines} - {".", ".."}
            assert set(pve.ops.readdir(folder, 0)) - {".", ".."} == names, folder
            # `total` is in KiB of st_blocks (512-byte units for ls); here every entry is ours
            total = sum(pve.ops.getattr(_child(folder, ln["name"]))["st_blocks"] for ln in lines)
            header = next(
                t
                for t in (VECTORS / "node1-etc-pve-ls-laR-epoch.txt").read_text().split("\n\n")
                if t.startswith(f"/etc/pve{folder}:\n")
            )
            assert header.splitlines()[1] == f"total {(total * 512 + 1023) // 1024}", folder
    assert checked > 60
    root_names = {ln["name"] for ln in sections["/"]} - {".", ".."}
    assert set(pve.ops.readdir("/", 0)) - {".", ".."} == root_names
