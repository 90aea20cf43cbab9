"""The status files and links at the root of the mount, in local mode (reference 1.10, 3.1, 3.8, 3.9, 4.2).

A status file's text is regenerated when the daemon answers getattr; the kernel may answer
stat from its 1 s attribute cache, so the tests force a getattr with
statx(AT_STATX_FORCE_SYNC) before reading (helpers.read_status), and poll with a deadline
where a specific state is awaited.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from typing import Any

import pytest

from lab.daemon import Daemon
from tests.integration.helpers import (
    LINK_NAMES,
    PLUGIN_NAMES,
    STATUS_NAMES,
    expect_errno,
    read_json,
    read_status,
    stat_sync,
    vmlist,
)
from tests.vectors import VECTORS

pytestmark = pytest.mark.fuse

MIB = 1024 * 1024

VERSION_VECTOR = VECTORS / "node1-version.json"


def _tracked_from_vector() -> tuple[str, ...]:
    """The 43 tracked paths in .version order, as a C pmxcfs printed them (an independent source)."""
    keys = list(json.loads(VERSION_VECTOR.read_text()))
    return tuple(keys[keys.index("vmlist") + 1 : keys.index("kvstore")])


TRACKED = _tracked_from_vector()


def counter(daemon: Daemon, path: str) -> int:
    value: int = read_json(daemon, ".version")[path]
    return value


# ----- readdir and links -----------------------------------------------------------------


def test_root_lists_the_plugins_then_the_tree(pve: Daemon) -> None:
    assert sorted(os.listdir(pve.mount)) == sorted(PLUGIN_NAMES)
    os.mkdir(pve.path("nodes"))
    pve.path("user.cfg").write_text("x")
    names = os.listdir(pve.mount)
    assert set(names[:10]) == set(PLUGIN_NAMES)
    assert sorted(names[10:]) == ["nodes", "user.cfg"]
    assert len(names) == len(set(names))


def test_plugin_names_are_ordinary_below_the_root(pve: Daemon) -> None:
    os.makedirs(pve.path("nodes/node1"))
    for name in (".version", ".debug", "local"):
        pve.path(f"nodes/node1/{name}").write_text(f"plain {name}\n")
    assert sorted(os.listdir(pve.path("nodes/node1"))) == [".debug", ".version", "local"]
    assert pve.path("nodes/node1/.version").read_text() == "plain .version\n"
    assert pve.path("local/local").read_text() == "plain local\n"
    os.unlink(pve.path("nodes/node1/.debug"))
    assert not pve.path("nodes/node1/.debug").exists()


def test_readlink_of_the_node_links(pve: Daemon) -> None:
    assert {name: os.readlink(pve.path(name)) for name in LINK_NAMES} == {
        "local": "nodes/node1",
        "qemu-server": "nodes/node1/qemu-server",
        "lxc": "nodes/node1/lxc",
        "openvz": "nodes/node1/openvz",
    }


def test_links_and_members_follow_the_node_name(make_daemon) -> None:  # type: ignore[no-untyped-def]
    pve = make_daemon(nodename="pve-a").start()
    assert os.readlink(pve.path("local")) == "nodes/pve-a"
    assert os.readlink(pve.path("qemu-server")) == "nodes/pve-a/qemu-server"
    assert read_json(pve, ".members")["nodename"] == "pve-a"


# ----- .members, .rrd, .clusterlog -------------------------------------------------------


def test_members_in_local_mode(pve: Daemon) -> None:
    assert read_status(pve, ".members") == '{\n"nodename": "node1",\n"version": 0\n}\n'


def test_rrd_is_empty_without_cluster(pve: Daemon) -> None:
    assert read_status(pve, ".rrd") == ""


def test_clusterlog_starts_with_the_start_entry(make_daemon) -> None:  # type: ignore[no-untyped-def]
    before = int(time.time())
    pve = make_daemon().start()
    data = read_json(pve, ".clusterlog")
    assert list(data) == ["data"]
    assert len(data["data"]) == 1
    entry = data["data"][0]
    assert {k: entry[k] for k in ("pri", "tag", "node", "user", "msg")} == {
        "pri": 6,
        "tag": "cluster",
        "node": "node1",
        "user": "root",
        "msg": "starting cluster log",
    }
    assert entry["pid"] == pve.proc.pid
    assert before <= entry["time"] <= time.time() + 1
    assert isinstance(entry["uid"], int)
    assert read_status(pve, ".clusterlog") == (
        '{\n"data": [\n'
        f'{{"uid": {entry["uid"]}, "time": {entry["time"]}, "pri": 6, "tag": "cluster", '
        f'"pid": {pve.proc.pid}, "node": "node1", "user": "root", "msg": "starting cluster log"}}\n'
        "]\n}\n"
    )


# ----- .version --------------------------------------------------------------------------


def test_version_after_startup(make_daemon) -> None:  # type: ignore[no-untyped-def]
    before = int(time.time())
    pve = make_daemon().start()
    text = read_status(pve, ".version")
    data = json.loads(text)
    assert list(data) == ["starttime", "clinfo", "vmlist", *TRACKED, "kvstore"]
    assert before <= data["starttime"] <= time.time() + 1
    assert data["clinfo"] == 0
    assert data["vmlist"] == 0
    # every counter goes up once on the startup load
    assert {path: data[path] for path in TRACKED} == dict.fromkeys(TRACKED, 1)
    assert data["kvstore"] == {"node1": {}}
    assert text.endswith('"kvstore": {\n"node1": {\n}\n}\n}\n')


def test_starttime_changes_with_a_restart_only(make_daemon) -> None:  # type: ignore[no-untyped-def]
    pve = make_daemon().start()
    first = read_json(pve, ".version")["starttime"]
    pve.path("storage.cfg").write_text("x")
    assert read_json(pve, ".version")["starttime"] == first
    assert pve.stop() == 0
    pve.start()
    # whole seconds: a restart within the same second keeps the value
    assert read_json(pve, ".version")["starttime"] >= first


def test_tracked_counters_count_each_operation_on_the_exact_path(pve: Daemon) -> None:
    path = pve.path("storage.cfg")
    assert counter(pve, "storage.cfg") == 1
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # create: +1
    try:
        os.write(fd, b"dir: local\n")  # one write: +1
    finally:
        os.close(fd)
    assert counter(pve, "storage.cfg") == 3
    os.utime(path, (1_700_000_000, 1_700_000_000))  # mtime: +1
    assert counter(pve, "storage.cfg") == 4
    os.truncate(path, 3)  # truncate: +1
    assert counter(pve, "storage.cfg") == 5
    os.rename(path, pve.path("storage.tmp"))  # rename from: +1
    os.rename(pve.path("storage.tmp"), path)  # rename to: +1
    assert counter(pve, "storage.cfg") == 7
    os.unlink(path)  # delete: +1
    assert counter(pve, "storage.cfg") == 8
    os.mkdir(path)  # mkdir does not count
    assert counter(pve, "storage.cfg") == 8
    data = read_json(pve, ".version")
    assert {p: data[p] for p in TRACKED if p != "storage.cfg"} == dict.fromkeys(
        set(TRACKED) - {"storage.cfg"}, 1
    )


def test_tracked_counters_of_nested_paths(pve: Daemon) -> None:
    os.makedirs(pve.path("priv/acme"))
    os.mkdir(pve.path("ha"))
    pve.path("priv/acme/plugins.cfg").write_text("x")  # create + write
    pve.path("ha/resources.cfg").write_text("x")
    pve.path("ha/other.cfg").write_text("x")  # not tracked
    data = read_json(pve, ".version")
    assert data["priv/acme/plugins.cfg"] == 3
    assert data["ha/resources.cfg"] == 3
    assert "ha/other.cfg" not in data


def test_failed_write_does_not_count(pve: Daemon) -> None:
    pve.path("user.cfg").write_text("x")
    before = counter(pve, "user.cfg")
    fd = os.open(pve.path("user.cfg"), os.O_WRONLY)
    try:
        expect_errno(errno.EFBIG, os.pwrite, fd, b"x", MIB)
    finally:
        os.close(fd)
    assert counter(pve, "user.cfg") == before


def test_o_trunc_counts_the_truncate_and_the_write(pve: Daemon) -> None:
    pve.path("datacenter.cfg").write_text("keyboard: de\n")
    before = counter(pve, "datacenter.cfg")
    pve.path("datacenter.cfg").write_text("keyboard: en-us\n")  # open(O_TRUNC) + write
    assert counter(pve, "datacenter.cfg") == before + 2
    # O_TRUNC is an open and a separate truncate: it counts even on an empty file (3.6)
    pve.path("datacenter.cfg").write_bytes(b"")
    before = counter(pve, "datacenter.cfg")
    os.close(os.open(pve.path("datacenter.cfg"), os.O_WRONLY | os.O_TRUNC))
    assert counter(pve, "datacenter.cfg") == before + 1


# ----- .vmlist ---------------------------------------------------------------------------


def guests(data: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {vmid: (vm["node"], vm["type"]) for vmid, vm in data["ids"].items()}


def test_vmlist_of_a_fresh_database(pve: Daemon) -> None:
    assert read_status(pve, ".vmlist") == '{\n"version": 0\n\n}\n'


def test_vmlist_follows_guest_configs(pve: Daemon) -> None:
    os.makedirs(pve.path("nodes/node1/qemu-server"))
    os.makedirs(pve.path("nodes/node1/lxc"))
    os.makedirs(pve.path("nodes/node1/openvz"))
    os.makedirs(pve.path("nodes/node2/qemu-server"))
    pve.path("nodes/node1/qemu-server/100.conf").write_text("memory: 512\n")
    data = vmlist(pve, until=lambda d: "100" in d["ids"])
    assert guests(data) == {"100": ("node1", "qemu")}
    # create and write both register the guest: two vmlist versions, two per-guest versions
    assert data["version"] == 2
    assert data["ids"]["100"]["version"] == 2

    pve.path("nodes/node1/lxc/101.conf").write_text("hostname: ct\n")
    pve.path("nodes/node1/openvz/102.conf").write_text("x\n")
    data = vmlist(pve, until=lambda d: len(d["ids"]) == 3)
    assert guests(data) == {"100": ("node1", "qemu"), "101": ("node1", "lxc"), "102": ("node1", "openvz")}

    os.rename(pve.path("nodes/node1/qemu-server/100.conf"), pve.path("nodes/node2/qemu-server/100.conf"))
    data = vmlist(pve, until=lambda d: d["ids"].get("100", {}).get("node") == "node2")
    assert guests(data)["100"] == ("node2", "qemu")

    os.unlink(pve.path("nodes/node1/lxc/101.conf"))
    data = vmlist(pve, until=lambda d: "101" not in d["ids"])
    assert guests(data) == {"100": ("node2", "qemu"), "102": ("node1", "openvz")}


def test_vmlist_text_format(pve: Daemon) -> None:
    os.makedirs(pve.path("nodes/node1/qemu-server"))
    pve.path("nodes/node1/qemu-server/100.conf").write_text("x\n")
    text = read_status(pve, ".vmlist", lambda t: '"100"' in t)
    assert text == (
        '{\n"version": 2,\n"ids": {\n"100": { "node": "node1", "type": "qemu", "version": 2 }}\n\n}\n'
    )


def test_every_write_gives_the_guest_a_new_version_but_utime_does_not(pve: Daemon) -> None:
    os.makedirs(pve.path("nodes/node1/qemu-server"))
    conf = pve.path("nodes/node1/qemu-server/100.conf")
    conf.write_text("memory: 512\n")
    v1 = vmlist(pve, until=lambda d: "100" in d["ids"])
    fd = os.open(conf, os.O_WRONLY)
    try:
        os.pwrite(fd, b"1024\n", 8)
    finally:
        os.close(fd)
    v2 = vmlist(pve, until=lambda d: d["version"] > v1["version"])
    assert v2["ids"]["100"]["version"] > v1["ids"]["100"]["version"]
    assert guests(v2) == guests(v1)
    os.utime(conf, (1_700_000_000, 1_700_000_000))
    v3 = vmlist(pve)
    assert v3 == v2
    os.truncate(conf, 4)  # a truncate registers the guest again
    v4 = vmlist(pve, until=lambda d: d["version"] > v3["version"])
    assert v4["ids"]["100"]["version"] > v3["ids"]["100"]["version"]
    # .version shows the same vmlist version
    assert read_json(pve, ".version")["vmlist"] == v4["version"]


def test_vmlist_ignores_names_that_are_not_guest_configs(pve: Daemon) -> None:
    os.makedirs(pve.path("nodes/node1/qemu-server/sub"))
    os.makedirs(pve.path("nodes/bad.name/qemu-server"))
    os.makedirs(pve.path("nodes/-bad/lxc"))
    os.makedirs(pve.path("nodes/node1/other"))
    for rel in (
        "nodes/node1/qemu-server/0100.conf",
        "nodes/node1/qemu-server/100.conf.tmp",
        "nodes/node1/qemu-server/100.conf~",
        "nodes/node1/qemu-server/abc.conf",
        "nodes/node1/qemu-server/4294967296.conf",
        "nodes/node1/qemu-server/sub/104.conf",
        "nodes/bad.name/qemu-server/105.conf",
        "nodes/-bad/lxc/106.conf",
        "nodes/node1/other/107.conf",
    ):
        pve.path(rel).write_text("x\n")
    pve.path("nodes/node1/qemu-server/4294967295.conf").write_text("x\n")  # the largest u32
    data = vmlist(pve, until=lambda d: bool(d["ids"]))
    assert guests(data) == {"4294967295": ("node1", "qemu")}


def test_getattr_regenerates_the_vmlist(pve: Daemon) -> None:
    """The size reported by a fresh getattr is the length of the new text."""
    os.makedirs(pve.path("nodes/node1/qemu-server"))
    stat_sync(pve.path(".vmlist"))
    empty_size = os.stat(pve.path(".vmlist")).st_size
    pve.path("nodes/node1/qemu-server/100.conf").write_text("x\n")
    stat_sync(pve.path(".vmlist"))
    size = os.stat(pve.path(".vmlist")).st_size
    text = pve.path(".vmlist").read_text()
    assert size > empty_size
    assert '"100"' in text
    assert len(text.encode()) == size


# ----- .debug and writes to status files -------------------------------------------------


def test_debug_reads_zero_by_default_and_one_with_d(make_daemon) -> None:  # type: ignore[no-untyped-def]
    assert read_status(make_daemon("a").start(), ".debug") == "0\n"
    assert read_status(make_daemon("b", extra_args=("-d",)).start(), ".debug") == "1\n"


def test_echo_to_debug_switches_debug_logging(pve: Daemon) -> None:
    done = subprocess.run(["sh", "-c", "echo 1 > .debug"], cwd=pve.mount, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert read_status(pve, ".debug") == "1\n"
    pve.path("probe").write_text("x")  # any operation now logs at debug level
    line = pve.wait_for_line(lambda text: "] debug: " in text, timeout=10)
    assert line.endswith(")")  # debug lines carry (file:line:function)
    done = subprocess.run(["sh", "-c", "echo 0 > .debug"], cwd=pve.mount, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert read_status(pve, ".debug") == "0\n"


def test_debug_write_rules(pve: Daemon) -> None:
    fd = os.open(pve.path(".debug"), os.O_WRONLY)
    try:
        expect_errno(errno.EIO, os.write, fd, b"1")  # printf 1: size 1
        expect_errno(errno.EIO, os.write, fd, b"2\n")
        expect_errno(errno.EIO, os.pwrite, fd, b"1\n", 1)  # offset must be 0
        assert os.write(fd, b"1\nand more") == 2  # answers 2 whatever the size
    finally:
        os.close(fd)
    assert read_status(pve, ".debug") == "1\n"
    os.truncate(pve.path(".debug"), 0)  # a no-op that succeeds (makes '>' work)
    assert read_status(pve, ".debug") == "1\n"


def test_printf_to_debug_fails(pve: Daemon) -> None:
    done = subprocess.run(["sh", "-c", "printf 1 > .debug"], cwd=pve.mount, capture_output=True, check=False)
    assert done.returncode != 0
    assert read_status(pve, ".debug") == "0\n"


def test_writes_to_other_status_files_are_eio(pve: Daemon) -> None:
    for name in STATUS_NAMES:
        if name == ".debug":
            continue
        before = read_status(pve, name) if name != ".clusterlog" else None
        fd = os.open(pve.path(name), os.O_WRONLY)
        try:
            expect_errno(errno.EIO, os.write, fd, b"1\n")
        finally:
            os.close(fd)
        expect_errno(errno.EIO, os.truncate, pve.path(name), 0)
        expect_errno(errno.EIO, open, pve.path(name), "w")  # O_TRUNC: the truncate fails
        if before is not None and name != ".version":
            assert read_status(pve, name) == before


# ----- .health (ours) ----------------------------------------------------------------------


def test_health_in_local_mode_and_after_a_refusal(pve: Daemon) -> None:
    health = read_json(pve, ".health")
    assert (health["mode"], health["quorate"], health["writable"]) == ("local", True, True)
    assert health["last_refusal"] is None
    assert ".health" not in os.listdir(pve.mount)  # reachable by name; the root listing stays the original's
    big = pve.path("big.cfg")
    big.write_bytes(b"")
    expect_errno(errno.EFBIG, lambda: os.truncate(big, MIB + 1))
    health = read_json(pve, ".health")
    assert health["refused_changes"] == 1
    assert health["last_refusal"]["op"] == "truncate"
    assert health["last_refusal"]["path"] == "big.cfg"
    assert health["last_refusal"]["error"] == "EFBIG"
    assert health["writable"] is True  # one refusal does not make the tree read-only
    assert any("refused truncate big.cfg" in line and "(EFBIG)" in line for line in pve.lines)


def test_health_is_read_only_like_the_other_status_files(pve: Daemon) -> None:
    expect_errno(errno.EIO, lambda: pve.path(".health").write_text("x"))
    assert read_json(pve, ".health")["mode"] == "local"


def test_chunked_reads_of_a_changing_status_file_never_tear(pve: Daemon) -> None:
    """Each open reads one version of .vmlist, also in 64-byte reads while guests are added."""
    guests = pve.path("nodes/node1/qemu-server")
    guests.mkdir(parents=True, exist_ok=True)
    for i in range(60):
        fd = os.open(pve.path(".vmlist"), os.O_RDONLY)
        try:
            chunks = [os.read(fd, 64)]
            (guests / f"{100 + i}.conf").write_bytes(b"memory: 512\n")  # while half read
            while chunk := os.read(fd, 64):
                chunks.append(chunk)
        finally:
            os.close(fd)
        ids = json.loads(b"".join(chunks))["ids"] if i else {}
        assert sorted(map(int, ids)) == list(range(100, 100 + i))  # the guests before the open
    assert sorted(map(int, json.loads(pve.path(".vmlist").read_bytes())["ids"])) == list(range(100, 160))
