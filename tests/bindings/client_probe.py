"""A corosync client for the binding tests: runs one scenario, prints one JSON object.

Python 3.11 has no os.setns, so the tests run this in the node's network namespace through
``nsenter --net=/run/netns/NAME python -m tests.bindings.client_probe SCENARIO [ARGS]``.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bindings import libcpg
from bindings.libcmap import CMAP_TRACK_ADD, CMAP_TRACK_DELETE, CMAP_TRACK_MODIFY, CmapHandle
from bindings.libcpg import CpgAddress, CpgHandle, CpgRingId
from bindings.libquorum import CS_TRACK_CHANGES, QuorumHandle
from errors import CsError, CsLibraryError, CsTryAgain

GROUP = b"pve_dcdb_v1"
STEP_TIMEOUT_S = 5.0


class Boom(Exception):
    """Raised by a deliver callback on purpose."""


def pump(handle: Any, done: Callable[[], bool], timeout: float = STEP_TIMEOUT_S) -> None:
    """Poll the handle's fd and dispatch until ``done()``; raise TimeoutError at the deadline."""
    deadline = time.monotonic() + timeout
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("condition not reached")
        if select.select([handle.fd()], [], [], left)[0]:
            handle.dispatch()


def retry_try_again(call: Callable[[], None], handle: Any) -> None:
    """Run ``call``; on CsTryAgain dispatch and retry (what pmxcfs does during a sync)."""
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while True:
        try:
            call()
            return
        except CsTryAgain:
            if time.monotonic() > deadline:
                raise
            if select.select([handle.fd()], [], [], 0.05)[0]:
                handle.dispatch()


def err(exc: CsError) -> dict[str, Any]:
    return {"class": type(exc).__name__, "code": exc.code, "name": exc.name, "call": exc.call}


def addr(a: CpgAddress) -> list[int]:
    return [a.nodeid, a.pid, a.reason]


def scenario_wait(seconds: str) -> dict[str, Any]:
    """Until the deadline: connect to quorum (corosync may still be starting), then wait for quorum."""
    start = time.monotonic()
    deadline = start + float(seconds)
    quorum = QuorumHandle()
    state: list[bool] = []
    while True:
        try:
            quorum.initialize(lambda quorate, _seq, _nodes: state.append(quorate))
            break
        except (CsLibraryError, CsTryAgain):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)  # corosync is not listening yet; nothing to wait on but time
    with quorum:
        quorum.trackstart()
        pump(quorum, lambda: bool(state) and state[-1], deadline - time.monotonic())
    return {"quorate": True, "elapsed": time.monotonic() - start}


def scenario_cpg() -> dict[str, Any]:
    events: list[tuple[Any, ...]] = []
    pid = os.getpid()
    out: dict[str, Any] = {"pid": pid}

    def deliver(group: bytes, nodeid: int, sender: int, payload: bytes) -> None:
        events.append(("deliver", group, nodeid, sender, payload))
        if payload == b"boom":
            raise Boom("raised in deliver")

    def confchg(group: bytes, members: Any, left: Any, joined: Any) -> None:
        events.append(("confchg", group, members, left, joined))

    def totem(ring: CpgRingId, members: tuple[int, ...]) -> None:
        events.append(("totem", ring, members))

    def of(kind: str) -> list[tuple[Any, ...]]:
        return [e for e in events if e[0] == kind]

    with CpgHandle() as cpg:
        cpg.initialize(deliver, confchg, totem)
        out["local_nodeid"] = cpg.local_get()
        out["max_atomic_msgsize"] = cpg.max_atomic_msgsize()
        cpg.dispatch()
        out["totem_before_join"] = bool(of("totem"))

        # corosync sends the initial totem ring in answer to the join (the flag travels with it).
        retry_try_again(lambda: cpg.join(GROUP), cpg)
        pump(cpg, lambda: any(any(j.pid == pid for j in e[4]) for e in of("confchg")) and bool(of("totem")))
        ring, members = of("totem")[0][1:]
        out["totem"] = {"nodeid": ring.nodeid, "seq": ring.seq, "members": list(members)}
        out["order"] = [e[0] for e in events]
        group, members, left, joined = of("confchg")[0][1:]
        out["confchg"] = {
            "group": group.decode(),
            "members": [addr(m) for m in members],
            "left": [addr(m) for m in left],
            "joined": [addr(m) for m in joined],
        }
        out["membership"] = [addr(m) for m in cpg.membership_get(GROUP)]
        out["membership_len11"] = raw_membership_count(cpg, GROUP, len(GROUP))
        out["membership_len12"] = raw_membership_count(cpg, GROUP, len(GROUP) + 1)

        parts = [b"hello ", b"\x00\xff binary \x00", b"", os.urandom(300_000)]
        retry_try_again(lambda: cpg.mcast(parts), cpg)
        pump(cpg, lambda: bool(of("deliver")))
        group, nodeid, sender, payload = of("deliver")[0][1:]
        out["deliver"] = {
            "group": group.decode(),
            "nodeid": nodeid,
            "pid": sender,
            "same_bytes": payload == b"".join(parts),
            "size": len(payload),
        }

        out["callback_error"] = raising_callback(cpg, events)

        cpg.leave(GROUP)
        pump(cpg, lambda: any(any(a.pid == pid for a in e[3]) for e in of("confchg")))
        out["left"] = [addr(a) for e in of("confchg") for a in e[3]]
    out["initialized_after_exit"] = cpg.initialized
    return out


