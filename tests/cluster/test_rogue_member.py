"""A rogue CPG member multicasting garbage to both groups neither crashes nor corrupts a node.

Three nodes run our daemons; a rogue process (tests/cluster/rogue.py) joins pve_dcdb_v1 and
pve_kvstore_v1 from inside node 2's netns and sends garbage for a few seconds: random bytes,
cut and mutated captured messages, good headers over bad payloads stamped with the current sync
epoch, huge length fields, big messages. A bad DCDB message makes a node leave the group and
rejoin 5 s later (the protocol), and while the rogue is a member no sync round can finish
(it never sends a STATE the nodes accept), so writes wait until it is gone; reads never wait.

While it runs: every daemon lives and its mount answers. After it left: every node takes writes
again, all converge to one memdb index holding every write, both groups are synced, .members
shows every node online, and the status files still parse.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lab.cluster import CorosyncLab, NodeDaemon, wait_same_index
from lab.daemon import REPO
from lab.nodes import start_nodes, wait_writable
from lab.probes import fresh_stat, status_json, wait_status
from tests.integration.mounts import require_fuse

pytestmark = [pytest.mark.corosync, pytest.mark.fuse]

ROGUE_NODE = 2
ROGUE_SECONDS = 10.0
ROGUE_RATE = 60.0
"""Messages per second and group (two CPU cores carry corosync, three daemons and the rogue)."""
ROGUE_DEADLINE_S = 90.0
"""The rogue's join wait (20 s) plus its run, with room for a loaded machine."""
RECOVER_S = 90.0
"""A node that left rejoins after 5 s and resyncs; allow for several rounds on a loaded box."""
MIN_SENT = 100
"""Fewer messages than this per group would not be the flood the test is about."""


def check_alive(daemons: list[NodeDaemon]) -> None:
    """Every daemon runs and its mount answers reads (of the tree and of status files)."""
    for pve in daemons:
        assert pve.proc is not None
        assert pve.proc.poll() is None, f"{pve.nodename} exited {pve.proc.returncode}: {pve.lines[-30:]}"
        fresh_stat(pve.mount)
        assert pve.path("testdir/before.cfg").read_bytes() == b"written before the rogue\n"
        assert status_json(pve, ".members")["nodename"] == pve.nodename


def run_rogue(lab: CorosyncLab, daemons: list[NodeDaemon], seed: int) -> dict[str, Any]:
    """Start the rogue on ROGUE_NODE, check the daemons while it runs, return its report."""
    argv = [
        sys.executable,
        "-m",
        "tests.cluster.rogue",
        "--seconds",
        str(ROGUE_SECONDS),
        "--seed",
        str(seed),
        "--rate",
        str(ROGUE_RATE),
    ]
    rogue = lab.node_popen(
        ROGUE_NODE, argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    checks = 0
    try:
        while rogue.poll() is None:
            check_alive(daemons)
            checks += 1
            with contextlib.suppress(subprocess.TimeoutExpired):
                rogue.wait(timeout=0.5)  # paces the checks; returns as soon as the rogue is done
            assert checks < ROGUE_DEADLINE_S / 0.5, "the rogue did not finish in time"
        out, err = rogue.communicate(timeout=30)
    finally:
        if rogue.poll() is None:
            rogue.kill()
            rogue.wait(30)
    assert rogue.returncode == 0, err.decode(errors="replace")
    assert checks >= 3, "the daemons were not checked while the rogue ran"
    report: dict[str, Any] = json.loads(out.decode().splitlines()[-1])
    return report


def daemon_lines(daemons: list[NodeDaemon], text: str) -> list[str]:
    return [f"{pve.nodename}: {line}" for pve in daemons for line in pve.lines if text in line]


def test_rogue_member_garbage_to_both_groups(cluster3: CorosyncLab, tmp_path: Path) -> None:
    require_fuse()
    daemons = start_nodes(cluster3, tmp_path, (1, 2, 3))
    n1 = daemons[0]
    n1.path("testdir").mkdir()
    n1.path("testdir/before.cfg").write_bytes(b"written before the rogue\n")
    before = wait_same_index([pve.db for pve in daemons])

    report = run_rogue(cluster3, daemons, seed=20261125)

    for group in ("pve_dcdb_v1", "pve_kvstore_v1"):
        seen = report[group]
        assert seen["joined"], (group, seen)
        assert seen["sent"] >= MIN_SENT, (group, seen)
        assert seen["epoch_seen"], f"{group}: the rogue saw no state message, so none was stamped"
    # the garbage reached both DFSMs: DCDB nodes left over it (and rejoin on their own); kvstore
    # nodes left too, or dropped it in the application
    assert daemon_lines(daemons, "dcdb leaves the group"), [ln for pve in daemons for ln in pve.lines[-40:]]
    kvstore_reactions = [
        line
        for text in ("kvstore leaves the group", "ignore kvstore message", "ignore a member's cluster log")
        for line in daemon_lines(daemons, text)
    ]
    assert kvstore_reactions, [ln for pve in daemons for ln in pve.lines[-40:]]
    check_alive(daemons)

    for pve in daemons:
        wait_writable(pve, timeout=RECOVER_S)
    for pve in daemons:
        pve.path(f"testdir/after-{pve.nodename}.cfg").write_bytes(f"{pve.nodename} after\n".encode())
    after = wait_same_index([pve.db for pve in daemons], timeout=RECOVER_S)
    assert int.from_bytes(after[:8], "little") > int.from_bytes(before[:8], "little")
    for pve in daemons:
        names = sorted(path.name for path in pve.path("testdir").iterdir())
        assert names == ["after-node1.cfg", "after-node2.cfg", "after-node3.cfg", "before.cfg"], pve.nodename
        assert pve.path("testdir/after-node3.cfg").read_bytes() == b"node3 after\n"

    synced = {"dcdb": "synced", "kvstore": "synced"}
    for pve in daemons:
        health = wait_status(
            pve, ".health", lambda h: h["sync"] == synced and h["online"] == [1, 2, 3], RECOVER_S
        )
        assert (health["writable"], health["database"]["error_latched"]) == (True, False), health
        members = wait_status(
            pve,
            ".members",
            lambda m: (
                {name: node["online"] for name, node in m["nodelist"].items()}
                == {"node1": 1, "node2": 1, "node3": 1}
            ),
            RECOVER_S,
        )
        assert members["cluster"]["quorate"] == 1
        assert {"node1", "node2", "node3"} <= {e["node"] for e in status_json(pve, ".clusterlog")["data"]}
        status_json(pve, ".version")
        status_json(pve, ".vmlist")
    check_alive(daemons)
    for text in ("Traceback", "] error:", "] crit:", "VERSION_ERROR"):
        assert not daemon_lines(daemons, text), daemon_lines(daemons, text)
