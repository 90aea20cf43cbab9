"""VMID rules and the vmlist (section 4)."""

from __future__ import annotations

import pytest

from errors import AlreadyExists, CorruptDatabase
from memdb.loader import load_memdb
from memdb.paths import parse_vm_config_path
from memdb.records import DT_DIR, DT_REG, Row
from memdb.tree import MemDb
from tests.memdb.helpers import rows_of, tree_state

Q1 = "nodes/n1/qemu-server"
Q2 = "nodes/n2/qemu-server"


@pytest.fixture
def nodes(db: MemDb) -> MemDb:
    for path in (
        "nodes",
        "nodes/n1",
        Q1,
        "nodes/n1/lxc",
        "nodes/n1/openvz",
        "nodes/n1/qemu-server/sub",
        "nodes/n1/other",
        "nodes/n2",
        Q2,
        "nodes/n2/lxc",
        "nodes/n1.example",
        "nodes/n1.example/qemu-server",
        "nodes/-bad",
        "nodes/-bad/qemu-server",
        "nodes/bad-",
        "nodes/bad-/qemu-server",
        "nodes/n_1",
        "nodes/n_1/qemu-server",
    ):
        db.mkdir(path, 0, 1)
    return db


def _vm(db: MemDb, vmid: int) -> tuple[str, str] | None:
    vm = db.vmlist.get(vmid)
    return None if vm is None else (vm.node, vm.vmtype)


def _write_vm(db: MemDb, path: str, data: bytes = b"memory: 512\n") -> None:
    db.create(path, 0, 1)
    db.write(path, 0, 1, data, 0)


def test_create_registers_and_vmlist_version_starts_at_zero(nodes: MemDb) -> None:
    assert nodes.vmlist.version == 0
    applied = nodes.create(f"{Q1}/100.conf", 0, 1)
    assert applied.vmlist_changed is True
    assert _vm(nodes, 100) == ("n1", "qemu")
    assert nodes.vmlist.version == 1


@pytest.mark.parametrize(
    ("folder", "vmtype"), [("qemu-server", "qemu"), ("lxc", "lxc"), ("openvz", "openvz")]
)
def test_types(nodes: MemDb, folder: str, vmtype: str) -> None:
    nodes.create(f"nodes/n1/{folder}/100.conf", 0, 1)
    assert _vm(nodes, 100) == ("n1", vmtype)


def test_every_write_gives_new_per_vm_version(nodes: MemDb) -> None:
    nodes.create(f"{Q1}/100.conf", 0, 1)
    v1 = nodes.vmlist.get(100).version
    nodes.write(f"{Q1}/100.conf", 0, 1, b"a", 0)
    v2 = nodes.vmlist.get(100).version
    nodes.write(f"{Q1}/100.conf", 0, 1, b"", 0)  # nothing changes, still a new version
    v3 = nodes.vmlist.get(100).version
    nodes.truncate(f"{Q1}/100.conf", 0, 1, 1)
    v4 = nodes.vmlist.get(100).version
    assert v1 < v2 < v3 < v4
    assert nodes.vmlist.version == 4


def test_per_vm_versions_unique_across_vms(nodes: MemDb) -> None:
    nodes.create(f"{Q1}/100.conf", 0, 1)
    nodes.create(f"{Q2}/200.conf", 0, 1)
    nodes.write(f"{Q1}/100.conf", 0, 1, b"x", 0)
    versions = [nodes.vmlist.get(100).version, nodes.vmlist.get(200).version]
    assert len(set(versions)) == 2
    assert nodes.vmlist.get(100).version > nodes.vmlist.get(200).version


def test_mtime_does_not_change_vm_version(nodes: MemDb) -> None:
    nodes.create(f"{Q1}/100.conf", 0, 1)
    before = (nodes.vmlist.version, nodes.vmlist.get(100).version)
    applied = nodes.set_mtime(f"{Q1}/100.conf", 0, 5)
    assert applied.vmlist_changed is False
    assert (nodes.vmlist.version, nodes.vmlist.get(100).version) == before


def test_mkdir_does_not_touch_vmlist(nodes: MemDb) -> None:
    nodes.create(f"{Q1}/100.conf", 0, 1)
    before = tree_state(nodes)[2:4]
    nodes.mkdir(f"{Q2}/100.conf", 0, 1)  # a directory at a VM config path of another node
    assert tree_state(nodes)[2:4] == before


@pytest.mark.parametrize(
    "path",
    [f"{Q2}/100.conf", "nodes/n1/lxc/100.conf", "nodes/n1/openvz/100.conf", "nodes/n2/lxc/100.conf"],
)
def test_duplicate_vmid_create_and_write_eexist(nodes: MemDb, path: str) -> None:
    nodes.create(f"{Q1}/100.conf", 0, 1)
    before = tree_state(nodes)
    with pytest.raises(AlreadyExists):
        nodes.create(path, 0, 2)
    with pytest.raises(AlreadyExists):
        nodes.write(path, 0, 2, b"x", 0)
    with pytest.raises(AlreadyExists):
        nodes.truncate(path, 0, 2, 0)
    assert tree_state(nodes) == before


