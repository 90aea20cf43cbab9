"""pmxcfs entry point: wiring only (options, logging, actors, mount, wait, stop in reverse)."""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import pykka
import pykka.debug

from actors.cluster_actor import ClusterActor
from actors.db_actor import DbActor
from actors.fs_actor import FsActor
from actors.messages import (
    ActivateTree,
    AttachCluster,
    AttachKvstore,
    CreateFile,
    LoadTree,
    Lookup,
    ModeChosen,
    OpenStore,
    PrepareStore,
    ReadFile,
    SetQuorate,
    WriteFile,
    ask,
)
from actors.quorum_actor import QuorumActor
from actors.status_actor import StatusActor
from corosync.poller import FdPoller, Ticker
from daemon import sdnotify
from daemon.corosync_conf import HostCorosyncConf
from daemon.identity import resolve_node_ip, resolve_nodename
from daemon.logs import set_debug, setup_logging, stop_stderr_logging
from daemon.options import Options, default_nodename, parse_args
from daemon.process import (
    Daemonizer,
    StopStep,
    acquire_instance_lock,
    make_mountpoint,
    prepare_dirs,
    read_host_file,
    remove_file,
    set_restart_flag,
    shutdown,
    stop_each,
    unmount_stale,
    write_pidfile,
    www_data_gid,
)
from errors import PmxcfsError, StartupError, StorageError
from fusefs.codec import FS_ENCODING
from fusefs.libfuse import FUSE
from fusefs.operations import MOUNT_OPTIONS, PveOperations
from ipc.server import IpcServer
from memdb.snapshot import Published, TreeSnapshot, empty_snapshot
from replication.proposer import Proposer
from replication.refusals import RefusalLog
from status.published import EMPTY_STATUS, StatusFiles, StatusSnapshot
from status.rrd import RrdWriter

log = logging.getLogger("main")

STARTUP_TIMEOUT_S = 120.0
"""Loading a large database may take a while."""
COROSYNC_CONF = "corosync.conf"
"""The tree's copy of the cluster configuration; its presence means cluster mode."""
EXIT_FAILURE = 255
"""The original exits with -1 on startup failures."""
ACTOR_STOP_TIMEOUT_S = 30.0
"""How long to wait for each actor to stop."""


@dataclass(frozen=True, slots=True)
class Actors:
    """The running actors, in start order, and the threads that feed the corosync ones."""

    db: pykka.ActorRef[Any]
    status: pykka.ActorRef[Any]
    fs: pykka.ActorRef[Any]
    tree: Published[TreeSnapshot]
    """The fs actor's latest snapshot of the tree, read by the FUSE and IPC threads."""
    published: Published[StatusSnapshot]
    """The status actor's latest snapshot, read by the FUSE and IPC threads."""
    status_files: StatusFiles
    """The status files the FUSE and IPC threads read from the two snapshots (one RRD dump cache)."""

    corosync: tuple[pykka.ActorRef[Any], ...] = ()
    """The cluster and quorum actors, in start order."""
    poller: FdPoller | None = None
    ticker: Ticker | None = None
    ipc: IpcServer | None = None
    host_conf: HostCorosyncConf | None = None
    """The host's corosync.conf (--corosync-conf), kept in step with the tree's by the cluster
    actor's DCDB application (and once at startup, choose_mode)."""
    refusals: RefusalLog | None = None
    """Refused changes, logged once and reported for .health (the fs actor's, and the FUSE
    threads' when they propose changes themselves in cluster mode)."""
    proposer: Proposer | None = None
    """Cluster mode: the FUSE threads send their changes to the cluster actor with it."""

    def stop_steps(self) -> list[StopStep]:
        """Every part in reverse start order; the db actor last, so it closes the file."""
        steps: list[StopStep] = []
        if self.ipc is not None:
            steps.append(("IPC server", self.ipc.stop))
        if self.ticker is not None:
            steps.append(("ticker", self.ticker.stop))
        steps += [_actor_step(ref) for ref in reversed(self.corosync)]
        if self.poller is not None:  # after the corosync actors: they leave it in on_stop
            steps.append(("fd poller", self.poller.stop))
        steps += [_actor_step(ref) for ref in (self.fs, self.status, self.db)]
        return steps

    def stop(self) -> None:
        """Stop every part, each whatever the others do (a failure or timeout is logged)."""
        stop_each(self.stop_steps())


