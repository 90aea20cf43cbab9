"""The IPC service of a running daemon (local mode, real FUSE mount): every op, access, bad input, load.

One daemon serves the whole module under its own service name (``--ipc-name``), so these
tests never meet another daemon's "pve2". It is named node2 and holds the content the C
node2 had when its IPC sweep was captured, so most captured answers compare byte for byte.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ipc import codec
from ipc.client import IpcError, PveIpcClient
from ipc.codec import Op
from lab.daemon import Daemon
from tests.integration.helpers import NOBODY, WWW_DATA, wait_for
from tests.integration.mounts import require_fuse
from tests.ipc.probes import READS_OK, ROOT_OK, probe
from tests.vectors import VECTORS

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30.0

CLUSTER_ONLY = {"remote node1"}
"""Captured requests whose answer came from another node's data (ENOENT in local mode)."""
COMPARED = {
    ("GET_STATUS", "local node (empty nodename)"),
    ("GET_STATUS", "node2"),
    ("GET_CONFIG", ""),
    ("GET_CONFIG", "leading slash"),
    ("GET_CONFIG", "private path as root"),
    ("GET_GUEST_CONFIG_PROPERTY", "all vms, memory"),
    ("GET_GUEST_CONFIG_PROPERTY", "vm 100 name"),
    ("GET_GUEST_CONFIG_PROPERTIES", "all vms, name+memory"),
    ("GET_GUEST_CONFIG_PROPERTIES", "vm 200 name"),
}
"""Captured answers our daemon must reproduce byte for byte."""


@cache
def node2_sweep() -> tuple[dict[str, Any], ...]:
    with open(VECTORS / "ipc-capture.jsonl") as lines:
        return tuple(c for c in map(json.loads, lines) if c["node"] == "node2")


def vector_data(note: str, op: str) -> bytes:
    found = [c for c in node2_sweep() if c["note"] == note and c["op"] == op]
    return bytes.fromhex(found[0]["response_data_hex"])


def seed(mount: Path) -> None:
    """node2's content at the capture, in the order that gives the C vmlist order 100, 200, 101."""
    for folder in (
        "nodes/node1/qemu-server",
        "nodes/node2/qemu-server",
        "nodes/node2/lxc",
        "priv",
        "testdir",
    ):
        (mount / folder).mkdir(parents=True, exist_ok=True)
    (mount / "nodes/node1/qemu-server/100.conf").write_bytes(vector_data("", "GET_CONFIG"))
    (mount / "nodes/node2/qemu-server/200.conf").write_bytes(b"name: VM200\nmemory: 1024\ncores: 1\n")
    (mount / "nodes/node2/lxc/101.conf").write_bytes(b"arch: amd64\nhostname: ct101\nmemory: 512\n")
    (mount / "corosync.conf").write_bytes((VECTORS / "corosync.conf").read_bytes())
    (mount / "priv/token.cfg").write_bytes(vector_data("private path as root", "GET_CONFIG"))
    (mount / "datacenter.cfg").write_bytes(b"keyboard: en-us\n")


@pytest.fixture(scope="module")
def pve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    require_fuse()
    name = f"pve2-test-{uuid.uuid4().hex[:12]}"
    daemon = Daemon(tmp_path_factory.mktemp("ipc") / "d", nodename="node2", extra_args=("--ipc-name", name))
    daemon.ipc_name = name  # type: ignore[attr-defined]
    try:
        daemon.start()
        seed(daemon.mount)
        yield daemon
    finally:
        daemon.cleanup()


def name_of(daemon: Daemon) -> str:
    return daemon.ipc_name  # type: ignore[attr-defined, no-any-return]


@pytest.fixture
def client(pve: Daemon) -> Iterator[PveIpcClient]:
    with PveIpcClient(name_of(pve), timeout_ms=int(TIMEOUT_S * 1000)) as conn:
        yield conn


def daemon_pid(daemon: Daemon) -> int:
    assert daemon.proc is not None
    return daemon.proc.pid


def leftover_rings(daemon: Daemon, client_pid: int | None = None) -> list[Path]:
    pattern = f"qb-{daemon_pid(daemon)}-{'*' if client_pid is None else client_pid}-*"
    return list(Path("/dev/shm").glob(pattern))


def test_the_captured_sweep_replays(pve: Daemon, client: PveIpcClient) -> None:
    """node2's captured requests, byte for byte, in order: the same error codes and answers."""
    compared = 0
    for c in node2_sweep():
        if c["note"] in CLUSTER_ONLY:
            continue
        response = client.raw(bytes.fromhex(c["request_hex"]))
        assert (response.op_id, response.error) == (c["id"], c["error"]), (c["n"], c["op"], c["note"])
        compared += (c["op"], c["note"]) in COMPARED
        if (c["op"], c["note"]) in COMPARED:
            assert response.data == bytes.fromhex(c["response_data_hex"]), (c["op"], c["note"])
        if c["op"] == "GET_RRD_DUMP":
            theirs = bytes.fromhex(c["response_data_hex"]).rstrip(b"\0").splitlines()
            assert sorted(response.data.rstrip(b"\0").splitlines()) == sorted(theirs)
    assert compared == len(COMPARED)


