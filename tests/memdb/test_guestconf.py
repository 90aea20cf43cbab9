"""memdb/guestconf.py: the guest config property rules of status.c, quirks included."""

from __future__ import annotations

import pytest

from errors import GuestConfigUnreadable, InvalidArgument, NotFound
from memdb.guestconf import config_path, find_properties, guest_properties, property_value, render
from memdb.records import VmInfo, VmListSnapshot
from memdb.vmlist import VmList

VM100 = b"name: vm100\nmemory: 2048\ncores: 2\nostype: l26\n\n[snap1]\nname: old\n"
"""nodes/node1/qemu-server/100.conf as captured from the C node (GET_CONFIG)."""


@pytest.mark.parametrize(
    ("line", "prop", "value"),
    [
        (b"name: vm100", b"name", b"vm100"),
        (b"name:vm100", b"name", b"vm100"),
        (b"name: \t a b \t ", b"name", b"a b"),
        (b"name:x", b"name", b"x"),
        (b"name:", b"name", None),  # nothing after the colon
        (b"name:    ", b"name", b" "),  # only white space: C keeps the last character
        (b"name: \t", b"name", b"\t"),
        (b"names: x", b"name", None),
        (b" name: x", b"name", None),  # column 0 only
        (b"name : x", b"name", None),
        (b"nam: x", b"name", None),
        (b"name: a\0b", b"name", b"a"),  # C prints up to the NUL
        (b"name: \0b", b"name", None),  # the skip stops at a NUL, which ends the value
        (b": x", b"", b"x"),  # the empty property matches lines starting with ':'
        (b"memory: 512\r", b"memory", b"512"),
    ],
)
def test_property_value(line: bytes, prop: bytes, value: bytes | None) -> None:
    assert property_value(line, prop) == value


def test_only_the_main_section_counts() -> None:
    assert find_properties(VM100, [b"name", b"memory", b"cpu"]) == [b"vm100", b"2048", None]
    assert find_properties(b"[snap]\nname: x\n", [b"name"]) == [None]
    assert find_properties(b"memory: 1\n[PENDING]\nname: x\n", [b"name", b"memory"]) == [None, b"1"]


def test_lines_need_a_newline() -> None:
    assert find_properties(b"name: x", [b"name"]) == [None]
    assert find_properties(b"a: 1\nname: x", [b"name"]) == [None]


def test_repeats_quirk() -> None:
    # one property: the second occurrence wins and ends the scan
    assert find_properties(b"name: a\nname: b\nname: c\n", [b"name"]) == [b"b"]
    # two properties: a repeat overrides, the scan ends after as many repeats as properties
    conf = b"a: 1\na: 2\na: 3\nb: x\n"
    assert find_properties(conf, [b"a", b"b"]) == [b"3", None]
    assert find_properties(b"a: 1\nb: 1\na: 2\nb: 2\nb: 3\n", [b"a", b"b"]) == [b"2", b"2"]
    # the same property asked twice gets the same value twice
    assert find_properties(b"name: x\n", [b"name", b"name"]) == [b"x", b"x"]


def test_render_escapes_values_only() -> None:
    results = [(100, [b'a "q" \\ b', None]), (101, [None, None]), (102, [b"x", b"y"])]
    assert render(results, [b"name", b"me\\m"]) == (
        b'{\n"100":{"name": "a \\"q\\" \\\\ b"},\n"102":{"name": "x","me\\m": "y"}\n}\n'
    )
    assert render([], [b"name"]) == b"{\n\n}\n"


def vmlist(*guests: tuple[int, str, str]) -> VmListSnapshot:
    vms = VmList()
    for vmid, node, vmtype in guests:
        vms.register(vmid, node, vmtype)
    return vms.snapshot()


CAPTURED = vmlist((100, "node1", "qemu"), (200, "node2", "qemu"), (101, "node2", "lxc"))
CONFIGS = {
    "nodes/node1/qemu-server/100.conf": VM100,
    "nodes/node2/qemu-server/200.conf": b"memory: 1024\nname: VM200\n",
    "nodes/node2/lxc/101.conf": b"hostname: ct101\nmemory: 512",  # no trailing newline
}


def test_config_paths() -> None:
    assert [config_path(vm) for vm in CAPTURED.vms] == list(CONFIGS)
    assert config_path(VmInfo(vmid=7, node="n", vmtype="openvz", version=1)) == "nodes/n/openvz/7.conf"


def test_the_captured_answers() -> None:
    """The data of the C node's responses in ipc-capture.jsonl, for the same guests."""
    assert guest_properties(0, [b"memory"], CAPTURED, CONFIGS.get) == (
        b'{\n"100":{"memory": "2048"},\n"200":{"memory": "1024"},\n"101":{"memory": "512"}\n}\n'
    )
    assert guest_properties(100, [b"name"], CAPTURED, CONFIGS.get) == b'{\n"100":{"name": "vm100"}\n}\n'
    assert guest_properties(0, [b"name", b"memory"], CAPTURED, CONFIGS.get) == (
        b'{\n"100":{"name": "vm100","memory": "2048"},\n"200":{"name": "VM200","memory": "1024"},\n'
        b'"101":{"memory": "512"}\n}\n'
    )
    assert guest_properties(200, [b"name"], CAPTURED, CONFIGS.get) == b'{\n"200":{"name": "VM200"}\n}\n'


def test_errors_in_the_c_order() -> None:
    with pytest.raises(NotFound):
        guest_properties(999, [b"name"], CAPTURED, CONFIGS.get)
    with pytest.raises(NotFound):
        guest_properties(999, [], CAPTURED, CONFIGS.get)  # the vmlist check comes first
    with pytest.raises(InvalidArgument):
        guest_properties(100, [], CAPTURED, CONFIGS.get)
    with pytest.raises(InvalidArgument):
        guest_properties(0, [], vmlist(), CONFIGS.get)


def test_unreadable_configs() -> None:
    empty = {**CONFIGS, "nodes/node2/qemu-server/200.conf": b""}
    with pytest.raises(GuestConfigUnreadable):
        guest_properties(200, [b"name"], CAPTURED, empty.get)
    missing = {k: v for k, v in CONFIGS.items() if "100" not in k}
    with pytest.raises(GuestConfigUnreadable):
        guest_properties(100, [b"name"], CAPTURED, missing.get)
    # listing every guest skips the unreadable ones
    assert guest_properties(0, [b"name"], CAPTURED, missing.get) == b'{\n"200":{"name": "VM200"}\n}\n'
    assert guest_properties(0, [b"name"], CAPTURED, empty.get) == b'{\n"100":{"name": "vm100"}\n}\n'


def test_no_guests_or_nothing_found() -> None:
    assert guest_properties(0, [b"name"], vmlist(), CONFIGS.get) == b"{\n\n}\n"
    assert guest_properties(0, [b"cpu"], CAPTURED, CONFIGS.get) == b"{\n\n}\n"
    assert guest_properties(101, [b"name"], CAPTURED, CONFIGS.get) == b"{\n\n}\n"
