"""libqb IPC from Python: :class:`IpcService` (a server on a QbLoop) and :class:`IpcClient`.

The service is used on its loop's thread only (bindings/qb_loop.py); a client by one thread at a
time.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
from ctypes import byref, c_char_p, c_void_p
from dataclasses import dataclass
from typing import Protocol

from bindings._types import iovec
from bindings.libqb import (
    IPC_REQUEST_HEADER_SIZE,
    QB_IPC_SHM,
    QB_LOOP_HIGH,
    guarded,
    lib,
    os_error,
    qb_ipcs_connection_accept_fn,
    qb_ipcs_connection_closed_fn,
    qb_ipcs_connection_created_fn,
    qb_ipcs_connection_destroyed_fn,
    qb_ipcs_connection_stats,
    qb_ipcs_msg_process_fn,
    qb_ipcs_service_handlers,
    qb_ipcs_stats,
    qb_loop_job_dispatch_fn,
)
from bindings.qb_loop import QbLoop

log = logging.getLogger(__name__)


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
        self._drop_fn = qb_loop_job_dispatch_fn(guarded("disconnect job", None, self._drop))
        self._c_handlers = qb_ipcs_service_handlers(
            connection_accept=qb_ipcs_connection_accept_fn(
                guarded("connection_accept", -errno.EACCES, handlers.accept)
            ),
            connection_created=qb_ipcs_connection_created_fn(
                guarded("connection_created", None, handlers.created)
            ),
            msg_process=qb_ipcs_msg_process_fn(self._on_message),
            connection_closed=qb_ipcs_connection_closed_fn(guarded("connection_closed", 0, self._on_closed)),
            connection_destroyed=qb_ipcs_connection_destroyed_fn(
                guarded("connection_destroyed", None, self._on_destroyed)
            ),
        )
        service = lib().qb_ipcs_create(name.encode(), service_id, ipc_type, byref(self._c_handlers))
        if not service:
            err = ctypes.get_errno() or errno.ENOMEM
            raise OSError(err, f"qb_ipcs_create({name!r}): {os.strerror(err)}")
        self._service: int | None = service
        lib().qb_ipcs_poll_handlers_set(service, byref(loop.poll_handlers))

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
        res = lib().qb_ipcs_run(self._require())
        if res < 0:
            self._service = None  # qb_ipcs_run dropped the last reference on failure
            raise os_error(res, "qb_ipcs_run")

    def destroy(self) -> None:
        """Disconnect every client, close the socket and free the service (loop thread, not running)."""
        if self._service:
            service, self._service = self._service, None
            lib().qb_ipcs_destroy(service)
            for conn in list(self._drop_jobs):  # disconnected above; drop the jobs and their references
                self._drop_jobs.discard(conn)
                lib().qb_loop_job_del(
                    self._loop.handle, QB_LOOP_HIGH, conn, ctypes.cast(self._drop_fn, c_void_p)
                )
                lib().qb_ipcs_connection_unref(conn)

    def stats(self) -> ServiceStats:
        """Connections open now and closed so far."""
        stats = qb_ipcs_stats()
        lib().qb_ipcs_stats_get(self._require(), byref(stats), 0)
        return ServiceStats(stats.active_connections, stats.closed_connections)

    @staticmethod
    def send(conn: int, data: bytes) -> int:
        """qb_ipcs_response_send: the bytes written, or a negative errno."""
        result: int = lib().qb_ipcs_response_send(conn, data, len(data))
        return result

    def disconnect(self, conn: int) -> None:
        """Drop the client soon; safe inside callbacks (its pending request gets no answer).

        qb_ipcs_disconnect must not run inside msg_process: it may free the connection that
        libqb's dispatch goes on to use (libqb 2.0.6 then aborts on a double unref). So the
        connection is held by a reference and disconnected from a loop job, after the dispatch.
        """
        if conn in self._dropping:
            return
        lib().qb_ipcs_connection_ref(conn)
        res = lib().qb_loop_job_add(
            self._loop.handle, QB_LOOP_HIGH, conn, ctypes.cast(self._drop_fn, c_void_p)
        )
        if res < 0:
            lib().qb_ipcs_connection_unref(conn)
            raise os_error(res, "qb_loop_job_add")
        self._dropping.add(conn)
        self._drop_jobs.add(conn)

    def _drop(self, conn: int) -> None:
        self._drop_jobs.discard(conn)
        try:
            lib().qb_ipcs_disconnect(conn)
        finally:
            lib().qb_ipcs_connection_unref(conn)

    @staticmethod
    def client_pid(conn: int) -> int:
        """The client's pid as the kernel reported it at connect (SO_PASSCRED)."""
        stats = qb_ipcs_connection_stats()
        lib().qb_ipcs_connection_stats_get(conn, byref(stats), 0)
        return int(stats.client_pid)

    @staticmethod
    def buffer_size(conn: int) -> int:
        """The size of each of the connection's ring buffers (the largest message)."""
        result: int = lib().qb_ipcs_connection_get_buffer_size(conn)
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
        conn = lib().qb_ipcc_connect(name.encode(), max_msg_size)
        if not conn:
            err = ctypes.get_errno() or errno.ECONNREFUSED
            raise OSError(err, f"qb_ipcc_connect({name!r}): {os.strerror(err)}")
        self._conn: int | None = conn
        self.buffer_size = int(lib().qb_ipcc_get_buffer_size(conn))
        """The largest message either way (what the server agreed to)."""
        self._buffer = ctypes.create_string_buffer(max(self.buffer_size, 1))

    def _require(self) -> int:
        if not self._conn:
            raise OSError(errno.ENOTCONN, "the IPC connection is closed")
        return self._conn

    @property
    def connected(self) -> bool:
        """Whether the connection is open and libqb still considers it connected."""
        return bool(self._conn) and bool(lib().qb_ipcc_is_connected(self._conn))

    def sendv_recv(self, request: bytes, timeout_ms: int = -1) -> bytes:
        """Send one request and wait for its response (whole, header included).

        Raises:
            OSError: with the errno libqb reported (ENOTCONN once the server dropped us,
                ETIMEDOUT after ``timeout_ms``, EMSGSIZE for a request that doesn't fit).
        """
        conn = self._require()
        chunk = iovec(ctypes.cast(c_char_p(request), c_void_p), len(request))
        res = lib().qb_ipcc_sendv_recv(conn, byref(chunk), 1, self._buffer, len(self._buffer), timeout_ms)
        if res < 0:
            raise os_error(res, "qb_ipcc_sendv_recv")
        return ctypes.string_at(self._buffer, res)

    def send(self, request: bytes) -> None:
        """Send a request without waiting for the answer (tests: a client that leaves early)."""
        res = lib().qb_ipcc_send(self._require(), request, len(request))
        if res < 0:
            raise os_error(res, "qb_ipcc_send")

    def recv(self, timeout_ms: int = -1) -> bytes:
        """Wait for the next response."""
        res = lib().qb_ipcc_recv(self._require(), self._buffer, len(self._buffer), timeout_ms)
        if res < 0:
            raise os_error(res, "qb_ipcc_recv")
        return ctypes.string_at(self._buffer, res)

    def close(self) -> None:
        """qb_ipcc_disconnect (idempotent)."""
        if self._conn:
            conn, self._conn = self._conn, None
            lib().qb_ipcc_disconnect(conn)

    def __enter__(self) -> IpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
