"""Process chores of the daemon: directories, instance lock, stale mount, pidfile, forking, shutdown."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import grp
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from typing import IO

import pykka

from bindings.libc import MNT_DETACH, MNT_FORCE, umount2
from daemon import sdnotify
from errors import InstanceLocked, InvalidArgument

log = logging.getLogger(__name__)

LOCKFILE_NAME = ".pmxcfs.lockfile"
"""In the database's folder, as the original (/var/lib/pve-cluster/.pmxcfs.lockfile)."""
RESTART_FLAG = "cfs-restart-flag"
"""Created in the run dir at shutdown; tells IPC clients to wait for the restart."""

StopStep = tuple[str, Callable[[], object]]
"""A part of the daemon to stop: its name (for the log) and the call that stops it."""


def www_data_gid() -> int:
    """The gid of www-data; every entry of the mount belongs to this group."""
    try:
        return grp.getgrnam("www-data").gr_gid
    except KeyError as exc:
        raise InvalidArgument("www-data", "Unable to get www-data group ID") from exc


def prepare_dirs(db_path: str, rundir: str, gid: int) -> None:
    """Umask 027; create the database folder and the run dir (root:www-data)."""
    os.umask(0o027)
    os.makedirs(os.path.dirname(os.path.abspath(db_path)), mode=0o750, exist_ok=True)
    os.makedirs(rundir, mode=0o750, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chown(rundir, 0, gid)


def acquire_instance_lock(db_path: str, wait_s: float) -> IO[bytes]:
    """Flock the lock file next to the database; the lock lives as long as the file object."""
    path = os.path.join(os.path.dirname(os.path.abspath(db_path)), LOCKFILE_NAME)
    handle = open(path, "ab")  # noqa: SIM115 - held for the life of the process
    os.chmod(path, 0o600)
    deadline = time.monotonic() + wait_s
    warned = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                raise InstanceLocked(
                    path, "another pmxcfs is running on this database (unable to acquire pmxcfs lock)"
                ) from None
            if not warned:
                log.warning("unable to acquire pmxcfs lock - trying again")
                warned = True
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def unmount_stale(mountpoint: str) -> None:
    """Force-unmount whatever is mounted there (a crashed instance's dead mount)."""
    for flags in (MNT_FORCE, MNT_DETACH):
        try:
            umount2(mountpoint, flags)
            log.info("unmounted stale mount at %s", mountpoint)
            return
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOENT):
                return  # not a mount point, or no such directory
    log.warning("could not unmount %s", mountpoint)


def make_mountpoint(mountpoint: str) -> None:
    """Create the mount point folder (mode 0750 under umask 027)."""
    os.makedirs(mountpoint, mode=0o750, exist_ok=True)


def write_pidfile(path: str, pid: int) -> None:
    """Write the pid and a newline atomically, mode 0644."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".pmxcfs-pid.", dir=folder)
    try:
        os.write(fd, f"{pid}\n".encode())
        os.fchmod(fd, 0o644)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_host_file(path: str) -> bytes | None:
    """The content of a host file, or None if it can't be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        log.debug("can't read %s: %s", path, exc)
        return None


def remove_file(path: str) -> None:
    """Remove a file if it is there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def set_restart_flag(rundir: str, gid: int) -> None:
    """Create the empty restart flag (0440 root:www-data) before exiting."""
    path = os.path.join(rundir, RESTART_FLAG)
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o440)
        os.close(fd)
        os.chown(path, 0, gid)


class Daemonizer:
    """Fork; the parent waits for the child's '1' once the mount works, then exits."""

    def __init__(self, pidfile: str) -> None:
        self._pidfile = pidfile
        self._write_fd: int | None = None

    def fork(self) -> None:
        """Return in the child; the parent never returns (it exits with the child's verdict)."""
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid:
            os.close(write_fd)
            self._parent_wait(read_fd, pid)
        os.close(read_fd)
        self._write_fd = write_fd
        os.setsid()

    def _parent_wait(self, read_fd: int, child: int) -> None:
        with os.fdopen(read_fd, "rb") as pipe:
            answer = pipe.read(1)
        if answer == b"1":
            write_pidfile(self._pidfile, child)
            # Under Type=notify this process is the unit's main process: hand over to the child.
            sdnotify.notify(f"MAINPID={child}", "READY=1")
            os._exit(0)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, 9)
        os.waitpid(child, 0)
        log.error("child failed to send '1'")
        os._exit(255)

    def started(self) -> None:
        """In the child, once ready: detach from the terminal and release the parent."""
        if self._write_fd is None:
            return
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        os.write(self._write_fd, b"1")
        os.close(self._write_fd)
        self._write_fd = None


def stop_each(steps: Iterable[StopStep]) -> None:
    """Run every stop step in the given order; one that fails or times out is logged and passed."""
    for name, stop in steps:
        try:
            stop()
        except pykka.Timeout as exc:
            log.error("%s did not stop: %s", name, exc)
        except Exception:  # the other parts must stop all the same
            log.exception("stopping %s failed", name)


def shutdown(steps: Iterable[StopStep], pidfile: str, lock: IO[bytes]) -> None:
    """Stop every part, then remove the pid file and release the instance lock in any case.

    Last, every actor still running is logged by name (it keeps the process from exiting).
    """
    try:
        stop_each(steps)
    finally:
        try:
            remove_file(pidfile)
        finally:
            lock.close()
    for name in remaining_actors():
        log.error("actor %s still running after the stop", name)


def remaining_actors() -> list[str]:
    """The threads other than this one that keep the process from exiting, by name.

    All our service threads are daemon threads, so these are the actors' threads (pykka names
    them after the class, e.g. ``FsActor-3``): a registered actor, or one stuck in ``on_stop``
    (pykka unregisters it before calling ``on_stop``).
    """
    me = threading.current_thread()
    return [t.name for t in threading.enumerate() if t is not me and not t.daemon and t.is_alive()]
