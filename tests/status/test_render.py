"""Status file texts, byte for byte against what the C pmxcfs printed (vectors/node1-*.json)."""

from __future__ import annotations

import json

from memdb.records import VmInfo, VmListSnapshot
from status.render import render_members, render_version, render_vmlist
from status.tracked import TRACKED_FILES, TRACKED_PATHS
from tests.vectors import VECTORS

VMTYPES = {"qemu", "lxc", "openvz"}


def test_render_version_reproduces_the_vector() -> None:
    raw = (VECTORS / "node1-version.json").read_text()
    parsed = json.loads(raw)
    kvstore = parsed["kvstore"]
    assert next(iter(kvstore)) == "node1"  # the local node block comes first
    counters = {k: v for k, v in parsed.items() if k not in ("starttime", "clinfo", "vmlist", "kvstore")}
    assert tuple(counters) == TRACKED_FILES
    text = render_version(
        starttime=parsed["starttime"],
        clinfo=parsed["clinfo"],
        vmlist=parsed["vmlist"],
        counters=counters,
        kvstore=kvstore,
    )
    assert text == raw


def test_render_version_fills_missing_counters_with_zero() -> None:
    text = render_version(starttime=1, clinfo=0, vmlist=0, counters={}, kvstore={"n1": {}})
    parsed = json.loads(text)
    assert all(parsed[p] == 0 for p in TRACKED_FILES)
    assert text.endswith('"mapping/usb.cfg": 0,\n"kvstore": {\n"n1": {\n}\n}\n}\n')


def test_render_version_local_kv_entries() -> None:
    text = render_version(
        starttime=5, clinfo=1, vmlist=2, counters={}, kvstore={"n1": {"kv/a": 0, "kv/b": 3}}
    )
    assert text.endswith('"kvstore": {\n"n1": {\n"kv/a": 0,\n"kv/b": 3}\n}\n}\n')
    assert text.startswith('{\n"starttime": 5,\n"clinfo": 1,\n"vmlist": 2,\n"corosync.conf": 0,\n')


def test_tracked_files_are_the_43_reference_paths() -> None:
    raw = json.loads((VECTORS / "node1-version.json").read_text())
    assert frozenset(TRACKED_FILES) == TRACKED_PATHS
    assert len(TRACKED_FILES) == 43
    assert list(TRACKED_FILES) == [k for k in raw if k not in ("starttime", "clinfo", "vmlist", "kvstore")]


def _vmlist_vector() -> tuple[str, VmListSnapshot]:
    raw = (VECTORS / "node1-vmlist.json").read_text()
    parsed = json.loads(raw)
    vms = tuple(
        VmInfo(vmid=int(vmid), node=info["node"], vmtype=info["type"], version=info["version"])
        for vmid, info in parsed["ids"].items()
    )
    return raw, VmListSnapshot(version=parsed["version"], vms=vms)


def test_render_vmlist_reproduces_the_vector() -> None:
    raw, snapshot = _vmlist_vector()
    assert len(snapshot.vms) == 6
    assert {vm.vmtype for vm in snapshot.vms} <= VMTYPES
    assert render_vmlist(snapshot) == raw


def test_render_vmlist_keeps_the_given_order() -> None:
    raw, snapshot = _vmlist_vector()
    reordered = VmListSnapshot(version=snapshot.version, vms=tuple(reversed(snapshot.vms)))
    text = render_vmlist(reordered)
    assert text != raw
    assert json.loads(text) == json.loads(raw)
    assert list(json.loads(text)["ids"]) == [str(vm.vmid) for vm in reversed(snapshot.vms)]


def test_render_vmlist_empty() -> None:
    assert render_vmlist(VmListSnapshot(version=0, vms=())) == '{\n"version": 0\n\n}\n'
    assert render_vmlist(VmListSnapshot(version=17, vms=())) == '{\n"version": 17\n\n}\n'


def test_render_vmlist_one_entry() -> None:
    snap = VmListSnapshot(version=1, vms=(VmInfo(100, "n1", "openvz", 3),))
    assert render_vmlist(snap) == (
        '{\n"version": 1,\n"ids": {\n"100": { "node": "n1", "type": "openvz", "version": 3 }}\n\n}\n'
    )


def test_render_members_local_mode() -> None:
    assert render_members(nodename="node1", clinfo=0) == '{\n"nodename": "node1",\n"version": 0\n}\n'
    text = render_members(nodename="pve-a", clinfo=12)
    assert text == '{\n"nodename": "pve-a",\n"version": 12\n}\n'
    assert json.loads(text) == {"nodename": "pve-a", "version": 12}


def test_render_members_local_mode_shares_the_vectors_head() -> None:
    # the cluster-mode text starts with the same two fields, in the same form
    raw = (VECTORS / "node1-members.json").read_text()
    parsed = json.loads(raw)
    local = render_members(nodename=parsed["nodename"], clinfo=parsed["version"])
    assert raw.startswith(local[: -len("\n}\n")] + ",\n")
