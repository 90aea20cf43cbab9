"""Where one of this node's replicated changes ends: applied here and settled by the cluster.

Two actors learn a change's fate on their own threads. The fs actor applies the delivered
change to the tree (its result, or the error of the tree) without answering anyone back; the
cluster actor settles it: a majority holds it, or it was not delivered where it counts (see
corosync/confirm.py). The writer waits on one future, answered by whichever of the two comes
second: the tree's result once the change is settled as done, or at once the cluster's refusal.
So neither actor waits for the other, and the delivery costs no ask.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any

import pykka

ExcInfo = tuple[type[BaseException], BaseException, Any]


def exc_info(exc: BaseException) -> ExcInfo:
    """An exc_info triple for pykka's set_exception."""
    return (type(exc), exc, exc.__traceback__)


class ChangeOutcome:
    """The tree's result of one delivered change of ours, joined with its settlement."""

    __slots__ = ("_answered", "_applied", "_lock", "_writer")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._applied: tuple[bool, Any] | None = None
        """(failed, value or exc_info) from the fs actor."""
        self._writer: pykka.Future[Any] | None = None
        """Set when the cluster settled the change as done."""
        self._answered = False

    def applied(self, value: Any) -> None:
        """The fs actor applied the change: ``value`` is its result (fs actor's thread)."""
        self._join(applied=(False, value))

    def failed(self, exc: BaseException) -> None:
        """The fs actor could not apply it: the writer gets ``exc`` once it is settled."""
        self._join(applied=(True, exc_info(exc)))

    def done(self, writer: pykka.Future[Any]) -> None:
        """The cluster settled the change as done: ``writer`` hears the tree's result (cluster thread)."""
        self._join(writer=writer)

    def _join(
        self, *, applied: tuple[bool, Any] | None = None, writer: pykka.Future[Any] | None = None
    ) -> None:
        with self._lock:
            if applied is not None:
                self._applied = applied
            if writer is not None:
                self._writer = writer
            ready = self._applied is not None and self._writer is not None and not self._answered
            if ready:
                self._answered = True
        if ready:
            assert self._applied is not None
            assert self._writer is not None
            failed, value = self._applied
            with contextlib.suppress(queue.Full):  # answered already (a timeout's EIO path)
                if failed:
                    self._writer.set_exception(value)
                else:
                    self._writer.set(value)
