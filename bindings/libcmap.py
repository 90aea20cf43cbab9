"""libcmap.so.4: corosync's configuration map: cluster name, nodelist, change tracking (cmap.h)."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from ctypes import POINTER, byref, c_char_p, c_int, c_int32, c_size_t, c_void_p
from dataclasses import dataclass
from typing import TypeAlias

from bindings._handle import CsHandle
from bindings._loader import Signatures, load_library
from bindings._types import CS_DISPATCH_ALL, cs_dispatch_flags_t, cs_error_t, uint64_handle_t
from errors import CsNotExist

SONAME = "libcmap.so.4"
LIBC_SONAME = "libc.so.6"
"""For free(): cmap_get_string returns a malloc()ed string."""

cmap_handle_t = uint64_handle_t
cmap_track_handle_t = ctypes.c_uint64
cmap_value_types_t = ctypes.c_int

CMAP_TRACK_ADD = 4
CMAP_TRACK_DELETE = 1
CMAP_TRACK_MODIFY = 2
CMAP_TRACK_PREFIX = 8
"""Track every key starting with the given name, not only that key."""
CMAP_TRACK_ALL = CMAP_TRACK_ADD | CMAP_TRACK_DELETE | CMAP_TRACK_MODIFY
"""ADD|DELETE|MODIFY: what pmxcfs tracks on ``totem.config_version``."""
CMAP_MAX_NODES = 4096
"""Upper bound on the nodelist entries :meth:`CmapHandle.nodelist` scans."""


class cmap_notify_value(ctypes.Structure):
    """``struct cmap_notify_value``, passed by value to the notify callback."""

    _fields_ = (("type", cmap_value_types_t), ("len", c_size_t), ("data", c_void_p))


cmap_notify_fn_t = ctypes.CFUNCTYPE(
    None,
    cmap_handle_t,
    cmap_track_handle_t,
    c_int32,
    c_char_p,
    cmap_notify_value,
    cmap_notify_value,
    c_void_p,
)

SIGNATURES: Signatures = {
    "cmap_initialize": ([POINTER(cmap_handle_t)], cs_error_t),
    "cmap_finalize": ([cmap_handle_t], cs_error_t),
    "cmap_fd_get": ([cmap_handle_t, POINTER(c_int)], cs_error_t),
    "cmap_dispatch": ([cmap_handle_t, cs_dispatch_flags_t], cs_error_t),
    "cmap_get_string": ([cmap_handle_t, c_char_p, POINTER(c_void_p)], cs_error_t),
    "cmap_get_uint8": ([cmap_handle_t, c_char_p, POINTER(ctypes.c_uint8)], cs_error_t),
    "cmap_get_uint16": ([cmap_handle_t, c_char_p, POINTER(ctypes.c_uint16)], cs_error_t),
    "cmap_get_uint32": ([cmap_handle_t, c_char_p, POINTER(ctypes.c_uint32)], cs_error_t),
    "cmap_get_uint64": ([cmap_handle_t, c_char_p, POINTER(ctypes.c_uint64)], cs_error_t),
    "cmap_track_add": (
        [cmap_handle_t, c_char_p, c_int32, cmap_notify_fn_t, c_void_p, POINTER(cmap_track_handle_t)],
        cs_error_t,
    ),
    "cmap_track_delete": ([cmap_handle_t, cmap_track_handle_t], cs_error_t),
}
LIBC_SIGNATURES: Signatures = {"free": ([c_void_p], None)}


@functools.cache
def _lib() -> ctypes.CDLL:
    return load_library(SONAME, SIGNATURES)


@functools.cache
def _libc() -> ctypes.CDLL:
    return load_library(LIBC_SONAME, LIBC_SIGNATURES)


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """One ``nodelist.node.N`` entry of corosync.conf."""

    nodeid: int
    name: str
    """``name``, or ``ring0_addr`` when the entry has no name (as pmxcfs does)."""
    ring0_addr: str
    """Empty if the entry has none."""
    quorum_votes: int = 1
    """corosync's default when the entry sets none."""


TrackFn: TypeAlias = Callable[[int, str], None]
"""track(event, key): event is CMAP_TRACK_ADD, CMAP_TRACK_DELETE or CMAP_TRACK_MODIFY."""

_UintType: TypeAlias = type[ctypes.c_uint8 | ctypes.c_uint16 | ctypes.c_uint32 | ctypes.c_uint64]


