"""libcpg.so.4: closed process groups, the totally ordered multicast pmxcfs's DFSM runs on (cpg.h)."""

from __future__ import annotations

import ctypes
import enum
import functools
from collections.abc import Callable, Sequence
from ctypes import POINTER, byref, c_int, c_size_t, c_uint, c_uint32, c_void_p
from dataclasses import dataclass
from typing import TypeAlias

from bindings._handle import CsHandle
from bindings._loader import Signatures, load_library
from bindings._types import CS_DISPATCH_ALL, cs_dispatch_flags_t, cs_error_t, iovec, uint64_handle_t

SONAME = "libcpg.so.4"

cpg_handle_t = uint64_handle_t
cpg_guarantee_t = ctypes.c_int
cpg_model_t = ctypes.c_int

CPG_TYPE_AGREED = 2
"""Total order (cpg_guarantee_t); FIFO is the same, UNORDERED and SAFE are not implemented."""
CPG_MODEL_V1 = 1
CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF = 0x01
"""Deliver the current totem ring to totem_confchg right after initialize."""
CPG_MAX_NAME_LENGTH = 128
"""Size of cpg_name.value; with the trailing NUL a group name has at most 127 bytes."""
CPG_MEMBERS_MAX = 128


class CpgReason(enum.IntEnum):
    """cpg_reason_t: why a process is in a joined or left list."""

    UNDEFINED = 0
    JOIN = 1
    LEAVE = 2
    NODEDOWN = 3
    NODEUP = 4
    PROCDOWN = 5


class cpg_name(ctypes.Structure):
    """``struct cpg_name``; ``value`` is not NUL-terminated, ``length`` counts the bytes."""

    _fields_ = (("length", c_uint32), ("value", ctypes.c_char * CPG_MAX_NAME_LENGTH))


class cpg_address(ctypes.Structure):
    """``struct cpg_address``."""

    _fields_ = (("nodeid", c_uint32), ("pid", c_uint32), ("reason", c_uint32))


class cpg_ring_id(ctypes.Structure):
    """``struct cpg_ring_id``, passed by value to the totem confchg callback."""

    _fields_ = (("nodeid", c_uint32), ("seq", ctypes.c_uint64))


cpg_deliver_fn_t = ctypes.CFUNCTYPE(
    None, cpg_handle_t, POINTER(cpg_name), c_uint32, c_uint32, c_void_p, c_size_t
)
cpg_confchg_fn_t = ctypes.CFUNCTYPE(
    None,
    cpg_handle_t,
    POINTER(cpg_name),
    POINTER(cpg_address),
    c_size_t,
    POINTER(cpg_address),
    c_size_t,
    POINTER(cpg_address),
    c_size_t,
)
cpg_totem_confchg_fn_t = ctypes.CFUNCTYPE(None, cpg_handle_t, cpg_ring_id, c_uint32, POINTER(c_uint32))


class cpg_model_data_t(ctypes.Structure):
    """``cpg_model_data_t``: the header every model's data starts with."""

    _fields_ = (("model", cpg_model_t),)


class cpg_model_v1_data_t(ctypes.Structure):
    """``cpg_model_v1_data_t``."""

    _fields_ = (
        ("model", cpg_model_t),
        ("cpg_deliver_fn", cpg_deliver_fn_t),
        ("cpg_confchg_fn", cpg_confchg_fn_t),
        ("cpg_totem_confchg_fn", cpg_totem_confchg_fn_t),
        ("flags", c_uint),
    )


SIGNATURES: Signatures = {
    "cpg_model_initialize": (
        [POINTER(cpg_handle_t), cpg_model_t, POINTER(cpg_model_data_t), c_void_p],
        cs_error_t,
    ),
    "cpg_finalize": ([cpg_handle_t], cs_error_t),
    "cpg_fd_get": ([cpg_handle_t, POINTER(c_int)], cs_error_t),
    "cpg_max_atomic_msgsize_get": ([cpg_handle_t, POINTER(c_uint32)], cs_error_t),
    "cpg_dispatch": ([cpg_handle_t, cs_dispatch_flags_t], cs_error_t),
    "cpg_join": ([cpg_handle_t, POINTER(cpg_name)], cs_error_t),
    "cpg_leave": ([cpg_handle_t, POINTER(cpg_name)], cs_error_t),
    "cpg_mcast_joined": ([cpg_handle_t, cpg_guarantee_t, POINTER(iovec), c_uint], cs_error_t),
    "cpg_membership_get": (
        [cpg_handle_t, POINTER(cpg_name), POINTER(cpg_address), POINTER(c_int)],
        cs_error_t,
    ),
    "cpg_local_get": ([cpg_handle_t, POINTER(c_uint)], cs_error_t),
}


