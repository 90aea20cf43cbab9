"""main.run's shutdown: every part is stopped, in reverse start order, whatever one part does;
then the pid file goes and the instance lock is released; actors left running are logged."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

import main
from daemon.options import Options
from daemon.process import LOCKFILE_NAME, stop_each
from memdb.snapshot import Published, empty_snapshot
from status.published import EMPTY_STATUS, StatusFiles

TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 0.5
"""The stop timeout in these tests: the stuck actor costs this much."""


class Recorder(pykka.ThreadingActor):
    def __init__(self, name: str, stopped: list[str]) -> None:
        super().__init__()
        self.name = name
        self.stopped = stopped

    def on_stop(self) -> None:
        self.stopped.append(self.name)


class Stuck(pykka.ThreadingActor):
    """An actor whose on_stop hangs until the test releases it."""

    def __init__(self, stopped: list[str], release: threading.Event) -> None:
        super().__init__()
        self.stopped = stopped
        self.release = release

    def on_stop(self) -> None:
        self.stopped.append("fs")
        self.release.wait(TIMEOUT_S)


class Part:
    """A non-actor part (IPC server, ticker, poller) that records its stop, or fails it."""

    def __init__(self, name: str, stopped: list[str], *, fails: bool = False) -> None:
        self.name = name
        self.stopped = stopped
        self.fails = fails

    def stop(self) -> None:
        self.stopped.append(self.name)
        if self.fails:
            raise OSError("cannot stop")


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # let the stuck actor's thread end


@pytest.fixture
def umask() -> Iterator[None]:
    """main.run sets umask 027 for the process; give the test process its own back."""
    old = os.umask(0o022)  # the only way to read it
    os.umask(old)
    yield
    os.umask(old)


def options(tmp_path: Path) -> Options:
    return Options(
        foreground=True,
        debug=False,
        local=True,
        mount=str(tmp_path / "mnt"),
        db=str(tmp_path / "config.db"),
        rundir=str(tmp_path / "run"),
        nodename="node1",
        pidfile=str(tmp_path / "pid"),
        lock_wait=1.0,
    )


def lock_is_free(path: Path) -> bool:
    with open(path, "ab") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


@pytest.mark.allow_error_logs
@pytest.mark.usefixtures("umask")
def test_a_stuck_actor_does_not_stop_the_shutdown(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    release: threading.Event,
) -> None:
    opts = options(tmp_path)
    stopped: list[str] = []
    tree, published = Published(empty_snapshot()), Published(EMPTY_STATUS)
    actors = main.Actors(
        db=Recorder.start("db", stopped),
        status=Recorder.start("status", stopped),
        fs=Stuck.start(stopped, release),
        tree=tree,
        published=published,
        status_files=StatusFiles(tree, published),
        corosync=(Recorder.start("cluster", stopped), Recorder.start("quorum", stopped)),
        poller=Part("poller", stopped),
        ticker=Part("ticker", stopped),
        ipc=Part("ipc", stopped, fails=True),
    )
    served: list[tuple[bool, bool]] = []

    def serve(*_args: object) -> None:
        served.append((os.path.exists(opts.pidfile), lock_is_free(tmp_path / LOCKFILE_NAME)))

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setattr(main, "ACTOR_STOP_TIMEOUT_S", STOP_TIMEOUT_S)
    monkeypatch.setattr(main, "start_actors", lambda *_args: actors)
    monkeypatch.setattr(main, "load_tree", lambda *_args, **_kwargs: True)
    monkeypatch.setattr(main, "start_ipc", lambda actors, *_args: actors)
    monkeypatch.setattr(main, "serve", serve)
    caplog.set_level(logging.INFO)

    assert main.run(opts) == 0

    assert served == [(True, False)]  # while serving: pid file written, lock held
    assert stopped == ["ipc", "ticker", "quorum", "cluster", "poller", "fs", "status", "db"]
    assert not os.path.exists(opts.pidfile)
    assert lock_is_free(tmp_path / LOCKFILE_NAME)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors[0] == "stopping IPC server failed"
    assert errors[1].startswith("Stuck did not stop: ")
    left = errors[2:]  # then only the actors left running (other tests' leftovers may show too)
    assert all(e.startswith("actor ") and e.endswith(" still running after the stop") for e in left)
    assert any(e.startswith("actor Stuck-") for e in left)
    assert not any("Recorder" in e for e in left)
    assert caplog.records[-1].getMessage() == "exit proxmox configuration filesystem (0)"


@pytest.mark.allow_error_logs
def test_stop_each_goes_on_after_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    done: list[str] = []

    def fail() -> None:
        raise RuntimeError("boom")

    def timeout() -> None:
        raise pykka.Timeout("took too long")

    stop_each([("a", fail), ("b", timeout), ("c", lambda: done.append("c"))])
    assert done == ["c"]
    assert [r.getMessage() for r in caplog.records] == ["stopping a failed", "b did not stop: took too long"]
