"""libquorum.so.5: the generic quorum service pmxcfs follows (quorum.h).

pmxcfs uses the original API, ``quorum_initialize`` with ``quorum_callbacks_t`` (quorum.c), whose
notify callback gets the ring sequence as a plain u64; so does this module, not quorum_model_initialize.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from ctypes import POINTER, byref, c_int, c_uint, c_uint32, c_uint64
from typing import TypeAlias

from bindings._handle import CsHandle
from bindings._loader import Signatures, load_library
from bindings._types import (
    CS_DISPATCH_ALL,
    CS_TRACK_CHANGES,
    CS_TRACK_CURRENT,
    cs_dispatch_flags_t,
    cs_error_t,
    uint64_handle_t,
)

SONAME = "libquorum.so.5"

quorum_handle_t = uint64_handle_t

QUORUM_FREE = 0
"""No quorum provider configured: always quorate."""
QUORUM_SET = 1
"""A provider (votequorum) is configured; pmxcfs refuses to run with anything else."""

quorum_notification_fn_t = ctypes.CFUNCTYPE(
    None, quorum_handle_t, c_uint32, c_uint64, c_uint32, POINTER(c_uint32)
)


class quorum_callbacks_t(ctypes.Structure):
    """``quorum_callbacks_t``."""

    _fields_ = (("quorum_notify_fn", quorum_notification_fn_t),)


SIGNATURES: Signatures = {
    "quorum_initialize": (
        [POINTER(quorum_handle_t), POINTER(quorum_callbacks_t), POINTER(c_uint32)],
        cs_error_t,
    ),
    "quorum_finalize": ([quorum_handle_t], cs_error_t),
    "quorum_fd_get": ([quorum_handle_t, POINTER(c_int)], cs_error_t),
    "quorum_dispatch": ([quorum_handle_t, cs_dispatch_flags_t], cs_error_t),
    "quorum_getquorate": ([quorum_handle_t, POINTER(c_int)], cs_error_t),
    "quorum_trackstart": ([quorum_handle_t, c_uint], cs_error_t),
    "quorum_trackstop": ([quorum_handle_t], cs_error_t),
}


@functools.cache
def _lib() -> ctypes.CDLL:
    return load_library(SONAME, SIGNATURES)


NotifyFn: TypeAlias = Callable[[bool, int, tuple[int, ...]], None]
"""notify(quorate, ring_seq, member_nodeids)."""


class QuorumHandle(CsHandle):
    """A libquorum connection; the notify callback runs inside :meth:`dispatch`."""

    def initialize(self, notify: NotifyFn) -> int:
        """quorum_initialize.

        Returns:
            The quorum type: QUORUM_SET with votequorum, QUORUM_FREE without a provider.

        Raises:
            CsLibraryError: corosync is not running.
            RuntimeError: already initialized.
        """
        if self.initialized:
            raise RuntimeError("QuorumHandle is already initialized")

        def on_notify(
            _h: int, quorate: int, ring_seq: int, count: int, nodes: ctypes._Pointer[c_uint32]
        ) -> None:
            notify(bool(quorate), ring_seq, tuple(nodes[:count]) if count else ())

        callbacks = quorum_callbacks_t(quorum_notification_fn_t(self._guarded(on_notify)))
        handle = quorum_handle_t()
        quorum_type = c_uint32()
        _lib().quorum_initialize(byref(handle), byref(callbacks), byref(quorum_type))
        self._keep("callbacks", callbacks)  # holds the CFUNCTYPE thunk
        self._handle = handle.value
        return quorum_type.value

    def finalize(self) -> None:
        """quorum_finalize; the handle is released even if it fails, and CS_ERR_LIBRARY is ignored."""
        self._finalize_via(_lib().quorum_finalize, "quorum_finalize")

    def fd(self) -> int:
        """The file descriptor to poll for POLLIN before :meth:`dispatch`."""
        fd = c_int()
        _lib().quorum_fd_get(self._require("quorum_fd_get"), byref(fd))
        return fd.value

    def dispatch(self, flags: int = CS_DISPATCH_ALL) -> None:
        """Run the notify callback for what is queued, then re-raise what it raised."""
        self._dispatch_via(_lib().quorum_dispatch, "quorum_dispatch", flags)

    def trackstart(self, flags: int = CS_TRACK_CHANGES | CS_TRACK_CURRENT) -> None:
        """Ask for notifications: the current state at once, then every change."""
        _lib().quorum_trackstart(self._require("quorum_trackstart"), flags)

    def trackstop(self) -> None:
        """Stop the notifications."""
        _lib().quorum_trackstop(self._require("quorum_trackstop"))

    def getquorate(self) -> bool:
        """Whether this node is part of the quorate partition, asked synchronously."""
        quorate = c_int()
        _lib().quorum_getquorate(self._require("quorum_getquorate"), byref(quorate))
        return bool(quorate.value)