@functools.cache
def _lib() -> ctypes.CDLL:
    return load_library(SONAME, SIGNATURES)


@dataclass(frozen=True, slots=True)
class CpgAddress:
    """One process in a group: where it runs and why it is listed."""

    nodeid: int
    pid: int
    reason: int
    """A CpgReason value (a plain int if corosync sends one this module does not know)."""


@dataclass(frozen=True, slots=True)
class CpgRingId:
    """A totem ring: the node that formed it and its sequence number."""

    nodeid: int
    seq: int


DeliverFn: TypeAlias = Callable[[bytes, int, int, bytes], None]
"""deliver(group, nodeid, pid, payload)."""
ConfchgFn: TypeAlias = Callable[
    [bytes, tuple[CpgAddress, ...], tuple[CpgAddress, ...], tuple[CpgAddress, ...]], None
]
"""confchg(group, members, left, joined)."""
TotemConfchgFn: TypeAlias = Callable[[CpgRingId, tuple[int, ...]], None]
"""totem_confchg(ring_id, member_nodeids)."""


def encode_group(group: bytes) -> cpg_name:
    """The cpg_name for ``group``: the bytes plus a trailing NUL, counted in ``length`` as pmxcfs does.

    Raises:
        ValueError: empty, containing NUL, or longer than 127 bytes.
    """
    if not group or b"\0" in group or len(group) >= CPG_MAX_NAME_LENGTH:
        raise ValueError(f"bad CPG group name {group!r}: need 1..{CPG_MAX_NAME_LENGTH - 1} bytes, no NUL")
    name = cpg_name()
    name.length = len(group) + 1
    name.value = group  # the rest of the array, the NUL included, stays zero
    return name


def decode_group(name: cpg_name) -> bytes:
    """The group name as given to :meth:`CpgHandle.join`: ``length`` bytes minus one trailing NUL."""
    length = min(name.length, CPG_MAX_NAME_LENGTH)
    raw = ctypes.string_at(ctypes.addressof(name) + cpg_name.value.offset, length)
    return raw[:-1] if raw.endswith(b"\0") else raw


def _reason(value: int) -> int:
    try:
        return CpgReason(value)
    except ValueError:
        return value


def _addresses(array: ctypes._Pointer[cpg_address], count: int) -> tuple[CpgAddress, ...]:
    return tuple(CpgAddress(a.nodeid, a.pid, _reason(a.reason)) for a in array[:count])


