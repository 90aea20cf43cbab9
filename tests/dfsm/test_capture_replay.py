"""Every C process of dfsm-capture.jsonl, replayed into a Dfsm (see tests/dfsm/replay.py)."""

from __future__ import annotations

import pytest

from dfsm import MemberState, Mode
from tests.dfsm.replay import Event, Replay, dcdb_leader, replay
from tests.wire.capture import DCDB_GROUP, KVSTORE_GROUP
from wire import dfsm as wire

T = wire.MessageType
PROCESSES = {27209: "node1 A-G", 28337: "node1 G3-J1", 27398: "node2 B-M", 27583: "node3 D-M"}
STREAMS = [(pid, group) for pid in PROCESSES for group in (DCDB_GROUP, KVSTORE_GROUP)]


@pytest.fixture(scope="module", params=STREAMS, ids=[f"{PROCESSES[p]}-{g}" for p, g in STREAMS])
def replayed(request: pytest.FixtureRequest) -> tuple[list[Event], Replay]:
    pid, group = request.param
    return replay(pid, group)


def own_sends(stream: list[Event], run: Replay) -> list[int]:
    return [e.id for e in stream if e.dir == "send" and e.sender == run.machine.me]


def test_the_machine_sends_exactly_what_c_sent(replayed: tuple[list[Event], Replay]) -> None:
    stream, run = replayed
    assert run.problems == []
    assert run.matched == own_sends(stream, run)


def test_never_an_error_mode_and_synced_at_the_end(replayed: tuple[list[Event], Replay]) -> None:
    _, run = replayed
    assert not any(mode.is_error for _, mode in run.modes)
    assert run.machine.mode == Mode.SYNCED
    assert run.machine.queue_lengths == (0, 0)


def test_every_round_ends_synced(replayed: tuple[list[Event], Replay]) -> None:
    stream, run = replayed
    modes = dict(run.modes)
    completes = [e.id for e in stream if e.dir == "recv" and e.type == T.UPDATE_COMPLETE]
    assert all(modes[i] == Mode.SYNCED for i in completes)


def test_normal_messages_are_delivered_in_capture_order(replayed: tuple[list[Event], Replay]) -> None:
    stream, run = replayed
    expected = [(e.sender, e.msg.count) for e in stream if e.dir == "recv" and e.type == T.NORMAL]
    assert run.app.delivered == expected


def test_own_messages_get_their_results(replayed: tuple[list[Event], Replay]) -> None:
    stream, run = replayed
    own = [
        e.msg.count for e in stream if e.dir == "recv" and e.sender == run.machine.me and e.type == T.NORMAL
    ]
    assert [r.count for r in run.results] == own
    assert all(r.processed and r.result == 0 for r in run.results)


def test_updates_are_applied_exactly_in_the_rounds_this_process_was_behind(
    replayed: tuple[list[Event], Replay],
) -> None:
    stream, run = replayed
    behind_updates, behind_rounds = expected_updates(stream, run)
    assert run.app.updates == behind_updates
    assert run.app.commits == behind_rounds


def expected_updates(stream: list[Event], run: Replay) -> tuple[list[bytes], int]:
    """Independent of the machine: the UPDATEs of each round whose leader index differs from ours."""
    rounds: dict[wire.Epoch, dict[str, list[Event]]] = {}
    for event in stream:
        if event.raw and event.type in (T.STATE, T.UPDATE) and event.dir == "recv":
            msg = event.msg
            assert isinstance(msg, wire.StateMessage)
            rounds.setdefault(msg.epoch, {}).setdefault(event.type.name, []).append(event)
    updates: list[bytes] = []
    behind = 0
    for messages in rounds.values():
        states = sorted(
            (MemberState(member=e.sender, state=e.msg.payload) for e in messages.get("STATE", [])),
            key=lambda s: s.member,
        )
        if run.machine.protocol_version == 0 or not states:
            continue
        mine = next(s.state for s in states if s.member == run.machine.me)
        if dcdb_leader(states).state != mine:
            behind += 1
            updates += [e.msg.payload for e in messages.get("UPDATE", [])]
    return updates, behind


def test_the_phase_k_gap_is_bridged_only_where_it_exists() -> None:
    stream, _ = replay(27398, DCDB_GROUP)
    synthetic = [e for e in stream if e.synthetic]
    assert len(synthetic) == 1
    assert [m.pid for m in synthetic[0].joined] == [29439]
    stream, _ = replay(28337, DCDB_GROUP)
    assert not any(e.synthetic for e in stream)


def test_node2_sees_the_documented_rounds() -> None:
    # B: behind (17 UPDATEs); D: synced, node3 behind; G, J1, M: node2 is lowest and leader
    stream, run = replay(27398, DCDB_GROUP)
    assert len(run.app.updates) == 17
    sync_starts = [e.msg for e in stream if e.dir == "send" and e.type == T.SYNC_START]
    assert [m.epoch.epoch for m in sync_starts] == [3, 5, 7]
    leader_updates = [e for e in stream if e.dir == "send" and e.type == T.UPDATE]
    assert len(leader_updates) == 4  # G3: node1's new process is behind
