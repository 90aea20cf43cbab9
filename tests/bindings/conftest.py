"""Fixtures for the bindings tests: a quorate single-node corosync in its own network namespace.

The node and the client probe runner are in tests/bindings/corosync_node.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bindings.corosync_node import CorosyncNode, corosync_node


@pytest.fixture(scope="module")
def corosync(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorosyncNode]:
    """A quorate single-node corosync shared by the read-only tests of a module."""
    with corosync_node(tmp_path_factory.mktemp("corosync"), 1) as node:
        yield node


@pytest.fixture
def fresh_corosync(tmp_path: Path) -> Iterator[CorosyncNode]:
    """A quorate single-node corosync of its own, for a test that kills it."""
    with corosync_node(tmp_path, 2) as node:
        yield node
