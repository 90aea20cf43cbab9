"""Tree files are read through the kernel's page cache while they are unchanged (issue 9).

An unchanged file opened again is served from the pages the kernel kept (no read request
reaches the daemon); a change, through this or another handle, is seen at the next open.
The daemon runs with -d, so every read request it serves shows in its log.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from tests.integration.daemon import Daemon

pytestmark = pytest.mark.fuse


def reads_of(pve: Daemon, path: str) -> int:
    """Read requests for ``path`` the daemon logged so far (see ``barrier``)."""
    return sum(1 for line in pve.lines if f"read '/{path}'" in line)


def barrier(pve: Daemon, n: int) -> None:
    """Make sure every earlier log line has been collected: its stderr is read by a thread.

    A new file read once must show its read request; the log is in order, so every line
    logged before it is then in ``pve.lines`` too.
    """
    marker = f"barrier-{n}.cfg"
    pve.path(marker).write_bytes(b"b\n")
    assert pve.path(marker).read_bytes() == b"b\n"
    pve.wait_for_line(lambda line: f"read '/{marker}'" in line)


def test_unchanged_files_are_served_from_the_page_cache(make_daemon: Callable[..., Daemon]) -> None:
    pve = make_daemon(extra_args=("-d",)).start()
    f = pve.path("storage.cfg")
    f.write_bytes(b"dir: local\n")
    assert f.read_bytes() == b"dir: local\n"
    barrier(pve, 1)
    first = reads_of(pve, "storage.cfg")
    assert first >= 1
    for _ in range(5):
        assert f.read_bytes() == b"dir: local\n"
    barrier(pve, 2)
    assert reads_of(pve, "storage.cfg") == first  # all five from the page cache

    # a change through another handle is seen at the next open
    fd = os.open(f, os.O_WRONLY)
    try:
        os.pwrite(fd, b"DIR", 0)
    finally:
        os.close(fd)
    assert f.read_bytes() == b"DIR: local\n"

    # a change that does not go through this kernel's pages (a rename over it, as the tools do)
    tmp = pve.path("storage.cfg.tmp")
    tmp.write_bytes(b"dir: other\n\tpath /srv\n")
    os.rename(tmp, f)
    assert f.read_bytes() == b"dir: other\n\tpath /srv\n"
    barrier(pve, 3)
    assert reads_of(pve, "storage.cfg") > first


def test_status_files_are_never_cached(make_daemon: Callable[..., Daemon]) -> None:
    pve = make_daemon(extra_args=("-d",)).start()
    version = pve.path(".version")
    counts = []
    for n in range(3):
        assert version.read_text().startswith("{")
        barrier(pve, n)
        counts.append(reads_of(pve, ".version"))
    assert counts[0] >= 1
    assert counts[0] < counts[1] < counts[2]  # every read reaches the daemon (direct I/O)
