"""ipc/server.py in this process over real libqb: access, bad input, leaving clients, many clients."""

from __future__ import annotations

import errno
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from actors import messages as m
from errors import NotFound
from ipc import codec
from ipc.client import IpcError, PveIpcClient
from ipc.codec import Op
from ipc.server import IpcServer
from memdb.tree import MAX_FILE_SIZE
from tests.integration.helpers import NOBODY, WWW_DATA, wait_for
from tests.ipc.backends import GUESTS, TIMEOUT, Status, Tree, no_texts
from tests.ipc.probes import READS_OK, ROOT_OK, probe
from tests.require import require

REPO = Path(__file__).resolve().parents[2]
ANSWERS: dict[type, object] = {
    m.GetStatusText: b"{}\n",
    m.GetClusterLog: '{\n"data": [\n]\n}\n',
    m.GetRrdDump: b"",
    m.GetStatus: NotFound("kv/x"),
    m.GetHealthReport: b"{}\n",
}
"""What the scripted status actor answers when a test doesn't care."""


@pytest.fixture
def client(server: IpcServer, status: Status) -> PveIpcClient:
    status.answers.update(ANSWERS)
    conn = PveIpcClient(server.name, timeout_ms=10_000)
    yield conn  # type: ignore[misc]
    conn.close()


def shm_dirs(client_pid: int) -> list[Path]:
    return list(Path("/dev/shm").glob(f"qb-{os.getpid()}-{client_pid}-*"))


def all_gone(server: IpcServer, client_pid: int) -> bool:
    return server.active_connections == 0 and not shm_dirs(client_pid)


def test_every_operation_round_trips(client: PveIpcClient, status: Status) -> None:
    assert client.get_fs_version() == b"{}\n"
    assert client.get_cluster_info() == b"{}\n"
    assert client.get_guest_list() == b"{}\n"
    client.set_status("kv/a", b"1\0")
    status.answers[m.GetStatus] = b"1\0"
    assert client.get_status("kv/a", "node1") == b"1\0"
    assert client.get_config("nodes/node1/qemu-server/100.conf") == GUESTS["nodes/node1/qemu-server/100.conf"]
    client.log_cluster_msg(5, "root@pam", "ipc", "hello")
    assert client.get_cluster_log(3, "root@pam") == b'{\n"data": [\n]\n}\n'
    assert client.get_rrd_dump() == b""
    assert client.get_guest_config_property(100, "name") == b'{\n"100":{"name": "vm100"}\n}\n'
    assert client.get_guest_config_properties(0, ["name"]) == (
        b'{\n"100":{"name": "vm100"},\n"200":{"name": "VM200"}\n}\n'
    )
    assert client.verify_token("root@pam!test 11111111-2222-3333-4444-555555555555")
    assert not client.verify_token("root@pam!test nope")
    assert status.of(m.SetStatus) == [m.SetStatus(key="kv/a", value=b"1\0")]
    assert status.of(m.GetStatus) == [m.GetStatus(key="kv/a", nodename="node1")]
    assert status.of(m.LogClusterMessage) == [
        m.LogClusterMessage(priority=5, ident="root@pam", tag="ipc", msg=b"hello", pid=os.getpid())
    ]
    assert status.of(m.GetClusterLog) == [m.GetClusterLog(max_entries=3, user="root@pam")]


def test_errors_reach_the_client(client: PveIpcClient) -> None:
    for call, code in (
        (lambda: client.get_config("does/not/exist"), errno.ENOENT),
        (lambda: client.get_guest_config_property(50, "name"), errno.EINVAL),
        (lambda: client.request(99), errno.ECHRNG),
    ):
        with pytest.raises(IpcError) as caught:
            call()
        assert caught.value.errno == code
    assert client.get_fs_version() == b"{}\n"  # the connection is still good


