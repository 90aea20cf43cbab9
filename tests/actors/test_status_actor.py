"""StatusActor: counters, vmlist snapshots, the status file texts and their snapshots."""

from __future__ import annotations

import json
import os

import pytest

from actors.messages import (
    ChangeRefused,
    GetHealthReport,
    MembershipChanged,
    ModeChosen,
    QuorumChanged,
    ReadStatusFile,
    RenderStatusFile,
    TreeChanged,
    TreeReloaded,
    TruncateStatusFile,
    VmListChanged,
    WriteStatusFile,
)
from actors.status_actor import StatusActor
from errors import NotFound, StatusFileRefused
from memdb.records import VmInfo, VmListSnapshot
from status.files import STATUS_FILES
from status.tracked import TRACKED_FILES
from tests.fakes.actors import q

START = 1_795_608_717


def make(**kwargs: object) -> StatusActor:
    return StatusActor("node1", wallclock=lambda: float(START), **kwargs)  # type: ignore[arg-type]


def text(actor: StatusActor, name: str) -> str:
    size = actor.on_receive(RenderStatusFile(name=name))
    data = actor.on_receive(ReadStatusFile(name=name, size=1 << 20, offset=0))
    assert len(data) == size
    return data.decode()


def expected_version(counters: dict[str, int], *, vmlist: int = 0) -> str:
    lines = ["{\n", f'"starttime": {START},\n', '"clinfo": 0,\n', f'"vmlist": {vmlist},\n']
    lines += [f'"{p}": {counters.get(p, 0)},\n' for p in TRACKED_FILES]
    lines.append('"kvstore": {\n"node1": {\n}\n}\n}\n')
    return "".join(lines)


def test_status_file_names() -> None:
    assert sorted(STATUS_FILES) == [".clusterlog", ".debug", ".members", ".rrd", ".version", ".vmlist"]
    assert len(TRACKED_FILES) == 43


def test_initial_version_text() -> None:
    assert text(make(), ".version") == expected_version({})


def test_tree_changed_counts_exact_tracked_paths() -> None:
    actor = make()
    actor.on_receive(TreeChanged(paths=("storage.cfg",)))
    actor.on_receive(TreeChanged(paths=("storage.cfg", "user.cfg")))
    actor.on_receive(TreeChanged(paths=("/storage.cfg", "nope.cfg", "priv/shadow.cfg")))
    assert text(actor, ".version") == expected_version(
        {"storage.cfg": 2, "user.cfg": 1, "priv/shadow.cfg": 1}
    )


def test_tree_reloaded_bumps_every_counter() -> None:
    actor = make()
    actor.on_receive(TreeChanged(paths=("ha/rules.cfg",)))
    actor.on_receive(TreeReloaded())
    actor.on_receive(TreeReloaded())
    counters = dict.fromkeys(TRACKED_FILES, 2)
    counters["ha/rules.cfg"] = 3
    assert text(actor, ".version") == expected_version(counters)


def test_vmlist_changed_is_stored_and_rendered() -> None:
    actor = make()
    assert text(actor, ".vmlist") == '{\n"version": 0\n\n}\n'
    snap = VmListSnapshot(
        version=3,
        vms=(VmInfo(100, "node1", "qemu", 2), VmInfo(101, "node1", "lxc", 3)),
    )
    actor.on_receive(VmListChanged(snapshot=snap))
    assert text(actor, ".vmlist") == (
        '{\n"version": 3,\n"ids": {\n'
        '"100": { "node": "node1", "type": "qemu", "version": 2 },\n'
        '"101": { "node": "node1", "type": "lxc", "version": 3 }}\n\n}\n'
    )
    assert json.loads(text(actor, ".version"))["vmlist"] == 3
    actor.on_receive(VmListChanged(snapshot=VmListSnapshot(version=4, vms=())))
    assert text(actor, ".vmlist") == '{\n"version": 4\n\n}\n'


def test_members_in_local_mode() -> None:
    assert text(make(), ".members") == '{\n"nodename": "node1",\n"version": 0\n}\n'


def test_rrd_is_empty() -> None:
    actor = make()
    assert actor.on_receive(RenderStatusFile(name=".rrd")) == 0
    assert text(actor, ".rrd") == ""


def test_clusterlog_starts_with_the_startup_entry() -> None:
    log = json.loads(text(make(), ".clusterlog"))
    (entry,) = log["data"]
    assert {k: entry[k] for k in ("uid", "pri", "tag", "pid", "node", "user", "msg")} == {
        "uid": 1,
        "pri": 6,
        "tag": "cluster",
        "pid": os.getpid(),
        "node": "node1",
        "user": "root",
        "msg": "starting cluster log",
    }


def test_startup_entry_time_is_the_start_time() -> None:
    (entry,) = json.loads(text(make(), ".clusterlog"))["data"]
    assert entry["time"] == START


