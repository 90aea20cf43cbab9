""".health (ours) answers as the original's status files do, unless the tree's root holds an
entry of that name (a tree written by the C pmxcfs): then that entry is served."""

from __future__ import annotations

import errno
import json
import logging
import stat

import pytest

from actors.messages import CreateFile, Lookup, WriteFile
from tests.fusefs.pve import FileInfo, Pve, errno_of

NS = 1_000_000_000
WARNING = "the tree holds /.health"


def _read(pve: Pve, path: str) -> bytes:
    pve.ops.getattr(path)
    fi = FileInfo()
    pve.ops.open(path, fi)
    return pve.ops.read(path, 1 << 20, 0, fi)


@pytest.mark.parametrize("name", ["/.health", "/.version"])
def test_the_status_name_refuses_what_the_others_refuse(pve: Pve, name: str) -> None:
    ops = pve.ops
    pve.create("/f")
    assert errno_of(ops.create, name, 0o644, FileInfo()) == errno.EACCES
    assert errno_of(ops.mkdir, name, 0o755) == errno.EACCES
    assert errno_of(ops.unlink, name) == errno.EACCES
    assert errno_of(ops.rmdir, name) == errno.EACCES
    assert errno_of(ops.rename, name, "/g") == errno.EACCES
    assert errno_of(ops.rename, "/f", name) == errno.EACCES
    assert errno_of(ops.utimens, name, (NS, NS)) == errno.EACCES
    assert errno_of(ops.truncate, name, 0) == errno.EIO
    assert errno_of(ops.write, name, b"1\n", 0, FileInfo()) == errno.EIO
    assert errno_of(ops.readdir, name, 0) == errno.EACCES
    assert stat.S_IMODE(ops.getattr(name)["st_mode"]) == 0o440
    assert pve.ask(Lookup(path=name.lstrip("/"))).attr is None


def test_a_tree_entry_named_health_is_served_as_a_file(pve: Pve, caplog: pytest.LogCaptureFixture) -> None:
    assert json.loads(_read(pve, "/.health"))["mode"] == "local"
    assert ".health" not in pve.ops.readdir("/", 0)
    # as a C pmxcfs wrote it (the fs actor takes the name; only the FUSE layer refuses it)
    pve.ask(CreateFile(path=".health"))
    pve.ask(WriteFile(path=".health", data=b"from the C tree\n", offset=0))
    with caplog.at_level(logging.WARNING, logger="fusefs.operations"):
        pve.ops.init("/")
        assert _read(pve, "/.health") == b"from the C tree\n"
    assert [r.getMessage() for r in caplog.records].count(
        "the tree holds /.health: it is served as a file of the tree, and the health report "
        "by `python -m tools health` only"
    ) == 1
    attrs = pve.ops.getattr("/.health")
    assert (stat.S_IMODE(attrs["st_mode"]), attrs["st_size"]) == (0o640, 16)
    assert ".health" in pve.ops.readdir("/", 0)
    assert pve.ops.write("/.health", b"FROM", 0, FileInfo()) == 4
    pve.ops.truncate("/.health", 9)
    assert _read(pve, "/.health") == b"FROM the "
    pve.ops.rename("/.health", "/health.old")
    assert pve.ask(Lookup(path=".health")).attr is None
    # the name is the status file again, and can't be taken back through the mount
    assert json.loads(_read(pve, "/.health"))["mode"] == "local"
    assert errno_of(pve.ops.rename, "/health.old", "/.health") == errno.EACCES
    assert errno_of(pve.ops.create, "/.health", 0o644, FileInfo()) == errno.EACCES