class CpgHandle(CsHandle):
    """A libcpg connection (model V1); the callbacks run inside :meth:`dispatch`."""

    def initialize(
        self, deliver: DeliverFn, confchg: ConfchgFn | None, totem_confchg: TotemConfchgFn | None = None
    ) -> None:
        """cpg_model_initialize(CPG_MODEL_V1).

        ``confchg`` None leaves the C callback NULL: libcpg's dispatch then skips the group's
        membership changes (a group whose members do not matter to us).

        With ``totem_confchg`` the flag CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF is set: corosync
        then reports the current ring right after the first :meth:`join` (measured: not before it),
        after that join's confchg.

        Raises:
            CsLibraryError: corosync is not running.
            RuntimeError: already initialized.
        """
        if self.initialized:
            raise RuntimeError("CpgHandle is already initialized")

        def on_deliver(
            _h: int, name: ctypes._Pointer[cpg_name], nodeid: int, pid: int, msg: int | None, size: int
        ) -> None:
            payload = ctypes.string_at(msg, size) if msg and size else b""
            deliver(decode_group(name.contents), nodeid, pid, payload)

        data = cpg_model_v1_data_t(
            model=CPG_MODEL_V1, cpg_deliver_fn=cpg_deliver_fn_t(self._guarded(on_deliver))
        )
        if confchg is not None:
            changed = confchg

            def on_confchg(
                _h: int,
                name: ctypes._Pointer[cpg_name],
                members: ctypes._Pointer[cpg_address],
                n_members: int,
                left: ctypes._Pointer[cpg_address],
                n_left: int,
                joined: ctypes._Pointer[cpg_address],
                n_joined: int,
            ) -> None:
                changed(
                    decode_group(name.contents),
                    _addresses(members, n_members),
                    _addresses(left, n_left),
                    _addresses(joined, n_joined),
                )

            data.cpg_confchg_fn = cpg_confchg_fn_t(self._guarded(on_confchg))
        if totem_confchg is not None:

            def on_totem_confchg(
                _h: int, ring: cpg_ring_id, count: int, nodes: ctypes._Pointer[c_uint32]
            ) -> None:
                totem_confchg(CpgRingId(ring.nodeid, ring.seq), tuple(nodes[:count]))

            data.cpg_totem_confchg_fn = cpg_totem_confchg_fn_t(self._guarded(on_totem_confchg))
            data.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF
        handle = cpg_handle_t()
        header = ctypes.cast(ctypes.pointer(data), POINTER(cpg_model_data_t))
        _lib().cpg_model_initialize(byref(handle), CPG_MODEL_V1, header, None)
        self._keep("model_data", data)  # holds the CFUNCTYPE thunks
        self._handle = handle.value

    def finalize(self) -> None:
        """cpg_finalize; the handle is released even if it fails, and CS_ERR_LIBRARY is ignored."""
        self._finalize_via(_lib().cpg_finalize, "cpg_finalize")

    def fd(self) -> int:
        """The file descriptor to poll for POLLIN before :meth:`dispatch`."""
        fd = c_int()
        _lib().cpg_fd_get(self._require("cpg_fd_get"), byref(fd))
        return fd.value

    def dispatch(self, flags: int = CS_DISPATCH_ALL) -> None:
        """Run the callbacks for what is queued, then re-raise what a callback raised.

        Raises:
            CsLibraryError: corosync went away; finalize and initialize again.
        """
        self._dispatch_via(_lib().cpg_dispatch, "cpg_dispatch", flags)

    def join(self, group: bytes) -> None:
        """Join ``group`` (sent with its trailing NUL, so b"pve_dcdb_v1" has length 12).

        Raises:
            CsTryAgain: corosync is syncing; dispatch, then retry.
        """
        _lib().cpg_join(self._require("cpg_join"), byref(encode_group(group)))

    def leave(self, group: bytes) -> None:
        """Leave ``group``; the others see reason LEAVE."""
        _lib().cpg_leave(self._require("cpg_leave"), byref(encode_group(group)))

    def mcast(self, parts: Sequence[bytes], guarantee: int = CPG_TYPE_AGREED) -> None:
        """Multicast the concatenation of ``parts`` to the joined group, without copying them.

        Raises:
            CsTryAgain: flow control or a full IPC queue; dispatch, then retry.
        """
        handle = self._require("cpg_mcast_joined")
        chunks = [bytes(part) for part in parts]
        vector = (iovec * len(chunks))()
        for slot, chunk in zip(vector, chunks, strict=True):
            slot.iov_base = ctypes.cast(ctypes.c_char_p(chunk), c_void_p).value
            slot.iov_len = len(chunk)
        _lib().cpg_mcast_joined(handle, guarantee, vector, len(chunks))

    def local_get(self) -> int:
        """This node's id."""
        nodeid = c_uint()
        _lib().cpg_local_get(self._require("cpg_local_get"), byref(nodeid))
        return nodeid.value

    def membership_get(self, group: bytes) -> tuple[CpgAddress, ...]:
        """The current members of ``group`` (reason is 0 here)."""
        members = (cpg_address * CPG_MEMBERS_MAX)()
        count = c_int(CPG_MEMBERS_MAX)
        handle = self._require("cpg_membership_get")
        _lib().cpg_membership_get(handle, byref(encode_group(group)), members, byref(count))
        return tuple(CpgAddress(m.nodeid, m.pid, _reason(m.reason)) for m in members[: count.value])

    def max_atomic_msgsize(self) -> int:
        """The largest message corosync multicasts in one piece (1047552 bytes on 3.1.7)."""
        size = c_uint32()
        _lib().cpg_max_atomic_msgsize_get(self._require("cpg_max_atomic_msgsize_get"), byref(size))
        return size.value
