"""FdPoller and Ticker: the threads that feed the corosync actors, driven with real pipes."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator

import pykka
import pytest

from actors.messages import FdReadable, Tick
from corosync.poller import FdPoller, Ticker

WAIT_S = 5.0
"""Deadline for one expected event."""


class Owner:
    """Stands in for an actor ref: queues what is told to it (the poller only calls ``tell``)."""

    def __init__(self) -> None:
        self.inbox: queue.Queue[object] = queue.Queue()

    def tell(self, message: object) -> None:
        self.inbox.put(message)

    def next(self) -> object:
        return self.inbox.get(timeout=WAIT_S)

    def drained(self) -> list[object]:
        items = []
        while True:
            try:
                items.append(self.inbox.get_nowait())
            except queue.Empty:
                return items


class DeadOwner:
    """An actor ref whose actor has stopped."""

    def __init__(self) -> None:
        self.calls = 0

    def tell(self, message: object) -> None:
        self.calls += 1
        raise pykka.ActorDeadError("stopped")


class Pipes:
    """os.pipe() pairs, all closed after the test."""

    def __init__(self) -> None:
        self._fds: list[int] = []

    def new(self) -> tuple[int, int]:
        r, w = os.pipe()
        self._fds += [r, w]
        return r, w

    def adopt(self, fd: int) -> None:
        self._fds.append(fd)

    def close(self, fd: int) -> None:
        os.close(fd)
        self._fds.remove(fd)

    def close_all(self) -> None:
        for fd in self._fds:
            os.close(fd)


@pytest.fixture
def pipes() -> Iterator[Pipes]:
    made = Pipes()
    yield made
    made.close_all()


@pytest.fixture
def poller() -> Iterator[FdPoller]:
    p = FdPoller()
    yield p
    p.stop()


def barrier(poller: FdPoller, pipes: Pipes) -> None:
    """Return once every poll round that started before the call has told its owners.

    Two round trips of a sentinel fd: the second one is watched only after the first fired, so
    it fires in a later round, which starts after the first one's round has finished.
    """
    for _ in range(2):
        r, w = pipes.new()
        sentinel = Owner()
        poller.watch(r, sentinel)  # type: ignore[arg-type]
        os.write(w, b"s")
        assert sentinel.next() == FdReadable(fd=r)


def test_readable_fd_is_told_once(poller: FdPoller, pipes: Pipes) -> None:
    r, w = pipes.new()
    owner = Owner()
    poller.watch(r, owner)  # type: ignore[arg-type]
    os.write(w, b"x")
    assert owner.next() == FdReadable(fd=r, broken=False)
    # The fd is still readable (nobody read it), but the poller stopped watching it.
    barrier(poller, pipes)
    assert owner.drained() == []


def fired_once(poller: FdPoller, pipes: Pipes) -> tuple[int, int, Owner]:
    """A pipe whose read end is watched and was told readable once: (read end, write end, owner)."""
    r, w = pipes.new()
    owner = Owner()
    poller.watch(r, owner)  # type: ignore[arg-type]
    os.write(w, b"x")
    assert owner.next() == FdReadable(fd=r)
    return r, w, owner


def test_watch_again_after_dispatch(poller: FdPoller, pipes: Pipes) -> None:
    r, w, owner = fired_once(poller, pipes)
    os.read(r, 10)  # what the owner's dispatch does
    poller.watch(r, owner)  # type: ignore[arg-type]
    barrier(poller, pipes)
    assert owner.drained() == []  # nothing to read: no wake-up
    os.write(w, b"y")
    assert owner.next() == FdReadable(fd=r)


def test_fd_readable_already_when_watched(poller: FdPoller, pipes: Pipes) -> None:
    r, w = pipes.new()
    os.write(w, b"x")
    owner = Owner()
    poller.watch(r, owner)  # type: ignore[arg-type]
    assert owner.next() == FdReadable(fd=r)


def test_forget_stops_the_wake_up(poller: FdPoller, pipes: Pipes) -> None:
    r, w = pipes.new()
    owner = Owner()
    poller.watch(r, owner)  # type: ignore[arg-type]
    poller.forget(r)
    os.write(w, b"x")
    barrier(poller, pipes)
    assert owner.drained() == []


def test_forget_unknown_fd_is_harmless(poller: FdPoller, pipes: Pipes) -> None:
    poller.forget(12345)
    barrier(poller, pipes)


def test_watch_replaces_the_owner(poller: FdPoller, pipes: Pipes) -> None:
    r, w = pipes.new()
    first, second = Owner(), Owner()
    poller.watch(r, first)  # type: ignore[arg-type]
    poller.watch(r, second)  # type: ignore[arg-type]
    os.write(w, b"x")
    assert second.next() == FdReadable(fd=r)
    barrier(poller, pipes)
    assert first.drained() == []


def test_two_fds_two_owners(poller: FdPoller, pipes: Pipes) -> None:
    r1, w1 = pipes.new()
    r2, w2 = pipes.new()
    a, b = Owner(), Owner()
    poller.watch(r1, a)  # type: ignore[arg-type]
    poller.watch(r2, b)  # type: ignore[arg-type]
    os.write(w2, b"x")
    assert b.next() == FdReadable(fd=r2)
    os.write(w1, b"x")
    assert a.next() == FdReadable(fd=r1)
    barrier(poller, pipes)
    assert a.drained() == []
    assert b.drained() == []


def test_hang_up_is_reported_broken(poller: FdPoller, pipes: Pipes) -> None:
    r, w = pipes.new()
    owner = Owner()
    poller.watch(r, owner)  # type: ignore[arg-type]
    pipes.close(w)  # corosync went away: POLLHUP
    assert owner.next() == FdReadable(fd=r, broken=True)


def test_closed_fd_is_reported_broken(poller: FdPoller, pipes: Pipes) -> None:
    r, _w = pipes.new()
    pipes.close(r)
    owner = Owner()
    poller.watch(r, owner)  # type: ignore[arg-type]  # POLLNVAL
    assert owner.next() == FdReadable(fd=r, broken=True)


def test_a_reused_fd_number_is_watched_anew(poller: FdPoller, pipes: Pipes) -> None:
    r, _w, owner = fired_once(poller, pipes)
    pipes.close(r)  # closed without forget: epoll drops it by itself
    r2, w2 = pipes.new()
    if r2 != r:  # the same fd number, another pipe
        os.dup2(r2, r)
        pipes.close(r2)
        pipes.adopt(r)
    poller.watch(r, owner)  # type: ignore[arg-type]
    barrier(poller, pipes)
    assert owner.drained() == []
    os.write(w2, b"y")
    assert owner.next() == FdReadable(fd=r, broken=False)


def test_dead_owner_does_not_stop_the_poller(poller: FdPoller, pipes: Pipes) -> None:
    r, w = pipes.new()
    dead = DeadOwner()
    poller.watch(r, dead)  # type: ignore[arg-type]
    os.write(w, b"x")
    barrier(poller, pipes)  # the poller survived the ActorDeadError
    assert dead.calls == 1


def test_watch_with_a_real_actor(poller: FdPoller, pipes: Pipes) -> None:
    got: queue.Queue[object] = queue.Queue()

    class Sink(pykka.ThreadingActor):
        def on_receive(self, message: object) -> None:
            got.put(message)

    ref = Sink.start()
    r, w = pipes.new()
    poller.watch(r, ref)
    os.write(w, b"x")
    assert got.get(timeout=WAIT_S) == FdReadable(fd=r)
    ref.stop()
    os.read(r, 10)
    poller.watch(r, ref)
    os.write(w, b"x")  # told to a stopped actor: logged, not raised
    barrier(poller, pipes)


def test_stop_ends_the_thread(pipes: Pipes) -> None:
    before = {t for t in threading.enumerate() if t.name == "fd-poller"}
    p = FdPoller()
    r, _w = pipes.new()
    p.watch(r, Owner())  # type: ignore[arg-type]
    p.stop()
    assert {t for t in threading.enumerate() if t.name == "fd-poller"} == before


# ----- Ticker ----------------------------------------------------------------------------


def test_ticker_ticks_every_owner() -> None:
    ticker = Ticker(period=0.01)
    a, b = Owner(), Owner()
    try:
        ticker.add(a)  # type: ignore[arg-type]
        ticker.add(b)  # type: ignore[arg-type]
        for _ in range(3):
            assert a.next() == Tick()
            assert b.next() == Tick()
    finally:
        ticker.stop()


def test_ticker_drops_a_dead_owner() -> None:
    ticker = Ticker(period=0.01)
    dead, live = DeadOwner(), Owner()
    try:
        ticker.add(dead)  # type: ignore[arg-type]
        ticker.add(live)  # type: ignore[arg-type]
        for _ in range(3):
            assert live.next() == Tick()
    finally:
        ticker.stop()
    assert dead.calls == 1


def test_ticker_default_period_is_one_second() -> None:
    ticker = Ticker()
    owner = Owner()
    try:
        ticker.add(owner)  # type: ignore[arg-type]
        with pytest.raises(queue.Empty):
            owner.inbox.get(timeout=0.5)
        assert owner.inbox.get(timeout=2.0) == Tick()
    finally:
        ticker.stop()


def test_ticker_stop_ends_the_thread() -> None:
    before = {t for t in threading.enumerate() if t.name == "ticker"}
    ticker = Ticker(period=10.0)
    ticker.stop()  # does not wait for a period
    assert {t for t in threading.enumerate() if t.name == "ticker"} == before