def raw_membership_count(cpg: CpgHandle, group: bytes, length: int) -> int:
    """cpg_membership_get with a hand-made cpg_name of the given length (11: without the NUL)."""
    name = libcpg.cpg_name()
    name.value = group
    name.length = length
    members = (libcpg.cpg_address * libcpg.CPG_MEMBERS_MAX)()
    count = libcpg.c_int(libcpg.CPG_MEMBERS_MAX)
    handle = cpg._require("test")
    libcpg._lib().cpg_membership_get(handle, libcpg.byref(name), members, libcpg.byref(count))
    return count.value


def raising_callback(cpg: CpgHandle, events: list[tuple[Any, ...]]) -> dict[str, Any]:
    """A deliver callback that raises: dispatch must re-raise it, and the handle must go on working."""
    raised: list[str] = []
    retry_try_again(lambda: cpg.mcast([b"boom"]), cpg)
    try:
        pump(cpg, lambda: any(e[0] == "deliver" and e[4] == b"boom" for e in events))
    except Boom as exc:
        raised.append(str(exc))
    retry_try_again(lambda: cpg.mcast([b"after"]), cpg)
    pump(cpg, lambda: any(e[0] == "deliver" and e[4] == b"after" for e in events))
    return {"raised": raised, "works_after": True}


def scenario_cmap() -> dict[str, Any]:
    out: dict[str, Any] = {}
    with CmapHandle() as cmap:
        cmap.initialize()
        out["cluster_name"] = cmap.get_string("totem.cluster_name")
        out["nodelist"] = [[n.nodeid, n.name, n.ring0_addr, n.quorum_votes] for n in cmap.nodelist()]
        out["this_node_id"] = cmap.get_uint32("runtime.votequorum.this_node_id")
        out["local_node_pos"] = cmap.get_uint32("nodelist.local_node_pos")
        out["token"] = cmap.get_uint32("totem.token")
        for key, getter in [
            ("totem.config_version", cmap.get_uint64),
            ("totem.cluster_name", cmap.get_uint32),
        ]:
            try:
                getter(key)
                out[key] = "no error"
            except CsError as exc:
                out[key] = err(exc)

        events: list[tuple[int, str]] = []
        track = cmap.track_add("pbtest.", lambda event, key: events.append((event, key)))
        for args in (["-s", "pbtest.u8", "u8", "7"], ["-s", "pbtest.u16", "u16", "65000"]):
            cmapctl(*args)
        cmapctl("-s", "pbtest.u64", "u64", str(2**40 + 5))
        cmapctl("-s", "pbtest.u8", "u8", "9")
        cmapctl("-d", "pbtest.u16")
        pump(cmap, lambda: len(events) >= 5)
        out["events"] = events
        out["u8"] = cmap.get_uint8("pbtest.u8")
        out["u64"] = cmap.get_uint64("pbtest.u64")
        cmap.track_delete(track)
        cmapctl("-s", "pbtest.u8", "u8", "10")
        # A marker tracked separately proves the deleted track stays silent.
        marker: list[str] = []
        cmap.track_add("pbmark", lambda _e, key: marker.append(key), CMAP_TRACK_ADD)
        cmapctl("-s", "pbmark", "u8", "1")
        pump(cmap, lambda: bool(marker))
        out["events_after_delete"] = events[5:]
    out["track_flags"] = [CMAP_TRACK_ADD, CMAP_TRACK_MODIFY, CMAP_TRACK_DELETE]
    return out


