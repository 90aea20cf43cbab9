"""Fault injection on a real corosync cluster of our daemons: nothing acknowledged may be lost.

A run starts N nodes (one netns each, corosync + our daemon in cluster mode), puts a writer
thread on every node and then runs fault cycles. Each cycle injects one fault while the
writers go on, restores the node, measures the time until every node is quorate and accepts a
write again (the recovery time), pauses the writers and checks that every node holds the same
memdb index. The faults, picked in turn from a seeded shuffle:

* ``kill9-daemon``: SIGKILL a daemon, start it again on its database;
* ``restart-corosync``: SIGKILL a node's corosync (its daemon stays), start it again;
* ``isolate``: cut a node off the network until it has lost quorum, then heal it;
* ``restart-mid-sync``: restart a daemon and SIGKILL the new one while it syncs, then start it.

The writers write new files (``chaos/<node>-<n>.cfg``) and replace one file of their own
(``chaos/last-<node>.cfg``, holding their counter) as the Proxmox tools do: a temporary file
renamed over it. A write is acknowledged when open, write and
close all succeeded. At the end, with the writers stopped: every acknowledged file is on every
node with its content, every ``last`` file holds at least its writer's last acknowledged
counter (correctly superseded), all indexes are identical, no write was acknowledged by a node
cut off from the others (started after corosync there reported no quorum, finished before the
heal), and every daemon still answers a write within a deadline (none is wedged).

Run it by hand (as root; the short version runs in the test suite, tests/chaos/test_chaos.py):

    .venv/bin/python -m tests.chaos.runner --nodes 5 --cycles 100 --seed 1
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab.cluster import CorosyncLab, NodeDaemon, read_memdb, try_read_index, wait_same_index
from lab.nodes import start_daemon, start_nodes, wait_writable
from lab.probes import wait_until, write_errno

log = logging.getLogger(__name__)

FAULTS = ("kill9-daemon", "restart-corosync", "isolate", "restart-mid-sync")
RECOVER_S = 60.0
"""Deadline for a node to be quorate and writable again after a fault was undone."""
CONVERGE_S = 60.0
"""Deadline for all nodes to agree on the index once the writers paused (verify repairs a
joiner that wrote during its own sync within a few verify periods)."""
VERIFY_PERIOD_S = 3.0
MINORITY_MARGIN_S = 0.5
"""A write started this long after corosync reported no quorum on the node must be refused."""
WEDGE_S = 15.0
"""At the end every daemon must accept a write and read it back within this."""


@dataclass(frozen=True)
class Ack:
    """An acknowledged write."""

    node: int
    rel: str
    data: bytes
    started: float
    done: float
    counter: int


@dataclass
class Writers:
    """One writer thread per node; ``pause``/``resume`` between cycles, ``stop`` at the end."""

    lab: CorosyncLab
    nodes: Sequence[int]
    acks: list[Ack] = field(default_factory=list)
    refused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _run: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _idle: dict[int, threading.Event] = field(default_factory=dict)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for i in self.nodes:
            self._idle[i] = threading.Event()
            thread = threading.Thread(target=self._loop, args=(i,), name=f"writer-node{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.resume()

    def _loop(self, i: int) -> None:
        n = 0
        while not self._stop.is_set():
            if not self._run.is_set():
                self._idle[i].set()
                self._run.wait(0.2)
                continue
            self._idle[i].clear()
            n += 1
            pve = self.lab.pmxcfs(i)
            rel = f"chaos/node{i}-{n}.cfg" if n % 4 else f"chaos/last-node{i}.cfg"
            data = b"node%d write %d\n" % (i, n)
            started = time.monotonic()
            code = self._write(pve, i, n, rel, data)
            done = time.monotonic()
            with self._lock:
                if code is None:
                    self.acks.append(Ack(i, rel, data, started, done, n))
                else:
                    self.refused += 1
            if code is not None:
                self._stop.wait(0.05)  # a refusing node: don't spin

    @staticmethod
    def _write(pve: NodeDaemon, i: int, n: int, rel: str, data: bytes) -> int | None:
        """A new file is written in place; the ``last`` file is replaced as the Proxmox tools
        do it (a temporary file renamed over it), so a failed attempt leaves the old content."""
        if "/last-" not in rel:
            return write_errno(pve.path(rel), data)
        tmp = pve.path(f"chaos/tmp-node{i}-{n}.tmp")
        code = write_errno(tmp, data)
        if code is not None:
            return code
        try:
            os.rename(tmp, pve.path(rel))
        except OSError as exc:
            return exc.errno or -1
        return None

    def pause(self, timeout: float = 30.0) -> None:
        """Stop writing and wait until every writer finished its current write."""
        self._run.clear()
        for i in self.nodes:
            if not self._idle[i].wait(timeout):
                raise AssertionError(f"the writer of node{i} hangs in a write")

    def resume(self) -> None:
        for event in self._idle.values():
            event.clear()
        self._run.set()

    def stop(self) -> None:
        self._stop.set()
        self._run.set()
        for thread in self._threads:
            thread.join(30)
        hung = [t.name for t in self._threads if t.is_alive()]
        assert not hung, f"writers hang: {hung}"

    def snapshot(self) -> list[Ack]:
        with self._lock:
            return list(self.acks)


@dataclass
class Figures:
    """What a run found."""

    nodes: int
    cycles: int = 0
    faults: dict[str, list[float]] = field(default_factory=dict)
    """fault -> recovery times (s)."""
    acknowledged: int = 0
    refused: int = 0
    lost: list[str] = field(default_factory=list)
    divergent: list[str] = field(default_factory=list)
    minority_acks: list[str] = field(default_factory=list)
    wedged: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.divergent or self.minority_acks or self.wedged)

    def recovery(self) -> list[float]:
        return [t for times in self.faults.values() for t in times]

    def report(self) -> str:
        rec = self.recovery()
        lines = [
            f"chaos run: {self.nodes} nodes, {self.cycles} fault cycles in {self.seconds:.0f} s",
            f"  writes acknowledged: {self.acknowledged}   refused while faulty: {self.refused}",
            f"  acknowledged writes lost: {len(self.lost)}   divergent: {len(self.divergent)}   "
            f"acknowledged in a minority: {len(self.minority_acks)}   wedged daemons: {len(self.wedged)}",
        ]
        if rec:
            lines.append(
                f"  recovery after a fault: median {statistics.median(rec):.2f} s, max {max(rec):.2f} s"
            )
        for fault, times in sorted(self.faults.items()):
            median, worst = statistics.median(times), max(times)
            lines.append(f"    {fault:18} x{len(times):<3} median {median:.2f} s, max {worst:.2f} s")
        for name, problems in (
            ("lost", self.lost),
            ("divergent", self.divergent),
            ("minority", self.minority_acks),
            ("wedged", self.wedged),
        ):
            for problem in problems[:5]:
                lines.append(f"  {name}: {problem}")
        return "\n".join(lines)


class ChaosRun:
    """One bounded run; ``run()`` returns the figures (it never leaves anything running)."""

    def __init__(self, lab: CorosyncLab, base: Path, nodes: int, cycles: int, seed: int) -> None:
        self.lab = lab
        self.base = base
        self.n = nodes
        self.cycles = cycles
        self.rng = random.Random(seed)
        self.figures = Figures(nodes=nodes)
        self.minority: list[tuple[int, float, float]] = []
        """(node, from, to): the node was cut off and corosync there said so."""
        self.extra = ("--verify-period", str(VERIFY_PERIOD_S))
        self.timeline: list[tuple[float, float, str]] = []
        """(from, to, what) of every fault, from its injection to its recovery."""

    @property
    def ids(self) -> list[int]:
        return list(range(1, self.n + 1))

    def daemon(self, i: int) -> NodeDaemon:
        return self.lab.pmxcfs(i)

    def run(self) -> Figures:
        t0 = time.monotonic()
        self.lab.up(self.n)
        daemons = start_nodes(self.lab, self.base, self.ids, self.extra)
        daemons[0].path("chaos").mkdir(exist_ok=True)
        self.converge()
        writers = Writers(self.lab, self.ids)
        writers.start()
        try:
            plan = self.plan()
            for cycle, (fault, node) in enumerate(plan, 1):
                self.wait_progress(writers)
                began = time.monotonic()
                took = self.inject(fault, node)
                self.timeline.append((began, time.monotonic(), f"cycle {cycle} {fault} on node{node}"))
                self.figures.faults.setdefault(fault, []).append(took)
                self.figures.cycles = cycle
                log.info(
                    "cycle %d/%d: %s on node%d, recovered in %.2f s", cycle, len(plan), fault, node, took
                )
                writers.pause()
                self.check_converged(f"after cycle {cycle} ({fault} on node{node})")
                writers.resume()
        finally:
            writers.stop()
        self.final_checks(writers)
        self.figures.seconds = time.monotonic() - t0
        return self.figures

    def plan(self) -> list[tuple[str, int]]:
        """Every fault in turn (a seeded shuffle of each round), on a random node."""
        faults: list[str] = []
        while len(faults) < self.cycles:
            round_ = list(FAULTS)
            self.rng.shuffle(round_)
            faults.extend(round_)
        return [(fault, self.rng.choice(self.ids)) for fault in faults[: self.cycles]]

    def wait_progress(self, writers: Writers, more: int = 5, timeout: float = 30.0) -> None:
        """Let the writers get a few writes through before the next fault."""
        want = len(writers.snapshot()) + more
        wait_until(lambda: len(writers.snapshot()) >= want, timeout, lambda: "writers make no progress")

    # ----- faults -------------------------------------------------------------------------

    def inject(self, fault: str, i: int) -> float:
        """Inject and undo one fault; returns the seconds from undoing it to recovered."""
        if fault == "kill9-daemon":
            self.lab.stop_pmxcfs(i, sig=signal.SIGKILL)
            undone = time.monotonic()
            start_daemon(self.lab, self.base, i, self.extra)
        elif fault == "restart-corosync":
            self.lab.kill(i)
            self.lab.wait_all_quorate([j for j in self.ids if j != i] if self.n > 2 else [], timeout=30)
            self.lab.start(i)
            undone = time.monotonic()
        elif fault == "isolate":
            self.lab.isolate(i)
            self.lab.wait_quorate(i, expect=False, timeout=30)
            cut = time.monotonic()
            time.sleep(self.rng.uniform(0.5, 2.0))  # the node stays cut off for a while: writers hit it
            self.lab.heal(i)
            undone = time.monotonic()
            self.minority.append((i, cut, undone))
        elif fault == "restart-mid-sync":
            self.lab.stop_pmxcfs(i)
            pve = start_daemon(self.lab, self.base, i, self.extra)
            pve.wait_for_line(lambda line: "starting data syncronisation" in line, timeout=30)
            self.lab.stop_pmxcfs(i, sig=signal.SIGKILL)
            undone = time.monotonic()
            start_daemon(self.lab, self.base, i, self.extra)
        else:
            raise ValueError(fault)
        self.lab.wait_all_quorate(timeout=RECOVER_S)
        for j in self.ids:
            wait_writable(self.daemon(j), timeout=RECOVER_S)
        return time.monotonic() - undone

    # ----- checks -------------------------------------------------------------------------

    def converge(self) -> bytes:
        return wait_same_index([self.daemon(i).db for i in self.ids], timeout=CONVERGE_S)

    def check_converged(self, when: str) -> None:
        try:
            self.converge()
        except Exception as exc:  # noqa: BLE001 - recorded as a finding, the run goes on
            indexes = {i: try_read_index(self.daemon(i).db) for i in self.ids}
            self.figures.divergent.append(f"{when}: {exc}"[:300])
            log.error("divergent %s: %s", when, {i: (x or b"")[:16].hex() for i, x in indexes.items()})

    def final_checks(self, writers: Writers) -> None:
        acks = writers.snapshot()
        self.figures.acknowledged = len(acks)
        self.figures.refused = writers.refused
        for i in self.ids:  # nobody wedged: each daemon takes a write and reads it back
            pve = self.daemon(i)
            rel = f"chaos/alive-node{i}.cfg"
            try:
                wait_until(
                    lambda pve=pve, rel=rel: write_errno(pve.path(rel), b"alive\n") is None, WEDGE_S, str
                )
                if pve.path(rel).read_bytes() != b"alive\n":
                    self.figures.wedged.append(f"node{i}: read back differs")
            except (AssertionError, OSError) as exc:
                self.figures.wedged.append(f"node{i}: {exc}"[:200])
        self.check_converged("at the end")
        trees = {i: read_memdb(self.daemon(i).db) for i in self.ids}
        last: dict[str, int] = {}
        for ack in acks:
            if "/last-" in ack.rel:
                last[ack.rel] = max(last.get(ack.rel, 0), ack.counter)
                continue
            missing = [f"node{i}" for i, tree in trees.items() if _read(tree, ack.rel) != ack.data]
            if missing:
                self.figures.lost.append(
                    f"{ack.rel} (acknowledged by node{ack.node} {self.when(ack.done)}) "
                    f"missing on {', '.join(missing)}"
                )
        for rel, counter in last.items():
            for i, tree in trees.items():
                content = _read(tree, rel) or b""
                parts = content.split()
                if len(parts) != 3 or not parts[2].isdigit() or int(parts[2]) < counter:
                    self.figures.lost.append(f"{rel} on node{i} is {content!r}, acknowledged {counter}")
                    break
        for ack in acks:
            for node, cut, healed in self.minority:
                if ack.node == node and ack.started >= cut + MINORITY_MARGIN_S and ack.done <= healed:
                    self.figures.minority_acks.append(f"{ack.rel} acknowledged by node{node} while cut off")

    def when(self, t: float) -> str:
        """During which fault ``t`` was, for the report of a finding."""
        for began, ended, what in self.timeline:
            if began <= t <= ended:
                return f"during {what}, {t - began:.2f} s after it began"
        return "between faults"


def _read(tree: object, rel: str) -> bytes | None:
    try:
        data: bytes = tree.read_all(rel)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - missing or a directory: not the acknowledged file
        return None
    return data


def run_chaos(base: Path, nodes: int, cycles: int, seed: int) -> Figures:
    """A whole run in its own lab, taken down afterwards whatever happened."""
    lab = CorosyncLab(base)
    try:
        return ChaosRun(lab, base, nodes, cycles, seed).run()
    finally:
        errors = lab.down()
        if errors:
            log.error("lab teardown: %s", errors)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.runner", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the state folder (logs) afterwards")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("the chaos run needs root (network namespaces, FUSE)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    base = Path(tempfile.mkdtemp(prefix="pmxcfs-chaos-"))
    figures = run_chaos(base, args.nodes, args.cycles, args.seed)
    print(figures.report())
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