def _actor_step(ref: pykka.ActorRef[Any]) -> StopStep:
    """Stop the actor, named by its class, waiting up to ACTOR_STOP_TIMEOUT_S."""
    return ref.actor_class.__name__, partial(ref.stop, block=True, timeout=ACTOR_STOP_TIMEOUT_S)


def start_actors(opts: Options, nodename: str | None = None) -> Actors:
    """Start the db, status and fs actors; nothing is loaded yet."""
    nodename = nodename or opts.nodename or default_nodename()
    db = DbActor.start(opts.db)
    rrd = RrdWriter(opts.rrd_dir, opts.rrdcached or None)
    published = Published(EMPTY_STATUS)
    status = StatusActor.start(
        nodename, debug=opts.debug, set_debug=set_debug, rrd=rrd.update, published=published
    )
    host_conf = HostCorosyncConf(opts.corosync_conf)
    tree = Published(empty_snapshot(writable=True))
    refusals = RefusalLog(status)
    fs = FsActor.start(db, status, quorate=True, tree=tree, refusals=refusals)
    return Actors(
        db=db,
        status=status,
        fs=fs,
        tree=tree,
        published=published,
        status_files=StatusFiles(tree, published),
        host_conf=host_conf,
        refusals=refusals,
    )


def start_cluster_services(actors: Actors, opts: Options, nodename: str) -> Actors:
    """Cluster mode: follow quorum and the corosync config; replicate the tree and the status."""
    poller = FdPoller()
    cluster = ClusterActor.start(
        poller,
        fs=actors.fs,
        status=actors.status,
        membership_listeners=(actors.status,),
        verify_period=opts.verify_period,
        host_conf=actors.host_conf,
    )
    node_ip = resolve_node_ip(nodename)
    ask(actors.status, AttachKvstore(cluster=cluster, node_ip=node_ip), timeout=STARTUP_TIMEOUT_S)
    # fs first: it must know about quorum before the cluster actor joins the dcdb group
    quorum = QuorumActor.start(
        poller,
        quorum_listeners=(actors.fs, actors.status, cluster),
        config_listeners=(actors.status,),
        ring_listeners=(cluster,),
    )
    ask(actors.fs, AttachCluster(cluster=cluster), timeout=STARTUP_TIMEOUT_S)
    ticker = Ticker()
    for ref in (quorum, cluster):
        ticker.add(ref)
    proposer = Proposer(cluster, actors.refusals or RefusalLog(actors.status))
    return replace(actors, corosync=(cluster, quorum), poller=poller, ticker=ticker, proposer=proposer)


def start_ipc(actors: Actors, opts: Options, gid: int) -> Actors:
    """The IPC server for the Perl tools; if its name is taken, the mount still serves (as C)."""
    server = IpcServer(actors.tree, actors.status, actors.status_files, www_gid=gid, name=opts.ipc_name)
    try:
        server.start()
    except OSError as exc:
        log.error("IPC server %r not started: %s", opts.ipc_name, exc)
        return actors
    return replace(actors, ipc=server)


def load_tree(actors: Actors, opts: Options, *, fresh_db: bool = False) -> bool:
    """Load and check config.db into the tree and choose the mode; True for local mode.

    A new database first imports the host's corosync.conf (unless -l).
    """
    rows = ask(actors.db, OpenStore(), timeout=STARTUP_TIMEOUT_S)
    ask(actors.fs, LoadTree(rows=rows), timeout=STARTUP_TIMEOUT_S)
    ask(actors.db, PrepareStore(), timeout=STARTUP_TIMEOUT_S)
    ask(actors.fs, ActivateTree(), timeout=STARTUP_TIMEOUT_S)
    if fresh_db and not opts.local:
        import_corosync_conf(actors, opts.corosync_conf)
    return choose_mode(actors, opts)


