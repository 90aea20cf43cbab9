"""ipc/ops.py: each operation asks the right actor, and every failure becomes the C errno."""

from __future__ import annotations

import errno
import struct
import threading

import pykka
import pytest

from actors import messages as m
from errors import BadStatusValue, FileTooLarge, NotFound
from ipc import codec
from ipc.codec import Op
from ipc.ops import Client, IpcOps
from tests.ipc.backends import GUESTS, TIMEOUT, TOKENS, Status, Tree, fill, no_texts

ROOT = Client(read_only=False, pid=4242, buffer_size=1 << 20)
WWW = Client(read_only=True, pid=4343, buffer_size=1 << 20)


@pytest.fixture
def ops(tree: Tree, status: Status) -> IpcOps:
    fill(tree)
    return IpcOps(tree.published, status.ref, no_texts(), timeout=TIMEOUT)


def call(
    ops: IpcOps, op: int, payload: bytes = b"", client: Client = ROOT, size: int | None = None
) -> codec.Response:
    """As the binding hands a request over: the claimed size, at least 16 and at most the buffer."""
    request = codec.encode_request(op, payload)
    claimed = len(request) if size is None else size
    if size is not None:
        request = struct.pack("<i4xi4x", op, size) + payload
        request = request[: max(16, min(claimed, client.buffer_size))].ljust(16, b"\0")
    response = codec.decode_response(ops.respond(request, claimed, client))
    assert response.op_id == op
    return response


def ok(response: codec.Response) -> bytes:
    assert response.error == 0, errno.errorcode.get(-response.error)
    return response.data


def fails(response: codec.Response, code: int) -> None:
    assert response.error == -code, (errno.errorcode.get(-response.error), errno.errorcode[code])
    assert response.data == b""


@pytest.mark.parametrize(
    ("op", "name"),
    [(Op.GET_FS_VERSION, ".version"), (Op.GET_CLUSTER_INFO, ".members"), (Op.GET_GUEST_LIST, ".vmlist")],
)
def test_status_texts(ops: IpcOps, status: Status, op: Op, name: str) -> None:
    status.answers[m.GetStatusText] = b'{\n"version": 3\n}\n'
    assert ok(call(ops, op)) == b'{\n"version": 3\n}\n'
    assert ok(call(ops, op, client=WWW)) == b'{\n"version": 3\n}\n'
    assert status.received == [m.GetStatusText(name=name)] * 2
    fails(call(ops, op, b"x"), errno.EINVAL)
    assert len(status.received) == 2


def test_set_status(ops: IpcOps, status: Status) -> None:
    ok(call(ops, Op.SET_STATUS, codec.set_status_payload(b"kv/test", b"value\0")))
    ok(call(ops, Op.SET_STATUS, codec.set_status_payload(b"kv/test", None)))
    assert status.received == [
        m.SetStatus(key="kv/test", value=b"value\0"),
        m.SetStatus(key="kv/test", value=b""),
    ]


def test_set_status_errors(ops: IpcOps, status: Status) -> None:
    status.answers[m.SetStatus] = FileTooLarge("kv/big")
    fails(call(ops, Op.SET_STATUS, codec.set_status_payload(b"kv/big", bytes(40000))), errno.EFBIG)
    status.answers[m.SetStatus] = BadStatusValue("rrd/x")
    fails(call(ops, Op.SET_STATUS, codec.set_status_payload(b"rrd/x", b"no nul")), errno.ENOMEM)
    received = len(status.received)
    fails(call(ops, Op.SET_STATUS, b"kv/short\0"), errno.EINVAL)
    fails(call(ops, Op.SET_STATUS, codec.set_status_payload(b"kv/x", b"1\0"), client=WWW), errno.EPERM)
    fails(call(ops, Op.SET_STATUS, b"", client=WWW), errno.EPERM)  # EPERM comes before EINVAL
    assert len(status.received) == received


def test_get_status(ops: IpcOps, status: Status) -> None:
    status.answers[m.GetStatus] = b"value\0"
    assert ok(call(ops, Op.GET_STATUS, codec.get_status_payload(b"kv/test"), client=WWW)) == b"value\0"
    status.answers[m.GetStatus] = NotFound("nodeip")
    fails(call(ops, Op.GET_STATUS, codec.get_status_payload(b"nodeip", b"node2")), errno.ENOENT)
    fails(call(ops, Op.GET_STATUS, bytes(300)), errno.EINVAL)
    assert status.received == [
        m.GetStatus(key="kv/test", nodename=""),
        m.GetStatus(key="nodeip", nodename="node2"),
    ]


