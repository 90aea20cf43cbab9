"""Service: connect, dispatch and the original's retry rhythm (loop.c), with fake handles."""

from __future__ import annotations

import logging

import pytest

from corosync.service import RETRY_SPACING_S, Service
from errors import CsError, CsLibraryError, CsTryAgain
from tests.fakes.corosync import Poller

OWNER = object()
"""Stands in for the owning actor's ref; the service only hands it to the poller."""


def library_error(call: str) -> CsLibraryError:
    return CsLibraryError(2, "CS_ERR_LIBRARY", call)


class FakeHandle:
    """A connected handle: fd(), dispatch() and finalize() with injectable errors."""

    def __init__(self, fd: int = 7) -> None:
        self._fd = fd
        self.dispatches = 0
        self.finalized = 0
        self.dispatch_error: CsError | None = None
        self.fd_error: CsError | None = None
        self.finalize_error: CsError | None = None

    def fd(self) -> int:
        if self.fd_error is not None:
            raise self.fd_error
        return self._fd

    def dispatch(self) -> None:
        self.dispatches += 1
        if self.dispatch_error is not None:
            raise self.dispatch_error

    def finalize(self) -> None:
        self.finalized += 1
        if self.finalize_error is not None:
            raise self.finalize_error


class Corosync:
    """What connect() talks to: up or down, and every handle it gave out."""

    def __init__(self) -> None:
        self.up = True
        self.handles: list[FakeHandle] = []
        self.attempts = 0

    def connect(self) -> FakeHandle:
        self.attempts += 1
        if not self.up:
            raise library_error("cpg_initialize")
        handle = FakeHandle(fd=100 + len(self.handles))
        self.handles.append(handle)
        return handle


@pytest.fixture
def corosync() -> Corosync:
    return Corosync()


@pytest.fixture
def poller() -> Poller:
    return Poller()


def make(corosync: Corosync, **kwargs: object) -> tuple[Service, list[str]]:
    events: list[str] = []
    service = Service(
        "cpg",
        corosync.connect,
        on_down=lambda: events.append("down"),
        after_dispatch=lambda: events.append("dispatched"),
        **kwargs,  # type: ignore[arg-type]
    )
    return service, events


def test_retry_spacing_is_five_seconds() -> None:
    assert RETRY_SPACING_S == 5.0


def test_new_service_is_due_and_down(corosync: Corosync) -> None:
    service, _ = make(corosync)
    assert not service.connected
    assert service.due(0.0)
    assert service.fd == -1


def test_start_connects_and_watches_the_fd(corosync: Corosync, poller: Poller) -> None:
    service, events = make(corosync)
    assert service.start(10.0, poller, OWNER)  # type: ignore[arg-type]
    assert service.connected
    assert service.handle is corosync.handles[0]
    assert service.fd == 100
    assert poller.calls == [("watch", 100)]
    assert poller.owners == [OWNER]
    assert service.last_try == 10.0
    assert not service.due(100.0)  # connected: never due
    assert events == []


def test_start_failure_leaves_it_down(
    corosync: Corosync, poller: Poller, caplog: pytest.LogCaptureFixture
) -> None:
    corosync.up = False
    service, events = make(corosync)
    with caplog.at_level(logging.INFO, logger="corosync.service"):
        assert not service.start(10.0, poller, OWNER)  # type: ignore[arg-type]
    assert not service.connected
    assert service.fd == -1
    assert service.failures == 1
    assert poller.calls == []
    assert events == []  # on_down is for a lost connection, not for a failed try
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "can't initialize service cpg" in caplog.records[0].getMessage()


def test_only_the_first_failure_of_a_series_is_logged(
    corosync: Corosync, poller: Poller, caplog: pytest.LogCaptureFixture
) -> None:
    corosync.up = False
    service, _ = make(corosync)
    with caplog.at_level(logging.INFO, logger="corosync.service"):
        for t in (0.0, 6.0, 12.0):
            service.start(t, poller, OWNER)  # type: ignore[arg-type]
        assert service.failures == 3
        assert len(caplog.records) == 1
        corosync.up = True
        assert service.start(18.0, poller, OWNER)  # type: ignore[arg-type]
    assert service.failures == 0
    assert "connected again after 3 failed tries" in caplog.records[-1].getMessage()
    assert caplog.records[-1].levelname == "INFO"


def test_retry_is_due_only_after_more_than_the_spacing(corosync: Corosync, poller: Poller) -> None:
    corosync.up = False
    service, _ = make(corosync)
    service.start(100.0, poller, OWNER)  # type: ignore[arg-type]
    assert not service.due(100.0)
    assert not service.due(104.9)
    assert not service.due(105.0)  # strictly more than 5 s, as the original's '>'
    assert service.due(105.001)
    assert not service.due(200.0, spacing=100.0)
    assert service.due(200.001, spacing=100.0)


def test_one_second_ticks_retry_about_every_six_seconds(corosync: Corosync, poller: Poller) -> None:
    """The original's rhythm: with 1 s ticks and the strict '>', a retry every 6 s."""
    corosync.up = False
    service, _ = make(corosync)
    tries = []
    for second in range(0, 25):
        now = float(second)
        if service.due(now):
            service.start(now, poller, OWNER)  # type: ignore[arg-type]
            tries.append(second)
    assert tries == [0, 6, 12, 18, 24]


