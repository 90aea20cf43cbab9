"""Garbage through the two DFSM applications into the actors that hold the state.

kvstore: ``KvstoreApp.deliver`` and its state merge with a started StatusActor. A payload the
codec rejects is dropped: every status text (.version, .members, .vmlist, the cluster log, the
RRD dump) stays byte for byte the same. One the codec accepts may change them, but the actor
keeps answering. (Strings of remote log entries and kv keys appear in the JSON texts as they
came, as in C, so a peer can make .clusterlog or .version unparseable; that is not checked.)

dcdb: ``DcdbApp`` with a started fs actor on a real database. A payload the codec rejects is a
DfsmLeave that leaves the tree alone; an accepted one (a mutated real change) is applied or
refused by the tree's rules, never raises anything but DfsmLeave, and the database always holds
exactly the tree the fs actor has in memory.
"""

from __future__ import annotations

import json
from enum import IntEnum
from pathlib import Path
from typing import Any

import pykka
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.db_actor import DbActor
from actors.fs_actor import FsActor
from actors.messages import (
    ActivateTree,
    ClusterConfigChanged,
    CommitPending,
    CreateFile,
    GetClusterLog,
    GetIndex,
    GetRrdDump,
    GetStatusText,
    KvDelivered,
    LoadTree,
    LogClusterMessage,
    MakeDir,
    OpenStore,
    PrepareStore,
    SetStatus,
    WriteFile,
    ask,
)
from actors.status_actor import StatusActor
from corosync.config import ClusterConfig, ClusterNode
from corosync.writers import Writers
from dfsm import DfsmFatal, DfsmLeave, Member, MemberState, StateDecision
from errors import WireFormatError
from lab.cluster import read_index
from replication.dcdb_app import DcdbApp
from replication.kvstore_app import KvstoreApp
from tests.fakes.corosync import FakeDcdbGroup
from tests.fuzz import corpus
from tests.fuzz.strategies import fuzz, garbage
from wire import dcdb, kvstore

EXAMPLES = 120
TIMEOUT = 10.0
ME = Member(1, 100)
ROGUE = Member(2, 4242)
CONFIG = ClusterConfig(
    name="c", config_version=1, nodes=(ClusterNode(1, "node1"), ClusterNode(2, "node2")), local_nodeid=1
)


def normal_payloads(
    by_subtype: dict[tuple[int, ...], tuple[bytes, ...]], all_subtypes: type[IntEnum]
) -> st.SearchStrategy[tuple[int, bytes]]:
    """(subtype, payload): garbage of a subtype's own payloads under it, or any under any subtype."""
    seeds = tuple(raw for payloads in by_subtype.values() for raw in payloads)
    any_subtype = st.one_of(st.sampled_from(list(all_subtypes)), st.integers(0, 0xFFFF))
    matching = [
        st.tuples(st.sampled_from(subtypes), garbage(payloads, max_random=300))
        for subtypes, payloads in by_subtype.items()
    ]
    return st.one_of(*matching, st.tuples(any_subtype, garbage(seeds, max_random=300)))


def kv_payloads() -> st.SearchStrategy[tuple[int, bytes]]:
    kinds = kvstore.KvstoreMessageType
    by_subtype = {(kinds.UPDATE,): corpus.payloads("kv"), (kinds.LOG,): corpus.payloads("log")}
    return normal_payloads(by_subtype, kinds)


def dcdb_payloads() -> st.SearchStrategy[tuple[int, bytes]]:
    by_subtype = {
        tuple(sorted(dcdb.FUSE_TYPES)): corpus.payloads("fuse"),
        tuple(sorted(dcdb.UNLOCK_TYPES)): corpus.payloads("unlock"),
    }
    return normal_payloads(by_subtype, dcdb.DcdbMessageType)


def q(ref: pykka.ActorRef[Any], message: Any) -> Any:
    return ask(ref, message, timeout=TIMEOUT)


# ----- kvstore ---------------------------------------------------------------------------------


def status_texts(status: pykka.ActorRef[Any]) -> dict[str, bytes]:
    texts = {name: q(status, GetStatusText(name=name)) for name in (".version", ".members", ".vmlist")}
    texts["clusterlog"] = q(status, GetClusterLog(max_entries=0, user="")).encode("utf-8", "surrogateescape")
    texts["rrd"] = q(status, GetRrdDump()).rstrip(b"\0")  # cached within 2 s: without its NUL (a C quirk)
    return texts


def started_status() -> pykka.ActorRef[Any]:
    """A status actor with some state of its own and of node 2."""
    status = StatusActor.start("node1", wallclock=lambda: 1_000.0)
    status.tell(ClusterConfigChanged(config=CONFIG))
    q(status, SetStatus(key="kv/mine", value=b"1\0"))
    q(status, LogClusterMessage(priority=6, ident="root@pam", tag="t", msg=b"before the rogue", pid=1))
    status.tell(KvDelivered(nodeid=2, key="kv/theirs", value=b"2\0"))
    return status