@pytest.mark.parametrize("size", [0, 4, 15, -1, -(1 << 31), (1 << 20) + 1, 0x7FFFFFFF])
def test_sizes_outside_the_buffer_get_einval_and_change_nothing(
    client: PveIpcClient, status: Status, size: int
) -> None:
    for op in Op:
        response = client.raw(struct.pack("<i4xi4x", op, size))
        assert (response.op_id, response.error, response.data) == (op, -errno.EINVAL, b""), op.name
    assert status.received == []
    assert client.get_fs_version() == b"{}\n"


@pytest.mark.parametrize("size", [17, 100, 1 << 20])
def test_sizes_beyond_the_request_but_inside_the_buffer(client: PveIpcClient, size: int) -> None:
    """As in C, the server then reads the client's own ring past its request: an answer, no crash."""
    for op in Op:
        response = client.raw(struct.pack("<i4xi4x", op, size))
        assert response.op_id == op
    response = client.raw(struct.pack("<i4xi4x", Op.GET_FS_VERSION, 17))
    assert response.error == -errno.EINVAL  # a header-only request must claim exactly 16
    assert client.get_fs_version() == b"{}\n"


def test_garbage_payloads(client: PveIpcClient, status: Status) -> None:
    """Every op with every payload length up to 600 of 0xff bytes: an answer each, never a change."""
    for op in Op:
        for length in range(0, 600, 7):
            response = client.raw(codec.encode_request(op, b"\xff" * length))
            assert response.op_id == op
            if op in codec.WRITE_OPS:
                assert response.error != 0 or op is Op.SET_STATUS, (op.name, length)
    # SET_STATUS takes any value (the status actor judges it); LOG_CLUSTER_MSG never passed
    assert status.of(m.LogClusterMessage) == []
    assert {msg.key for msg in status.of(m.SetStatus)} == {"\udcff" * 255}


def test_a_request_shorter_than_a_header(client: PveIpcClient, status: Status) -> None:
    client.send_only(b"\x01\x00\x00\x00")
    client.raw(codec.encode_request(Op.GET_FS_VERSION))  # whatever came of the stub, the server answers
    assert client.get_guest_list() == b"{}\n"


def test_a_response_too_large_for_the_ring_is_emsgsize(client: PveIpcClient, tree: Tree) -> None:
    fits = MAX_FILE_SIZE - codec.RESPONSE_HEADER.size  # the whole answer is exactly the buffer
    tree.write("big.cfg", b"b" * (fits + 1))
    tree.write("fits.cfg", b"a" * fits)
    with pytest.raises(IpcError) as caught:
        client.get_config("big.cfg")
    assert caught.value.errno == errno.EMSGSIZE
    assert client.get_config("fits.cfg") == b"a" * fits
    assert client.get_fs_version() == b"{}\n"


def test_a_client_that_leaves_mid_request_leaves_nothing(
    server: IpcServer, tree: Tree, status: Status
) -> None:
    status.answers.update(ANSWERS)
    tree.write("big.cfg", b"b" * 500_000)
    for _ in range(20):
        gone = PveIpcClient(server.name)
        gone.send_only(codec.encode_request(Op.GET_CONFIG, b"big.cfg\0"))
        gone.close()
    wait_for(lambda: all_gone(server, os.getpid()), TIMEOUT, "every connection cleaned up")
    with PveIpcClient(server.name) as other:
        assert other.get_fs_version() == b"{}\n"


