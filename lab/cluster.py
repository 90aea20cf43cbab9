"""Real corosync 3 clusters on one machine for tests: one network namespace per node (netns mode).

The Python version of ``/work/shared/reference/corolab.sh`` (see ``corosync-notes.md`` beside it).
A lab owns a "switch" netns holding a bridge, and one netns per node joined to it by a veth pair
(MTU 65535). Every node runs ``corosync -f`` in its netns with a private ``/run``,
``/var/lib/corosync`` and ``/var/log/corosync`` (bind mounts in a private mount namespace, so that
the pid-file locks don't collide and a host corosync is never touched). libqb's IPC sockets are
abstract and therefore per netns: a client only has to enter the node's netns
(``nsenter --net=/run/netns/<name>``), and it keeps the host file system and its cwd.

Names are unique per lab (``pc<pid>-<k>-sw``, ``pc<pid>-<k>-n<i>``), so two labs, or two
pytest processes, can run side by side; interface names (``br0``, ``p<i>``, ``eth0``) live inside
our own namespaces only. Each lab also gets its own 10.213.x.0/24, though the traffic never leaves
its own namespaces anyway. :meth:`CorosyncLab.down` undoes everything, by pid and by name, and may
be called any number of times.

Waiting: corosync offers no event we could wait on from outside, so :meth:`CorosyncLab.wait_quorate`
and :meth:`CorosyncLab.wait_members` poll ``corosync-quorumtool`` every 50 ms up to a deadline.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import logging
import os
import shutil
import signal
import subprocess
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lab.daemon import Daemon, is_mounted

log = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")
TOOLS = ("corosync", "corosync-quorumtool", "ip", "nsenter", "unshare", "mount")
"""Programs a lab needs on the host."""

QUORATE_TIMEOUT_S = 20.0
"""Default deadline for quorum and membership waits (3 nodes need ~1.2 s on 2 idle cores)."""
POLL_S = 0.05
TOOL_TIMEOUT_S = 10.0
"""Deadline of one corosync-quorumtool call (it may block while a membership change settles)."""
STOP_TIMEOUT_S = 10.0
"""Deadline for a graceful corosync stop (it needs ~2.3 s) before SIGKILL."""
PMXCFS_STOP_TIMEOUT_S = 30.0

_CORO_SCRIPT = (
    'mount --bind "$1" /run && '
    'mount --bind "$2" /var/lib/corosync && '
    'mount --bind "$3" /var/log/corosync && '
    'exec corosync -f -c "$4"'
)
"""Runs under ``unshare --mount --propagation private``: private state dirs, then corosync itself.

nsenter, unshare and sh all exec, so the pid Popen reports is corosync's own."""

T = TypeVar("T")

_lab_counter = 0
_live_labs: list[CorosyncLab] = []
"""Labs that are not down yet, for the session safety net (:func:`sweep_session`)."""


class LabError(RuntimeError):
    """A lab operation failed (the message carries the relevant corosync log lines)."""


def session_prefix() -> str:
    """The netns name prefix shared by every lab of this process (one pytest session or worker)."""
    return f"pc{os.getpid()}-"


def missing_tools() -> list[str]:
    """What this host lacks to run a lab (empty when everything is there)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    return missing


def list_netns() -> list[str]:
    """The names in ``ip netns list`` (lines look like ``name (id: 3)`` or ``name``)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def delete_netns(names: Iterable[str]) -> list[str]:
    """Delete these netns; returns the errors (a missing one is no error)."""
    errors = []
    for name in names:
        if not (NETNS_DIR / name).exists():
            continue
        res = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            errors.append(f"ip netns del {name}: {res.stderr.strip()}")
    return errors


def sweep_session() -> list[str]:
    """Session safety net: take down every lab still up, then delete any netns of this session.

    Returns the errors, which are also logged.
    """
    errors: list[str] = []
    for lab in list(_live_labs):
        errors += lab.down()
    if shutil.which("ip") is None:
        return errors
    try:
        leftovers = [name for name in list_netns() if name.startswith(session_prefix())]
    except (OSError, subprocess.CalledProcessError) as exc:
        leftovers = []
        errors.append(f"ip netns list: {exc}")
    if leftovers:
        log.warning("session sweep: deleting leftover netns %s", leftovers)
        errors += delete_netns(leftovers)
    for err in errors:
        log.warning("session sweep: %s", err)
    return errors


