"""The error latch (reference 1.7): once a database write fails, every change answers EIO
until a restart, while reads keep working."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

from lab.daemon import Daemon
from tests.integration.helpers import expect_errno, read_status

pytestmark = pytest.mark.fuse


@pytest.fixture
def small_db_pve(make_daemon: Callable[..., Daemon]) -> Iterator[Daemon]:
    """A daemon (not started) whose database folder is a 1 MiB tmpfs that can be filled."""
    pve = make_daemon()
    folder = pve.db.parent
    folder.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0750", "tmpfs", str(folder)], check=True)
    try:
        yield pve
    finally:
        pve.cleanup()
        subprocess.run(["umount", "-l", str(folder)], check=False)


def write_forever(fd: int) -> None:
    while True:
        os.write(fd, b"\0" * 4096)


def fill(folder: os.PathLike[str]) -> str:
    """Fill a file system up; returns the filler's path."""
    filler = os.path.join(folder, "filler")
    fd = os.open(filler, os.O_CREAT | os.O_WRONLY)
    try:
        expect_errno(errno.ENOSPC, write_forever, fd)
    finally:
        os.close(fd)
    return filler


def test_a_failed_commit_latches_every_change_until_restart(small_db_pve: Daemon) -> None:
    pve = small_db_pve.start()
    os.mkdir(pve.path("kept"))
    pve.path("kept/file").write_text("committed\n")
    filler = fill(pve.db.parent)
    expect_errno(errno.EIO, pve.path("big").write_bytes, b"x" * 300_000)
    os.unlink(filler)  # space again, but the latch stays
    expect_errno(errno.EIO, os.mkdir, pve.path("dir"))
    expect_errno(errno.EIO, os.open, pve.path("new"), os.O_CREAT | os.O_WRONLY)
    expect_errno(errno.EIO, os.unlink, pve.path("kept/file"))
    expect_errno(errno.EIO, os.utime, pve.path("kept"), (1, 1))
    expect_errno(errno.EIO, os.rename, pve.path("kept/file"), pve.path("kept/other"))
    fd = os.open(pve.path("kept/file"), os.O_WRONLY)
    try:
        expect_errno(errno.EIO, os.write, fd, b"x")
    finally:
        os.close(fd)
    # reads, listings and the status files keep working
    assert pve.path("kept/file").read_text() == "committed\n"
    assert "kept" in os.listdir(pve.mount)
    assert read_status(pve, ".members").startswith("{")
    assert pve.stop() == 0
    pve.start()
    assert pve.path("kept/file").read_text() == "committed\n"
    os.mkdir(pve.path("dir"))
    pve.path("dir/f").write_text("after restart\n")
    assert pve.path("dir/f").read_text() == "after restart\n"
