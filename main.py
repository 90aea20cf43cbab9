"""pmxcfs entry point: wiring only (options, logging, actors, mount, wait, stop in reverse)."""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

import pykka
import pykka.debug
from fuse import FUSE

from actors.db_actor import DbActor
from actors.fs_actor import FsActor
from actors.messages import ActivateTree, LoadTree, Lookup, OpenStore, PrepareStore, QuorumChanged, ask
from actors.status_actor import StatusActor
from daemon.logs import set_debug, setup_logging, stop_stderr_logging
from daemon.options import Options, parse_args
from daemon.process import (
    Daemonizer,
    acquire_instance_lock,
    make_mountpoint,
    prepare_dirs,
    remove_file,
    set_restart_flag,
    unmount_stale,
    write_pidfile,
    www_data_gid,
)
from errors import PmxcfsError, StorageError
from fusefs.codec import FS_ENCODING
from fusefs.operations import PveOperations

log = logging.getLogger("main")

STARTUP_TIMEOUT_S = 120.0
"""Loading a large database may take a while."""
EXIT_FAILURE = 255
"""The original exits with -1 on startup failures."""


@dataclass(frozen=True, slots=True)
class Actors:
    """The running actors, in start order."""

    db: pykka.ActorRef[Any]
    status: pykka.ActorRef[Any]
    fs: pykka.ActorRef[Any]

    def stop(self) -> None:
        """Stop in reverse start order; the db actor last, so it closes the file."""
        for ref in (self.fs, self.status, self.db):
            ref.stop(block=True, timeout=30)


def start_actors(opts: Options) -> Actors:
    """Start the db, status and fs actors; nothing is loaded yet."""
    db = DbActor.start(opts.db)
    status = StatusActor.start(opts.nodename, debug=opts.debug, set_debug=set_debug)
    fs = FsActor.start(db, status, quorate=False)
    return Actors(db=db, status=status, fs=fs)


def load_tree(actors: Actors, opts: Options) -> bool:
    """Load and check config.db into the tree; returns True for local mode."""
    rows = ask(actors.db, OpenStore(), timeout=STARTUP_TIMEOUT_S)
    ask(actors.fs, LoadTree(rows=rows), timeout=STARTUP_TIMEOUT_S)
    ask(actors.db, PrepareStore(), timeout=STARTUP_TIMEOUT_S)
    ask(actors.fs, ActivateTree(), timeout=STARTUP_TIMEOUT_S)
    has_corosync_conf = (
        ask(actors.fs, Lookup(path="corosync.conf"), timeout=STARTUP_TIMEOUT_S).attr is not None
    )
    if has_corosync_conf and opts.local:
        log.warning("forcing local mode (although corosync.conf exists)")
    if has_corosync_conf and not opts.local:
        log.warning(
            "cluster mode: corosync.conf exists but this build has no corosync support yet; "
            "the tree stays read-only (no quorum). Use -l to force local mode."
        )
        return False
    log.debug("using local mode (corosync.conf does not exist)")
    actors.fs.tell(QuorumChanged(quorate=True))
    return True


def serve(actors: Actors, opts: Options, gid: int, daemon: Daemonizer | None) -> None:
    """Mount /etc/pve and serve until SIGTERM, SIGINT or SIGHUP (libfuse's handlers)."""
    unmount_stale(opts.mount)
    make_mountpoint(opts.mount)

    def ready() -> None:
        remove_file(os.path.join(opts.rundir, "cfs-restart-flag"))
        log.info("mounted %s (node %s)", opts.mount, opts.nodename)
        if daemon is not None:
            stop_stderr_logging()
            daemon.started()

    operations = PveOperations(actors.fs, actors.status, nodename=opts.nodename, www_gid=gid, on_ready=ready)
    FUSE(
        operations,
        opts.mount,
        raw_fi=True,
        foreground=True,
        allow_other=True,
        default_permissions=True,
        big_writes=True,
        fsname="/dev/fuse",
        encoding=FS_ENCODING,
    )


def run(opts: Options) -> int:
    """Everything after option parsing; returns the exit status."""
    try:
        gid = www_data_gid()
        prepare_dirs(opts.db, opts.rundir, gid)
        lock = acquire_instance_lock(opts.db, opts.lock_wait)
    except (PmxcfsError, OSError) as exc:
        log.critical("%s", exc)
        return EXIT_FAILURE
    daemon = None
    if opts.foreground:
        write_pidfile(opts.pidfile, os.getpid())
    else:
        daemon = Daemonizer(opts.pidfile)
        daemon.fork()
    actors = start_actors(opts)
    try:
        load_tree(actors, opts)
        serve(actors, opts, gid, daemon)
        log.info("teardown filesystem")
        set_restart_flag(opts.rundir, gid)
    except StorageError as exc:
        log.critical("unable to open database '%s': %s", opts.db, exc.reason)
        return EXIT_FAILURE
    except (PmxcfsError, RuntimeError, OSError, pykka.Timeout) as exc:
        log.critical("startup failed: %s", exc)
        return EXIT_FAILURE
    finally:
        actors.stop()
        remove_file(opts.pidfile)
        lock.close()
    log.info("exit proxmox configuration filesystem (0)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse options, set up logging and run."""
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(debug=opts.debug)
    signal.signal(signal.SIGUSR1, pykka.debug.log_thread_tracebacks)
    return run(opts)


if __name__ == "__main__":
    sys.exit(main())