def test_fd_failure_after_connect_closes_the_handle(corosync: Corosync, poller: Poller) -> None:
    broken = FakeHandle()
    broken.fd_error = library_error("cpg_fd_get")
    service = Service("cpg", lambda: broken)
    assert not service.start(0.0, poller, OWNER)  # type: ignore[arg-type]
    assert broken.finalized == 1
    assert not service.connected
    assert service.fd == -1
    assert poller.calls == []


def test_dispatch_runs_after_dispatch_and_watches_again(corosync: Corosync, poller: Poller) -> None:
    service, events = make(corosync)
    service.start(0.0, poller, OWNER)  # type: ignore[arg-type]
    service.dispatch(poller, OWNER)  # type: ignore[arg-type]
    assert corosync.handles[0].dispatches == 1
    assert events == ["dispatched"]
    assert poller.calls == [("watch", 100), ("watch", 100)]


def test_dispatch_try_again_keeps_the_connection(corosync: Corosync, poller: Poller) -> None:
    service, events = make(corosync)
    service.start(0.0, poller, OWNER)  # type: ignore[arg-type]
    corosync.handles[0].dispatch_error = CsTryAgain(6, "CS_ERR_TRY_AGAIN", "cpg_dispatch")
    service.dispatch(poller, OWNER)  # type: ignore[arg-type]
    assert service.connected
    assert events == []  # after_dispatch runs only after a successful dispatch
    assert poller.calls == [("watch", 100), ("watch", 100)]
    assert corosync.handles[0].finalized == 0


def test_dispatch_error_takes_the_service_down(
    corosync: Corosync, poller: Poller, caplog: pytest.LogCaptureFixture
) -> None:
    service, events = make(corosync)
    service.start(0.0, poller, OWNER)  # type: ignore[arg-type]
    handle = corosync.handles[0]
    handle.dispatch_error = library_error("cpg_dispatch")
    with caplog.at_level(logging.WARNING, logger="corosync.service"):
        service.dispatch(poller, OWNER)  # type: ignore[arg-type]
    assert not service.connected
    assert service.fd == -1
    assert handle.finalized == 1
    assert events == ["down"]
    assert poller.calls == [("watch", 100), ("forget", 100)]
    assert "connection lost" in caplog.records[-1].getMessage()


def test_reconnect_after_a_lost_connection_comes_with_the_next_tick(
    corosync: Corosync, poller: Poller
) -> None:
    """The last try was the connect long ago, so the next tick may retry at once (as loop.c)."""
    service, events = make(corosync)
    service.start(0.0, poller, OWNER)  # type: ignore[arg-type]
    corosync.handles[0].dispatch_error = library_error("cpg_dispatch")
    service.dispatch(poller, OWNER)  # type: ignore[arg-type]
    assert service.due(60.0)
    assert service.start(60.0, poller, OWNER)  # type: ignore[arg-type]
    assert service.handle is corosync.handles[1]
    assert service.fd == 101
    assert events == ["down"]


def test_lost_connection_soon_after_connect_waits_for_the_spacing(corosync: Corosync, poller: Poller) -> None:
    service, _ = make(corosync)
    service.start(0.0, poller, OWNER)  # type: ignore[arg-type]
    corosync.handles[0].dispatch_error = library_error("cpg_dispatch")
    service.dispatch(poller, OWNER)  # type: ignore[arg-type]
    assert not service.due(2.0)
    assert service.due(5.5)


def test_dispatch_while_down_does_nothing(corosync: Corosync, poller: Poller) -> None:
    service, events = make(corosync)
    service.dispatch(poller, OWNER)  # type: ignore[arg-type]
    assert events == []
    assert poller.calls == []


def test_after_dispatch_that_stops_the_service_is_not_watched_again(
    corosync: Corosync, poller: Poller
) -> None:
    service = Service("cmap", corosync.connect)
    service.after_dispatch = lambda: service.stop(poller)  # type: ignore[arg-type]
    service.start(0.0, poller, OWNER)  # type: ignore[arg-type]
    service.dispatch(poller, OWNER)  # type: ignore[arg-type]
    assert not service.connected
    assert poller.calls == [("watch", 100), ("forget", 100)]


def test_stop_forgets_finalizes_and_reports_down_once(corosync: Corosync, poller: Poller) -> None:
    service, events = make(corosync)
    service.start(0.0, poller, OWNER)  # type: ignore[arg-type]
    service.stop(poller)  # type: ignore[arg-type]
    service.stop(poller)  # type: ignore[arg-type]
    assert corosync.handles[0].finalized == 1
    assert events == ["down"]
    assert poller.calls == [("watch", 100), ("forget", 100)]
    assert not service.connected


def test_stop_while_down_is_a_no_op(corosync: Corosync, poller: Poller) -> None:
    service, events = make(corosync)
    service.stop(poller)  # type: ignore[arg-type]
    assert events == []
    assert poller.calls == []


def test_finalize_error_is_swallowed(corosync: Corosync, poller: Poller) -> None:
    service, events = make(corosync)
    service.start(0.0, poller, OWNER)  # type: ignore[arg-type]
    corosync.handles[0].finalize_error = CsError(9, "CS_ERR_BAD_HANDLE", "cpg_finalize")
    service.stop(poller)  # type: ignore[arg-type]
    assert not service.connected
    assert events == ["down"]