@pytest.mark.parametrize(
    ("op", "status_file"),
    [(Op.GET_FS_VERSION, ".version"), (Op.GET_CLUSTER_INFO, ".members"), (Op.GET_GUEST_LIST, ".vmlist")],
)
def test_status_texts_equal_the_status_files(
    pve: Daemon, client: PveIpcClient, op: Op, status_file: str
) -> None:
    answer = client.request(op)
    assert answer == pve.path(status_file).read_bytes()
    json.loads(answer)


def test_guest_list_and_fs_version_agree(client: PveIpcClient) -> None:
    vmlist = json.loads(client.get_guest_list())
    assert set(vmlist["ids"]) == {"100", "200", "101"}
    assert json.loads(client.get_fs_version())["vmlist"] == vmlist["version"]
    assert json.loads(client.get_cluster_info())["nodename"] == "node2"


def test_status_values(client: PveIpcClient) -> None:
    client.set_status("kv/daemon-test", b'{"a":1}\0')
    assert client.get_status("kv/daemon-test") == b'{"a":1}\0'
    assert client.get_status("kv/daemon-test", "node2") == b'{"a":1}\0'
    assert json.loads(client.get_fs_version())["kvstore"]["node2"]["kv/daemon-test"] >= 0
    for call, code in (
        (lambda: client.set_status("kv/big", bytes(32769)), errno.EFBIG),
        (lambda: client.set_status("rrd/pve2-node/node2", b"no terminating nul"), errno.ENOMEM),
        (lambda: client.get_status("nodeip"), errno.ENOENT),
        (lambda: client.get_status("kv/daemon-test", "node9"), errno.ENOENT),
    ):
        with pytest.raises(IpcError) as caught:
            call()
        assert caught.value.errno == code
    client.set_status("kv/daemon-test", None)
    with pytest.raises(IpcError) as caught:
        client.get_status("kv/daemon-test")
    assert caught.value.errno == errno.ENOENT


def test_cluster_log(client: PveIpcClient) -> None:
    marker = f"ipc test {uuid.uuid4().hex}"
    client.log_cluster_msg(5, "tester@pve", "ipctest", marker)
    entries = json.loads(client.get_cluster_log(0, ""))["data"]
    mine = [e for e in entries if e["msg"] == marker]
    assert len(mine) == 1
    assert {k: mine[0][k] for k in ("pri", "tag", "pid", "node", "user")} == {
        "pri": 5,
        "tag": "ipctest",
        "pid": os.getpid(),
        "node": "node2",
        "user": "tester@pve",
    }
    only_mine = json.loads(client.get_cluster_log(1, "tester@pve"))["data"]
    assert [e["msg"] for e in only_mine] == [marker]
    client.log_cluster_msg(9, "tester@pve", "ipctest", "dropped")  # priority > 7: accepted, not logged
    assert b"dropped" not in client.get_cluster_log(0, "")


def test_config_and_tokens(client: PveIpcClient) -> None:
    assert client.get_config("datacenter.cfg") == b"keyboard: en-us\n"
    assert client.get_config("///datacenter.cfg") == b"keyboard: en-us\n"
    for path in ("testdir", "nodes", "missing.cfg", ".version"):
        with pytest.raises(IpcError) as caught:
            client.get_config(path)
        assert caught.value.errno == errno.ENOENT, path
    assert client.verify_token("root@pam!test 11111111-2222-3333-4444-555555555555")
    assert not client.verify_token("root@pam!test 11111111-2222-3333-4444-555555555556")
    with pytest.raises(IpcError) as caught:
        client.verify_token("two\nlines")
    assert caught.value.errno == errno.EINVAL


def test_guest_properties_follow_the_tree(pve: Daemon, client: PveIpcClient) -> None:
    conf = pve.path("nodes/node2/qemu-server/300.conf")
    conf.write_bytes(b'name: "quoted" \\ name \nmemory: 64\n[snap]\nmemory: 1\n')
    try:
        assert client.get_guest_config_properties(300, ["memory", "name"]) == (
            b'{\n"300":{"memory": "64","name": "\\"quoted\\" \\\\ name"}\n}\n'
        )
        conf.write_bytes(b"")
        with pytest.raises(IpcError) as caught:
            client.get_guest_config_property(300, "name")
        assert caught.value.errno == errno.EIO
    finally:
        conf.unlink()
    with pytest.raises(IpcError) as caught:
        client.get_guest_config_property(300, "name")
    assert caught.value.errno == errno.ENOENT


