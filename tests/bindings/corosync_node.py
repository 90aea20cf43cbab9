"""A real single-node corosync in its own network namespace, and a client that runs inside it.

As corolab.sh's netns mode: the node gets a netns with its ring0 address on ``lo`` (libqb's
abstract sockets are per netns) and a private /run and /var/lib/corosync (pid-file lock, ring id
state) through ``unshare --mount``. Python 3.11 cannot setns, so each client scenario runs in
``nsenter --net=... python -m tests.bindings.client_probe`` and prints JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bindings import libcmap, libcpg, libquorum
from bindings._loader import load_library
from tests.require import require

REPO = Path(__file__).resolve().parents[2]
QUORATE_TIMEOUT_S = 15.0
PROBE_TIMEOUT_S = 20.0
TOOLS = ("corosync", "corosync-cmapctl", "ip", "nsenter", "unshare")

CONF = """\
totem {{
  version: 2
  cluster_name: {cluster}
  transport: knet
  crypto_cipher: none
  crypto_hash: none
  token: 500
  token_coefficient: 0
}}
logging {{
  to_stderr: yes
  to_logfile: no
  to_syslog: no
  timestamp: hires
}}
quorum {{
  provider: corosync_votequorum
}}
nodelist {{
  node {{
    name: node1
    nodeid: 1
    ring0_addr: {addr}
  }}
}}
"""


def missing_corosync_pieces() -> list[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    for module in (libcpg, libcmap, libquorum):
        try:
            load_library(module.SONAME, {})
        except ImportError:
            missing.append(module.SONAME)
    return missing


def require_corosync() -> None:
    """Skip on a box without corosync; under CI=true a missing piece fails."""
    require(missing_corosync_pieces(), "corosync tests")


def probe_command(scenario: str, *args: str, netns: str | None) -> list[str]:
    """Run client_probe in ``netns``, or in a fresh empty netns for None."""
    enter = ["nsenter", f"--net=/run/netns/{netns}", "--"] if netns else ["unshare", "--net", "--"]
    return [*enter, sys.executable, "-m", "tests.bindings.client_probe", scenario, *args]


def run_probe(
    scenario: str, *args: str, netns: str | None, timeout: float = PROBE_TIMEOUT_S
) -> dict[str, Any]:
    done = subprocess.run(
        probe_command(scenario, *args, netns=netns),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"probe {scenario} failed:\n{done.stderr}"
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line of the probe's stdout, or an AssertionError at the deadline."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "probe printed nothing in time"
    return proc.stdout.readline()


@dataclass
class CorosyncNode:
    """One corosync process in the network namespace ``netns``; ``cleanup`` undoes everything."""

    base: Path
    netns: str
    addr: str
    cluster: str = "pbtest"
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    probes: list[subprocess.Popen[str]] = field(default_factory=list, init=False)
    pids: list[int] = field(default_factory=list, init=False)

    @property
    def log(self) -> str:
        path = self.base / "corosync.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> CorosyncNode:
        for sub in ("run", "lib", "log"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        conf = self.base / "corosync.conf"
        conf.write_text(CONF.format(cluster=self.cluster, addr=self.addr))
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", self.netns, "addr", "add", f"{self.addr}/24", "dev", "lo"], check=True)
        script = (
            "set -e; "
            f"mount --bind '{self.base / 'run'}' /run; "
            f"mount --bind '{self.base / 'lib'}' /var/lib/corosync; "
            f"if [ -d /var/log/corosync ]; then mount --bind '{self.base / 'log'}' /var/log/corosync; fi; "
            f"exec corosync -f -c '{conf}'"
        )
        command = ["ip", "netns", "exec", self.netns, "unshare", "--mount", "--propagation", "private"]
        command += ["--", "bash", "-c", script]
        with open(self.base / "corosync.log", "wb") as log:
            # ip netns exec, unshare and bash all exec, so this pid ends up being corosync's.
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pids.append(self.proc.pid)
        return self

    def wait_quorate(self) -> float:
        """Wait (through our own quorum binding) until the node is quorate; the seconds it took."""
        try:
            result = run_probe(
                "wait", str(QUORATE_TIMEOUT_S), netns=self.netns, timeout=QUORATE_TIMEOUT_S + 5
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\ncorosync log:\n{self.log}") from None
        assert self.proc is not None
        assert self.proc.poll() is None, f"corosync exited:\n{self.log}"
        return float(result["elapsed"])

    def probe(self, scenario: str, *args: str) -> dict[str, Any]:
        return run_probe(scenario, *args, netns=self.netns)

    def spawn_probe(self, scenario: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            probe_command(scenario, netns=self.netns),
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.probes.append(proc)
        return proc

    def kill(self) -> None:
        """SIGKILL corosync (by its pid) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        for probe in self.probes:
            if probe.poll() is None:
                probe.kill()
            probe.communicate(timeout=10)
        self.kill()
        for pid in self.pids:
            # libqb leftovers after SIGKILL: the blackbox and the clients' ring buffers.
            for leftover in [
                *Path("/dev/shm").glob(f"qb-corosync-{pid}-*"),
                *Path("/dev/shm").glob(f"qb-{pid}-*"),
            ]:
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
        subprocess.run(["ip", "netns", "del", self.netns], check=False, capture_output=True)


@contextlib.contextmanager
def corosync_node(base: Path, index: int) -> Iterator[CorosyncNode]:
    require_corosync()
    node = CorosyncNode(base, netns=f"pb-{os.getpid()}-n{index}", addr=f"10.214.{index}.1")
    try:
        node.start().wait_quorate()
        yield node
    finally:
        node.cleanup()
