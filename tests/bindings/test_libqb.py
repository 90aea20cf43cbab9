"""bindings/qb_loop.py and qb_ipc.py on the real libqb: a server loop on a thread, clients here.

Each test serves its own abstract socket name, so tests never meet another daemon's "pve2".
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bindings.qb_ipc import IpcClient, IpcService
from bindings.qb_loop import QbLoop
from tests.integration.helpers import wait_for

HEADER = struct.Struct("<i4xi4x")
RESPONSE = struct.Struct("<i4xi4xi4x")
TIMEOUT_S = 10.0
DROP_AND_STOP = 77


def request(op: int, payload: bytes = b"", size: int | None = None) -> bytes:
    return HEADER.pack(op, 16 + len(payload) if size is None else size) + payload


class EchoHandlers:
    """Answers (claimed size, bytes handed over, their first 64 bytes); records every callback."""

    def __init__(self, service_name: str) -> None:
        self.name = service_name
        self.events: list[tuple[str, object]] = []
        self.refuse_gid: int | None = None
        self.raise_on: int | None = None
        self.service: IpcService | None = None
        self.loop: QbLoop | None = None
        self.gone = threading.Event()

    def accept(self, conn: int, uid: int, gid: int) -> int:
        self.events.append(("accept", (uid, gid, IpcService.client_pid(conn), IpcService.buffer_size(conn))))
        return -errno.EACCES if gid == self.refuse_gid else 0

    def created(self, conn: int) -> None:
        self.events.append(("created", conn))

    def message(self, conn: int, req: bytes, size: int) -> None:
        op = HEADER.unpack_from(req)[0]
        if op == self.raise_on:
            raise RuntimeError("handler bug")
        if op == DROP_AND_STOP:  # a disconnect still pending when the loop stops
            assert self.service is not None
            self.service.disconnect(conn)
            assert self.loop is not None
            self.loop.stop()
            return
        data = struct.pack("<Qq", size, len(req)) + req[:64]
        IpcService.send(conn, RESPONSE.pack(op, RESPONSE.size + len(data), 0) + data)

    def closed(self, conn: int) -> None:
        self.events.append(("closed", conn))

    def destroyed(self, conn: int) -> None:
        self.events.append(("destroyed", conn))
        self.gone.set()

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


class Server:
    """A QbLoop and an IpcService run on their own thread, as ipc/server.py does."""

    def __init__(self, handlers: EchoHandlers) -> None:
        self.handlers = handlers
        self.loop: QbLoop | None = None
        self.started = threading.Event()
        self.error: BaseException | None = None
        self.stop_requested = threading.Event()
        self.stats_at_stop: object = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            loop = QbLoop(on_wake=lambda: loop.stop() if self.stop_requested.is_set() else None)
            service = IpcService(loop, self.handlers.name, self.handlers)
            service.run()
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it
            self.error = exc
            self.started.set()
            return
        self.loop, self.handlers.service, self.handlers.loop = loop, service, loop
        self.started.set()
        try:
            loop.run()
            self.stats_at_stop = service.stats()
        finally:
            service.destroy()
            loop.destroy()

    def start(self) -> Server:
        self.thread.start()
        assert self.started.wait(TIMEOUT_S)
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        self.stop_requested.set()
        if self.loop is not None:
            self.loop.wake()
        self.thread.join(TIMEOUT_S)
        assert not self.thread.is_alive(), "the loop thread did not stop"


@pytest.fixture
def service_name() -> str:
    return f"pmxcfs-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def server(service_name: str) -> Iterator[Server]:
    srv = Server(EchoHandlers(service_name)).start()
    yield srv
    srv.stop()


def shm_dirs(server_pid: int, client_pid: int) -> list[Path]:
    return list(Path("/dev/shm").glob(f"qb-{server_pid}-{client_pid}-*"))


def test_round_trip_carries_bytes_and_credentials(server: Server, service_name: str) -> None:
    with IpcClient(service_name) as client:
        assert client.buffer_size == 1024 * 1024
        answer = client.sendv_recv(request(6, b"datacenter.cfg\0"), 5000)
    op, size, error = RESPONSE.unpack_from(answer)
    assert (op, size, error) == (6, len(answer), 0)
    claimed, length = struct.unpack_from("<Qq", answer, RESPONSE.size)
    assert (claimed, length) == (31, 31)
    assert answer[RESPONSE.size + 16 :] == request(6, b"datacenter.cfg\0")
    accept = dict(server.handlers.events)["accept"]
    assert accept == (os.getuid(), os.getgid(), os.getpid(), 1024 * 1024)


def test_claimed_sizes_beyond_the_buffer_are_clamped(server: Server, service_name: str) -> None:
    with IpcClient(service_name) as client:
        for claimed, length in (
            (0x7FFFFFFF, 1024 * 1024),
            (-1 & 0xFFFFFFFF, 1024 * 1024),
            (3, 16),
            (100, 100),
        ):
            size_field = claimed - (1 << 32) if claimed >= 1 << 31 else claimed
            answer = client.sendv_recv(request(1, size=size_field), 5000)
            got_claim, handed_over = struct.unpack_from("<Qq", answer, RESPONSE.size)
            assert got_claim == (size_field if size_field >= 0 else (1 << 64) + size_field)
            assert handed_over == length, claimed
            assert answer[RESPONSE.size + 16 : RESPONSE.size + 32] == request(1, size=size_field)


def test_callbacks_in_order_and_nothing_left_after_disconnect(server: Server, service_name: str) -> None:
    client = IpcClient(service_name)
    client.sendv_recv(request(1), 5000)
    assert shm_dirs(os.getpid(), os.getpid()), "libqb keeps its rings under /dev/shm while connected"
    client.close()
    assert server.handlers.gone.wait(TIMEOUT_S)
    assert server.handlers.names() == ["accept", "created", "closed", "destroyed"]
    wait_for(lambda: not shm_dirs(os.getpid(), os.getpid()), TIMEOUT_S, "the rings removed")


def test_refused_client_gets_eacces(server: Server, service_name: str) -> None:
    server.handlers.refuse_gid = os.getgid()
    with pytest.raises(OSError, match="qb_ipcc_connect") as caught:
        IpcClient(service_name)
    assert caught.value.errno == errno.EACCES
    assert server.handlers.gone.wait(TIMEOUT_S)
    assert "created" not in server.handlers.names()


@pytest.mark.allow_error_logs
def test_a_handler_exception_disconnects_that_client_only(
    server: Server, service_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.handlers.raise_on = 66
    with IpcClient(service_name) as bad, IpcClient(service_name) as good:
        with pytest.raises(OSError, match="qb_ipcc_sendv_recv") as caught:
            bad.sendv_recv(request(66), 5000)
        assert caught.value.errno in (errno.ENOTCONN, errno.ESHUTDOWN, errno.ECONNRESET)
        assert RESPONSE.unpack_from(good.sendv_recv(request(1), 5000))[2] == 0
    assert "msg_process failed" in caplog.text


def test_no_service_is_connection_refused(service_name: str) -> None:
    with pytest.raises(OSError, match="qb_ipcc_connect") as caught:
        IpcClient(service_name + "-absent")
    assert caught.value.errno == errno.ECONNREFUSED


def test_second_service_with_the_same_name_fails_to_run(server: Server, service_name: str) -> None:
    other = Server(EchoHandlers(service_name))
    with pytest.raises(OSError, match="qb_ipcs_run") as caught:
        other.start()
    assert caught.value.errno == errno.EADDRINUSE


def test_stop_with_clients_connected_disconnects_them(service_name: str) -> None:
    srv = Server(EchoHandlers(service_name)).start()
    client = IpcClient(service_name)
    try:
        client.sendv_recv(request(1), 5000)
        srv.stop()
        assert srv.stats_at_stop is not None
        assert srv.stats_at_stop.active == 1  # type: ignore[attr-defined]
        assert srv.handlers.names()[-2:] == ["closed", "destroyed"]
        with pytest.raises(OSError, match="qb_ipcc_sendv_recv"):
            client.sendv_recv(request(1), 2000)
    finally:
        client.close()


def test_wake_after_destroy_is_harmless() -> None:
    woken: list[int] = []
    loop = QbLoop(on_wake=lambda: woken.append(1))
    loop.destroy()
    loop.wake()
    loop.destroy()
    assert woken == []


def test_client_send_and_recv_separately(server: Server, service_name: str) -> None:
    with IpcClient(service_name) as client:
        client.send(request(2))
        answer = client.recv(5000)
        assert RESPONSE.unpack_from(answer)[:2] == (2, len(answer))
        assert client.connected
    assert not client.connected
    with pytest.raises(OSError, match="closed") as caught:
        client.sendv_recv(request(1))
    assert caught.value.errno == errno.ENOTCONN


def test_a_disconnect_pending_when_the_loop_stops_is_released(service_name: str) -> None:
    srv = Server(EchoHandlers(service_name)).start()
    client = IpcClient(service_name)
    try:
        client.send(request(DROP_AND_STOP))
        srv.thread.join(TIMEOUT_S)
        assert not srv.thread.is_alive()
        assert srv.handlers.names()[-2:] == ["closed", "destroyed"]
    finally:
        client.close()
        srv.stop()