@pytest.mark.allow_error_logs
def test_access_rule(pve: Daemon) -> None:
    name = name_of(pve)
    (pve.mount / "nodes/node1/priv").mkdir(exist_ok=True)
    (pve.mount / "nodes/node1/priv/key").write_bytes(b"secret\n")
    root = probe(name, 0, 0)
    assert root == ROOT_OK
    with PveIpcClient(name) as admin:
        admin.set_status("kv/probe", None)
        log_before = admin.get_cluster_log(0, "")
    read_only = {
        **READS_OK,
        "get_config_private": errno.EPERM,
        "get_config_node_private": errno.EPERM,
        "set_status": errno.EPERM,
        "get_status": errno.ENOENT,  # the refused SET_STATUS changed nothing
        "log_cluster_msg": errno.EPERM,
        "get_health": errno.EPERM,  # ours: it names private paths
    }
    assert probe(name, WWW_DATA, WWW_DATA) == {"uid": WWW_DATA, "gid": WWW_DATA, "connect": 0, **read_only}
    assert probe(name, NOBODY, WWW_DATA) == {"uid": NOBODY, "gid": WWW_DATA, "connect": 0, **read_only}
    assert probe(name, NOBODY, NOBODY) == {"uid": NOBODY, "gid": NOBODY, "connect": errno.EACCES}
    assert probe(name, NOBODY, NOBODY, (WWW_DATA,))["connect"] == errno.EACCES
    with PveIpcClient(name) as admin:
        assert admin.get_cluster_log(0, "") == log_before
    pve.wait_for_line(lambda line: "connection from bad user 65534! - rejected" in line)


def test_malformed_requests_change_nothing(pve: Daemon, client: PveIpcClient) -> None:
    version_before = client.get_fs_version()
    log_before = client.get_cluster_log(0, "")
    for op in Op:
        for size in (0, 15, -1, (1 << 20) + 1, 0x7FFFFFFF):
            response = client.raw(struct.pack("<i4xi4x", op, size))
            assert (response.op_id, response.error) == (op, -errno.EINVAL), (op.name, size)
    bad_writes = [
        codec.encode_request(Op.SET_STATUS, b"kv/short\0"),
        codec.encode_request(Op.LOG_CLUSTER_MSG, b"\x05\x02\x02a\0b\0"),
        codec.encode_request(Op.LOG_CLUSTER_MSG, b"\x05\x02\x02a\0b\0msg"),
        codec.encode_request(Op.LOG_CLUSTER_MSG, b"\x05\xff\xffa\0b\0c\0"),
    ]
    for request in bad_writes:
        assert client.raw(request).error == -errno.EINVAL
    for op in Op:
        if op is Op.SET_STATUS:
            continue  # a well-sized SET_STATUS of garbage is a valid (odd) key
        for length in (1, 3, 19, 255, 257, 600):
            assert client.raw(codec.encode_request(op, b"\xff" * length)).op_id == op
    for op_id in (0, 9, 14, 1000, -7):
        assert client.raw(codec.encode_request(op_id)).error == -errno.ECHRNG
    assert client.get_cluster_log(0, "") == log_before
    assert client.get_fs_version() == version_before
    assert pve.proc is not None
    assert pve.proc.poll() is None


def test_oversized_answers_and_requests(pve: Daemon, client: PveIpcClient) -> None:
    big = pve.path("big.cfg")
    big.write_bytes(b"x" * (1024 * 1024))
    try:
        with pytest.raises(IpcError) as caught:
            client.get_config("big.cfg")
        assert caught.value.errno == errno.EMSGSIZE
        with pytest.raises(OSError, match="qb_ipcc_sendv_recv") as too_big:
            client.raw(codec.encode_request(Op.GET_CONFIG, b"y" * (1024 * 1024)))  # libqb refuses to send it
        assert too_big.value.errno in (errno.EMSGSIZE, errno.EINVAL, errno.ENOBUFS)
    finally:
        big.unlink()
    assert client.get_config("datacenter.cfg") == b"keyboard: en-us\n"