def poll_until(check: Callable[[], T | None], timeout: float, what: Callable[[], str]) -> T:
    """Call ``check`` every :data:`POLL_S` until it returns something other than None.

    For states only observable by asking (corosync offers no event from outside). Raises
    :class:`LabError` with ``what()`` once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise LabError(f"timeout after {timeout:.1f} s: {what()}")
        time.sleep(POLL_S)  # polling helper: nothing to wait on


@dataclass
class NodeDaemon(Daemon):
    """Our pmxcfs (main.py) running inside a node's netns, with every path below ``base``.

    ``args`` replaces the default argument list (everything after ``main.py``);
    ``extra_args`` is appended either way.
    """

    netns: str = ""
    local: bool = True
    args: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.db = self.base / "config.db"
        self.mount = self.base / "mnt"

    def default_args(self) -> list[str]:
        args = self.base_args("pid")
        return [*args, "-l"] if self.local else args

    def command(self) -> list[str]:
        args = list(self.args) if self.args is not None else self.default_args()
        return [
            "nsenter",
            f"--net={NETNS_DIR / self.netns}",
            "--",
            *self.entry(),
            *args,
            *self.extra_args,
        ]


@dataclass
class _Node:
    """Per node state: its folder and the corosync process, if any."""

    nodeid: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.dir / "corosync.log"

    @property
    def conf(self) -> Path:
        return self.dir / "corosync.conf"


class CorosyncLab:
    """An N-node corosync cluster in network namespaces; see the module docstring."""

    def __init__(
        self,
        root: Path,
        *,
        cluster_name: str = "pmxlab",
        token_ms: int = 500,
        token_coefficient: int = 0,
        mtu: int = 65535,
    ) -> None:
        global _lab_counter
        _lab_counter += 1
        self.prefix = f"{session_prefix()}{_lab_counter}"
        self.subnet = f"10.213.{zlib.crc32(self.prefix.encode()) % 254 + 1}"
        self.state_dir = Path(root) / self.prefix
        self.cluster_name = cluster_name
        self.token_ms = token_ms
        self.token_coefficient = token_coefficient
        self.mtu = mtu
        self.nodes: dict[int, _Node] = {}
        self._netns: list[str] = []  # created by us, in creation order
        self._clients: list[subprocess.Popen[Any]] = []
        self._daemons: dict[int, NodeDaemon] = {}
        self._down = True

    # ----- names ---------------------------------------------------------------------------

    @property
    def switch_netns(self) -> str:
        return f"{self.prefix}-sw"

    def netns(self, i: int) -> str:
        return f"{self.prefix}-n{i}"

    def addr(self, i: int) -> str:
        return f"{self.subnet}.{i}"

    def corosync_conf_path(self, i: int) -> Path:
        """Node i's corosync.conf (every node has its own copy; they start out identical)."""
        return self._node(i).conf

    def log_path(self, i: int) -> Path:
        return self._node(i).log

    def pid(self, i: int) -> int | None:
        """The pid of node i's corosync while it runs."""
        proc = self._node(i).proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def running(self, i: int) -> bool:
        return self.pid(i) is not None

    def nsenter_argv(self, i: int) -> list[str]:
        """The argv prefix that runs a command inside node i's netns."""
        return ["nsenter", f"--net={NETNS_DIR / self.netns(i)}", "--"]

    def _node(self, i: int) -> _Node:
        try:
            return self.nodes[i]
        except KeyError:
            raise LabError(f"no node {i} in lab {self.prefix} (nodes: {sorted(self.nodes)})") from None

    # ----- up ------------------------------------------------------------------------------

    def up(self, n: int, *, wait: bool = True, timeout: float = QUORATE_TIMEOUT_S) -> float:
        """Create the network, start n nodes and (with ``wait``) wait until all are quorate.

        Returns the seconds from launch to all quorate (0.0 without ``wait``).
        """
        if not self._down:
            raise LabError(f"lab {self.prefix} is already up")
        if not 1 <= n <= 250:
            raise ValueError(f"node count {n} out of range")
        self._down = False
        _live_labs.append(self)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for i in range(1, n + 1):
            node = _Node(i, self.state_dir / f"n{i}")
            for sub in ("run", "lib", "log"):
                (node.dir / sub).mkdir(parents=True, exist_ok=True)
            self.nodes[i] = node
        conf = self.corosync_conf(n)
        for node in self.nodes.values():
            node.conf.write_text(conf)
        self._net_up(n)
        t0 = time.monotonic()
        for i in self.nodes:
            self.start(i)
        if not wait:
            return 0.0
        self.wait_all_quorate(timeout=timeout)
        elapsed = time.monotonic() - t0
        log.info("lab %s: %d nodes quorate after %.2f s", self.prefix, n, elapsed)
        return elapsed

    def corosync_conf(self, n: int) -> str:
        """The corosync.conf text for nodes 1..n (knet, no crypto, short token, votequorum)."""
        nodes = "".join(
            f"  node {{\n    name: node{i}\n    nodeid: {i}\n    quorum_votes: 1\n"
            f"    ring0_addr: {self.addr(i)}\n  }}\n"
            for i in range(1, n + 1)
        )
        return (
            "totem {\n"
            "  version: 2\n"
            f"  cluster_name: {self.cluster_name}\n"
            "  config_version: 1\n"
            "  transport: knet\n"
            "  ip_version: ipv4\n"
            "  crypto_cipher: none\n"
            "  crypto_hash: none\n"
            f"  token: {self.token_ms}\n"
            f"  token_coefficient: {self.token_coefficient}\n"
            "}\n"
            "logging {\n"
            "  to_stderr: yes\n"
            "  to_logfile: no\n"
            "  to_syslog: no\n"
            "  timestamp: hires\n"
            "}\n"
            "quorum {\n"
            "  provider: corosync_votequorum\n"
            "}\n"
            f"nodelist {{\n{nodes}}}\n"
        )

    def _ip(self, *args: str) -> None:
        res = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise LabError(f"ip {' '.join(args)}: {res.stderr.strip()}")

    def _add_netns(self, name: str) -> None:
        self._ip("netns", "add", name)
        self._netns.append(name)

    def _net_up(self, n: int) -> None:
        sw = self.switch_netns
        self._add_netns(sw)
        self._ip("-n", sw, "link", "add", "br0", "type", "bridge")
        self._ip("-n", sw, "link", "set", "br0", "up")
        mtu = str(self.mtu)
        for i in range(1, n + 1):
            ns = self.netns(i)
            self._add_netns(ns)
            # created straight inside the two namespaces: no name ever exists in the root netns
            self._ip("link", "add", "eth0", "netns", ns, "mtu", mtu, "type", "veth",
                     "peer", "name", f"p{i}", "netns", sw, "mtu", mtu)  # fmt: skip
            self._ip("-n", sw, "link", "set", f"p{i}", "master", "br0", "up")
            self._ip("-n", ns, "addr", "add", f"{self.addr(i)}/24", "dev", "eth0")
            self._ip("-n", ns, "link", "set", "eth0", "up")
            self._ip("-n", ns, "link", "set", "lo", "up")

    # ----- corosync processes ------------------------------------------------------------

    def start(self, i: int) -> int:
        """Start node i's corosync (again); returns its pid. Does not wait for quorum."""
        node = self._node(i)
        if self._down:
            raise LabError(f"lab {self.prefix} is down")
        if self.running(i):
            raise LabError(f"node{i} already runs corosync (pid {self.pid(i)})")
        if node.proc is not None:
            self._reap(node)
        argv = [
            *self.nsenter_argv(i),
            "unshare", "--mount", "--propagation", "private", "--",
            "sh", "-c", _CORO_SCRIPT, "sh",
            str(node.dir / "run"), str(node.dir / "lib"), str(node.dir / "log"), str(node.conf),
        ]  # fmt: skip
        with node.log.open("ab") as out:
            out.write(f"===== lab {self.prefix}: starting node{i}\n".encode())
            out.flush()
            node.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        log.info("lab %s: node%d corosync pid %d", self.prefix, i, node.proc.pid)
        return node.proc.pid

    def kill(self, i: int) -> None:
        """SIGKILL node i's corosync and reap it."""
        self._signal(i, signal.SIGKILL, STOP_TIMEOUT_S)

    def stop(self, i: int, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM node i's corosync and wait for it (SIGKILL after ``timeout``)."""
        self._signal(i, signal.SIGTERM, timeout)

    def _signal(self, i: int, sig: int, timeout: float) -> None:
        node = self._node(i)
        proc = node.proc
        if proc is None or proc.poll() is not None:
            raise LabError(f"node{i} runs no corosync")
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("lab %s: node%d ignored signal %d for %.1f s; SIGKILL", self.prefix, i, sig, timeout)
            proc.kill()
        self._reap(node)

    def _reap(self, node: _Node) -> None:
        """Wait for a signalled or dead corosync; remove its libqb leftovers in /dev/shm."""
        proc = node.proc
        if proc is None:
            return
        proc.wait(STOP_TIMEOUT_S)
        node.proc = None
        # After SIGKILL the blackbox files (qb-corosync-<pid>-blackbox-*) and the folders of
        # client IPC rings (qb-<pid>-<client pid>-<n>-XXXXXX/) stay behind; /dev/shm is shared
        # with the host, and both names carry the pid of our (now reaped) corosync.
        for pattern in (f"/dev/shm/qb-corosync-{proc.pid}-*", f"/dev/shm/qb-{proc.pid}-*"):
            for path in glob.glob(pattern):
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)

    # ----- network -------------------------------------------------------------------------

    def isolate(self, i: int) -> None:
        """Cut node i off: its port on the switch goes down."""
        self._node(i)
        self._ip("-n", self.switch_netns, "link", "set", f"p{i}", "down")

    def heal(self, i: int) -> None:
        """Reconnect node i."""
        self._node(i)
        self._ip("-n", self.switch_netns, "link", "set", f"p{i}", "up")

    # ----- clients -------------------------------------------------------------------------

    def node_exec(self, i: int, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` inside node i's netns (subprocess.run; output captured as text by default)."""
        self._node(i)
        if "stdout" not in kwargs and "stderr" not in kwargs:
            kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("timeout", TOOL_TIMEOUT_S)
        kwargs.setdefault("check", False)
        return subprocess.run([*self.nsenter_argv(i), *argv], **kwargs)

    def node_popen(self, i: int, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside node i's netns; :meth:`down` terminates it if it still runs."""
        self._node(i)
        proc: subprocess.Popen[Any] = subprocess.Popen([*self.nsenter_argv(i), *argv], **kwargs)
        self._clients.append(proc)
        return proc

    # ----- quorum and membership ---------------------------------------------------------

    def quorate(self, i: int) -> bool | None:
        """Node i's quorum state from ``corosync-quorumtool -s``; None if it can't tell (yet)."""
        try:
            res = self.node_exec(i, ["corosync-quorumtool", "-s"])
        except subprocess.TimeoutExpired:
            return None
        # the exit status is 0 when quorate, 2 when not, 1 when corosync can't be reached
        out: str = res.stdout
        for line in out.splitlines():
            if line.startswith("Quorate:"):
                return line.split(":", 1)[1].strip() == "Yes"
        return None

    def members(self, i: int) -> list[int]:
        """The node ids in node i's current membership (``corosync-quorumtool -l``)."""
        res = self.node_exec(i, ["corosync-quorumtool", "-l"])
        if "Membership information" not in res.stdout:
            raise LabError(f"node{i}: corosync-quorumtool -l failed: {res.stderr.strip()}")
        return sorted(_parse_member_ids(res.stdout))

    def _check_alive(self, i: int) -> None:
        if not self.running(i):
            raise LabError(f"node{i}: corosync is not running\n{self.log_tail(i)}")

    def wait_quorate(self, i: int, expect: bool = True, timeout: float = QUORATE_TIMEOUT_S) -> float:
        """Wait until node i's quorum state is ``expect``; returns the seconds waited."""
        t0 = time.monotonic()

        def check() -> bool | None:
            self._check_alive(i)
            return True if self.quorate(i) is expect else None

        poll_until(
            check, timeout, lambda: f"node{i} quorate={self.quorate(i)}, want {expect}\n{self.log_tail(i)}"
        )
        return time.monotonic() - t0

    def wait_all_quorate(
        self, nodes: Iterable[int] | None = None, expect: bool = True, timeout: float = QUORATE_TIMEOUT_S
    ) -> float:
        """Wait until every given node (default: every running node) is quorate (or not)."""
        t0 = time.monotonic()
        todo = [i for i in self.nodes if self.running(i)] if nodes is None else list(nodes)
        for i in todo:
            self.wait_quorate(i, expect, timeout=max(0.0, timeout - (time.monotonic() - t0)))
        return time.monotonic() - t0

    def wait_members(self, i: int, expect: Iterable[int], timeout: float = QUORATE_TIMEOUT_S) -> float:
        """Wait until node i sees exactly the node ids ``expect``; returns the seconds waited."""
        want = sorted(expect)
        t0 = time.monotonic()

        def check() -> bool | None:
            self._check_alive(i)
            try:
                return True if self.members(i) == want else None
            except (LabError, subprocess.TimeoutExpired):
                return None

        poll_until(check, timeout, lambda: f"node{i} members never became {want}\n{self.log_tail(i)}")
        return time.monotonic() - t0

    def log_tail(self, i: int, lines: int = 15) -> str:
        try:
            text = self._node(i).log.read_text(errors="replace")
        except (OSError, LabError) as exc:
            return f"(no log: {exc})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- node{i} corosync log (last {lines} lines) ---\n{tail}"

    # ----- our daemon inside a node --------------------------------------------------------

    def start_pmxcfs(
        self,
        i: int,
        base_dir: Path,
        extra_args: Sequence[str] = (),
        *,
        args: Sequence[str] | None = None,
        local: bool = True,
        wait: bool = True,
        inject: str = "",
        wrapper: Sequence[str] = (),
    ) -> NodeDaemon:
        """Run main.py inside node i's netns with every path below ``base_dir``.

        The default arguments are ``-f --mount <base>/mnt --db <base>/config.db --rundir <base>/run
        --pidfile <base>/pid --nodename node<i>`` plus ``-l`` while ``local``; ``args`` replaces
        them all, and ``extra_args`` is appended either way. With ``wait``, returns once stderr
        showed ``] info: mounted `` (the mount is visible on the host: nsenter keeps the mount
        namespace). :meth:`down` stops it if the test doesn't. ``inject`` runs it behind
        tests/integration/faulty_main.py with that SPEC, ``wrapper`` behind that script and its
        arguments.
        """
        self._node(i)
        running = self._daemons[i].proc if i in self._daemons else None
        if running is not None and running.poll() is None:
            raise LabError(f"node{i} already runs pmxcfs")
        base = Path(base_dir)
        base.mkdir(parents=True, exist_ok=True)
        daemon = NodeDaemon(
            base,
            nodename=f"node{i}",
            extra_args=tuple(extra_args),
            netns=self.netns(i),
            local=local,
            args=tuple(args) if args is not None else None,
            inject=inject,
            wrapper=tuple(wrapper),
        )
        self._daemons[i] = daemon
        daemon.start(wait=wait)
        return daemon

    def pmxcfs(self, i: int) -> NodeDaemon:
        try:
            return self._daemons[i]
        except KeyError:
            raise LabError(f"node{i} has no pmxcfs") from None

    def stop_pmxcfs(self, i: int, sig: int = signal.SIGTERM, timeout: float = PMXCFS_STOP_TIMEOUT_S) -> int:
        """Signal node i's pmxcfs, wait for it, make sure its mount is gone; returns its exit status."""
        daemon = self.pmxcfs(i)
        assert daemon.proc is not None
        if daemon.proc.poll() is None:
            daemon.proc.send_signal(sig)
        code = daemon.wait_exit(timeout)
        if is_mounted(daemon.mount):
            log.warning("node%d: pmxcfs exited %d but left %s mounted; lazy unmount", i, code, daemon.mount)
            subprocess.run(["fusermount", "-u", "-z", str(daemon.mount)], capture_output=True, check=False)
        return code

    # ----- down --------------------------------------------------------------------------

    def down(self, *, keep_state: bool = False) -> list[str]:
        """Stop everything this lab started and remove it; safe to call again.

        Order: our pmxcfs daemons, client processes, corosyncs (SIGKILL by pid, reaped, their
        /dev/shm leftovers removed), the netns, the state folder (kept with ``keep_state``, e.g. to
        read the logs of a failed test). Every step runs even if an earlier one failed; the errors
        are logged and returned.
        """
        errors: list[str] = []

        def attempt(what: str, fn: Callable[[], object]) -> None:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - teardown goes on whatever happens
                errors.append(f"{what}: {exc!r}")

        for i, daemon in sorted(self._daemons.items()):
            attempt(f"pmxcfs of node{i}", daemon.cleanup)
        self._daemons.clear()
        for proc in self._clients:
            attempt(f"client pid {proc.pid}", functools.partial(end_process, proc))
        self._clients.clear()
        for i, node in sorted(self.nodes.items()):
            if node.proc is not None:
                if node.proc.poll() is None:
                    attempt(f"kill node{i} pid {node.proc.pid}", node.proc.kill)
                attempt(f"reap node{i}", functools.partial(self._reap, node))
        attempt("netns", lambda: errors.extend(delete_netns(reversed(self._netns))))
        self._netns = [name for name in self._netns if (NETNS_DIR / name).exists()]
        if not keep_state:
            attempt("state dir", lambda: shutil.rmtree(self.state_dir, ignore_errors=False)
                    if self.state_dir.exists() else None)  # fmt: skip
        self._down = True
        if self in _live_labs:
            _live_labs.remove(self)
        for err in errors:
            log.warning("lab %s down: %s", self.prefix, err)
        return errors

    def __enter__(self) -> CorosyncLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def end_process(proc: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout``; reaped, its pipes closed."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _parse_member_ids(text: str) -> list[int]:
    """Node ids from the "Membership information" table of corosync-quorumtool.

    The rows look like ``         1          1 node1 (local)``: node id, votes, name.
    """
    ids = []
    in_table = False
    for line in text.splitlines():
        fields = line.split()
        if fields[:1] == ["Nodeid"]:
            in_table = True
        elif in_table and fields and fields[0].isdigit():
            ids.append(int(fields[0]))
    return ids


# ----- replicas: a node's tree and memdb index, read from its database ------------------------


def read_memdb(db: Path) -> Any:
    """Node ``db``'s tree (a memdb.tree.MemDb) built from its config.db, opened read-only.

    The daemon may keep writing (WAL mode): each read sees one committed state.
    """
    import sqlite3

    from memdb.loader import load_memdb, normalise_row

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")  # names as the daemon reads them
    try:
        rows = con.execute(
            "SELECT inode, parent, version, writer, mtime, type, name, data FROM tree"
        ).fetchall()
    finally:
        con.close()
    return load_memdb(normalise_row(*row) for row in rows)


def read_index(db: Path) -> bytes:
    """The memdb index (memdb_encode_index) of node ``db``; its SHA-256 is what the nodes compare."""
    index: bytes = read_memdb(db).encode_index()
    return index


def describe_index(index: bytes | None) -> str:
    """``v<version> n<entries> <sha256 prefix>`` for messages."""
    if index is None:
        return "unreadable"
    import hashlib

    from memdb.checksum import INDEX_HEADER

    version, _last, _writer, _mtime, count, _total = INDEX_HEADER.unpack_from(index)
    return f"v{version} n{count} {hashlib.sha256(index).hexdigest()[:12]}"


def try_read_index(db: Path) -> bytes | None:
    """read_index, or None while the database can't be read (not created yet, locked, mid-sync)."""
    import sqlite3

    from errors import PmxcfsError

    try:
        return read_index(db)
    except (sqlite3.Error, PmxcfsError, OSError):
        return None


def wait_same_index(dbs: Sequence[Path], timeout: float = 30.0) -> bytes:
    """Poll until every database holds the same memdb index; returns it.

    Raises :class:`LabError` naming each node's version, entry count and checksum on timeout.
    """
    last: list[bytes | None] = []

    def check() -> bytes | None:
        last[:] = [try_read_index(db) for db in dbs]
        first = last[0]
        return first if first is not None and all(index == first for index in last) else None

    def what() -> str:
        pairs = zip(dbs, last, strict=False)
        return "indexes differ: " + ", ".join(f"{db}: {describe_index(ix)}" for db, ix in pairs)

    return poll_until(check, timeout, what)


# ----- partitions with more than one node on the minority side --------------------------------


def split_off(lab: CorosyncLab, nodes: Iterable[int]) -> None:
    """Move these nodes' switch ports to a second bridge: they reach each other but no one else.

    :meth:`CorosyncLab.isolate` cuts a single node off; this makes a minority of several nodes
    that still form a membership of their own. Undo with :func:`join_back`.
    """
    sw = lab.switch_netns
    exists = subprocess.run(["ip", "-n", sw, "link", "show", "br1"], capture_output=True, check=False)
    if exists.returncode != 0:
        lab._ip("-n", sw, "link", "add", "br1", "type", "bridge")
        lab._ip("-n", sw, "link", "set", "br1", "up")
    for i in nodes:
        lab._node(i)
        lab._ip("-n", sw, "link", "set", f"p{i}", "master", "br1")


def join_back(lab: CorosyncLab, nodes: Iterable[int]) -> None:
    """Put these nodes' ports back on the main bridge (after :func:`split_off`)."""
    for i in nodes:
        lab._node(i)
        lab._ip("-n", lab.switch_netns, "link", "set", f"p{i}", "master", "br0")