def test_read_serves_the_last_snapshot_until_the_next_render() -> None:
    actor = make()
    size = actor.on_receive(RenderStatusFile(name=".version"))
    old = actor.on_receive(ReadStatusFile(name=".version", size=size, offset=0))
    actor.on_receive(TreeChanged(paths=("storage.cfg",)))
    # no getattr in between: the same snapshot, also in chunks
    assert actor.on_receive(ReadStatusFile(name=".version", size=size, offset=0)) == old
    assert actor.on_receive(ReadStatusFile(name=".version", size=10, offset=5)) == old[5:15]
    assert actor.on_receive(ReadStatusFile(name=".version", size=10, offset=size)) == b""
    new_size = actor.on_receive(RenderStatusFile(name=".version"))
    new = actor.on_receive(ReadStatusFile(name=".version", size=new_size, offset=0))
    assert new != old
    assert json.loads(new)["storage.cfg"] == 1


def test_debug_file() -> None:
    switched: list[bool] = []
    actor = make(set_debug=switched.append)
    assert text(actor, ".debug") == "0\n"
    assert actor.on_receive(WriteStatusFile(name=".debug", data=b"1\n", offset=0)) == 2
    assert switched == [True]
    assert text(actor, ".debug") == "1\n"
    # only the first two bytes count; the answer is 2 whatever the size
    assert actor.on_receive(WriteStatusFile(name=".debug", data=b"0\nrest", offset=0)) == 2
    assert switched == [True, False]
    assert text(actor, ".debug") == "0\n"
    assert actor.on_receive(TruncateStatusFile(name=".debug")) is None


@pytest.mark.parametrize(
    ("data", "offset"),
    [(b"1", 0), (b"2\n", 0), (b"on\n", 0), (b"", 0), (b"1\n", 1), (b" 1\n", 0)],
)
def test_debug_refuses_other_writes(data: bytes, offset: int) -> None:
    switched: list[bool] = []
    actor = make(set_debug=switched.append)
    with pytest.raises(StatusFileRefused):
        actor.on_receive(WriteStatusFile(name=".debug", data=data, offset=offset))
    assert switched == []
    assert text(actor, ".debug") == "0\n"


def test_debug_starts_on_when_asked() -> None:
    assert text(make(debug=True), ".debug") == "1\n"


@pytest.mark.parametrize("name", [".version", ".members", ".vmlist", ".rrd", ".clusterlog"])
def test_other_status_files_refuse_write_and_truncate(name: str) -> None:
    actor = make()
    with pytest.raises(StatusFileRefused):
        actor.on_receive(WriteStatusFile(name=name, data=b"1\n", offset=0))
    with pytest.raises(StatusFileRefused):
        actor.on_receive(TruncateStatusFile(name=name))


def test_unknown_status_file() -> None:
    with pytest.raises(NotFound):
        make().on_receive(RenderStatusFile(name=".nope"))


def test_started_round_trip_keeps_message_order() -> None:
    ref = StatusActor.start("node1", wallclock=lambda: float(START))
    ref.tell(TreeReloaded())
    ref.tell(TreeChanged(paths=("corosync.conf",)))
    ref.tell(VmListChanged(snapshot=VmListSnapshot(version=1, vms=(VmInfo(100, "node1", "qemu", 1),))))
    size = q(ref, RenderStatusFile(name=".version"))
    version = json.loads(q(ref, ReadStatusFile(name=".version", size=size, offset=0)))
    assert version["corosync.conf"] == 2
    assert version["mapping/usb.cfg"] == 1
    assert version["vmlist"] == 1
    with pytest.raises(StatusFileRefused):  # errors re-raise in the asker
        q(ref, WriteStatusFile(name=".version", data=b"x", offset=0))
    assert q(ref, WriteStatusFile(name=".debug", data=b"1\n", offset=0)) == 2
    ref.stop(block=True, timeout=10)


def test_health_file_hides_a_private_refusal_the_root_report_shows_it() -> None:
    actor = make()
    actor.on_receive(ModeChosen(mode="local"))
    refused = ChangeRefused(
        op="rename",
        path="priv/a.tmp -> nodes/node1/priv/b",
        shown="priv/… -> nodes/node1/priv/…",
        error="EACCES",
        reason="x",
        time=START,
    )
    actor.on_receive(refused)
    shown = json.loads(text(actor, ".health"))
    report = json.loads(actor.on_receive(GetHealthReport()))
    assert shown["last_refusal"]["path"] == "priv/… -> nodes/node1/priv/…"
    assert report["last_refusal"]["path"] == "priv/a.tmp -> nodes/node1/priv/b"
    assert report["refused_changes"] == shown["refused_changes"] == 1


def test_members_and_debug_are_published_after_each_change_and_the_rest_asked() -> None:
    actor = make()
    published = actor.published
    assert set(published.value.texts) == {".members", ".debug"}
    assert published.value.texts[".debug"] == b"0\n"
    assert published.value.starttime == START
    before = published.value
    actor.on_receive(QuorumChanged(quorate=True))
    actor.on_receive(MembershipChanged(online=frozenset({1})))
    assert published.value.texts[".members"] == text(actor, ".members").encode()
    assert published.value is not before
    actor.on_receive(WriteStatusFile(name=".debug", data=b"1\n", offset=0))
    assert published.value.texts[".debug"] == b"1\n"
    unchanged = published.value
    actor.on_receive(RenderStatusFile(name=".members"))  # a read publishes nothing
    assert published.value is unchanged
