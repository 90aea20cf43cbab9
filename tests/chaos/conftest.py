"""The chaos tests use the cluster tests' lab fixtures: tests/cluster/lab_fixtures.py, a plugin of
tests/conftest.py (real corosync in network namespaces).

Every test here ends the session with the netns sweep, as the cluster tests do.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _netns_sweep(_sweep_session_netns: None) -> None:
    """Pull in the session's netns sweep (once per session) for every test in this folder."""