def test_kvstore_garbage_leaves_the_status_texts_alone() -> None:
    status = started_status()
    app = KvstoreApp(status, me=ME, on_members=lambda online: None)
    seen = {"rejected": 0, "accepted": 0}

    @fuzz(EXAMPLES)
    @given(kv_payloads())
    def run(message: tuple[int, bytes]) -> None:
        subtype, payload = message
        before = status_texts(status)
        try:
            kvstore.decode_payload(subtype, payload)
        except WireFormatError:
            accepted = False
        else:
            accepted = True
        seen["accepted" if accepted else "rejected"] += 1
        assert app.deliver(ROGUE, subtype, payload, 0, 1) == 1
        after = status_texts(status)  # asked after the tell: the actor handled the delivery first
        if not accepted:
            assert after == before
        json.loads(after[".vmlist"])

    run()
    assert status.is_alive()
    assert seen["rejected"] > 0
    assert seen["accepted"] > 0


def test_kvstore_garbage_states_are_ignored_in_the_merge() -> None:
    status = started_status()
    app = KvstoreApp(status, me=ME, on_members=lambda online: None)

    @fuzz(EXAMPLES // 2)
    @given(garbage(corpus.payloads("clog"), max_random=400))
    def run(state: bytes) -> None:
        before = status_texts(status)["clusterlog"]
        try:
            kvstore.decode_clog(state)
        except WireFormatError:
            accepted = False
        else:
            accepted = True
        states = [MemberState(member=ME, state=b"ours"), MemberState(member=ROGUE, state=state)]
        decision = app.process_state_update(states, ME)
        assert decision == StateDecision(synced=frozenset({ME, ROGUE}))
        after = status_texts(status)["clusterlog"]
        if not accepted:
            assert after == before

    run()
    assert status.is_alive()


# ----- dcdb ------------------------------------------------------------------------------------


def started_fs(tmp_path: Path) -> pykka.ActorRef[Any]:
    """An fs actor on a fresh database holding the folders the captured changes touch."""
    db = DbActor.start(str(tmp_path / "config.db"))
    fs = FsActor.start(db, None, quorate=True)
    q(fs, LoadTree(rows=q(db, OpenStore())))
    q(db, PrepareStore())
    q(fs, ActivateTree())
    for path in ("nodes", "nodes/node1", "nodes/node1/qemu-server", "nodes/node1/lxc", "priv", "testdir"):
        q(fs, MakeDir(path=path))
    q(fs, CreateFile(path="testdir/a.txt"))
    q(fs, WriteFile(path="testdir/a.txt", data=b"hello\n", offset=0))
    q(fs, CommitPending())  # its writer closes it
    return fs


def test_dcdb_garbage_changes_nothing_it_should_not(tmp_path: Path) -> None:
    fs = started_fs(tmp_path)
    app = DcdbApp(fs, FakeDcdbGroup(ME, lowest=False), Writers("dcdb", confirm=False))  # type: ignore[arg-type]
    seen = {"rejected": 0, "accepted": 0}

    @fuzz(EXAMPLES)
    @given(dcdb_payloads())
    def run(message: tuple[int, bytes]) -> None:
        subtype, payload = message
        before = q(fs, GetIndex())
        try:
            dcdb.decode_payload(subtype, payload)
        except WireFormatError:
            accepted = False
        else:
            accepted = True
        seen["accepted" if accepted else "rejected"] += 1
        try:
            app.deliver(ROGUE, subtype, payload, 1_700_000_000, 1)
        except DfsmFatal:
            raise
        except DfsmLeave:
            assert not accepted
        else:
            assert accepted
        after = q(fs, GetIndex())
        if not accepted:
            assert after == before
        assert dcdb.decode_index(after).version >= dcdb.decode_index(before).version
        assert read_index(tmp_path / "config.db") == after  # the database holds the same tree

    run()
    assert fs.is_alive()
    assert seen["rejected"] > 0
    assert seen["accepted"] > 0


@pytest.mark.parametrize(
    ("what", "seeds"),
    [("update", lambda: corpus.payloads("update")), ("index", lambda: corpus.payloads("index"))],
)
def test_dcdb_garbage_sync_messages_are_a_leave(tmp_path: Path, what: str, seeds: Any) -> None:
    fs = started_fs(tmp_path)
    app = DcdbApp(fs, FakeDcdbGroup(ME), Writers("dcdb", confirm=False))  # type: ignore[arg-type]
    ours = q(fs, GetIndex())

    @fuzz(EXAMPLES // 2)
    @given(garbage(seeds(), max_random=300))
    def run(payload: bytes) -> None:
        decode = dcdb.decode_update if what == "update" else dcdb.decode_index
        try:
            decode(payload)
        except WireFormatError:
            accepted = False
        else:
            accepted = True
        try:
            if what == "update":
                app.process_update(ROGUE, payload)
            else:
                states = [MemberState(member=ME, state=ours), MemberState(member=ROGUE, state=payload)]
                assert isinstance(app.process_state_update(states, ME), StateDecision)
        except DfsmFatal:
            raise
        except DfsmLeave:
            assert not accepted
        else:
            assert accepted
        finally:
            app.cleanup()
        assert q(fs, GetIndex()) == ours  # nothing is committed before UPDATE_COMPLETE

    run()
    assert fs.is_alive()
