"""pmxcfs-py removed: the original's /usr/bin/pmxcfs is back, nothing of ours is left."""

from __future__ import annotations

from tests.package.common import BIN, DIVERTED, LIBDIR, STAND_IN, diversion_owner


def test_removing_gives_the_original_back() -> None:
    assert diversion_owner() == ""
    assert BIN.read_bytes() == STAND_IN
    assert not DIVERTED.exists()
    assert not LIBDIR.exists()