def cmapctl(*args: str) -> None:
    subprocess.run(["corosync-cmapctl", *args], check=True, capture_output=True, timeout=10)


def scenario_quorum() -> dict[str, Any]:
    out: dict[str, Any] = {}
    notes: list[tuple[bool, int, tuple[int, ...]]] = []
    with QuorumHandle() as quorum:
        out["quorum_type"] = quorum.initialize(lambda q, seq, nodes: notes.append((q, seq, nodes)))
        out["getquorate"] = quorum.getquorate()
        quorum.trackstart(CS_TRACK_CHANGES)  # what pmxcfs asks for: the current state comes at once
        pump(quorum, lambda: bool(notes))
        quorate, seq, nodes = notes[0]
        out["notify"] = {"quorate": quorate, "ring_seq": seq, "nodes": list(nodes)}
        quorum.trackstop()
    return out


def scenario_noserver() -> dict[str, Any]:
    """Initialize every handle where no corosync listens (an empty network namespace)."""
    out: dict[str, Any] = {}
    handles: list[tuple[str, Callable[[], object]]] = [
        ("cpg", lambda: CpgHandle().initialize(lambda *_: None, lambda *_: None)),
        ("cmap", lambda: CmapHandle().initialize()),
        ("quorum", lambda: QuorumHandle().initialize(lambda *_: None)),
    ]
    for name, init in handles:
        start = time.monotonic()
        try:
            init()
            out[name] = {"class": None}
        except CsError as exc:
            out[name] = err(exc)
        out[name]["elapsed"] = time.monotonic() - start
    return out


def scenario_kill() -> dict[str, Any]:
    """Connect, say "ready", wait for the test to kill corosync, then see what every call returns."""
    out: dict[str, Any] = {}
    cpg, quorum, cmap = CpgHandle(), QuorumHandle(), CmapHandle()
    joined: list[bool] = []
    cpg.initialize(lambda *_: None, lambda _g, _m, _l, j: joined.append(bool(j)))
    retry_try_again(lambda: cpg.join(b"pb_kill"), cpg)
    pump(cpg, lambda: bool(joined))
    quorum.initialize(lambda *_: None)
    cmap.initialize()
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()

    start = time.monotonic()
    dispatches = 0
    try:
        while time.monotonic() - start < STEP_TIMEOUT_S:
            if select.select([cpg.fd()], [], [], STEP_TIMEOUT_S)[0]:
                dispatches += 1
                cpg.dispatch()
        out["cpg_dispatch"] = "no error"
    except CsError as exc:
        out["cpg_dispatch"] = err(exc)
    out["cpg_dispatch_ok_before_error"] = dispatches - 1
    out["detect_s"] = time.monotonic() - start
    for name, call in [
        ("cpg_mcast", lambda: cpg.mcast([b"x"])),
        ("cpg_local_get", cpg.local_get),
        ("quorum_getquorate", quorum.getquorate),
        ("cmap_get_string", lambda: cmap.get_string("totem.cluster_name")),
    ]:
        try:
            call()
            out[name] = "no error"
        except CsError as exc:
            out[name] = err(exc)
    for name, handle in [("cpg", cpg), ("quorum", quorum), ("cmap", cmap)]:
        handle.finalize()  # must not raise although corosync is gone
        out[f"{name}_finalized"] = not handle.initialized
    try:
        cpg.initialize(lambda *_: None, lambda *_: None)
        out["reinitialize"] = "no error"
    except CsError as exc:
        out["reinitialize"] = err(exc)
    return out


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {
    "wait": scenario_wait,
    "cpg": scenario_cpg,
    "cmap": scenario_cmap,
    "quorum": scenario_quorum,
    "noserver": scenario_noserver,
    "kill": scenario_kill,
}


def main() -> None:
    name, *args = sys.argv[1:]
    result = SCENARIOS[name](*args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