def test_get_config(ops: IpcOps) -> None:
    for path, data in GUESTS.items():
        assert ok(call(ops, Op.GET_CONFIG, codec.string_payload(path.encode()))) == data
    assert ok(call(ops, Op.GET_CONFIG, b"//datacenter.cfg\0")) == b"keyboard: en-us\n"
    assert ok(call(ops, Op.GET_CONFIG, b"priv/token.cfg\0")) == TOKENS
    assert ok(call(ops, Op.GET_CONFIG, b"empty.cfg\0")) == b""
    fails(call(ops, Op.GET_CONFIG, b"testdir\0"), errno.ENOENT)
    fails(call(ops, Op.GET_CONFIG, b"\0"), errno.ENOENT)  # the root is a directory
    fails(call(ops, Op.GET_CONFIG, b"does/not/exist\0"), errno.ENOENT)
    fails(call(ops, Op.GET_CONFIG, b""), errno.EINVAL)


@pytest.mark.parametrize(
    "path",
    [
        "priv/token.cfg",
        "/priv/token.cfg",
        "priv",
        "nodes/node1/priv/key",
        "nodes/node1/priv",
        "nodes/node1//priv/key",
    ],
)
def test_read_only_clients_cant_read_private_paths(ops: IpcOps, path: str) -> None:
    fails(call(ops, Op.GET_CONFIG, codec.string_payload(path.encode()), client=WWW), errno.EPERM)


def test_read_only_clients_read_the_rest(ops: IpcOps) -> None:
    assert ok(call(ops, Op.GET_CONFIG, b"datacenter.cfg\0", client=WWW)) == b"keyboard: en-us\n"
    fails(call(ops, Op.GET_CONFIG, b"privacy.cfg\0", client=WWW), errno.ENOENT)  # not private, just missing


def test_log_cluster_msg(ops: IpcOps, status: Status) -> None:
    ok(call(ops, Op.LOG_CLUSTER_MSG, codec.log_payload(5, b"root@pam", b"ipc", b"captured log msg")))
    assert status.received == [
        m.LogClusterMessage(priority=5, ident="root@pam", tag="ipc", msg=b"captured log msg", pid=ROOT.pid)
    ]
    fails(call(ops, Op.LOG_CLUSTER_MSG, codec.log_payload(5, b"a", b"b", b"c"), client=WWW), errno.EPERM)
    fails(call(ops, Op.LOG_CLUSTER_MSG, b"\x05\x02\x02a\0b\0"), errno.EINVAL)
    assert len(status.received) == 1


def test_get_cluster_log(ops: IpcOps, status: Status) -> None:
    status.answers[m.GetClusterLog] = '{\n"data": [\n]\n}\n'
    assert (
        ok(call(ops, Op.GET_CLUSTER_LOG, codec.cluster_log_payload(0, b""), client=WWW))
        == b'{\n"data": [\n]\n}\n'
    )
    ok(call(ops, Op.GET_CLUSTER_LOG, codec.cluster_log_payload(3, b"root@pam")))
    assert status.received == [
        m.GetClusterLog(max_entries=50, user=""),
        m.GetClusterLog(max_entries=3, user="root@pam"),
    ]
    fails(call(ops, Op.GET_CLUSTER_LOG, struct.pack("<IIII", 3, 0, 0, 0)), errno.EINVAL)


def test_get_rrd_dump(ops: IpcOps, status: Status) -> None:
    status.answers[m.GetRrdDump] = b"pve2-node/node1:1:2\n\0"
    assert ok(call(ops, Op.GET_RRD_DUMP, client=WWW)) == b"pve2-node/node1:1:2\n\0"
    assert status.received == [m.GetRrdDump()]


def test_guest_config_properties(ops: IpcOps) -> None:
    assert ok(
        call(ops, Op.GET_GUEST_CONFIG_PROPERTY, codec.guest_property_payload(0, b"memory"), client=WWW)
    ) == (b'{\n"100":{"memory": "2048"},\n"200":{"memory": "1024"},\n"101":{"memory": "512"}\n}\n')
    assert ok(call(ops, Op.GET_GUEST_CONFIG_PROPERTIES, codec.guest_properties_payload(200, (b"name",)))) == (
        b'{\n"200":{"name": "VM200"}\n}\n'
    )
    fails(call(ops, Op.GET_GUEST_CONFIG_PROPERTY, codec.guest_property_payload(999, b"name")), errno.ENOENT)
    fails(call(ops, Op.GET_GUEST_CONFIG_PROPERTY, codec.guest_property_payload(99, b"name")), errno.EINVAL)
    fails(
        call(ops, Op.GET_GUEST_CONFIG_PROPERTIES, codec.guest_properties_payload(100, (b"Name",))),
        errno.EINVAL,
    )
    fails(
        call(ops, Op.GET_GUEST_CONFIG_PROPERTIES, codec.guest_properties_payload(999, (b"Name",))),
        errno.ENOENT,
    )
    fails(call(ops, Op.GET_GUEST_CONFIG_PROPERTY, struct.pack("<I", 100)), errno.EINVAL)


