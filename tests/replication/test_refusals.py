"""Refused changes are logged once (repeats counted) and reported to the status actor."""

from __future__ import annotations

import logging

import pytest

from actors.messages import ChangeRefused, CreateFile, Rename, WriteFile
from errors import AlreadyExists, ErrorLatched, FileTooLarge
from replication.refusals import REPEAT_S, RefusalLog, describe, shown
from tests.fakes.actors import Recorder
from tests.fakes.clock import Clock


@pytest.fixture
def parts() -> tuple[RefusalLog, Recorder, Clock]:
    recorder = Recorder()
    clock = Clock()
    return RefusalLog(recorder, clock=clock, wallclock=lambda: 1234.0), recorder, clock  # type: ignore[arg-type]


def refused_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused ")]


def test_describe() -> None:
    assert describe(WriteFile(path="a/b", data=b"", offset=0)) == ("write", "a/b")
    assert describe(Rename(src="a", dst="b")) == ("rename", "a -> b")


def test_shown_hides_private_names_on_each_side_of_a_rename() -> None:
    assert shown(Rename(src="priv/a.tmp", dst="priv/a")) == "priv/… -> priv/…"
    assert shown(Rename(src="user.cfg", dst="nodes/n1/priv/x")) == "user.cfg -> nodes/n1/priv/…"
    assert shown(Rename(src="a -> priv/b", dst="c")) == "a -> priv/b -> c"  # a name, not a folder
    assert shown(Rename(src="x", dst="priv/y -> z")) == "x -> priv/…"
    assert shown(CreateFile(path="priv/lock/x")) == "priv/…"


def test_each_refusal_is_logged_once_with_its_reason(
    parts: tuple[RefusalLog, Recorder, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    log, recorder, clock = parts
    request = CreateFile(path="priv/lock/file-x")
    with caplog.at_level(logging.INFO):
        log.refused(request, AlreadyExists(request.path, "file exists"))
        for _ in range(5):  # a tool retrying the lock
            clock.now += 1
            log.refused(request, AlreadyExists(request.path, "file exists"))
        log.refused(WriteFile(path="big", data=b"", offset=0), FileTooLarge("big", "too large"))
        clock.now += REPEAT_S + 1
        log.refused(request, AlreadyExists(request.path, "file exists"))
    assert refused_lines(caplog) == [
        "refused create priv/lock/file-x: file exists (EEXIST)",
        "refused write big: too large (EFBIG)",
        "refused create priv/lock/file-x: file exists (EEXIST) (and 5 times more since it was last logged)",
    ]
    told = recorder.of(ChangeRefused)
    assert len(told) == 8  # every refusal counts in .health, logged or not
    assert told[0] == ChangeRefused(
        op="create",
        path="priv/lock/file-x",
        shown="priv/…",
        error="EEXIST",
        reason="file exists",
        time=1234,
        latched=False,
    )


def test_a_latch_is_a_warning_and_marked(
    parts: tuple[RefusalLog, Recorder, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    log, recorder, _ = parts
    with caplog.at_level(logging.INFO):
        log.refused(WriteFile(path="a", data=b"", offset=0), ErrorLatched(reason="disk full"))
    (record,) = [r for r in caplog.records if r.getMessage().startswith("refused ")]
    assert record.levelno == logging.WARNING
    assert recorder.of(ChangeRefused)[0].latched
    assert recorder.of(ChangeRefused)[0].error == "EIO"