class CmapHandle(CsHandle):
    """A libcmap connection; track callbacks run inside :meth:`dispatch`."""

    def initialize(self) -> None:
        """cmap_initialize.

        Raises:
            CsLibraryError: corosync is not running.
            RuntimeError: already initialized.
        """
        if self.initialized:
            raise RuntimeError("CmapHandle is already initialized")
        handle = cmap_handle_t()
        _lib().cmap_initialize(byref(handle))
        self._handle = handle.value

    def finalize(self) -> None:
        """cmap_finalize; the handle is released even if it fails, and CS_ERR_LIBRARY is ignored."""
        self._finalize_via(_lib().cmap_finalize, "cmap_finalize")

    def fd(self) -> int:
        """The file descriptor to poll for POLLIN before :meth:`dispatch`."""
        fd = c_int()
        _lib().cmap_fd_get(self._require("cmap_fd_get"), byref(fd))
        return fd.value

    def dispatch(self, flags: int = CS_DISPATCH_ALL) -> None:
        """Run the track callbacks for what is queued, then re-raise what a callback raised."""
        self._dispatch_via(_lib().cmap_dispatch, "cmap_dispatch", flags)

    def get_string(self, key: str) -> str:
        """The string value of ``key``.

        Raises:
            CsNotExist: no such key.
            CsError: CS_ERR_INVALID_PARAM if the key is not a string.
        """
        value = c_void_p()
        _lib().cmap_get_string(self._require("cmap_get_string"), key.encode(), byref(value))
        try:
            return ctypes.string_at(value.value).decode("utf-8", "surrogateescape") if value.value else ""
        finally:
            _libc().free(value)

    def _get_uint(self, call: str, ctype: _UintType, key: str) -> int:
        value = ctype()
        getattr(_lib(), call)(self._require(call), key.encode(), byref(value))
        return int(value.value)

    def get_uint8(self, key: str) -> int:
        """The u8 value of ``key``; CsNotExist if missing, CS_ERR_INVALID_PARAM if of another type."""
        return self._get_uint("cmap_get_uint8", ctypes.c_uint8, key)

    def get_uint16(self, key: str) -> int:
        """The u16 value of ``key``; CsNotExist if missing, CS_ERR_INVALID_PARAM if of another type."""
        return self._get_uint("cmap_get_uint16", ctypes.c_uint16, key)

    def get_uint32(self, key: str) -> int:
        """The u32 value of ``key``; CsNotExist if missing, CS_ERR_INVALID_PARAM if of another type."""
        return self._get_uint("cmap_get_uint32", ctypes.c_uint32, key)

    def get_uint64(self, key: str) -> int:
        """The u64 value of ``key``; CsNotExist if missing, CS_ERR_INVALID_PARAM if of another type."""
        return self._get_uint("cmap_get_uint64", ctypes.c_uint64, key)

    def _optional(self, get: Callable[[str], str | int], key: str) -> str | int | None:
        try:
            return get(key)
        except CsNotExist:
            return None

    def nodelist(self) -> tuple[NodeEntry, ...]:
        """The ``nodelist.node.N`` entries for N = 0, 1, … until one has no key at all.

        As pmxcfs does, an entry without a nodeid or without both name and ring0_addr is left out.
        """
        nodes: list[NodeEntry] = []
        for index in range(CMAP_MAX_NODES):
            prefix = f"nodelist.node.{index}."
            nodeid = self._optional(self.get_uint32, prefix + "nodeid")
            name = self._optional(self.get_string, prefix + "name")
            ring0 = self._optional(self.get_string, prefix + "ring0_addr")
            if nodeid is None and name is None and ring0 is None:
                break
            votes = self._optional(self.get_uint32, prefix + "quorum_votes")
            node_name = str(name or ring0 or "")
            if nodeid and node_name:
                votes = 1 if votes is None else votes  # corosync's default
                nodes.append(NodeEntry(int(nodeid), node_name, str(ring0 or ""), int(votes)))
        return tuple(nodes)

    def track_add(
        self, key: str, callback: TrackFn, track_type: int = CMAP_TRACK_ALL | CMAP_TRACK_PREFIX
    ) -> int:
        """Call ``callback(event, key)`` from dispatch when a key under the prefix ``key`` changes.

        Returns:
            The track handle for :meth:`track_delete`.
        """
        handle = self._require("cmap_track_add")

        def on_notify(
            _h: int,
            _track: int,
            event: int,
            key_name: bytes | None,
            _new: cmap_notify_value,
            _old: cmap_notify_value,
            _user: int | None,
        ) -> None:
            callback(event, (key_name or b"").decode("utf-8", "surrogateescape"))

        notify = cmap_notify_fn_t(self._guarded(on_notify))
        track = cmap_track_handle_t()
        _lib().cmap_track_add(handle, key.encode(), track_type, notify, None, byref(track))
        self._keep(("track", track.value), notify)
        return track.value

    def track_delete(self, track: int) -> None:
        """Stop the track ``track``; libcmap skips its notifications still queued."""
        _lib().cmap_track_delete(self._require("cmap_track_delete"), track)
        self._release(("track", track))