def test_an_empty_guest_config_is_eio(ops: IpcOps, tree: Tree) -> None:
    tree.write("nodes/node1/qemu-server/300.conf", b"")
    fails(call(ops, Op.GET_GUEST_CONFIG_PROPERTY, codec.guest_property_payload(300, b"name")), errno.EIO)
    ok(call(ops, Op.GET_GUEST_CONFIG_PROPERTY, codec.guest_property_payload(0, b"name")))


def test_verify_token(ops: IpcOps, tree: Tree) -> None:
    token = b"root@pam!test 11111111-2222-3333-4444-555555555555"
    ok(call(ops, Op.VERIFY_TOKEN, codec.string_payload(token), client=WWW))  # read-only may verify
    fails(call(ops, Op.VERIFY_TOKEN, codec.string_payload(b"root@pam!test wrong")), errno.ENOENT)
    fails(call(ops, Op.VERIFY_TOKEN, codec.string_payload(token[:-1])), errno.ENOENT)  # whole lines only
    fails(call(ops, Op.VERIFY_TOKEN, b"a\nb\0"), errno.EINVAL)
    fails(call(ops, Op.VERIFY_TOKEN, b"\0"), errno.EINVAL)
    m.ask(tree.ref, m.Remove(path="priv/token.cfg"), timeout=TIMEOUT)
    fails(call(ops, Op.VERIFY_TOKEN, codec.string_payload(token)), errno.ENOENT)


@pytest.mark.parametrize("op_id", [0, 9, 14, 99, -5])
def test_unknown_operations(ops: IpcOps, op_id: int) -> None:
    fails(call(ops, op_id), errno.ECHRNG)
    fails(call(ops, op_id, client=WWW), errno.ECHRNG)


@pytest.mark.parametrize("size", [0, 8, 15, -1, -(1 << 31), (1 << 20) + 1, 0x7FFFFFFF])
def test_claimed_sizes_out_of_range(ops: IpcOps, status: Status, size: int) -> None:
    for op in Op:
        fails(call(ops, op, size=size), errno.EINVAL)
    fails(call(ops, Op.SET_STATUS, size=size, client=WWW), errno.EPERM)
    assert status.received == []


def test_a_request_shorter_than_its_header_claims(ops: IpcOps, status: Status) -> None:
    request = codec.encode_request(Op.GET_FS_VERSION)
    fails(codec.decode_response(ops.respond(request, 40, ROOT)), errno.EINVAL)
    assert codec.decode_response(ops.respond(b"\x01", 16, ROOT)) == codec.Response(0, -errno.EINVAL, b"")
    assert status.received == []


class Stalled(pykka.ThreadingActor):
    """Answers nothing until released."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self._release = release

    def on_receive(self, message: object) -> object:
        self._release.wait(TIMEOUT)
        return b""


def test_an_actor_that_does_not_answer_in_time_is_eio(tree: Tree) -> None:
    release = threading.Event()
    stalled = Stalled.start(release)
    try:
        slow = IpcOps(tree.published, stalled, no_texts(), timeout=0.2)
        fails(call(slow, Op.GET_RRD_DUMP), errno.EIO)
    finally:
        release.set()


def test_a_stopped_actor_is_eio(ops: IpcOps, status: Status) -> None:
    status.ref.stop()
    fails(call(ops, Op.GET_FS_VERSION), errno.EIO)


@pytest.mark.allow_error_logs
def test_an_unexpected_error_is_eio_and_logged(
    ops: IpcOps, status: Status, caplog: pytest.LogCaptureFixture
) -> None:
    status.answers[m.GetRrdDump] = RuntimeError("bug")
    fails(call(ops, Op.GET_RRD_DUMP), errno.EIO)
    assert "request 10 from pid 4242 failed" in caplog.text


def test_get_health_answers_root_only(ops: IpcOps, status: Status) -> None:
    status.answers[m.GetHealthReport] = b'{\n"mode": "local"\n}\n'
    assert ok(call(ops, Op.GET_HEALTH)) == b'{\n"mode": "local"\n}\n'
    fails(call(ops, Op.GET_HEALTH, client=WWW), errno.EPERM)  # it names private paths
    fails(call(ops, Op.GET_HEALTH, b"x"), errno.EINVAL)
    assert status.received == [m.GetHealthReport()]
