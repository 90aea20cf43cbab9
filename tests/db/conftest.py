"""Fixtures for the SQLite store tests: tmp copies of the C-written vector, a prepared Store.

The vector's paths and the raw row readers are in tests/db/vectors.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.store import Store
from tests.db.vectors import VECTOR_DB


@pytest.fixture
def vector_copy(tmp_path: Path) -> Path:
    """A writable copy of the C-written config.db (mode 0644, as a fresh copy would be)."""
    dst = tmp_path / "config.db"
    shutil.copyfile(VECTOR_DB, dst)
    os.chmod(dst, 0o644)
    return dst


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A prepared Store on a new file (no rows yet: no version row either)."""
    s = Store(str(tmp_path / "config.db"))
    assert s.open() == ()
    s.prepare()
    yield s
    s.close()