def import_corosync_conf(actors: Actors, host_conf: str) -> None:
    """Copy the host's corosync.conf into a new database (once, writer 0)."""
    data = read_host_file(host_conf)
    if data is None:
        return
    try:
        ask(actors.fs, CreateFile(path=COROSYNC_CONF), timeout=STARTUP_TIMEOUT_S)
        ask(actors.fs, WriteFile(path=COROSYNC_CONF, data=data, offset=0), timeout=STARTUP_TIMEOUT_S)
    except PmxcfsError as exc:
        raise StartupError(host_conf, f"memdb_write failed - unable to import corosync.conf: {exc}") from exc
    log.info("imported %s into the new database", host_conf)


def choose_mode(actors: Actors, opts: Options) -> bool:
    """Cluster mode if the tree holds corosync.conf and -l was not given; True for local mode."""
    lookup = ask(actors.fs, Lookup(path=COROSYNC_CONF), timeout=STARTUP_TIMEOUT_S)
    if lookup.attr is not None and opts.local:
        log.warning("forcing local mode (although corosync.conf exists)")
    if lookup.attr is None or opts.local:
        log.debug("using local mode (corosync.conf does not exist)")
        ask(actors.fs, SetQuorate(quorate=True), timeout=STARTUP_TIMEOUT_S)
        actors.status.tell(ModeChosen(mode="local"))
        return True
    log.info("cluster mode: read-only until corosync reports quorum")
    ask(actors.fs, SetQuorate(quorate=False), timeout=STARTUP_TIMEOUT_S)
    if actors.host_conf is not None:  # the tree's copy may be newer than the host's (5.4)
        data = ask(actors.fs, ReadFile(path=COROSYNC_CONF, size=lookup.attr.size), timeout=STARTUP_TIMEOUT_S)
        actors.host_conf.sync(data, notify=True)
    actors.status.tell(ModeChosen(mode="cluster"))
    return False


def serve(actors: Actors, opts: Options, nodename: str, gid: int, daemon: Daemonizer | None) -> None:
    """Mount /etc/pve and serve until SIGTERM, SIGINT or SIGHUP (libfuse's handlers)."""
    unmount_stale(opts.mount)
    make_mountpoint(opts.mount)

    def ready() -> None:
        remove_file(os.path.join(opts.rundir, "cfs-restart-flag"))
        log.info("mounted %s (node %s)", opts.mount, nodename)
        if daemon is not None:
            stop_stderr_logging()
            daemon.started()  # the parent tells systemd, if it runs under Type=notify
        else:
            sdnotify.notify("READY=1")

    operations = PveOperations(
        actors.fs,
        actors.status,
        actors.tree,
        actors.status_files,
        nodename=nodename,
        www_gid=gid,
        on_ready=ready,
        proposer=actors.proposer,
    )
    FUSE(operations, opts.mount, fsname="/dev/fuse", encoding=FS_ENCODING, **MOUNT_OPTIONS)


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
    nodename = resolve_nodename(opts.nodename, local_mode=opts.local)
    fresh_db = not os.path.exists(opts.db)
    actors = start_actors(opts, nodename)
    try:
        if not load_tree(actors, opts, fresh_db=fresh_db):
            actors = start_cluster_services(actors, opts, nodename)
        actors = start_ipc(actors, opts, gid)
        serve(actors, opts, nodename, gid, daemon)
        sdnotify.notify("STOPPING=1")
        log.info("teardown filesystem")
        set_restart_flag(opts.rundir, gid)
    except StorageError as exc:
        log.critical("unable to open database '%s': %s", opts.db, exc.reason)
        return EXIT_FAILURE
    except (PmxcfsError, RuntimeError, OSError, pykka.Timeout) as exc:
        log.critical("startup failed: %s", exc)
        return EXIT_FAILURE
    finally:
        shutdown(actors.stop_steps(), opts.pidfile, lock)
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
