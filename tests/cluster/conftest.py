"""The cluster tests' lab fixtures live in tests/cluster/lab_fixtures.py (a plugin of tests/conftest.py).

Every test here ends the session with the netns sweep, whether or not it starts a lab itself.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _netns_sweep(_sweep_session_netns: None) -> None:
    """Pull in the session's netns sweep (once per session) for every test in this folder."""
