"""libqb.so.100: the C surface of the IPC server and client API and of the main loop.

(qbloop.h, qbipcs.h, qbipcc.h, qbipc_common.h.) Structures, callback types, constants and the
one SIGNATURES table; the classes on top are bindings/qb_loop.py (QbLoop) and
bindings/qb_ipc.py (IpcService, IpcClient). The Proxmox tools talk to pmxcfs through libqb IPC:
a setup socket (an abstract unix socket on Linux) plus shared-memory ring buffers; we bind the
library instead of reimplementing that protocol.

An exception must never unwind into C: every callback is wrapped by :func:`guarded`, which logs
it and answers a safe value (a refused connection, a message that was handled).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from collections.abc import Callable
from ctypes import (
    POINTER,
    Structure,
    c_char_p,
    c_int,
    c_int32,
    c_size_t,
    c_ssize_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import TypeVar

from bindings._loader import Signatures, load_library
from bindings._types import iovec

SONAME = "libqb.so.100"

log = logging.getLogger(__name__)

# enum qb_loop_priority (qbloop.h)
QB_LOOP_LOW = 0
QB_LOOP_MED = 1
QB_LOOP_HIGH = 2

# enum qb_ipc_type (qbipc_common.h)
QB_IPC_SOCKET = 0
QB_IPC_SHM = 1
"""Shared-memory ring buffers plus the setup socket: what pmxcfs uses."""

POLLIN = 0x001
POLLPRI = 0x002

IPC_REQUEST_HEADER_SIZE = 16
"""sizeof(struct qb_ipc_request_header): id and size, each 8-byte aligned."""

qb_loop_p = c_void_p
"""``qb_loop_t *`` (opaque)."""
qb_ipcs_service_p = c_void_p
"""``qb_ipcs_service_t *`` (opaque)."""
qb_ipcs_connection_p = c_void_p
"""``qb_ipcs_connection_t *`` (opaque); callbacks get it as a plain int, a key per connection."""
qb_ipcc_connection_p = c_void_p
"""``qb_ipcc_connection_t *`` (opaque)."""
uid_t = c_uint32
gid_t = c_uint32

# Callback types. Function pointers libqb hands us only to hand them back (the dispatch and
# job functions of qb_ipcs_poll_handlers) stay c_void_p, so they never become Python objects.
qb_ipcs_connection_accept_fn = ctypes.CFUNCTYPE(c_int32, c_void_p, uid_t, gid_t)
qb_ipcs_connection_created_fn = ctypes.CFUNCTYPE(None, c_void_p)
qb_ipcs_msg_process_fn = ctypes.CFUNCTYPE(c_int32, c_void_p, c_void_p, c_size_t)
qb_ipcs_connection_closed_fn = ctypes.CFUNCTYPE(c_int32, c_void_p)
qb_ipcs_connection_destroyed_fn = ctypes.CFUNCTYPE(None, c_void_p)
qb_ipcs_job_add_fn = ctypes.CFUNCTYPE(c_int32, c_int, c_void_p, c_void_p)
qb_ipcs_dispatch_add_fn = ctypes.CFUNCTYPE(c_int32, c_int, c_int32, c_int32, c_void_p, c_void_p)
qb_ipcs_dispatch_mod_fn = qb_ipcs_dispatch_add_fn
qb_ipcs_dispatch_del_fn = ctypes.CFUNCTYPE(c_int32, c_int32)
qb_loop_poll_dispatch_fn = ctypes.CFUNCTYPE(c_int32, c_int32, c_int32, c_void_p)
qb_loop_job_dispatch_fn = ctypes.CFUNCTYPE(None, c_void_p)


class qb_ipcs_service_handlers(Structure):
    """``struct qb_ipcs_service_handlers``."""

    _fields_ = (
        ("connection_accept", qb_ipcs_connection_accept_fn),
        ("connection_created", qb_ipcs_connection_created_fn),
        ("msg_process", qb_ipcs_msg_process_fn),
        ("connection_closed", qb_ipcs_connection_closed_fn),
        ("connection_destroyed", qb_ipcs_connection_destroyed_fn),
    )


class qb_ipcs_poll_handlers(Structure):
    """``struct qb_ipcs_poll_handlers``: how the service adds its fds and jobs to a loop."""

    _fields_ = (
        ("job_add", qb_ipcs_job_add_fn),
        ("dispatch_add", qb_ipcs_dispatch_add_fn),
        ("dispatch_mod", qb_ipcs_dispatch_mod_fn),
        ("dispatch_del", qb_ipcs_dispatch_del_fn),
    )


class qb_ipcs_connection_stats(Structure):
    """``struct qb_ipcs_connection_stats``."""

    _fields_ = (
        ("client_pid", c_int32),
        ("requests", c_uint64),
        ("responses", c_uint64),
        ("events", c_uint64),
        ("send_retries", c_uint64),
        ("recv_retries", c_uint64),
        ("flow_control_state", c_int32),
        ("flow_control_count", c_uint64),
    )


class qb_ipcs_stats(Structure):
    """``struct qb_ipcs_stats``."""

    _fields_ = (("active_connections", c_uint32), ("closed_connections", c_uint32))


SIGNATURES: Signatures = {
    # qbloop.h
    "qb_loop_create": ([], qb_loop_p),
    "qb_loop_destroy": ([qb_loop_p], None),
    "qb_loop_run": ([qb_loop_p], None),
    "qb_loop_stop": ([qb_loop_p], None),
    "qb_loop_poll_add": ([qb_loop_p, c_int, c_int32, c_int32, c_void_p, c_void_p], c_int32),
    "qb_loop_poll_mod": ([qb_loop_p, c_int, c_int32, c_int32, c_void_p, c_void_p], c_int32),
    "qb_loop_poll_del": ([qb_loop_p, c_int32], c_int32),
    "qb_loop_job_add": ([qb_loop_p, c_int, c_void_p, c_void_p], c_int32),
    "qb_loop_job_del": ([qb_loop_p, c_int, c_void_p, c_void_p], c_int32),
    # qbipcs.h
    "qb_ipcs_create": ([c_char_p, c_int32, c_int, POINTER(qb_ipcs_service_handlers)], qb_ipcs_service_p),
    "qb_ipcs_poll_handlers_set": ([qb_ipcs_service_p, POINTER(qb_ipcs_poll_handlers)], None),
    "qb_ipcs_run": ([qb_ipcs_service_p], c_int32),
    "qb_ipcs_destroy": ([qb_ipcs_service_p], None),
    "qb_ipcs_stats_get": ([qb_ipcs_service_p, POINTER(qb_ipcs_stats), c_int32], c_int32),
    "qb_ipcs_response_send": ([qb_ipcs_connection_p, c_char_p, c_size_t], c_ssize_t),
    "qb_ipcs_disconnect": ([qb_ipcs_connection_p], None),
    "qb_ipcs_connection_ref": ([qb_ipcs_connection_p], None),
    "qb_ipcs_connection_unref": ([qb_ipcs_connection_p], None),
    "qb_ipcs_connection_stats_get": (
        [qb_ipcs_connection_p, POINTER(qb_ipcs_connection_stats), c_int32],
        c_int32,
    ),
    "qb_ipcs_connection_get_buffer_size": ([qb_ipcs_connection_p], c_int32),
    # qbipcc.h
    "qb_ipcc_connect": ([c_char_p, c_size_t], qb_ipcc_connection_p),
    "qb_ipcc_disconnect": ([qb_ipcc_connection_p], None),
    "qb_ipcc_send": ([qb_ipcc_connection_p, c_char_p, c_size_t], c_ssize_t),
    "qb_ipcc_recv": ([qb_ipcc_connection_p, c_void_p, c_size_t, c_int32], c_ssize_t),
    "qb_ipcc_sendv_recv": (
        [qb_ipcc_connection_p, POINTER(iovec), c_uint32, c_void_p, c_size_t, c_int32],
        c_ssize_t,
    ),
    "qb_ipcc_is_connected": ([qb_ipcc_connection_p], c_int32),
    "qb_ipcc_get_buffer_size": ([qb_ipcc_connection_p], c_int32),
}


@functools.cache
def lib() -> ctypes.CDLL:
    """The loaded library with SIGNATURES applied (int results are libqb's: 0 or -errno)."""
    loaded = load_library(SONAME, SIGNATURES)
    for name, (_, restype) in SIGNATURES.items():
        if restype is c_int32:
            # The loader treats every C int result as a corosync cs_error_t (the same ctypes
            # type); libqb answers 0 or a negative errno instead, which the callers check.
            del getattr(loaded, name).errcheck
    return loaded


def os_error(result: int, call: str) -> OSError:
    """OSError for a negative errno result of a libqb call."""
    code = -result
    return OSError(code, f"{call}: {os.strerror(code)}")


R = TypeVar("R")


def guarded(name: str, fallback: R, func: Callable[..., R]) -> Callable[..., R]:
    """Wrap a callback that C calls: log what it raises and answer ``fallback`` instead."""

    @functools.wraps(func)
    def guard(*args: object) -> R:
        try:
            return func(*args)
        except BaseException:  # must not unwind into C: logged, then a safe answer
            log.exception("libqb callback %s failed", name)
            return fallback

    return guard
