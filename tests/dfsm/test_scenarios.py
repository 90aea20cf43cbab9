"""The sequence diagrams of reference 1.14, run on several Dfsm instances over an in-memory CPG."""

from __future__ import annotations

from dfsm import Mode
from tests.dfsm.cluster import FakeCpg, Node, ToyDb
from wire import dfsm as wire


def assert_converged(cpg: FakeCpg) -> None:
    nodes = cpg.live()
    assert all(n.machine.mode == Mode.SYNCED for n in nodes), [(n.member, n.machine.mode) for n in nodes]
    states = {n.db.get_state() for n in nodes}
    assert len(states) == 1, states
    assert all(n.machine.queue_lengths == (0, 0) for n in nodes)


def wire_types(cpg: FakeCpg, start: int = 0) -> list[str]:
    names = []
    for _, data in cpg.wire[start:]:
        msg = wire.decode(data)
        names.append("NORMAL" if isinstance(msg, wire.NormalMessage) else msg.type.name)
    return names


def three_nodes() -> tuple[FakeCpg, Node, Node, Node]:
    cpg = FakeCpg()
    n1 = cpg.start(1, 100)
    cpg.run()
    n2 = cpg.start(2, 200)
    cpg.run()
    n3 = cpg.start(3, 300)
    cpg.run()
    return cpg, n1, n2, n3


def test_a_three_nodes_start_one_after_another() -> None:
    cpg = FakeCpg()
    n1 = cpg.start(1, 100)
    cpg.run()
    assert n1.machine.mode == Mode.SYNCED
    assert cpg.wire == []  # alone: no SYNC_START, no STATE
    for i in range(3):
        cpg.write(n1, f"k{i}", "v")
    cpg.run()
    assert [r.result for r in n1.results.values()] == [1, 2, 3]

    mark = len(cpg.wire)
    n2 = cpg.start(2, 200)
    cpg.run()
    # SYNC_START by N1, two STATEs, three key UPDATEs + the root record, UPDATE_COMPLETE
    assert wire_types(cpg, mark) == ["SYNC_START", "STATE", "STATE", *["UPDATE"] * 4, "UPDATE_COMPLETE"]
    sync_start = wire.decode(cpg.wire[mark][1])
    assert isinstance(sync_start, wire.StateMessage)
    assert sync_start.epoch == wire.Epoch(epoch=2, time=cpg.clock.now, nodeid=1, pid=100)
    assert all(wire.decode(d).epoch == sync_start.epoch for _, d in cpg.wire[mark:])
    assert "confchg [1, 2]" in n2.trace
    assert_converged(cpg)

    cpg.write(n2, "k9", "from n2")
    cpg.run()
    mark = len(cpg.wire)
    cpg.start(3, 300)
    cpg.run()
    assert wire_types(cpg, mark)[:4] == ["SYNC_START", "STATE", "STATE", "STATE"]
    assert_converged(cpg)
    assert cpg.live()[2].db.data == {"k0": "v", "k1": "v", "k2": "v", "k9": "from n2"}


def test_a_identical_data_still_gets_update_complete() -> None:
    cpg, _, _, _ = three_nodes()
    mark = len(cpg.wire)
    cpg.stop(cpg.live()[2])
    cpg.run()
    assert wire_types(cpg, mark) == ["SYNC_START", "STATE", "STATE", "UPDATE_COMPLETE"]
    assert_converged(cpg)


def test_b_a_restarted_node_catches_up_while_another_node_writes() -> None:
    cpg, n1, n2, n3 = three_nodes()
    disk = n3.db
    cpg.stop(n3)
    cpg.run()
    assert_converged(cpg)
    counts = [cpg.write(n2, f"while-down-{i}", "x") for i in range(3)]
    cpg.run()
    assert all(n2.results[c].processed for c in counts)
    assert "while-down-0" not in disk.data

    n3b = cpg.start(3, 301, db=disk)  # new pid, same database
    early = cpg.write(n2, "queued", "sent before the confchg reached n2")
    cpg.run_until(lambda: n3b.machine.mode == Mode.UPDATE)
    during = cpg.write(n1, "during-update", "n1 is synced")
    cpg.run()
    assert_converged(cpg)
    assert disk.data["during-update"] == "n1 is synced"
    assert disk.data["queued"].startswith("sent before")
    assert n1.results[during].processed
    assert n2.results[early].processed
    # n3' applied the held messages in the same order as the synced nodes
    assert list(disk.data) == list(n1.db.data)