@pytest.mark.parametrize(
    "path",
    [
        "nodes/n1.example/qemu-server/100.conf",
        "nodes/-bad/qemu-server/100.conf",
        "nodes/bad-/qemu-server/100.conf",
        "nodes/n_1/qemu-server/100.conf",
        f"{Q2}/0100.conf",
        f"{Q2}/100.conf.tmp",
        f"{Q2}/100.conf~",
        f"{Q2}/100.cfg",
        f"{Q2}/100.CONF",
        f"{Q2}/abc.conf",
        f"{Q2}/.conf",
        f"{Q2}/100 .conf",
        f"{Q2}/4294967296.conf",
        f"{Q2}/100.confx",
        "nodes/n1/qemu-server/sub/100.conf",
        "nodes/n1/other/100.conf",
    ],
)
def test_non_vm_paths_are_ignored(nodes: MemDb, path: str) -> None:
    nodes.create(f"{Q1}/100.conf", 0, 1)
    before = tree_state(nodes)[2:4]
    applied = nodes.create(path, 0, 2)
    nodes.write(path, 0, 2, b"x", 0)
    assert applied.vmlist_changed is False
    assert tree_state(nodes)[2:4] == before
    nodes.delete(path, 0, 3)
    assert tree_state(nodes)[2:4] == before


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("nodes/n1/qemu-server/100.conf", ("n1", "qemu", 100)),
        ("nodes/a/lxc/1.conf", ("a", "lxc", 1)),
        ("nodes/node-1/openvz/4294967295.conf", ("node-1", "openvz", 4294967295)),
        ("nodes/N1X9/qemu-server/999.conf", ("N1X9", "qemu", 999)),
        ("nodes/n1.x/qemu-server/100.conf", None),
        ("nodes/-n/qemu-server/100.conf", None),
        ("nodes/n-/qemu-server/100.conf", None),
        ("nodes//qemu-server/100.conf", None),
        ("nodes/n1/qemu-server/0.conf", None),
        ("nodes/n1/qemu-server/4294967296.conf", None),
        ("nodes/n1/qemu-server/x/100.conf", None),
        ("xnodes/n1/qemu-server/100.conf", None),
        ("nodes/n1/qemu/100.conf", None),
    ],
)
def test_parse_vm_config_path(path: str, expected: tuple[str, str, int] | None) -> None:
    vm = parse_vm_config_path(path)
    got = None if vm is None else (vm.node, vm.vmtype, vm.vmid)
    assert got == expected


def test_max_vmid_registers(nodes: MemDb) -> None:
    nodes.create(f"{Q1}/4294967295.conf", 0, 1)
    assert _vm(nodes, 4294967295) == ("n1", "qemu")


def test_delete_removes_vm(nodes: MemDb) -> None:
    _write_vm(nodes, f"{Q1}/100.conf")
    version = nodes.vmlist.version
    applied = nodes.delete(f"{Q1}/100.conf", 0, 2)
    assert applied.vmlist_changed is True
    assert nodes.vmlist.get(100) is None
    assert nodes.vmlist.version == version + 1
    nodes.create(f"{Q2}/100.conf", 0, 3)  # the VMID is free again
    assert _vm(nodes, 100) == ("n2", "qemu")


def test_delete_removes_by_vmid_whatever_node(nodes: MemDb) -> None:
    # Quirk 6: the removal goes by VMID only, whichever node the vmlist entry points to.
    _write_vm(nodes, f"{Q1}/100.conf")
    nodes.vmlist.register(100, "n2", "qemu")  # e.g. the list was changed by a cluster sync
    nodes.delete(f"{Q1}/100.conf", 0, 2)
    assert nodes.vmlist.get(100) is None


def test_delete_dir_at_vm_config_path_keeps_vmid(nodes: MemDb) -> None:
    # Deliberate deviation: the original drops VMID 100 here too (no type check), which would
    # unregister a real guest on another node because of an empty folder named like a config.
    _write_vm(nodes, f"{Q1}/100.conf")
    nodes.mkdir(f"{Q2}/100.conf", 0, 2)
    version = nodes.vmlist.version
    nodes.delete(f"{Q2}/100.conf", 0, 3)
    assert nodes.vmlist.get(100) is not None
    assert nodes.vmlist.get(100).node == "n1"
    assert nodes.vmlist.version == version