def test_clients_that_leave_mid_request_leave_nothing(pve: Daemon) -> None:
    name = name_of(pve)
    for _ in range(10):
        gone = PveIpcClient(name)
        gone.send_only(codec.encode_request(Op.GET_CONFIG, b"corosync.conf\0"))
        gone.close()
    code = (
        "import os, sys; sys.path.insert(0, sys.argv[2]);"
        "from ipc.client import PveIpcClient; from ipc import codec;"
        "c = PveIpcClient(sys.argv[1]); c.send_only(codec.encode_request(6, b'corosync.conf\\0'));"
        "print(os.getpid(), flush=True); os._exit(0)"
    )
    for _ in range(3):
        killed = subprocess.run(
            [sys.executable, "-c", code, name, str(REPO)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        pid = int(killed.stdout)
        wait_for(lambda pid=pid: not leftover_rings(pve, pid), TIMEOUT_S, f"the rings of pid {pid} removed")  # type: ignore[misc]
    wait_for(lambda: not leftover_rings(pve, os.getpid()), TIMEOUT_S, "this process's rings removed")
    with PveIpcClient(name) as fresh:
        assert fresh.get_config("datacenter.cfg") == b"keyboard: en-us\n"


def test_fifty_clients_at_once(pve: Daemon) -> None:
    name = name_of(pve)
    barrier = threading.Barrier(50)
    failures: list[BaseException] = []
    expected = (VECTORS / "corosync.conf").read_bytes()

    def work(n: int) -> None:
        try:
            with PveIpcClient(name, timeout_ms=int(TIMEOUT_S * 1000)) as conn:
                barrier.wait(TIMEOUT_S)
                for _ in range(20):
                    assert conn.get_config("corosync.conf") == expected
                conn.set_status(f"kv/fifty{n}", b"%d\0" % n)
                assert conn.get_status(f"kv/fifty{n}") == b"%d\0" % n
                assert b'"100"' in conn.get_guest_config_property(0, "name")
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S * 2)
    assert not any(t.is_alive() for t in threads)
    assert not failures, failures[:3]
    with PveIpcClient(name) as admin:
        kvstore = json.loads(admin.get_fs_version())["kvstore"]["node2"]
        assert {f"kv/fifty{n}" for n in range(50)} <= set(kvstore)
        for n in range(50):
            admin.set_status(f"kv/fifty{n}", None)
    wait_for(lambda: not leftover_rings(pve, os.getpid()), TIMEOUT_S, "all fifty connections cleaned up")


def test_the_shell_client(pve: Daemon) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "ipc.client", "--name", name_of(pve), *args],
            cwd=REPO,
            capture_output=True,
            timeout=60,
            check=False,
        )

    done = run("get-config", "datacenter.cfg")
    assert (done.returncode, done.stdout) == (0, b"keyboard: en-us\n")
    done = run("GET_GUEST_CONFIG_PROPERTIES", "0", "name", "memory")
    assert done.returncode == 0
    assert json.loads(done.stdout)["200"] == {"name": "VM200", "memory": "1024"}
    done = run("get-config", "missing.cfg")
    assert done.returncode == 1
    assert b"ENOENT" in done.stderr
    assert run("set-status", "kv/shell", "hello").returncode == 0
    assert run("get-status", "kv/shell").stdout == b"hello\0"
    assert run("set-status", "kv/shell").returncode == 0
    assert run("get-status", "kv/shell").returncode == 1
    assert run("verify-token", "root@pam!test 11111111-2222-3333-4444-555555555555").returncode == 0
    assert run("verify-token", "nope").returncode == 1
    assert json.loads(run("get-fs-version").stdout)["vmlist"] >= 3


def test_stopping_the_daemon_frees_the_name(tmp_path: Path) -> None:
    require_fuse()
    name = f"pve2-test-{uuid.uuid4().hex[:12]}"
    daemon = Daemon(tmp_path / "d", extra_args=("--ipc-name", name))
    try:
        daemon.start()
        conn = PveIpcClient(name, timeout_ms=5000)
        try:
            assert json.loads(conn.get_cluster_info())["nodename"] == "node1"
            assert daemon.stop() == 0  # with a client still connected
            with pytest.raises(OSError, match="qb_ipcc_sendv_recv"):
                conn.get_cluster_info()
        finally:
            conn.close()
        with pytest.raises(OSError, match="qb_ipcc_connect") as caught:
            PveIpcClient(name)
        assert caught.value.errno == errno.ECONNREFUSED
        assert not list(Path("/dev/shm").glob(f"qb-{daemon_pid(daemon)}-*"))
    finally:
        daemon.cleanup()


def test_a_taken_name_leaves_the_mount_serving(pve: Daemon, tmp_path: Path) -> None:
    """As C (which ignores qb_ipcs_run's result), a daemon whose IPC name is taken still mounts."""
    second = Daemon(tmp_path / "second", extra_args=("--ipc-name", name_of(pve)))
    try:
        second.start()
        second.wait_for_line(lambda line: "IPC server" in line and "not started" in line)
        assert second.path(".version").read_bytes().startswith(b"{")
        with PveIpcClient(name_of(pve)) as conn:  # the first daemon still answers
            assert json.loads(conn.get_cluster_info())["nodename"] == "node2"
        assert second.stop() == 0
    finally:
        second.cleanup()
