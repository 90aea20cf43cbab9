"""C types and constants shared by the corosync client libraries (corotypes.h, sys/uio.h)."""

from __future__ import annotations

import ctypes
import enum

cs_error_t = ctypes.c_int
"""``typedef enum {...} cs_error_t`` (corotypes.h): an int on every ABI corosync supports."""
cs_dispatch_flags_t = ctypes.c_int
"""``typedef enum {...} cs_dispatch_flags_t`` (corotypes.h)."""
uint64_handle_t = ctypes.c_uint64
"""cpg_handle_t, cmap_handle_t and quorum_handle_t are all ``uint64_t``."""


class CsErrorCode(enum.IntEnum):
    """``cs_error_t`` (corotypes.h); the names are the C names."""

    CS_OK = 1
    CS_ERR_LIBRARY = 2
    CS_ERR_VERSION = 3
    CS_ERR_INIT = 4
    CS_ERR_TIMEOUT = 5
    CS_ERR_TRY_AGAIN = 6
    CS_ERR_INVALID_PARAM = 7
    CS_ERR_NO_MEMORY = 8
    CS_ERR_BAD_HANDLE = 9
    CS_ERR_BUSY = 10
    CS_ERR_ACCESS = 11
    CS_ERR_NOT_EXIST = 12
    CS_ERR_NAME_TOO_LONG = 13
    CS_ERR_EXIST = 14
    CS_ERR_NO_SPACE = 15
    CS_ERR_INTERRUPT = 16
    CS_ERR_NAME_NOT_FOUND = 17
    CS_ERR_NO_RESOURCES = 18
    CS_ERR_NOT_SUPPORTED = 19
    CS_ERR_BAD_OPERATION = 20
    CS_ERR_FAILED_OPERATION = 21
    CS_ERR_MESSAGE_ERROR = 22
    CS_ERR_QUEUE_FULL = 23
    CS_ERR_QUEUE_NOT_AVAILABLE = 24
    CS_ERR_BAD_FLAGS = 25
    CS_ERR_TOO_BIG = 26
    CS_ERR_NO_SECTIONS = 27
    CS_ERR_CONTEXT_NOT_FOUND = 28
    CS_ERR_TOO_MANY_GROUPS = 30
    CS_ERR_SECURITY = 100


CS_OK = CsErrorCode.CS_OK
CS_ERR_LIBRARY = CsErrorCode.CS_ERR_LIBRARY
CS_ERR_TRY_AGAIN = CsErrorCode.CS_ERR_TRY_AGAIN
CS_ERR_BAD_HANDLE = CsErrorCode.CS_ERR_BAD_HANDLE
CS_ERR_NOT_EXIST = CsErrorCode.CS_ERR_NOT_EXIST

# cs_dispatch_flags_t (corotypes.h)
CS_DISPATCH_ONE = 1
"""Block until one callback has run."""
CS_DISPATCH_ALL = 2
"""Run every callback already queued, then return (what pmxcfs uses after poll())."""
CS_DISPATCH_BLOCKING = 3
"""Loop forever running callbacks; returns only on error."""
CS_DISPATCH_ONE_NONBLOCKING = 4
"""Run at most one queued callback, never block."""

# Track flags for quorum_trackstart / votequorum_trackstart (corotypes.h)
CS_TRACK_CURRENT = 0x01
"""Report the current state once."""
CS_TRACK_CHANGES = 0x02
"""Report every change (corosync also reports the current state right away)."""
CS_TRACK_CHANGES_ONLY = 0x04
"""Report changes only."""


class iovec(ctypes.Structure):
    """``struct iovec`` (sys/uio.h), for cpg_mcast_joined."""

    _fields_ = (
        ("iov_base", ctypes.c_void_p),
        ("iov_len", ctypes.c_size_t),
    )
