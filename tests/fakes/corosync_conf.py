"""corosync.conf texts and a stand-in for ``corosync-cfgtool -R`` (daemon/corosync_conf.py)."""

from __future__ import annotations

import threading
from collections.abc import Sequence


def conf(version: int | None, comment: str = "") -> bytes:
    """A corosync.conf text with this config_version (None: without one)."""
    line = "" if version is None else f"  config_version: {version}\n"
    return f"# {comment}\ntotem {{\n  cluster_name: lab\n{line}  version: 2\n}}\n".encode()


class Runs:
    """A stand-in for running corosync-cfgtool: records each call, answers ``code``."""

    def __init__(self, code: int = 0) -> None:
        self.code = code
        self.calls: list[tuple[str, ...]] = []
        self.called = threading.Event()

    def __call__(self, command: Sequence[str]) -> int:
        self.calls.append(tuple(command))
        self.called.set()
        return self.code
