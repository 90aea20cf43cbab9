"""Cluster log merge and STATE (reference 3.3, 3.8, 6.5), against the C nodes' captured rings.

In the capture every kvstore sync round shows each member's STATE. A C node's next STATE is
its merge of the previous round plus the LOG messages it received in between, laid out by
clog_sort: our merge and our STATE must give the same bytes (the 4 padding bytes after each
entry's strings are garbage in C and zero in ours, so they are masked).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from status.clusterlog import MERGE_LIMIT, ClusterLog, aligned_size, entry_key, new_entry
from tests.wire import capture
from tests.wire.capture import Line
from wire import dfsm, kvstore
from wire.kvstore import ClogEntry


def _entries(line: Line) -> list[ClogEntry]:
    return [slot.entry for slot in kvstore.decode_clog(dfsm.decode(line.raw).payload).slots]


def _masked_state(line: Line) -> bytes:
    raw = bytearray(dfsm.decode(line.raw).payload)
    for slot in kvstore.decode_clog(bytes(raw)).slots:
        end = (
            slot.offset
            + kvstore.CLOG_ENTRY_SIZE
            + sum(
                len(s.encode()) + 1
                for s in (slot.entry.node, slot.entry.ident, slot.entry.tag, slot.entry.msg)
            )
        )
        raw[end - 4 : end] = bytes(4)
    return bytes(raw)


@dataclass(frozen=True)
class Step:
    """One node's sync round, the LOG messages it received next, and its STATE in the next round."""

    node: str
    round_states: tuple[Line, ...]
    """Every member's STATE of the round, in member (nodeid, pid) order."""
    logs: tuple[Line, ...]
    next_state: Line


def _steps() -> list[Step]:
    kv = [line for line in capture.lines() if line.group == capture.KVSTORE_GROUP]
    steps = []
    for node in sorted({line.capture_node for line in kv}):
        nodeid = int(node.removeprefix("node"))
        seen = [line for line in kv if line.capture_node == node]
        rounds: dict[tuple[int, ...], list[Line]] = {}
        for line in seen:
            if line.dir == "recv" and line.type_name == "STATE":
                epoch = line.decoded["epoch"]
                rounds.setdefault((epoch["epoch"], epoch["time"], epoch["nodeid"], epoch["pid"]), []).append(
                    line
                )
        ordered = list(rounds.values())
        for current, following in itertools.pairwise(ordered):
            mine = [line for line in current if line.nodeid == nodeid]
            mine_next = [line for line in following if line.nodeid == nodeid]
            if not mine or not mine_next or mine[0].pid != mine_next[0].pid:
                continue  # the node restarted in between: its log started over
            logs = tuple(
                line
                for line in seen
                if current[-1].id < line.id < following[0].id
                and line.dir == "recv"
                and line.payload_kind == "log"
            )
            members = tuple(sorted(current, key=lambda line: (line.nodeid, line.pid)))
            steps.append(Step(node, members, logs, mine_next[0]))
    return steps


STEPS = _steps()


def _replay(step: Step) -> ClusterLog:
    log = ClusterLog()
    log.merge([_entries(line) for line in step.round_states])
    for line in step.logs:
        log.insert(kvstore.decode_log(dfsm.decode(line.raw).payload))
    return log


def test_the_capture_has_merge_rounds() -> None:
    assert len(STEPS) == 10
    assert sum(len(step.round_states) == 3 for step in STEPS) >= 4


@pytest.mark.parametrize("step", STEPS, ids=[f"{s.node}-{s.next_state.id}" for s in STEPS])
def test_merge_then_logs_give_the_c_nodes_next_state(step: Step) -> None:
    log = _replay(step)
    ours = {entry_key(e) for e in log.newest_first()}
    theirs = {entry_key(e) for e in _entries(step.next_state)}
    assert ours <= theirs
    if theirs - ours:
        # a capture gap: the C node merged a round this capture did not record (the entries
        # come from a node that was not in the recorded round)
        members = {line.nodeid for line in step.round_states}
        gap = [e for e in _entries(step.next_state) if entry_key(e) not in ours]
        assert all(e.node.removeprefix("node") not in {str(m) for m in members} for e in gap)
        return
    assert log.state() == _masked_state(step.next_state)


def test_at_least_eight_rounds_are_reproduced_byte_for_byte() -> None:
    exact = 0
    for step in STEPS:
        if _replay(step).state() == _masked_state(step.next_state):
            exact += 1
    assert exact >= 8


# ----- merge rules without the capture ------------------------------------------------


def entry(node: str, time: int, uid: int, msg: str = "m") -> ClogEntry:
    return new_entry(uid=uid, time=time, priority=6, tag="t", pid=1, node=node, ident="root", msg=msg)


def test_merge_takes_the_union_once_in_time_order() -> None:
    a = [entry("n1", 30, 3), entry("n1", 10, 1)]
    b = [entry("n2", 20, 1), entry("n1", 10, 1)]
    log = ClusterLog()
    log.insert(entry("n3", 25, 1))
    assert log.merge([a, None, b]) == 4
    assert [(e.node, e.time) for e in log.newest_first()] == [("n1", 30), ("n3", 25), ("n2", 20), ("n1", 10)]


def test_merge_rebuilds_the_dedup_table() -> None:
    log = ClusterLog()
    log.merge([[entry("n1", 50, 7)], [entry("n2", 40, 2)]])
    assert not log.insert(entry("n1", 50, 7))
    assert not log.insert(entry("n2", 39, 9))
    assert log.insert(entry("n2", 40, 3))


def test_merge_stops_at_time_zero_and_at_the_size_limit() -> None:
    log = ClusterLog()
    log.merge([[entry("n1", 5, 2), entry("n1", 0, 1)]])
    assert [e.time for e in log.newest_first()] == [5]
    big = [entry("n1", 10_000 - i, 10_000 - i, "x" * 1000) for i in range(200)]
    kept = log.merge([big])
    size = aligned_size(big[0])
    assert kept == -(-MERGE_LIMIT // size)  # entries are taken until the limit is reached
    assert [e.time for e in log.newest_first()][:2] == [10_000, 9_999]  # the newest survive


def test_state_is_a_sorted_ring_that_decodes_back() -> None:
    log = ClusterLog()
    for e in (entry("n2", 20, 1), entry("n1", 10, 1), entry("n1", 30, 2)):
        log.insert(e)
    state = kvstore.decode_clog(log.state())
    assert state.size == len(log.state()) == 131072
    assert [(s.entry.node, s.entry.time) for s in state.slots] == [("n1", 30), ("n2", 20), ("n1", 10)]
    assert state.cpos == state.slots[0].offset


def test_a_full_log_still_fits_the_state_ring() -> None:
    log = ClusterLog()
    for i in range(3000):
        log.insert(entry("n1", i + 1, i + 1, "y" * 180))
    state = kvstore.decode_clog(log.state())
    assert len(state.slots) == len(log)
    assert state.slots[0].entry.uid == 3000
