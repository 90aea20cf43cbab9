"""Fixtures for real corosync clusters in network namespaces (see lab/cluster.py), as a plugin.

tests/conftest.py loads this module through ``pytest_plugins``, so the fixtures and the report
hook are registered once per session and reach both tests/cluster and tests/chaos. The
session's netns sweep is not autouse here: the conftest.py of those two folders pulls it in
for their tests, and ``corosync_lab_factory`` requests it wherever else it is used.

The cluster fixtures are function-scoped: a test gets a fresh, healthy cluster that it may break
at will (kill, isolate, stop), and up() costs only ~0.5 s for one node and ~1.2 s for three, so
sharing a cluster across tests would save little and couple tests through ring ids and state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.cluster import CorosyncLab, missing_tools, sweep_session
from tests.require import require

_failed = pytest.StashKey[bool]()


def require_corosync() -> None:
    """Skip without corosync, ip, nsenter, unshare or root; under CI=true a missing piece fails."""
    require(missing_tools(), "corosync cluster tests")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Remember a failed setup or call, so that the lab keeps its logs for a look afterwards."""
    report: pytest.TestReport = yield
    if report.failed:
        item.stash[_failed] = True
    return report


@pytest.fixture(scope="session")
def _sweep_session_netns() -> Iterator[None]:
    """Safety net: at the end of the session no lab is up and no netns of this session remains."""
    yield
    sweep_session()


@pytest.fixture
def corosync_lab_factory(
    tmp_path: Path, request: pytest.FixtureRequest, _sweep_session_netns: None
) -> Iterator[Callable[..., CorosyncLab]]:
    """``make(n=None, **kwargs)``: a new lab under tmp_path, brought up with n nodes if n is given.

    Every lab is taken down after the test, whatever happened; a failed test keeps the labs'
    state folders (corosync logs and configs) in tmp_path.
    """
    require_corosync()
    labs: list[CorosyncLab] = []

    def make(n: int | None = None, **kwargs: object) -> CorosyncLab:
        lab = CorosyncLab(tmp_path, **kwargs)  # type: ignore[arg-type]
        labs.append(lab)
        if n is not None:
            lab.up(n)
        return lab

    yield make
    keep = request.node.stash.get(_failed, False)
    errors = [f"{lab.prefix}: {err}" for lab in labs for err in lab.down(keep_state=keep)]
    if errors:
        pytest.fail(f"lab teardown failed: {errors}")


@pytest.fixture
def cluster1(corosync_lab_factory: Callable[..., CorosyncLab]) -> CorosyncLab:
    """A quorate single-node cluster."""
    return corosync_lab_factory(1)


@pytest.fixture
def cluster3(corosync_lab_factory: Callable[..., CorosyncLab]) -> CorosyncLab:
    """A 3-node cluster, every node quorate."""
    return corosync_lab_factory(3)


@pytest.fixture
def cluster5(corosync_lab_factory: Callable[..., CorosyncLab]) -> CorosyncLab:
    """A 5-node cluster, every node quorate."""
    return corosync_lab_factory(5)
