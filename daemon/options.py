"""Command line, compatible with the original pmxcfs (-f, -d, -l) plus per-instance paths."""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass
from typing import NoReturn


@dataclass(frozen=True, slots=True)
class Options:
    """What the command line asked for."""

    foreground: bool
    debug: bool
    local: bool
    mount: str
    db: str
    rundir: str
    nodename: str | None
    """None: ask corosync, then the host name (daemon/identity.py)."""
    pidfile: str
    lock_wait: float
    corosync_conf: str = "/etc/corosync/corosync.conf"
    verify_period: float = 3600.0
    """Seconds between the lowest node's checksum comparisons (shorter in tests)."""
    rrd_dir: str = "/var/lib/rrdcached/db"
    """Where RRD updates are written (the original's fixed path)."""
    rrdcached: str = "unix:/var/run/rrdcached.sock"
    """The rrdcached address tried first; empty: write with librrd directly."""
    ipc_name: str = "pve2"
    """The libqb IPC service name of the Perl tools (tests pick their own)."""


def default_nodename() -> str:
    """The host name cut at the first dot, as the original."""
    return socket.gethostname().split(".", 1)[0]


EXIT_BAD_OPTION = 1
"""The original: "option parsing failed", exit 1."""
EXIT_TOO_MANY_ARGUMENTS = 255
"""The original: "too many arguments", exit(-1)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_OPTION, f"{self.prog}: option parsing failed: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pmxcfs", description="Proxmox cluster file system (Python implementation)")
    parser.add_argument("arguments", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("-f", "--foreground", action="store_true", help="do not daemonize")
    parser.add_argument("-d", "--debug", action="store_true", help="turn on debug messages")
    parser.add_argument(
        "-l", "--local", action="store_true", help="force local mode (ignore corosync.conf, force quorum)"
    )
    parser.add_argument("--mount", default="/etc/pve", help="mount point (default: %(default)s)")
    parser.add_argument(
        "--db", default="/var/lib/pve-cluster/config.db", help="database file (default: %(default)s)"
    )
    parser.add_argument(
        "--rundir", default="/run/pve-cluster", help="runtime directory (default: %(default)s)"
    )
    parser.add_argument(
        "--nodename",
        default=None,
        help="node name (default: the corosync nodelist name of this node, else the host name)",
    )
    parser.add_argument(
        "--corosync-conf",
        default="/etc/corosync/corosync.conf",
        help="the host's corosync.conf, imported into a new database (default: %(default)s)",
    )
    parser.add_argument("--pidfile", default="/run/pve-cluster.pid", help="pid file (default: %(default)s)")
    parser.add_argument(
        "--rrd-dir", default="/var/lib/rrdcached/db", help="RRD files directory (default: %(default)s)"
    )
    parser.add_argument(
        "--rrdcached",
        default="unix:/var/run/rrdcached.sock",
        help="rrdcached address tried first; '' writes with librrd directly (default: %(default)s)",
    )
    parser.add_argument("--ipc-name", default="pve2", help="IPC service name (default: %(default)s)")
    parser.add_argument(
        "--verify-period",
        type=float,
        default=3600.0,
        help="seconds between cluster-wide checksum comparisons (default: %(default)s)",
    )
    parser.add_argument(
        "--lock-wait",
        type=float,
        default=10.0,
        help="seconds to wait for another instance to release the database (default: %(default)s)",
    )
    return parser


def parse_args(argv: list[str]) -> Options:
    """Parse ``argv`` (without the program name); exits on bad options as argparse does."""
    parser = _parser()
    ns = parser.parse_args(argv)
    if ns.arguments:
        parser.exit(EXIT_TOO_MANY_ARGUMENTS, f"{parser.prog}: too many arguments\n")
    return Options(
        foreground=ns.foreground,
        debug=ns.debug,
        local=ns.local,
        mount=ns.mount,
        db=ns.db,
        rundir=ns.rundir,
        nodename=ns.nodename,
        corosync_conf=ns.corosync_conf,
        verify_period=ns.verify_period,
        rrd_dir=ns.rrd_dir,
        rrdcached=ns.rrdcached,
        ipc_name=ns.ipc_name,
        pidfile=ns.pidfile,
        lock_wait=ns.lock_wait,
    )
