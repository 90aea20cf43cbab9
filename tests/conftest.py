"""Shared fixtures: every actor stopped after each test, unexpected ERROR logs fail the test."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pykka
import pytest

pytest_plugins = ["tests.fakes.actors", "tests.cluster.lab_fixtures"]
"""Fixtures of started actors and an fs actor on the test thread, for every test folder; the
corosync lab fixtures and their report hook, for tests/cluster and tests/chaos."""


@pytest.fixture(autouse=True)
def _stop_all() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=10)


@pytest.fixture(autouse=True)
def _no_error_logs(caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest) -> Iterator[None]:
    """An ERROR or CRITICAL log line is a bug unless the test expects it (marker allow_error_logs)."""
    yield
    if request.node.get_closest_marker("allow_error_logs"):
        return
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors, f"unexpected error logs: {[r.getMessage() for r in errors]}"