def test_migration_by_rename(nodes: MemDb) -> None:
    _write_vm(nodes, f"{Q1}/100.conf", b"cores: 2\n")
    old = nodes.vmlist.get(100).version
    version = nodes.vmlist.version
    applied = nodes.rename(f"{Q1}/100.conf", f"{Q2}/100.conf", 0, 5)
    assert applied.vmlist_changed is True
    assert _vm(nodes, 100) == ("n2", "qemu")
    assert nodes.vmlist.get(100).version > old
    assert nodes.vmlist.version == version + 2  # delete + register
    assert nodes.read_all(f"{Q2}/100.conf") == b"cores: 2\n"
    assert nodes.getattr(f"{Q1}/100.conf") is None


def test_type_change_by_rename(nodes: MemDb) -> None:
    _write_vm(nodes, f"{Q1}/100.conf")
    nodes.rename(f"{Q1}/100.conf", "nodes/n1/lxc/100.conf", 0, 5)
    assert _vm(nodes, 100) == ("n1", "lxc")


def test_rename_vm_config_to_other_vmid(nodes: MemDb) -> None:
    _write_vm(nodes, f"{Q1}/100.conf")
    nodes.rename(f"{Q1}/100.conf", f"{Q1}/101.conf", 0, 5)
    assert nodes.vmlist.get(100) is None
    assert _vm(nodes, 101) == ("n1", "qemu")


def test_rename_onto_vmid_of_other_vm_is_eexist(nodes: MemDb) -> None:
    _write_vm(nodes, f"{Q1}/100.conf")
    _write_vm(nodes, f"{Q2}/101.conf")
    before = tree_state(nodes)
    with pytest.raises(AlreadyExists):
        nodes.rename(f"{Q2}/101.conf", f"{Q2}/100.conf", 0, 5)
    assert tree_state(nodes) == before


def test_rename_vm_config_away_removes_vmid(nodes: MemDb) -> None:
    _write_vm(nodes, f"{Q1}/100.conf")
    applied = nodes.rename(f"{Q1}/100.conf", f"{Q1}/100.conf.bak", 0, 5)
    assert applied.vmlist_changed is True
    assert nodes.vmlist.get(100) is None


def test_tmp_file_then_rename_on_same_node(nodes: MemDb) -> None:
    _write_vm(nodes, f"{Q1}/100.conf", b"old\n")
    target = nodes.getattr(f"{Q1}/100.conf")
    old = nodes.vmlist.get(100).version
    _write_vm(nodes, f"{Q1}/100.conf.tmp.4242", b"new\n")
    assert nodes.vmlist.get(100).version == old  # the tmp name is not a VM config
    applied = nodes.rename(f"{Q1}/100.conf.tmp.4242", f"{Q1}/100.conf", 0, 9)
    assert applied.change is not None
    assert target is not None
    assert applied.change.delete_inode == target.inode
    assert nodes.read_all(f"{Q1}/100.conf") == b"new\n"
    assert _vm(nodes, 100) == ("n1", "qemu")
    assert nodes.vmlist.get(100).version > old


def test_tmp_file_then_rename_onto_vm_of_other_node_eexist(nodes: MemDb) -> None:
    _write_vm(nodes, f"{Q1}/100.conf")
    _write_vm(nodes, f"{Q2}/100.conf.tmp.1", b"stolen\n")  # works: not a VM config
    before = tree_state(nodes)
    with pytest.raises(AlreadyExists):
        nodes.rename(f"{Q2}/100.conf.tmp.1", f"{Q2}/100.conf", 0, 9)
    assert tree_state(nodes) == before


def test_rename_new_config_registers(nodes: MemDb) -> None:
    _write_vm(nodes, f"{Q2}/x.tmp")
    nodes.rename(f"{Q2}/x.tmp", f"{Q2}/300.conf", 0, 9)
    assert _vm(nodes, 300) == ("n2", "qemu")


def test_rename_dir_has_no_vmid_check(nodes: MemDb) -> None:
    _write_vm(nodes, f"{Q1}/100.conf")
    nodes.mkdir(f"{Q2}/emptydir", 0, 2)
    before = tree_state(nodes)[2:4]
    applied = nodes.rename(f"{Q2}/emptydir", f"{Q2}/100.conf", 0, 3)
    assert applied.vmlist_changed is False
    assert tree_state(nodes)[2:4] == before
    attr = nodes.getattr(f"{Q2}/100.conf")
    assert attr is not None
    assert attr.type == DT_DIR


def test_write_to_own_config_allowed(nodes: MemDb) -> None:
    _write_vm(nodes, "nodes/n2/lxc/100.conf")
    nodes.write("nodes/n2/lxc/100.conf", 0, 2, b"more", 0)
    assert _vm(nodes, 100) == ("n2", "lxc")


# ----- full rebuild on load (4.4) -----------------------------------------------------


