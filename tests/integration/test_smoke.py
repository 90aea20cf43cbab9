from __future__ import annotations

import errno
import os

import pytest

from lab.daemon import Daemon, is_mounted

pytestmark = pytest.mark.fuse


def test_write_read_and_clean_stop(pve: Daemon) -> None:
    pve.path("datacenter.cfg").write_text("keyboard: en-us\n")
    assert pve.path("datacenter.cfg").read_text() == "keyboard: en-us\n"
    assert pve.stop() == 0
    assert not is_mounted(pve.mount)


def test_efbig(pve: Daemon) -> None:
    with pytest.raises(OSError, match="too large") as info:
        pve.path("big").write_bytes(b"x" * (1024 * 1024 + 1))
    assert info.value.errno == errno.EFBIG
    assert os.path.getsize(pve.path("big")) <= 1024 * 1024
