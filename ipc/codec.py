"""The "pve2" IPC wire format: request and response layouts, both directions, no I/O.

Sources: pve-cluster ``server.c`` and ``cfs-ipc-ops.h`` (the server side), ``IPCC.xs`` and
``Cluster.pm`` (how the Perl client packs requests); libqb ``qbipc_common.h`` for the headers.
Every integer is in host byte order, which is little-endian on every platform Proxmox runs on.

The server decodes with :func:`decode_request`; malformed input raises ``InvalidArgument``
(EINVAL) and an unknown operation ``UnknownRequest`` (ECHRNG), exactly where the C server
answers those codes. The client side packs with the ``encode_*`` functions.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import TypeAlias

from errors import InvalidArgument, UnknownRequest

REQUEST_HEADER = struct.Struct("<i4xi4x")
"""``struct qb_ipc_request_header``: id, size (the whole request), each 8-byte aligned."""
RESPONSE_HEADER = struct.Struct("<i4xi4xi4x")
"""``struct qb_ipc_response_header``: id, size (header + data), error (0 or -errno)."""

NAME_FIELD = 256
"""``char name[256]`` and ``char nodename[256]`` of the status requests (server.c)."""
SET_STATUS_FIXED = REQUEST_HEADER.size + NAME_FIELD
"""272: where a SET_STATUS value starts."""
GET_STATUS_FIXED = REQUEST_HEADER.size + 2 * NAME_FIELD
"""528: the smallest GET_STATUS request."""
LOG_FIXED = struct.Struct("<BBB")
"""LOG_CLUSTER_MSG after the header: priority, ident_len, tag_len (lengths include the NUL)."""
LOG_STRINGS_AT = REQUEST_HEADER.size + LOG_FIXED.size
"""19: where ident, tag and message start."""
CLUSTER_LOG_FIXED = struct.Struct("<IIII")
"""GET_CLUSTER_LOG after the header: max_entries, then three reserved words."""
CLUSTER_LOG_USER_AT = REQUEST_HEADER.size + CLUSTER_LOG_FIXED.size
"""32: where the user name starts."""
GUEST_VMID = struct.Struct("<I")
"""GET_GUEST_CONFIG_PROPERTY/PROPERTIES: the vmid right after the header."""
GUEST_PROPERTY_AT = REQUEST_HEADER.size + GUEST_VMID.size
"""20: where op 11's property, and op 13's count, start."""
GUEST_PROPERTIES_AT = GUEST_PROPERTY_AT + 1
"""21: where op 13's property names start."""
MIN_GUEST_VMID = 100
"""vmids 1..99 are refused (EINVAL); 0 means every guest."""
DEFAULT_CLUSTER_LOG_ENTRIES = 50
"""What GET_CLUSTER_LOG returns for max_entries 0."""


class Op(enum.IntEnum):
    """``cfs-ipc-ops.h``: the request ids (the Perl constants of PVE::Cluster::IPCConst), and ours.

    The original uses 1-13 (9 is unused) and answers ECHRNG to any other id. Ours start at
    1001, far from where the original would add its next one.
    """

    GET_FS_VERSION = 1
    GET_CLUSTER_INFO = 2
    GET_GUEST_LIST = 3
    SET_STATUS = 4
    GET_STATUS = 5
    GET_CONFIG = 6
    LOG_CLUSTER_MSG = 7
    GET_CLUSTER_LOG = 8
    GET_RRD_DUMP = 10
    GET_GUEST_CONFIG_PROPERTY = 11
    VERIFY_TOKEN = 12
    GET_GUEST_CONFIG_PROPERTIES = 13
    GET_HEALTH = 1001
    """Ours: the ``.health`` report with private paths whole, for root:root clients only."""


WRITE_OPS = frozenset({Op.SET_STATUS, Op.LOG_CLUSTER_MSG})
"""Refused with EPERM for read-only (www-data) clients, before any other check."""
ROOT_ONLY_OPS = WRITE_OPS | {Op.GET_HEALTH}
"""The writes, and ours that answers private names: EPERM for read-only clients, first."""

STATUS_TEXT_FOR = {
    Op.GET_FS_VERSION: ".version",
    Op.GET_CLUSTER_INFO: ".members",
    Op.GET_GUEST_LIST: ".vmlist",
}
"""The header-only requests that answer a status file's text."""


# ----- decoded requests ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusText:
    """Ops 1-3: the text of ``.version``, ``.members`` or ``.vmlist``."""

    name: str


