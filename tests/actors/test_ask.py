"""The typed ask helper, including answers that come later (Deferred)."""

from __future__ import annotations

import threading

import pykka
import pytest

from actors.messages import Deferred, Request, ask
from errors import NotFound


class Hold(Request[int]):
    """Answer later, through a future resolved from another thread."""


class Later(pykka.ThreadingActor):
    def __init__(self, future: pykka.ThreadingFuture[int]) -> None:
        super().__init__()
        self.future = future

    def on_receive(self, message: object) -> object:
        return Deferred(self.future)


def test_a_deferred_answer_is_waited_for() -> None:
    future: pykka.ThreadingFuture[int] = pykka.ThreadingFuture()
    ref = Later.start(future)
    threading.Timer(0.05, future.set, args=(7,)).start()
    assert ask(ref, Hold(), timeout=5) == 7


def test_a_deferred_error_is_raised_in_the_asker() -> None:
    future: pykka.ThreadingFuture[int] = pykka.ThreadingFuture()
    ref = Later.start(future)
    try:
        raise NotFound("x", "gone")
    except NotFound:
        future.set_exception()
    with pytest.raises(NotFound):
        ask(ref, Hold(), timeout=5)


def test_a_deferred_answer_that_never_comes_times_out() -> None:
    ref = Later.start(pykka.ThreadingFuture())
    with pytest.raises(pykka.Timeout):
        ask(ref, Hold(), timeout=0.2)
