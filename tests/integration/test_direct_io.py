"""Every tree file handle uses direct I/O, as the original (issue 13).

With the kernel's page cache a write across 1 MiB was split at a page boundary and half
applied, and a reader racing an in-place rewrite could be served a zero-filled page. Here:
a write that would end past 1 MiB is refused whole with EFBIG and changes nothing; sizes and
offsets past what the 32-bit wire fields hold are refused the same way; every read reaches the
daemon; readers racing a writer see the old content, the new one or (in-place) the empty file.
The daemon runs with -d, so every read request it serves shows in its log.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from lab.daemon import Daemon
from tests.integration.helpers import check_write_limits
from tests.integration.rewrite_race import content, race

pytestmark = pytest.mark.fuse


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