def test_b_a_node_with_queued_messages_resends_them_when_someone_joins() -> None:
    cpg, _, n2, _ = three_nodes()
    cpg.stop(cpg.live()[2])
    cpg.run_until(lambda: n2.machine.mode == Mode.START_SYNC)
    count = cpg.write(n2, "held", "1")  # queued everywhere until the sync completes...
    cpg.start(4, 400)  # ...but a join before that discards the queue: n2 resends its own message
    cpg.run()
    assert_converged(cpg)
    assert all(n.db.data["held"] == "1" for n in cpg.live())
    assert n2.results[count].processed
    resent = [d for s, d in cpg.wire if s == n2.member and isinstance(wire.decode(d), wire.NormalMessage)]
    assert len(resent) == 2  # the original and its resend, the exact same bytes
    assert resent[0] == resent[1]


def test_c_partition_and_heal_the_higher_version_wins() -> None:
    cpg = FakeCpg()
    nodes = []
    for nodeid in range(1, 6):
        nodes.append(cpg.start(nodeid, nodeid * 100))
        cpg.run()
    cpg.write(nodes[0], "base", "0")
    cpg.run()
    assert_converged(cpg)

    cpg.partition({1, 2, 3}, {4, 5})
    cpg.run()
    assert [n.machine.members for n in nodes[3:]] == [(nodes[3].member, nodes[4].member)] * 2
    for node in nodes[3:]:
        node.db.quorate = False  # B: writes are refused before sending (EACCES)
    for i in range(3):
        cpg.write(nodes[i], f"a{i}", "majority")
    cpg.run()
    # divergence as if quorum had been forced on B: one write, lower version than A's
    for node in nodes[3:]:
        node.db.quorate = True
    cpg.write(nodes[4], "b", "minority")
    cpg.run()
    assert nodes[0].db.version > nodes[4].db.version

    cpg.heal()
    cpg.run()
    assert_converged(cpg)
    assert nodes[4].db.data == {"base": "0", "a0": "majority", "a1": "majority", "a2": "majority"}


def test_verify_round_and_a_corrupt_replica_rejoins() -> None:
    cpg, n1, n2, n3 = three_nodes()
    mark = len(cpg.wire)
    cpg.clock.now += 3600
    for node in cpg.live():  # every node's timer fires; only the lowest sends
        cpg._execute(node, node.machine.verify_request())
    cpg.run()
    assert wire_types(cpg, mark) == ["VERIFY_REQUEST", "VERIFY"]
    assert_converged(cpg)

    n3.db.data["rot"] = "bit flip"  # not through the protocol
    cpg._execute(n1, n1.machine.verify_request())
    cpg.run()
    assert n3.machine.mode == Mode.LEAVE
    assert not n3.machine.we_are_member
    assert [n.machine.mode for n in (n1, n2)] == [Mode.SYNCED, Mode.SYNCED]
    cpg.rejoin(n3)  # the service re-initializes after 5 s with the same pid
    cpg.run()
    assert_converged(cpg)
    assert "rot" not in n3.db.data


def test_a_write_delivered_to_a_non_quorate_node_makes_it_leave_and_resync() -> None:
    cpg, n1, _, n3 = three_nodes()
    n3.db.quorate = False
    cpg.write(n1, "k", "v")
    cpg.run()
    assert n3.machine.mode == Mode.LEAVE
    n3.db.quorate = True
    cpg.rejoin(n3)
    cpg.run()
    assert_converged(cpg)
    assert n3.db.data["k"] == "v"


def test_toy_db_is_a_plain_replica() -> None:
    db = ToyDb()
    assert db.get_state() == ToyDb().get_state()
