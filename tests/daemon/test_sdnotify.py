"""sd_notify datagrams to $NOTIFY_SOCKET: path and abstract addresses, no socket, a dead socket."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import sdnotify

TIMEOUT_S = 5.0


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(TIMEOUT_S)
    yield sock
    sock.close()


def test_a_path_socket_gets_one_datagram(
    listener: socket.socket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify"
    listener.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    assert sdnotify.notify("MAINPID=42", "READY=1") is True
    assert listener.recv(4096) == b"MAINPID=42\nREADY=1"


def test_an_abstract_socket(listener: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"pmxcfs-test-{os.getpid()}"
    listener.bind("\0" + name)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    assert sdnotify.notify("STOPPING=1") is True
    assert listener.recv(4096) == b"STOPPING=1"


def test_without_notify_socket_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False


def test_a_socket_nobody_listens_on_is_a_warning_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert sdnotify.notify("READY=1") is False
    assert [r.levelname for r in caplog.records] == ["WARNING"]


def test_an_unsupported_address_is_ignored(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert sdnotify.notify("READY=1") is False
    assert "unsupported NOTIFY_SOCKET" in caplog.text