def test_a_killed_client_leaves_nothing(server: IpcServer, status: Status) -> None:
    status.answers.update(ANSWERS)
    code = (
        "import os, sys; sys.path.insert(0, sys.argv[2]);"
        "from ipc.client import PveIpcClient; from ipc import codec;"
        "c = PveIpcClient(sys.argv[1]); c.send_only(codec.encode_request(1));"
        "print(os.getpid(), flush=True); os._exit(0)"
    )
    child = subprocess.run(
        [sys.executable, "-c", code, server.name, str(REPO)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    pid = int(child.stdout)
    wait_for(lambda: all_gone(server, pid), TIMEOUT, f"the connection of pid {pid} cleaned up")


def test_fifty_clients_at_once(server: IpcServer, status: Status) -> None:
    status.answers.update(ANSWERS)
    barrier = threading.Barrier(50)
    failures: list[BaseException] = []
    expected = GUESTS["nodes/node2/qemu-server/200.conf"]

    def work(n: int) -> None:
        try:
            with PveIpcClient(server.name, timeout_ms=30_000) as conn:
                barrier.wait(TIMEOUT)
                assert server.active_connections == 50
                for _ in range(20):
                    assert conn.get_config("nodes/node2/qemu-server/200.conf") == expected
                conn.set_status(f"kv/client{n}", b"%d\0" % n)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures[:3]
    assert sorted(msg.key for msg in status.of(m.SetStatus)) == sorted(f"kv/client{n}" for n in range(50))
    wait_for(lambda: all_gone(server, os.getpid()), TIMEOUT, "all fifty connections cleaned up")


@pytest.mark.allow_error_logs  # "connection from bad user" is logged as critical, as in C
def test_access_rule(server: IpcServer, status: Status) -> None:
    require([] if os.geteuid() == 0 else ["root"], "switching users")
    status.answers.update(ANSWERS)
    status.answers[m.GetStatus] = b"x\0"
    root = probe(server.name, 0, 0)
    assert root == ROOT_OK
    writes = len(status.of(m.SetStatus)), len(status.of(m.LogClusterMessage))
    assert writes == (1, 1)
    read_only = {
        **READS_OK,
        "get_config_private": errno.EPERM,
        "get_config_node_private": errno.EPERM,
        "set_status": errno.EPERM,
        "get_status": 0,
        "log_cluster_msg": errno.EPERM,
        "get_health": errno.EPERM,  # ours: it names private paths
    }
    assert probe(server.name, WWW_DATA, WWW_DATA) == {
        "uid": WWW_DATA,
        "gid": WWW_DATA,
        "connect": 0,
        **read_only,
    }
    assert probe(server.name, NOBODY, WWW_DATA) == {"uid": NOBODY, "gid": WWW_DATA, "connect": 0, **read_only}
    assert probe(server.name, 0, WWW_DATA) == {"uid": 0, "gid": WWW_DATA, "connect": 0, **read_only}
    assert (len(status.of(m.SetStatus)), len(status.of(m.LogClusterMessage))) == writes
    # only the primary group counts, as in C; root's uid alone is not enough either
    assert probe(server.name, NOBODY, NOBODY) == {"uid": NOBODY, "gid": NOBODY, "connect": errno.EACCES}
    assert probe(server.name, NOBODY, NOBODY, (WWW_DATA,))["connect"] == errno.EACCES
    assert probe(server.name, 0, NOBODY)["connect"] == errno.EACCES
    wait_for(lambda: server.active_connections == 0, TIMEOUT, "the probes' connections cleaned up")


def test_the_name_can_only_be_served_once(server: IpcServer, tree: Tree, status: Status) -> None:
    second = IpcServer(tree.published, status.ref, no_texts(), www_gid=WWW_DATA, name=server.name)
    with pytest.raises(OSError, match="qb_ipcs_run") as caught:
        second.start()
    assert caught.value.errno == errno.EADDRINUSE
    second.stop()


def test_stop_disconnects_clients_and_frees_the_name(server: IpcServer, tree: Tree, status: Status) -> None:
    status.answers.update(ANSWERS)
    conn = PveIpcClient(server.name, timeout_ms=5000)
    try:
        assert conn.get_fs_version() == b"{}\n"
        server.stop()
        with pytest.raises(OSError, match="qb_ipcc_sendv_recv"):
            conn.get_fs_version()
    finally:
        conn.close()
    again = IpcServer(tree.published, status.ref, no_texts(), www_gid=WWW_DATA, name=server.name)
    again.start()
    try:
        with PveIpcClient(server.name) as fresh:
            assert fresh.get_fs_version() == b"{}\n"
    finally:
        again.stop()
