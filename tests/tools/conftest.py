"""Fixtures for the operator tools: a sample database file, a fixed terminal width.

The CLI runner and the database builders are in tests/tools/helpers.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.memdb.helpers import rows_of
from tests.tools.helpers import sample_tree, side_files, write_db


@pytest.fixture
def sample_db(tmp_path: Path) -> Path:
    """sample_tree() written to a database file, closed (no -wal beside it)."""
    path = write_db(tmp_path / "config.db", rows_of(sample_tree()))
    assert not side_files(path)
    return path


@pytest.fixture(autouse=True)
def _wide_help(monkeypatch: pytest.MonkeyPatch) -> None:
    """argparse wraps usage and help to the terminal width: fix it, whatever runs the tests."""
    monkeypatch.setenv("COLUMNS", "120")