def test_rebuild_on_load(nodes: MemDb) -> None:
    _write_vm(nodes, f"{Q1}/100.conf")
    _write_vm(nodes, "nodes/n1/lxc/101.conf")
    _write_vm(nodes, f"{Q2}/200.conf")
    _write_vm(nodes, "nodes/n1.example/qemu-server/300.conf")  # invalid node: ignored
    nodes.mkdir(f"{Q2}/400.conf", 0, 1)  # a directory: ignored
    loaded = load_memdb(rows_of(nodes))
    assert _vm(loaded, 100) == ("n1", "qemu")
    assert _vm(loaded, 101) == ("n1", "lxc")
    assert _vm(loaded, 200) == ("n2", "qemu")
    assert loaded.vmlist.get(300) is None
    assert loaded.vmlist.get(400) is None
    assert loaded.vmlist.version == 1
    versions = [vm.version for vm in loaded.vmlist.snapshot().vms]
    assert len(set(versions)) == len(versions) == 3


def test_rebuild_without_nodes_keeps_version_zero(db: MemDb) -> None:
    db.create("f", 0, 1)
    loaded = load_memdb(rows_of(db))
    assert loaded.vmlist.version == 0
    assert loaded.vmlist.snapshot().vms == ()


def test_rebuild_with_nodes_not_a_dir_keeps_version_zero(db: MemDb) -> None:
    db.create("nodes", 0, 1)
    loaded = load_memdb(rows_of(db))
    assert loaded.vmlist.version == 0


def test_rebuild_with_empty_nodes_bumps_version(db: MemDb) -> None:
    db.mkdir("nodes", 0, 1)
    loaded = load_memdb(rows_of(db))
    assert loaded.vmlist.version == 1


def _rows(*entries: tuple[int, int, int, str, bytes | None]) -> list[Row]:
    top = max(e[0] for e in entries)
    rows = [Row(0, 0, top, 0, 1, DT_REG, "__version__", None)]
    rows += [Row(inode, parent, inode, 0, 1, typ, name, data) for inode, parent, typ, name, data in entries]
    return rows


@pytest.mark.allow_error_logs
def test_duplicate_vmid_in_rows_is_corrupt(caplog: pytest.LogCaptureFixture) -> None:
    rows = _rows(
        (2, 0, DT_DIR, "nodes", None),
        (3, 2, DT_DIR, "n1", None),
        (4, 3, DT_DIR, "qemu-server", None),
        (5, 2, DT_DIR, "n2", None),
        (6, 5, DT_DIR, "lxc", None),
        (7, 4, DT_REG, "100.conf", b"a"),
        (8, 6, DT_REG, "100.conf", b"b"),
    )
    with pytest.raises(CorruptDatabase):
        load_memdb(rows)
    assert any("duplicate VMID 100" in r.getMessage() for r in caplog.records)


@pytest.mark.allow_error_logs
def test_duplicate_vmid_same_node_different_type_is_corrupt() -> None:
    rows = _rows(
        (2, 0, DT_DIR, "nodes", None),
        (3, 2, DT_DIR, "n1", None),
        (4, 3, DT_DIR, "qemu-server", None),
        (5, 3, DT_DIR, "openvz", None),
        (7, 4, DT_REG, "100.conf", None),
        (8, 5, DT_REG, "100.conf", None),
    )
    with pytest.raises(CorruptDatabase):
        load_memdb(rows)


def test_duplicate_under_invalid_node_is_not_corrupt() -> None:
    rows = _rows(
        (2, 0, DT_DIR, "nodes", None),
        (3, 2, DT_DIR, "n1", None),
        (4, 3, DT_DIR, "qemu-server", None),
        (5, 2, DT_DIR, "n1.bad", None),
        (6, 5, DT_DIR, "qemu-server", None),
        (7, 4, DT_REG, "100.conf", None),
        (8, 6, DT_REG, "100.conf", None),
    )
    loaded = load_memdb(rows)
    assert _vm(loaded, 100) == ("n1", "qemu")


@pytest.mark.allow_error_logs
@pytest.mark.parametrize("folder", ["qemu-server", "lxc", "openvz"])
def test_guest_folder_not_a_dir_is_corrupt(folder: str) -> None:
    rows = _rows(
        (2, 0, DT_DIR, "nodes", None),
        (3, 2, DT_DIR, "n1", None),
        (4, 3, DT_REG, folder, b"oops"),
    )
    with pytest.raises(CorruptDatabase):
        load_memdb(rows)


def test_guest_folder_file_under_invalid_node_is_fine() -> None:
    rows = _rows(
        (2, 0, DT_DIR, "nodes", None),
        (3, 2, DT_DIR, "n1.bad", None),
        (4, 3, DT_REG, "qemu-server", b"oops"),
    )
    assert load_memdb(rows).vmlist.snapshot().vms == ()
