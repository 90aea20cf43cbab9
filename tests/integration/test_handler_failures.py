"""A failure in any actor's message handler answers EIO and the daemon goes on (issue 13).

The daemon runs behind tests/integration/faulty_main.py, which makes a named handler raise
RuntimeError the first time(s) it sees a message type, as a bug would. Before the boundary in
actors/serving.py a failure in a told handler stopped that actor for good, and every later
request waited 30 s for EIO. Cluster-mode actors (cluster, quorum) are covered in
tests/cluster/test_break_it.py.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable

import pytest

from lab.daemon import Daemon
from tests.integration.helpers import os_errno

pytestmark = pytest.mark.fuse

PROMPT_S = 5.0
"""An injected failure is answered at once, far below the 30 s ask timeout."""


def timed_errno(call: Callable[[], object]) -> tuple[int | None, float]:
    start = time.monotonic()
    code = os_errno(call)
    return code, time.monotonic() - start


def failure_logged(pve: Daemon, actor: str, message: str) -> str:
    return pve.wait_for_line(lambda line: f"{actor}: handling {message} failed" in line)


def serves(pve: Daemon, name: str = "after.cfg") -> None:
    """Reads, writes and status files all work."""
    f = pve.path(name)
    f.write_bytes(b"still serving\n")
    assert f.read_bytes() == b"still serving\n"
    f.write_bytes(b"again\n")
    assert f.read_bytes() == b"again\n"
    assert pve.path(".version").read_text().startswith("{")
    assert "after.cfg" in {p.name for p in pve.mount.iterdir()}


def test_fs_actor_change_failures(make_daemon: Callable[..., Daemon]) -> None:
    pve = make_daemon(inject="FsActor:MakeDir,FsActor:WriteFile").start()
    f = pve.path("a.cfg")
    assert os_errno(lambda: f.write_bytes(b"lost\n")) == errno.EIO  # create works, the write fails
    failure_logged(pve, "FsActor", "WriteFile")
    assert f.stat().st_size == 0  # refused: nothing written
    f.write_bytes(b"kept\n")
    code, took = timed_errno(lambda: pve.path("d").mkdir())
    assert (code, took < PROMPT_S) == (errno.EIO, True)
    failure_logged(pve, "FsActor", "MakeDir")
    assert not pve.path("d").exists()
    pve.path("d").mkdir()
    assert f.read_bytes() == b"kept\n"
    serves(pve)


def restarted_with(pve: Daemon, inject: str) -> Daemon:
    """The daemon on its existing database (a new one commits at startup), with ``inject``."""
    assert pve.stop() == 0
    pve.inject = inject
    return pve.start()


def test_db_actor_failure_is_retried_and_nothing_is_lost(pve: Daemon) -> None:
    restarted_with(pve, "DbActor:Persist")  # the first commit after the start fails
    f = pve.path("a.cfg")
    f.write_bytes(b"committed\n")
    failure_logged(pve, "DbActor", "Persist")
    serves(pve)
    restarted_with(pve, "")
    assert pve.path("a.cfg").read_bytes() == b"committed\n"  # the retried commit is on disk
    serves(pve, "after.cfg")


def test_db_actor_failing_twice_latches(pve: Daemon) -> None:
    restarted_with(pve, "DbActor:Persist:2")
    assert os_errno(lambda: pve.path("a.cfg").write_bytes(b"x\n")) == errno.EIO
    # the tree and the file may now differ: like the original after a failed commit, every
    # change is refused until restart; reads go on
    assert os_errno(lambda: pve.path("b.cfg").write_bytes(b"y\n")) == errno.EIO
    assert pve.path(".version").read_text().startswith("{")


def test_status_actor_told_and_asked_failures(make_daemon: Callable[..., Daemon]) -> None:
    pve = make_daemon(inject="StatusActor:TreeChanged,StatusActor:RenderStatusFile").start()
    # a told event: the status actor stopped on it before
    pve.path("user.cfg").write_bytes(b"user:root@pam:1:0:::::\n")  # tracked: tells TreeChanged
    failure_logged(pve, "StatusActor", "TreeChanged")
    # an asked one: stat of a status file answers EIO once
    code, took = timed_errno(lambda: pve.path(".health").stat())  # the one status file asked for
    assert (code, took < PROMPT_S) == (errno.EIO, True)
    failure_logged(pve, "StatusActor", "RenderStatusFile")
    serves(pve)
    pve.path("user.cfg").write_bytes(b"user:root@pam:1:0:::::\n")
    assert '"user.cfg"' in pve.path(".version").read_text()