@dataclass(frozen=True, slots=True)
class SetStatus:
    """Op 4: set (or, with an empty value, delete) a status key of this node."""

    key: str
    value: bytes


@dataclass(frozen=True, slots=True)
class GetStatus:
    """Op 5: a node's raw status value (empty nodename: this node)."""

    key: str
    nodename: str


@dataclass(frozen=True, slots=True)
class GetConfig:
    """Op 6: a file of the tree, as given (leading slashes allowed)."""

    path: str


@dataclass(frozen=True, slots=True)
class LogMessage:
    """Op 7: a cluster log entry made on this node."""

    priority: int
    ident: str
    tag: str
    msg: bytes


@dataclass(frozen=True, slots=True)
class GetClusterLog:
    """Op 8: the cluster log as JSON (max_entries 0 means 50)."""

    max_entries: int
    user: str


@dataclass(frozen=True, slots=True)
class RrdDump:
    """Op 10: the RRD dump text."""


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Ours (GET_HEALTH): the health report, private paths included."""


@dataclass(frozen=True, slots=True)
class GuestProperties:
    """Ops 11 and 13: properties of one guest's config (vmid >= 100) or of all (vmid 0).

    ``properties`` is empty when op 13's list is malformed: the C server checks the vmid
    against the vmlist (ENOENT) before it looks at the list (EINVAL), and so do we.
    """

    vmid: int
    properties: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class VerifyToken:
    """Op 12: is this line in priv/token.cfg?"""

    token: bytes


IpcRequest: TypeAlias = (
    StatusText
    | SetStatus
    | GetStatus
    | GetConfig
    | LogMessage
    | GetClusterLog
    | RrdDump
    | HealthReport
    | GuestProperties
    | VerifyToken
)


# ----- server side: decoding ---------------------------------------------------------


def c_string(buf: bytes, start: int, end: int | None = None) -> bytes:
    """The NUL-terminated string at ``start`` (up to ``end`` if no NUL comes first)."""
    stop = buf.find(b"\0", start, end)
    return buf[start : (len(buf) if end is None else end) if stop < 0 else stop]


def text(raw: bytes) -> str:
    """Bytes as the daemon keeps names: UTF-8, any other byte kept (surrogateescape)."""
    return raw.decode("utf-8", "surrogateescape")


def request_header(buf: bytes) -> tuple[int, int]:
    """(id, size) of a request; ``buf`` holds at least the 16 header bytes.

    Raises:
        InvalidArgument: fewer than 16 bytes.
    """
    if len(buf) < REQUEST_HEADER.size:
        raise InvalidArgument("request", f"{len(buf)} bytes, shorter than the request header")
    op_id, size = REQUEST_HEADER.unpack_from(buf)
    return op_id, size


def operation(op_id: int) -> Op:
    """The operation for a request id.

    Raises:
        UnknownRequest: no such operation (the C server answers ECHRNG, also for id 9).
    """
    try:
        return Op(op_id)
    except ValueError:
        raise UnknownRequest(str(op_id), "no such IPC operation") from None


def decode_request(op: Op, buf: bytes) -> IpcRequest:
    """Decode the request ``buf`` (exactly the size its header claims) for ``op``.

    Raises:
        InvalidArgument: too short, or a field breaks the op's rules (server.c).
    """
    return _DECODERS[op](op, buf)


def _header_only(op: Op, buf: bytes) -> IpcRequest:
    if len(buf) != REQUEST_HEADER.size:
        raise InvalidArgument(op.name, f"takes no payload, got {len(buf)} bytes")
    if op is Op.GET_RRD_DUMP:
        return RrdDump()
    if op is Op.GET_HEALTH:
        return HealthReport()
    return StatusText(STATUS_TEXT_FOR[op])


def _set_status(op: Op, buf: bytes) -> IpcRequest:
    if len(buf) < SET_STATUS_FIXED:
        raise InvalidArgument(op.name, f"{len(buf)} bytes, need at least {SET_STATUS_FIXED}")
    # byte 255 of the name is forced to NUL, so the key has at most 255 bytes
    key = c_string(buf, REQUEST_HEADER.size, SET_STATUS_FIXED - 1)
    return SetStatus(text(key), buf[SET_STATUS_FIXED:])


def _get_status(op: Op, buf: bytes) -> IpcRequest:
    if len(buf) < GET_STATUS_FIXED:
        raise InvalidArgument(op.name, f"{len(buf)} bytes, need at least {GET_STATUS_FIXED}")
    key = c_string(buf, REQUEST_HEADER.size, SET_STATUS_FIXED - 1)
    nodename = c_string(buf, SET_STATUS_FIXED, GET_STATUS_FIXED - 1)
    return GetStatus(text(key), text(nodename))


def _get_config(op: Op, buf: bytes) -> IpcRequest:
    if len(buf) <= REQUEST_HEADER.size:
        raise InvalidArgument(op.name, "no path")
    return GetConfig(text(c_string(buf, REQUEST_HEADER.size, len(buf) - 1)))


def _log_message(op: Op, buf: bytes) -> IpcRequest:
    """ident, tag and msg are NUL-terminated; their lengths include the NUL.

    As in C, ident_len 0 makes the check look at the byte before the strings (tag_len),
    and the strings are read up to their first NUL. C also checks the byte one past the
    request (a stale buffer byte); the request's own last byte is checked instead.
    """
    size = len(buf)
    if size < LOG_STRINGS_AT:
        raise InvalidArgument(op.name, f"{size} bytes, need at least {LOG_STRINGS_AT + 1}")
    priority, ident_len, tag_len = LOG_FIXED.unpack_from(buf, REQUEST_HEADER.size)
    if size - LOG_STRINGS_AT - ident_len - tag_len < 1:
        raise InvalidArgument(op.name, "no room for the message")
    ident_at, tag_at = LOG_STRINGS_AT, LOG_STRINGS_AT + ident_len
    msg_at = tag_at + tag_len
    if buf[tag_at - 1] != 0 or buf[msg_at - 1] != 0 or buf[-1] != 0:
        raise InvalidArgument(op.name, "ident, tag or message not NUL-terminated")
    return LogMessage(
        priority=priority,
        ident=text(c_string(buf, ident_at)),
        tag=text(c_string(buf, tag_at)),
        msg=c_string(buf, msg_at),
    )


def _cluster_log(op: Op, buf: bytes) -> IpcRequest:
    if len(buf) <= CLUSTER_LOG_USER_AT:
        raise InvalidArgument(op.name, "no user")
    max_entries = CLUSTER_LOG_FIXED.unpack_from(buf, REQUEST_HEADER.size)[0]
    user = c_string(buf, CLUSTER_LOG_USER_AT, len(buf) - 1)
    return GetClusterLog(max_entries or DEFAULT_CLUSTER_LOG_ENTRIES, text(user))


def _guest_vmid(op: Op, buf: bytes) -> int:
    """The vmid, checked for range only (the vmlist check needs the tree)."""
    if len(buf) < GUEST_PROPERTY_AT:
        raise InvalidArgument(op.name, f"{len(buf)} bytes, shorter than the vmid")
    vmid: int = GUEST_VMID.unpack_from(buf, REQUEST_HEADER.size)[0]
    if 0 < vmid < MIN_GUEST_VMID:
        raise InvalidArgument(op.name, f"vmid {vmid} out of range")
    return vmid


def _guest_property(op: Op, buf: bytes) -> IpcRequest:
    vmid = _guest_vmid(op, buf)
    if len(buf) == GUEST_PROPERTY_AT:
        return GuestProperties(vmid, ())  # no property: EINVAL, after the vmlist check
    # the last byte is forced to NUL; the property may be empty (then it matches ':' lines)
    return GuestProperties(vmid, (c_string(buf, GUEST_PROPERTY_AT, len(buf) - 1),))


def _guest_properties(op: Op, buf: bytes) -> IpcRequest:
    return GuestProperties(_guest_vmid(op, buf), _property_list(buf))


def _property_list(buf: bytes) -> tuple[bytes, ...]:
    """Op 13's names: count, then each non-empty, NUL-terminated, starting with a-z; nothing left.

    Returns the empty tuple when the list breaks a rule.
    """
    if len(buf) - GUEST_PROPERTIES_AT <= 1 or buf[GUEST_PROPERTY_AT] == 0:
        return ()  # no count, no names, or a count of 0
    count = buf[GUEST_PROPERTY_AT]
    names: list[bytes] = []
    at = GUEST_PROPERTIES_AT
    for _ in range(count):
        end = buf.find(b"\0", at)
        if end <= at or not ord("a") <= buf[at] <= ord("z"):
            return ()  # empty, not NUL-terminated, or not starting with a-z
        names.append(buf[at:end])
        at = end + 1
    return tuple(names) if at == len(buf) else ()


def _verify_token(op: Op, buf: bytes) -> IpcRequest:
    token = buf[REQUEST_HEADER.size : -1]
    if not token:
        raise InvalidArgument(op.name, "empty token")
    if b"\n" in token or buf[-1] != 0 or b"\0" in token:
        raise InvalidArgument(op.name, "token must be one NUL-terminated line")
    return VerifyToken(token)


_DECODERS = {
    Op.GET_FS_VERSION: _header_only,
    Op.GET_CLUSTER_INFO: _header_only,
    Op.GET_GUEST_LIST: _header_only,
    Op.SET_STATUS: _set_status,
    Op.GET_STATUS: _get_status,
    Op.GET_CONFIG: _get_config,
    Op.LOG_CLUSTER_MSG: _log_message,
    Op.GET_CLUSTER_LOG: _cluster_log,
    Op.GET_RRD_DUMP: _header_only,
    Op.GET_GUEST_CONFIG_PROPERTY: _guest_property,
    Op.VERIFY_TOKEN: _verify_token,
    Op.GET_GUEST_CONFIG_PROPERTIES: _guest_properties,
    Op.GET_HEALTH: _header_only,
}


def encode_response(op_id: int, error: int, data: bytes = b"") -> bytes:
    """A response: the header (error 0 or -errno), then ``data`` (errors carry none)."""
    if error:
        data = b""
    return RESPONSE_HEADER.pack(op_id, RESPONSE_HEADER.size + len(data), error) + data


# ----- client side: encoding and decoding ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Response:
    """A decoded response."""

    op_id: int
    error: int
    """0 or a negative errno."""
    data: bytes


def decode_response(buf: bytes) -> Response:
    """Split a response into header fields and data.

    Raises:
        InvalidArgument: shorter than its header, or the size field disagrees with the length.
    """
    if len(buf) < RESPONSE_HEADER.size:
        raise InvalidArgument("response", f"{len(buf)} bytes, shorter than the response header")
    op_id, size, error = RESPONSE_HEADER.unpack_from(buf)
    if size != len(buf):
        raise InvalidArgument("response", f"size field {size} but {len(buf)} bytes")
    return Response(op_id, error, buf[RESPONSE_HEADER.size :])


def encode_request(op_id: int, payload: bytes = b"") -> bytes:
    """A request: the header with the total size, then ``payload``."""
    return REQUEST_HEADER.pack(op_id, REQUEST_HEADER.size + len(payload)) + payload


def _name_field(value: bytes) -> bytes:
    """Perl ``pack "Z[256]"``: at most 255 bytes, NUL-padded to 256."""
    return value[: NAME_FIELD - 1].ljust(NAME_FIELD, b"\0")


def set_status_payload(key: bytes, value: bytes | None) -> bytes:
    """SET_STATUS as ``broadcast_node_kv``: the name field, then the value (None deletes).

    Perl sends a value with its trailing NUL (``Z*``); pass the bytes to send as they are.
    """
    return _name_field(key) + (value or b"")


def get_status_payload(key: bytes, nodename: bytes = b"") -> bytes:
    """GET_STATUS as ``get_node_kv``: ``pack "Z[256]Z[256]"``."""
    return _name_field(key) + _name_field(nodename)


def log_payload(priority: int, ident: bytes, tag: bytes, msg: bytes) -> bytes:
    """LOG_CLUSTER_MSG as ``log_msg``: ``pack "CCCZ*Z*Z*"`` with the lengths counting the NUL."""
    return LOG_FIXED.pack(priority, len(ident) + 1, len(tag) + 1) + b"\0".join((ident, tag, msg)) + b"\0"


def cluster_log_payload(max_entries: int, user: bytes) -> bytes:
    """GET_CLUSTER_LOG as ``get_cluster_log``: ``pack "VVVVZ*"``."""
    return CLUSTER_LOG_FIXED.pack(max_entries, 0, 0, 0) + user + b"\0"


def guest_property_payload(vmid: int, prop: bytes) -> bytes:
    """GET_GUEST_CONFIG_PROPERTY: ``pack "VZ*"``."""
    return GUEST_VMID.pack(vmid) + prop + b"\0"


def guest_properties_payload(vmid: int, props: tuple[bytes, ...]) -> bytes:
    """GET_GUEST_CONFIG_PROPERTIES: ``pack "VC"``, then ``Z*`` per property."""
    return GUEST_VMID.pack(vmid) + bytes([len(props)]) + b"".join(p + b"\0" for p in props)


def string_payload(value: bytes) -> bytes:
    """GET_CONFIG and VERIFY_TOKEN: ``pack "Z*"``."""
    return value + b"\0"
