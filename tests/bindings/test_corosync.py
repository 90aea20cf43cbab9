"""The bindings against a real single-node corosync (see corosync_node.py); each scenario runs in
client_probe."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from bindings.libcmap import CMAP_TRACK_ADD, CMAP_TRACK_DELETE, CMAP_TRACK_MODIFY
from bindings.libcpg import CpgReason
from tests.bindings.corosync_node import CorosyncNode, read_line, require_corosync, run_probe

pytestmark = pytest.mark.corosync

LIBRARY = {"class": "CsLibraryError", "code": 2, "name": "CS_ERR_LIBRARY"}


@pytest.fixture(scope="module")
def cpg_result(corosync: CorosyncNode) -> dict[str, Any]:
    return corosync.probe("cpg")


@pytest.fixture(scope="module")
def cmap_result(corosync: CorosyncNode) -> dict[str, Any]:
    return corosync.probe("cmap")


def without_call(error: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in error.items() if k in ("class", "code", "name")}


def test_initialize_without_corosync_raises_library_error_quickly():
    require_corosync()
    result = run_probe("noserver", netns=None)  # a fresh netns: no corosync socket in it
    for name, call in [
        ("cpg", "cpg_model_initialize"),
        ("cmap", "cmap_initialize"),
        ("quorum", "quorum_initialize"),
    ]:
        assert without_call(result[name]) == LIBRARY, name
        assert result[name]["call"] == call
        assert result[name]["elapsed"] < 1.0


def test_cpg_join_mcast_and_own_delivery(cpg_result: dict[str, Any]):
    result = cpg_result
    pid = result["pid"]
    assert result["local_nodeid"] == 1
    assert result["max_atomic_msgsize"] == 1047552
    assert result["confchg"] == {
        "group": "pve_dcdb_v1",
        "members": [[1, pid, CpgReason.UNDEFINED]],
        "left": [],
        "joined": [[1, pid, CpgReason.JOIN]],
    }
    assert result["deliver"] == {
        "group": "pve_dcdb_v1",
        "nodeid": 1,
        "pid": pid,
        "same_bytes": True,
        "size": 6 + 10 + 0 + 300_000 + 1,
    }
    assert result["left"] == [[1, pid, CpgReason.LEAVE]]
    assert result["initialized_after_exit"] is False


def test_cpg_group_name_goes_out_with_its_nul(cpg_result: dict[str, Any]):
    result = cpg_result
    assert result["membership"] == [[1, result["pid"], 0]]
    assert result["membership_len12"] == 1  # b"pve_dcdb_v1\0": the group we joined
    assert result["membership_len11"] == 0  # without the NUL it is another group


def test_cpg_initial_totem_ring_comes_with_the_join(cpg_result: dict[str, Any]):
    result = cpg_result
    assert result["totem_before_join"] is False
    assert result["totem"]["nodeid"] == 1
    assert result["totem"]["seq"] > 0
    assert result["totem"]["members"] == [1]
    assert result["order"] == ["confchg", "totem"]


def test_cpg_callback_exception_is_reraised_from_dispatch(cpg_result: dict[str, Any]):
    result = cpg_result
    assert result["callback_error"] == {"raised": ["raised in deliver"], "works_after": True}


def test_cmap_reads_nodelist_and_cluster_name(cmap_result: dict[str, Any], corosync: CorosyncNode):
    result = cmap_result
    assert result["cluster_name"] == "pbtest"
    assert result["nodelist"] == [[1, "node1", corosync.addr, 1]]
    assert result["this_node_id"] == 1
    assert result["local_node_pos"] == 0
    assert result["token"] == 500
    assert without_call(result["totem.config_version"]) == {
        "class": "CsNotExist",
        "code": 12,
        "name": "CS_ERR_NOT_EXIST",
    }
    assert without_call(result["totem.cluster_name"]) == {
        "class": "CsError",
        "code": 7,
        "name": "CS_ERR_INVALID_PARAM",
    }


def test_cmap_track_reports_add_modify_delete(cmap_result: dict[str, Any]):
    result = cmap_result
    assert result["events"] == [
        [CMAP_TRACK_ADD, "pbtest.u8"],
        [CMAP_TRACK_ADD, "pbtest.u16"],
        [CMAP_TRACK_ADD, "pbtest.u64"],
        [CMAP_TRACK_MODIFY, "pbtest.u8"],
        [CMAP_TRACK_DELETE, "pbtest.u16"],
    ]
    assert result["u8"] == 9
    assert result["u64"] == 2**40 + 5
    assert result["events_after_delete"] == []


def test_quorum_getquorate_and_notify(corosync: CorosyncNode):
    result = corosync.probe("quorum")
    assert result["quorum_type"] == 1  # QUORUM_SET, which pmxcfs insists on
    assert result["getquorate"] is True
    assert result["notify"]["quorate"] is True
    assert result["notify"]["nodes"] == [1]
    assert result["notify"]["ring_seq"] > 0


def test_killing_corosync_makes_dispatch_raise_library_error(fresh_corosync: CorosyncNode):
    probe = fresh_corosync.spawn_probe("kill")
    assert json.loads(read_line(probe, 20)) == {"ready": True}
    fresh_corosync.kill()
    assert probe.stdin is not None
    probe.stdin.write("go\n")
    probe.stdin.flush()
    result = json.loads(read_line(probe, 20))
    assert without_call(result["cpg_dispatch"]) == LIBRARY
    assert result["cpg_dispatch"]["call"] == "cpg_dispatch"
    assert result["detect_s"] < 2
    for call in ("cpg_local_get", "quorum_getquorate", "cmap_get_string"):
        assert without_call(result[call]) == LIBRARY, call
    assert [result[f"{name}_finalized"] for name in ("cpg", "quorum", "cmap")] == [True, True, True]
    assert without_call(result["reinitialize"]) == LIBRARY
    probe.communicate(timeout=10)
    assert probe.returncode == 0


def test_fixture_cleans_up_after_itself(fresh_corosync: CorosyncNode):
    assert os.path.exists(f"/run/netns/{fresh_corosync.netns}")
    fresh_corosync.cleanup()
    assert not os.path.exists(f"/run/netns/{fresh_corosync.netns}")
    pid = fresh_corosync.pids[0]
    assert not any(name.startswith((f"qb-corosync-{pid}-", f"qb-{pid}-")) for name in os.listdir("/dev/shm"))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
