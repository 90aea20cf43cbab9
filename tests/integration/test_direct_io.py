"""Every tree file handle uses direct I/O, as the original (issue 13).

With the kernel's page cache a write across 1 MiB was split at a page boundary and half
applied, and a reader racing an in-place rewrite could be served a zero-filled page. Here:
a write that would end past 1 MiB is refused whole with EFBIG and changes nothing; sizes and
offsets past what the 32-bit wire fields hold are refused the same way; every read reaches the
daemon; readers racing a writer see the old content, the new one or (in-place) the empty file.
The daemon runs with -d, so every read request it serves shows in its log.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from memdb.tree import MAX_FILE_SIZE
from tests.integration.daemon import Daemon
from tests.integration.helpers import os_errno
from tests.integration.rewrite_race import content, race

pytestmark = pytest.mark.fuse


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


def test_writes_past_1_mib_are_refused_whole(pve: Daemon) -> None:
    check_write_limits(pve.mount)
    # the daemon goes on taking changes
    (pve.mount / "after.cfg").write_bytes(b"ok\n")
    assert (pve.mount / "after.cfg").read_bytes() == b"ok\n"


def reads_of(pve: Daemon, path: str) -> int:
    return sum(1 for line in pve.lines if f"read '/{path}'" in line)


def test_every_read_reaches_the_daemon(make_daemon: Callable[..., Daemon]) -> None:
    pve = make_daemon(extra_args=("-d",)).start()
    f = pve.path("storage.cfg")
    f.write_bytes(b"dir: local\n")
    for n in range(1, 4):
        assert f.read_bytes() == b"dir: local\n"
        pve.wait_for_line(lambda line, n=n: reads_of(pve, "storage.cfg") >= n)
    # a handle open across a change reads the new bytes at once
    with f.open("rb", buffering=0) as reader:
        assert reader.read() == b"dir: local\n"
        f.write_bytes(b"dir: other\n")
        assert os.pread(reader.fileno(), 100, 0) == b"dir: other\n"


@pytest.mark.parametrize("rename", [False, True], ids=["in-place", "rename"])
def test_readers_racing_a_writer_see_only_written_bytes(pve: Daemon, rename: bool) -> None:
    f = pve.path("race.cfg")
    f.write_bytes(content(0))
    result = race(f, [f, f, f], rename=rename, seconds=3.0)
    examples = [s.example for s in result.seen if s.example]
    assert result.garbage == 0, f"{result.garbage} of {result.reads} reads were never written: {examples}"
    assert result.rewrites >= 20, result  # the race really ran
    assert result.reads >= 100, result
    if rename:
        assert result.empty == 0  # the file is replaced whole, never empty
