"""The IPC request parser (ipc/codec.py) and the request handler (ipc/ops.py) on garbage.

The parser raises only its documented errors: InvalidArgument (EINVAL) for a malformed
request, UnknownRequest (ECHRNG) for an unknown operation. What it accepts keeps the op's
rules (names without NUL, at most 255 key bytes, vmids 0 or >= 100, ...). The handler never
raises, answers every request with a well-formed response carrying the request's id, asks no
actor for a request the parser rejects, and never lets a read-only (www-data) client write or
read a private path.
"""

from __future__ import annotations

import errno
import struct
from typing import Any, cast

import pykka
from hypothesis import given
from hypothesis import strategies as st

from actors import messages as m
from errors import InvalidArgument, UnknownRequest
from ipc import codec
from ipc.codec import Op
from ipc.ops import TOKEN_FILE, Client, IpcOps, private
from memdb.records import VmListSnapshot
from memdb.snapshot import Published, TreeSnapshot
from tests.fuzz import corpus
from tests.fuzz.strategies import fuzz, garbage
from tests.ipc.backends import FakeStatus, no_texts

EXAMPLES = 300
OP_IDS = st.one_of(st.sampled_from(list(Op)), st.integers(-(1 << 31), (1 << 31) - 1))
NAMES = st.binary(max_size=300)


def requests() -> st.SearchStrategy[bytes]:
    """Captured requests (mutated or not), random bytes, or a good header on a random payload."""
    with_header = st.builds(
        lambda op, payload: codec.encode_request(op, payload), OP_IDS, garbage(corpus.ipc_requests())
    )
    return st.one_of(garbage(corpus.ipc_requests()), with_header)


def parse(buf: bytes) -> codec.IpcRequest | None:
    """What the server does with a request: header, operation, payload; None after a documented error."""
    try:
        op_id, _size = codec.request_header(buf)
        return codec.decode_request(codec.operation(op_id), buf)
    except (InvalidArgument, UnknownRequest):
        return None


def check_rules(request: codec.IpcRequest) -> None:
    """What an accepted request guarantees to the ops."""
    match request:
        case codec.StatusText(name=name):
            assert name in codec.STATUS_TEXT_FOR.values()
        case codec.SetStatus(key=key):
            raw = key.encode("utf-8", "surrogateescape")
            assert len(raw) < codec.NAME_FIELD
            assert b"\0" not in raw
        case codec.GetStatus(key=key, nodename=nodename):
            for name in (key, nodename):
                raw = name.encode("utf-8", "surrogateescape")
                assert len(raw) < codec.NAME_FIELD
                assert b"\0" not in raw
        case codec.GetConfig(path=path):
            assert "\0" not in path
        case codec.LogMessage(priority=priority, ident=ident, tag=tag, msg=msg):
            assert 0 <= priority <= 0xFF
            assert "\0" not in ident + tag
            assert b"\0" not in msg
        case codec.GetClusterLog(max_entries=max_entries, user=user):
            assert max_entries > 0
            assert "\0" not in user
        case codec.GuestProperties(vmid=vmid, properties=properties):
            assert vmid == 0 or vmid >= codec.MIN_GUEST_VMID
            assert all(b"\0" not in p for p in properties)
        case codec.VerifyToken(token=token):
            assert token
            assert b"\0" not in token
            assert b"\n" not in token


@fuzz(EXAMPLES)
@given(requests())
def test_request_parser_raises_only_its_documented_errors(buf: bytes) -> None:
    request = parse(buf)
    if request is not None:
        check_rules(request)


@fuzz(EXAMPLES)
@given(OP_IDS, st.binary(max_size=600))
def test_any_payload_under_a_good_header(op_id: int, payload: bytes) -> None:
    request = parse(codec.encode_request(op_id, payload))
    if request is not None:
        assert op_id in set(Op)
        check_rules(request)


@fuzz(EXAMPLES)
@given(NAMES, st.one_of(st.none(), st.binary(max_size=600)), NAMES)
def test_client_encodings_decode_to_what_was_sent(key: bytes, value: bytes | None, node: bytes) -> None:
    key, node = key.replace(b"\0", b""), node.replace(b"\0", b"")
    keep = key[: codec.NAME_FIELD - 1]
    set_status = codec.encode_request(Op.SET_STATUS, codec.set_status_payload(key, value))
    assert parse(set_status) == codec.SetStatus(codec.text(keep), value or b"")
    get_status = codec.encode_request(Op.GET_STATUS, codec.get_status_payload(key, node))
    assert parse(get_status) == codec.GetStatus(codec.text(keep), codec.text(node[: codec.NAME_FIELD - 1]))
    config = codec.encode_request(Op.GET_CONFIG, codec.string_payload(key))
    assert parse(config) == codec.GetConfig(codec.text(key))
    log = codec.encode_request(Op.LOG_CLUSTER_MSG, codec.log_payload(5, key[:200], node[:200], key))
    assert parse(log) == codec.LogMessage(5, codec.text(key[:200]), codec.text(node[:200]), key)


