"""Fixtures that run real daemons on real FUSE mounts; everything they start is cleaned up."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.daemon import Daemon, is_mounted, require_fuse


@pytest.fixture
def make_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Build (not start) daemons in their own folders; all are stopped and unmounted after the test."""
    require_fuse()
    made: list[Daemon] = []

    def make(name: str = "d", **kwargs: object) -> Daemon:
        daemon = Daemon(tmp_path / name, **kwargs)  # type: ignore[arg-type]
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.cleanup()


@pytest.fixture
def pve(make_daemon: Callable[..., Daemon]) -> Daemon:
    """A running local-mode daemon on a fresh database."""
    return make_daemon().start()


@pytest.fixture
def public_pve() -> Iterator[Daemon]:
    """A running local-mode daemon whose mount other users can reach.

    pytest's tmp_path lies below a 0700 folder, so this one lives in a 0755 folder in /tmp;
    the folder is removed after the test once nothing is mounted in it.
    """
    require_fuse()
    base = Path(tempfile.mkdtemp(prefix="pmxcfs-it-", dir="/tmp"))
    base.chmod(0o755)
    (base / "d").mkdir(mode=0o755)
    (base / "d").chmod(0o755)
    daemon = Daemon(base / "d")
    try:
        yield daemon.start()
    finally:
        daemon.cleanup()
        if not is_mounted(daemon.mount):
            shutil.rmtree(base, ignore_errors=True)
