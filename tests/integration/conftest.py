"""Fixtures that run real daemons on real FUSE mounts; everything they start is cleaned up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.daemon import Daemon
from tests.integration.mounts import public_daemon, require_fuse


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
    """A running local-mode daemon whose mount other users can reach."""
    with public_daemon(Daemon) as daemon:
        yield daemon