@fuzz(EXAMPLES)
@given(garbage(corpus.ipc_responses()))
def test_response_decoder(buf: bytes) -> None:
    try:
        response = codec.decode_response(buf)
    except InvalidArgument:
        assert len(buf) < codec.RESPONSE_HEADER.size or struct.unpack_from("<i", buf, 8)[0] != len(buf)
        return
    assert response.op_id == struct.unpack_from("<i", buf)[0]
    again = codec.encode_response(response.op_id, response.error, response.data)
    if response.error == 0 or not response.data:
        # the padding (bytes 4-8, 12-16, 20-24) holds C's garbage: ours is zero
        assert (
            again[:4] + again[8:12] + again[16:20] + again[24:] == buf[:4] + buf[8:12] + buf[16:20] + buf[24:]
        )


# ----- the handler ------------------------------------------------------------------------------

ANSWERS: dict[type, object] = {
    m.GetStatusText: b"{}\n",
    m.SetStatus: None,
    m.GetStatus: b"value\0",
    m.LogClusterMessage: None,
    m.GetClusterLog: '{"data": []}\n',
    m.GetRrdDump: b"",
    m.GetHealthReport: b"{}\n",
}
WRITES = (m.SetStatus, m.LogClusterMessage)
ROOT_ONLY = (*WRITES, m.GetHealthReport)
SIZE_LIES = st.one_of(st.just(0), st.integers(-2, 2))
"""The size the binding hands over: mostly the header's, sometimes off by a little."""


class RecordingTree:
    """Stands in for the published tree snapshot: every file read is recorded, one answer."""

    def __init__(self, seen: list[str]) -> None:
        self._seen = seen
        self.vmlist = VmListSnapshot(version=1, vms=())

    @property
    def value(self) -> RecordingTree:
        return self

    def read_all(self, path: str) -> bytes:
        self._seen.append(path)
        return b"root@pam!x 1\n"


def recording_tree(seen: list[str]) -> Published[TreeSnapshot]:
    return cast(Published[TreeSnapshot], RecordingTree(seen))


def test_handler_answers_everything_and_refuses_what_it_must() -> None:
    fs_seen: list[str] = []
    status_seen: list[object] = []
    status = FakeStatus.start(status_seen, ANSWERS)
    ops = IpcOps(recording_tree(fs_seen), status, no_texts(), timeout=10.0)

    @fuzz(EXAMPLES)
    @given(requests(), st.booleans(), st.sampled_from((1 << 20, 64, 300)), SIZE_LIES)
    def run(buf: bytes, read_only: bool, buffer_size: int, size_lie: int) -> None:
        client = Client(read_only=read_only, pid=7, buffer_size=buffer_size)
        request = buf.ljust(codec.REQUEST_HEADER.size, b"\0")
        claimed = codec.request_header(request)[1] + size_lie
        del fs_seen[:], status_seen[:]
        response = codec.decode_response(ops.respond(request, claimed, client))
        assert response.op_id == codec.request_header(request)[0]
        asked = [*fs_seen, *status_seen]
        if response.error:
            assert -response.error in errno.errorcode
            assert response.data == b""
        in_range = codec.REQUEST_HEADER.size <= claimed <= min(len(request), buffer_size)
        parsed = parse(request[:claimed]) if in_range else None
        if parsed is None:
            assert response.error in (-errno.EINVAL, -errno.ECHRNG, -errno.EPERM)
            assert asked == []
        if read_only:
            assert not [a for a in asked if isinstance(a, ROOT_ONLY)]
            # VERIFY_TOKEN reads priv/token.cfg for every client (it answers yes or no, never the file)
            reads = [path for path in fs_seen if private(path)]
            assert reads == ([TOKEN_FILE] if isinstance(parsed, codec.VerifyToken) else [])

    try:
        run()
    finally:
        status.stop()


def test_read_only_clients_are_refused_root_only_ops_before_parsing() -> None:
    seen: list[Any] = []
    fake = FakeStatus.start(seen, ANSWERS)
    ops = IpcOps(recording_tree(seen), fake, no_texts(), timeout=10.0)
    www = Client(read_only=True, pid=7, buffer_size=1 << 20)

    @fuzz(EXAMPLES // 3)
    @given(st.sampled_from(sorted(codec.ROOT_ONLY_OPS)), st.binary(max_size=400))
    def run(op: Op, payload: bytes) -> None:
        request = codec.encode_request(op, payload)
        response = codec.decode_response(ops.respond(request, len(request), www))
        assert (response.op_id, response.error) == (op, -errno.EPERM)
        assert seen == []

    try:
        run()
    finally:
        fake.stop()


def test_handler_stops_nothing() -> None:
    """After all that garbage the handler still answers a good request (no actor died)."""
    seen: list[Any] = []
    fake: pykka.ActorRef[Any] = FakeStatus.start(seen, ANSWERS)
    ops = IpcOps(recording_tree([]), fake, no_texts(), timeout=10.0)
    root = Client(read_only=False, pid=7, buffer_size=1 << 20)
    for buf in corpus.ipc_requests():
        ops.respond(buf, len(buf), root)
    request = codec.encode_request(Op.GET_CONFIG, codec.string_payload(b"datacenter.cfg"))
    response = codec.decode_response(ops.respond(request, len(request), root))
    assert (response.error, response.data) == (0, b"root@pam!x 1\n")
    assert fake.is_alive()
    fake.stop()
