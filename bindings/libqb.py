"""libqb.so.100: the IPC server and client API and the main loop that drives the server.

(qbloop.h, qbipcs.h, qbipcc.h, qbipc_common.h.) The Proxmox tools talk to pmxcfs through
libqb IPC: a setup socket (an abstract unix socket on Linux) plus shared-memory ring buffers.
This module binds the library instead of reimplementing that protocol.

Threading: a :class:`QbLoop` and the :class:`IpcService` attached to it are used from one
thread only, the one that calls :meth:`QbLoop.run`; the only call another thread may make is
:meth:`QbLoop.wake`. Callbacks run on the loop thread while the GIL is held. An exception must
never unwind into C, so every callback is wrapped: it is logged and the callback answers a
safe value (a refused connection, a message that was handled).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import logging
import os
import threading
from collections.abc import Callable
from ctypes import (
    POINTER,
    Structure,
    byref,
    c_char_p,
    c_int,
    c_int32,
    c_size_t,
    c_ssize_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from dataclasses import dataclass
from typing import Protocol, TypeVar

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
def _lib() -> ctypes.CDLL:
    lib = load_library(SONAME, SIGNATURES)
    for name, (_, restype) in SIGNATURES.items():
        if restype is c_int32:
            # The loader treats every C int result as a corosync cs_error_t (the same ctypes
            # type); libqb answers 0 or a negative errno instead, which the callers check.
            del getattr(lib, name).errcheck
    return lib


def _os_error(result: int, call: str) -> OSError:
    """OSError for a negative errno result of a libqb call."""
    code = -result
    return OSError(code, f"{call}: {os.strerror(code)}")


R = TypeVar("R")


def _guarded(name: str, fallback: R, func: Callable[..., R]) -> Callable[..., R]:
    """Wrap a callback that C calls: log what it raises and answer ``fallback`` instead."""

    @functools.wraps(func)
    def guard(*args: object) -> R:
        try:
            return func(*args)
        except BaseException:  # must not unwind into C: logged, then a safe answer
            log.exception("libqb callback %s failed", name)
            return fallback

    return guard


# ----- the main loop ---------------------------------------------------------------


class QbLoop:
    """A ``qb_loop_t``: poll sources and jobs, run by :meth:`run` on one thread.

    :meth:`wake` is the one thread-safe entry: it writes to a pipe the loop watches, and the
    loop then calls the ``on_wake`` function given to the constructor on its own thread.
    """

    def __init__(self, on_wake: Callable[[], None]) -> None:
        self._loop: int | None = _lib().qb_loop_create()
        if not self._loop:
            raise OSError(errno.ENOMEM, "qb_loop_create failed")
        self._on_wake = on_wake
        self._lock = threading.Lock()
        """Orders :meth:`wake` against :meth:`destroy`, which closes the pipe."""
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_fn = qb_loop_poll_dispatch_fn(_guarded("wake", 0, self._dispatch_wake))
        res = _lib().qb_loop_poll_add(
            self._loop, QB_LOOP_HIGH, self._wake_r, POLLIN, None, ctypes.cast(self._wake_fn, c_void_p)
        )
        if res < 0:
            self.destroy()
            raise _os_error(res, "qb_loop_poll_add")
        # The service's poll handlers call back into this loop; kept here for its lifetime.
        self.poll_handlers = qb_ipcs_poll_handlers(
            job_add=qb_ipcs_job_add_fn(_guarded("job_add", -errno.EIO, self._job_add)),
            dispatch_add=qb_ipcs_dispatch_add_fn(_guarded("dispatch_add", -errno.EIO, self._poll_add)),
            dispatch_mod=qb_ipcs_dispatch_mod_fn(_guarded("dispatch_mod", -errno.EIO, self._poll_mod)),
            dispatch_del=qb_ipcs_dispatch_del_fn(_guarded("dispatch_del", -errno.EIO, self._poll_del)),
        )

    @property
    def handle(self) -> int:
        """The ``qb_loop_t *``."""
        if not self._loop:
            raise ValueError("the loop was destroyed")
        return self._loop

    def run(self) -> None:
        """Run until :meth:`stop` is called from a callback (qb_loop_run; the GIL is released)."""
        _lib().qb_loop_run(self.handle)

    def stop(self) -> None:
        """Make :meth:`run` return after the current callback (loop thread only)."""
        _lib().qb_loop_stop(self.handle)

    def wake(self) -> None:
        """From any thread: have the loop call ``on_wake`` soon (nothing once destroyed)."""
        with self._lock:
            if not self._loop:
                return
            with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
                os.write(self._wake_w, b"\0")

    def destroy(self) -> None:
        """Free the loop and the wake pipe (after :meth:`run` returned, or if it never ran)."""
        with self._lock:
            if not self._loop:
                return
            loop, self._loop = self._loop, None
            _lib().qb_loop_poll_del(loop, self._wake_r)
            _lib().qb_loop_destroy(loop)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _dispatch_wake(self, _fd: int, _revents: int, _data: int | None) -> int:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass
        self._on_wake()
        return 0

    def _job_add(self, priority: int, data: int | None, fn: int | None) -> int:
        result: int = _lib().qb_loop_job_add(self.handle, priority, data, fn)
        return result

    def _poll_add(self, priority: int, fd: int, events: int, data: int | None, fn: int | None) -> int:
        result: int = _lib().qb_loop_poll_add(self.handle, priority, fd, events, data, fn)
        return result

    def _poll_mod(self, priority: int, fd: int, events: int, data: int | None, fn: int | None) -> int:
        result: int = _lib().qb_loop_poll_mod(self.handle, priority, fd, events, data, fn)
        return result

    def _poll_del(self, fd: int) -> int:
        result: int = _lib().qb_loop_poll_del(self.handle, fd)
        return result


# ----- the IPC server --------------------------------------------------------------


class ServiceHandlers(Protocol):
    """What an :class:`IpcService` calls, on the loop thread; ``conn`` identifies a connection."""

    def accept(self, conn: int, uid: int, gid: int) -> int:
        """A client with these credentials connects: 0 accepts, a negative errno refuses."""

    def created(self, conn: int) -> None:
        """An accepted connection is ready."""

    def message(self, conn: int, request: bytes, size: int) -> None:
        """A request arrived; the handler answers with :meth:`IpcService.send`.

        ``size`` is the size the request header claims. ``request`` holds that many bytes,
        but never more than the connection's buffer and never fewer than a request header.
        """

    def closed(self, conn: int) -> None:
        """The connection is closing (the client left, or the server disconnected it)."""

    def destroyed(self, conn: int) -> None:
        """The connection is freed now: forget ``conn``. Also called for refused clients."""


@dataclass(frozen=True, slots=True)
class ServiceStats:
    """qb_ipcs_stats: connections open now and closed so far."""

    active: int
    closed: int


class IpcService:
    """A libqb IPC service (``qb_ipcs_service_t``) on a :class:`QbLoop`, loop thread only."""

    def __init__(
        self,
        loop: QbLoop,
        name: str,
        handlers: ServiceHandlers,
        *,
        service_id: int = 1,
        ipc_type: int = QB_IPC_SHM,
    ) -> None:
        self._loop = loop
        self._handlers = handlers
        self._dropping: set[int] = set()
        """Connections with a disconnect scheduled: their further requests are ignored."""
        self._drop_jobs: set[int] = set()
        """Connections whose disconnect job has not run yet (each holds a reference)."""
        self._drop_fn = qb_loop_job_dispatch_fn(_guarded("disconnect job", None, self._drop))
        self._c_handlers = qb_ipcs_service_handlers(
            connection_accept=qb_ipcs_connection_accept_fn(
                _guarded("connection_accept", -errno.EACCES, handlers.accept)
            ),
            connection_created=qb_ipcs_connection_created_fn(
                _guarded("connection_created", None, handlers.created)
            ),
            msg_process=qb_ipcs_msg_process_fn(self._on_message),
            connection_closed=qb_ipcs_connection_closed_fn(_guarded("connection_closed", 0, self._on_closed)),
            connection_destroyed=qb_ipcs_connection_destroyed_fn(
                _guarded("connection_destroyed", None, self._on_destroyed)
            ),
        )
        service = _lib().qb_ipcs_create(name.encode(), service_id, ipc_type, byref(self._c_handlers))
        if not service:
            err = ctypes.get_errno() or errno.ENOMEM
            raise OSError(err, f"qb_ipcs_create({name!r}): {os.strerror(err)}")
        self._service: int | None = service
        _lib().qb_ipcs_poll_handlers_set(service, byref(loop.poll_handlers))

    def _require(self) -> int:
        if not self._service:
            raise ValueError("the service was destroyed")
        return self._service

    def run(self) -> None:
        """qb_ipcs_run: listen on the setup socket.

        Raises:
            OSError: e.g. EADDRINUSE when another process serves this name in this network
                namespace. libqb has then freed the service: :meth:`destroy` does nothing.
        """
        res = _lib().qb_ipcs_run(self._require())
        if res < 0:
            self._service = None  # qb_ipcs_run dropped the last reference on failure
            raise _os_error(res, "qb_ipcs_run")

    def destroy(self) -> None:
        """Disconnect every client, close the socket and free the service (loop thread, not running)."""
        if self._service:
            service, self._service = self._service, None
            _lib().qb_ipcs_destroy(service)
            for conn in list(self._drop_jobs):  # disconnected above; drop the jobs and their references
                self._drop_jobs.discard(conn)
                _lib().qb_loop_job_del(
                    self._loop.handle, QB_LOOP_HIGH, conn, ctypes.cast(self._drop_fn, c_void_p)
                )
                _lib().qb_ipcs_connection_unref(conn)

    def stats(self) -> ServiceStats:
        """Connections open now and closed so far."""
        stats = qb_ipcs_stats()
        _lib().qb_ipcs_stats_get(self._require(), byref(stats), 0)
        return ServiceStats(stats.active_connections, stats.closed_connections)

    @staticmethod
    def send(conn: int, data: bytes) -> int:
        """qb_ipcs_response_send: the bytes written, or a negative errno."""
        result: int = _lib().qb_ipcs_response_send(conn, data, len(data))
        return result

    def disconnect(self, conn: int) -> None:
        """Drop the client soon; safe inside callbacks (its pending request gets no answer).

        qb_ipcs_disconnect must not run inside msg_process: it may free the connection that
        libqb's dispatch goes on to use (libqb 2.0.6 then aborts on a double unref). So the
        connection is held by a reference and disconnected from a loop job, after the dispatch.
        """
        if conn in self._dropping:
            return
        _lib().qb_ipcs_connection_ref(conn)
        res = _lib().qb_loop_job_add(
            self._loop.handle, QB_LOOP_HIGH, conn, ctypes.cast(self._drop_fn, c_void_p)
        )
        if res < 0:
            _lib().qb_ipcs_connection_unref(conn)
            raise _os_error(res, "qb_loop_job_add")
        self._dropping.add(conn)
        self._drop_jobs.add(conn)

    def _drop(self, conn: int) -> None:
        self._drop_jobs.discard(conn)
        try:
            _lib().qb_ipcs_disconnect(conn)
        finally:
            _lib().qb_ipcs_connection_unref(conn)

    @staticmethod
    def client_pid(conn: int) -> int:
        """The client's pid as the kernel reported it at connect (SO_PASSCRED)."""
        stats = qb_ipcs_connection_stats()
        _lib().qb_ipcs_connection_stats_get(conn, byref(stats), 0)
        return int(stats.client_pid)

    @staticmethod
    def buffer_size(conn: int) -> int:
        """The size of each of the connection's ring buffers (the largest message)."""
        result: int = _lib().qb_ipcs_connection_get_buffer_size(conn)
        return result

    def _on_message(self, conn: int, data: int, size: int) -> int:
        """msg_process: ``size`` is the header's claim, so read no further than the buffer.

        The request lies in a ring buffer that is mapped twice in a row, so a buffer's worth
        of bytes from any point in it is readable even when the client claims more than it
        sent (then the tail is stale ring content, as the C server would read too).
        """
        if conn in self._dropping:
            return 0
        try:
            limit = max(self.buffer_size(conn), IPC_REQUEST_HEADER_SIZE)
            length = min(max(size, IPC_REQUEST_HEADER_SIZE), limit)
            self._handlers.message(conn, ctypes.string_at(data, length), size)
        except BaseException:  # must not unwind into C; the client gets no answer
            log.exception("libqb callback msg_process failed; disconnecting the client")
            self.disconnect(conn)
        return 0  # 0: handled; a negative value would ask libqb to back off

    def _on_destroyed(self, conn: int) -> None:
        self._dropping.discard(conn)
        self._handlers.destroyed(conn)

    def _on_closed(self, conn: int) -> int:
        self._handlers.closed(conn)
        return 0  # 0: free it now (non-zero makes libqb call closed again later)


