"""The tree's corosync.conf -> the host's corosync.conf (local.md 5.4, cluster.md 2.4).

In cluster mode the host file follows the tree's copy: at startup (notify), after every
delivered change of ``corosync.conf`` (notify if this node sent it) and after every sync
commit (no notify). A higher or equal ``config_version`` with other bytes replaces the host
file atomically; the previous host file is kept as ``corosync.conf.bak`` beside it. With
notify, and if the host file had a version, ``corosync-cfgtool -R`` runs 1 s later on a
timer thread (the original sleeps inside its CPG deliver callback; we do not block the fs
actor for that).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wire.dcdb import DcdbMessageType

log = logging.getLogger(__name__)

TREE_PATH = "corosync.conf"
"""The tree's copy, as DCDB messages name it (no leading slash)."""
VERSION_RE = re.compile(rb"config_version\s*:\s*(\d+)")
"""The original's regex; the first match anywhere counts, comments included."""
MAX_VERSION = 2**64 - 1
"""strtoull saturates here."""
BACKUP_SUFFIX = ".bak"
"""The previous host file is kept as <host file>.bak."""
RELOAD_DELAY_S = 1.0
"""The original sleeps 1 s "to hopefully allow new config to propagate" before reloading."""
RELOAD_COMMAND = ("corosync-cfgtool", "-R")
RELOAD_TIMEOUT_S = 30.0
"""A corosync-cfgtool -R still running after this long is killed."""
CLOSE_WAIT_S = 5.0
"""At shutdown, how long to wait for a reload that is running (systemd allows 10 s in all)."""


def config_version(data: bytes) -> int:
    """``config_version`` of a corosync.conf text; 0 if it has none."""
    match = VERSION_RE.search(data)
    return min(int(match.group(1)), MAX_VERSION) if match else 0


def changes_conf(subtype: int, path: str | None, to: str | None) -> bool:
    """A delivered WRITE or CREATE of corosync.conf, or a RENAME onto it (dcdb_deliver)."""
    if subtype in (DcdbMessageType.WRITE, DcdbMessageType.CREATE):
        return path == TREE_PATH
    return subtype == DcdbMessageType.RENAME and to == TREE_PATH


@dataclass(frozen=True, slots=True)
class Plan:
    """The host file is to be written with the tree's copy."""

    reload: bool
    """Run corosync-cfgtool -R after the write."""
    new_version: int
    old_version: int


def plan(tree: bytes | None, host: bytes | None, *, notify: bool) -> Plan | None:
    """Decide from the two texts (None: missing); None if there is nothing to do.

    Logs the original's critical messages for an unparsable tree copy and a newer host file.
    """
    if not tree:
        return None
    new_version = config_version(tree)
    if new_version == 0:
        log.critical("unable to parse cluster config_version")
        return None
    old_version = config_version(host) if host else 0
    if host == tree:
        return None
    if new_version < old_version:
        log.critical("local corosync.conf is newer")
        return None
    return Plan(reload=notify and old_version != 0, new_version=new_version, old_version=old_version)


def read_host(path: str) -> bytes | None:
    """The host file's bytes; None if it is missing or can't be read (the latter logged)."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.critical("unable to read cluster config file '%s' - %s", path, exc)
        return None


def atomic_write(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write a temp file beside ``path`` (root:root, ``mode``), then rename it over ``path``."""
    folder, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f"{name}.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            if os.geteuid() == 0:
                os.fchown(handle.fileno(), 0, 0)
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class HostCorosyncConf:
    """The host's corosync.conf kept in step with the tree's copy; owns the reload timer."""

    def __init__(
        self,
        path: str,
        *,
        reload_command: Sequence[str] = RELOAD_COMMAND,
        reload_delay: float = RELOAD_DELAY_S,
        run: Callable[[Sequence[str]], int] | None = None,
    ) -> None:
        self.path = path
        self._reload_command = tuple(reload_command)
        self._reload_delay = reload_delay
        self._run = run or _run_quietly
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        """The latest reload, pending or running or done."""
        self._started = False
        """The latest reload has begun (a new change needs another one)."""

    @property
    def backup_path(self) -> str:
        """Where the previous host file is kept."""
        return self.path + BACKUP_SUFFIX

    def sync(self, tree: bytes | None, *, notify: bool) -> bool:
        """dcdb_sync_corosync_conf: write the host file if the tree's copy is newer; True if written.

        Never raises: a failed write is logged as critical and the host file stays as it was.
        """
        host = read_host(self.path)
        todo = plan(tree, host, notify=notify)
        if todo is None:
            return False
        assert tree is not None
        try:
            if host:
                atomic_write(self.backup_path, host)
            atomic_write(self.path, tree)
        except OSError as exc:
            log.critical("unable to write cluster config file '%s' - %s", self.path, exc)
            return False
        log.info("wrote new corosync config '%s' (version = %d)", self.path, todo.new_version)
        if todo.reload:
            self.schedule_reload()
        return True

    def schedule_reload(self) -> None:
        """Run the reload command after the delay, on a timer thread.

        One pending at a time: a reload that has not started yet reads the newest file anyway.
        """
        with self._lock:
            if self._timer is not None and self._timer.is_alive() and not self._started:
                return
            self._started = False
            self._timer = threading.Timer(self._reload_delay, self._reload)
            self._timer.name = "corosync-reload"
            self._timer.daemon = True
            self._timer.start()

    def _reload(self) -> None:
        with self._lock:
            self._started = True
        command = " ".join(self._reload_command)
        log.debug("run %s", command)
        code = self._run(self._reload_command)
        if code != 0:
            log.critical("%s failed with exit code %d", command, code)
        log.debug("end %s", command)

    def close(self, timeout: float = CLOSE_WAIT_S) -> None:
        """Cancel a pending reload; wait for a running one."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            timer.join(timeout)


def _run_quietly(command: Sequence[str]) -> int:
    """Run a command with its output discarded; its exit status.

    As a shell gives it: 127 if it can't be run, 124 if it ran out of time (then it is killed).
    """
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=RELOAD_TIMEOUT_S,
            check=False,
        )
    except OSError:
        return 127
    except subprocess.TimeoutExpired:
        return 124
    return done.returncode
