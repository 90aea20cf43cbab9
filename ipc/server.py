"""The IPC service "pve2" for the Proxmox tools: a libqb server on its own thread.

The thread runs a libqb main loop; libqb calls back on it for each connection and request.
It holds only actor references and per-connection facts, and answers each request by asking
an actor (``ipc/ops.py``) with a timeout, one request at a time, as the C server does.

Access (server.c ``s1_connection_accept_fn``): uid 0 with gid 0 may read and change; any
client whose gid is www-data may only read; everyone else is refused at connect. Our
GET_HEALTH, which names private paths, is refused to the read-only clients as the writes are.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import pykka

from bindings.qb_ipc import IpcService
from bindings.qb_loop import QbLoop
from errors import AccessDenied, ResponseTooLarge
from ipc import codec
from ipc.ops import ASK_TIMEOUT_S, Client, IpcOps, error_code
from memdb.snapshot import Published, TreeSnapshot
from status.published import StatusFiles

log = logging.getLogger(__name__)

SERVICE_NAME = "pve2"
"""The libqb service name the Perl tools connect to (an abstract socket, per network namespace)."""
SERVICE_ID = 1
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 35.0
"""Longer than one request's ask timeout: a request in progress finishes first."""


class IpcServer:
    """The "pve2" service; :meth:`start` and :meth:`stop` from any thread, the rest on its own."""

    def __init__(
        self,
        tree: Published[TreeSnapshot],
        status: pykka.ActorRef[Any],
        status_files: StatusFiles,
        *,
        www_gid: int,
        name: str = SERVICE_NAME,
        timeout: float = ASK_TIMEOUT_S,
    ) -> None:
        self._ops = IpcOps(tree, status, status_files, timeout=timeout)
        self._www_gid = www_gid
        self.name = name
        self._clients: dict[int, Client] = {}
        """Accepted connections (loop thread only), by libqb connection pointer."""
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._stopping = threading.Event()
        self._loop: QbLoop | None = None
        self._service: IpcService | None = None

    # ----- lifecycle (any thread) --------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the thread and wait until the service listens.

        Raises:
            OSError: libqb could not set up the service (EADDRINUSE: the name is taken in
                this network namespace).
            TimeoutError: the thread did not report within ``timeout``.
        """
        self._thread = threading.Thread(target=self._run, name=f"ipc-{self.name}", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError(f"IPC server {self.name!r} did not start within {timeout} s")
        if self._start_error is not None:
            self._thread.join(timeout)
            raise self._start_error
        log.info("IPC server %r listening", self.name)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Disconnect every client, close the service and end the thread (waits ``timeout``)."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        loop = self._loop
        if loop is not None:
            loop.wake()
        thread.join(timeout)
        if thread.is_alive():
            log.warning("IPC server thread did not stop within %s s", timeout)
        else:
            log.debug("IPC server %r stopped", self.name)

    @property
    def active_connections(self) -> int:
        """Connections libqb holds open (tests and operators; a snapshot from another thread)."""
        return len(self._clients)

    # ----- the loop thread ---------------------------------------------------------------

    def _open(self) -> tuple[QbLoop, IpcService]:
        loop = QbLoop(on_wake=self._on_wake)
        try:
            service = IpcService(loop, self.name, self, service_id=SERVICE_ID)
            service.run()
        except BaseException:
            loop.destroy()  # a service that failed to run is already freed by libqb
            raise
        return loop, service

    def _run(self) -> None:
        try:
            loop, service = self._open()
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it
            self._start_error = exc
            self._started.set()
            return
        self._loop, self._service = loop, service
        self._started.set()
        try:
            if not self._stopping.is_set():
                loop.run()
        finally:
            service.destroy()  # disconnects the clients; their callbacks run here
            self._loop = None
            loop.destroy()
            self._clients.clear()

    def _on_wake(self) -> None:
        if self._stopping.is_set() and self._loop is not None:
            self._loop.stop()

    # ----- libqb callbacks (ServiceHandlers) ---------------------------------------------

    def accept(self, conn: int, uid: int, gid: int) -> int:
        """root:root reads and writes, group www-data only reads, anyone else is refused."""
        if not ((uid == 0 and gid == 0) or gid == self._www_gid):
            log.critical("connection from bad user %d! - rejected", uid)
            return error_code(AccessDenied(str(uid), "not root and not in group www-data"))
        client = Client(
            read_only=gid == self._www_gid,
            pid=IpcService.client_pid(conn),
            buffer_size=IpcService.buffer_size(conn),
        )
        self._clients[conn] = client
        log.debug("authenticated connection %d/%d (pid %d)", uid, gid, client.pid)
        return 0

    def created(self, conn: int) -> None:
        """Nothing to set up beyond accept."""

    def message(self, conn: int, request: bytes, size: int) -> None:
        """Answer one request; a send that fails drops the client, as in C.

        An answer larger than the client's buffer is replaced by EMSGSIZE: libqb would
        deliver it, but the client could not receive it (ENOBUFS) and would stay stuck on it.
        """
        client = self._clients.get(conn)
        if client is None:
            log.critical("IPC request on an unknown connection; disconnecting it")
            self._disconnect(conn)
            return
        response = self._ops.respond(request, size, client)
        if len(response) > client.buffer_size:
            log.warning("IPC answer of %d bytes too large for pid %d", len(response), client.pid)
            op_id = codec.RESPONSE_HEADER.unpack_from(response)[0]
            too_large = ResponseTooLarge(str(len(response)), f"over the {client.buffer_size}-byte buffer")
            response = codec.encode_response(op_id, error_code(too_large))
        res = IpcService.send(conn, response)
        if res < 0:
            log.error("qb_ipcs_response_send to pid %d: %s", client.pid, os.strerror(-res))
            self._disconnect(conn)

    def _disconnect(self, conn: int) -> None:
        if self._service is not None:
            self._service.disconnect(conn)

    def closed(self, conn: int) -> None:
        """The client left or was disconnected."""
        client = self._clients.get(conn)
        log.debug("connection to pid %d closed", client.pid if client else -1)

    def destroyed(self, conn: int) -> None:
        """The connection is freed (refused ones too): forget it."""
        self._clients.pop(conn, None)