# ----- the IPC client --------------------------------------------------------------


class IpcClient:
    """A connection to a libqb IPC service (qb_ipcc_connect); one thread at a time."""

    def __init__(self, name: str, max_msg_size: int = 1024 * 1024) -> None:
        """Connect.

        Raises:
            OSError: the service is not running (ECONNREFUSED) or refused us (EACCES, ...).
        """
        ctypes.set_errno(0)
        conn = _lib().qb_ipcc_connect(name.encode(), max_msg_size)
        if not conn:
            err = ctypes.get_errno() or errno.ECONNREFUSED
            raise OSError(err, f"qb_ipcc_connect({name!r}): {os.strerror(err)}")
        self._conn: int | None = conn
        self.buffer_size = int(_lib().qb_ipcc_get_buffer_size(conn))
        """The largest message either way (what the server agreed to)."""
        self._buffer = ctypes.create_string_buffer(max(self.buffer_size, 1))

    def _require(self) -> int:
        if not self._conn:
            raise OSError(errno.ENOTCONN, "the IPC connection is closed")
        return self._conn

    @property
    def connected(self) -> bool:
        """Whether the connection is open and libqb still considers it connected."""
        return bool(self._conn) and bool(_lib().qb_ipcc_is_connected(self._conn))

    def sendv_recv(self, request: bytes, timeout_ms: int = -1) -> bytes:
        """Send one request and wait for its response (whole, header included).

        Raises:
            OSError: with the errno libqb reported (ENOTCONN once the server dropped us,
                ETIMEDOUT after ``timeout_ms``, EMSGSIZE for a request that doesn't fit).
        """
        conn = self._require()
        chunk = iovec(ctypes.cast(c_char_p(request), c_void_p), len(request))
        res = _lib().qb_ipcc_sendv_recv(conn, byref(chunk), 1, self._buffer, len(self._buffer), timeout_ms)
        if res < 0:
            raise _os_error(res, "qb_ipcc_sendv_recv")
        return ctypes.string_at(self._buffer, res)

    def send(self, request: bytes) -> None:
        """Send a request without waiting for the answer (tests: a client that leaves early)."""
        res = _lib().qb_ipcc_send(self._require(), request, len(request))
        if res < 0:
            raise _os_error(res, "qb_ipcc_send")

    def recv(self, timeout_ms: int = -1) -> bytes:
        """Wait for the next response."""
        res = _lib().qb_ipcc_recv(self._require(), self._buffer, len(self._buffer), timeout_ms)
        if res < 0:
            raise _os_error(res, "qb_ipcc_recv")
        return ctypes.string_at(self._buffer, res)

    def close(self) -> None:
        """qb_ipcc_disconnect (idempotent)."""
        if self._conn:
            conn, self._conn = self._conn, None
            _lib().qb_ipcc_disconnect(conn)

    def __enter__(self) -> IpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
