"""The one channel of a replicated change of ours: its writer's future.

A change goes out from the Proposer as a :class:`PendingChange`, the future its writer waits on.
The cluster actor keeps it by the DFSM's message count until the change is delivered back
(corosync/writers.py); the delivery hands it to the fs actor with the change (ApplyDelivered).
Two actors then learn the change's fate, each on its own thread:

* the fs actor applies the change to the tree: :meth:`applied` with its result, or
  :meth:`failed` with the tree's error (ENOENT and the like);
* the cluster actor settles it: :meth:`acknowledge` once a majority is known to hold it (or at
  delivery without confirmation), or :meth:`refuse` with the reason it may be lost.

The writer is answered by whichever comes second: the tree's result once the change is
acknowledged, or at once a refusal. So neither actor waits for the other, and the delivery costs
no ask. A refusal is reported to the refusal log (.health) as it is set, where it is known.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import TYPE_CHECKING, Any

import pykka

from errors import PmxcfsError
from replication.refusals import RefusalLog

ExcInfo = tuple[type[BaseException], BaseException, Any]


def exc_info(exc: BaseException) -> ExcInfo:
    """An exc_info triple for pykka's set_exception."""
    return (type(exc), exc, exc.__traceback__)


if TYPE_CHECKING:
    _Future = pykka.ThreadingFuture[Any]
else:  # pykka 3.1 (Debian 12) has no subscriptable classes at run time
    _Future = pykka.ThreadingFuture


class PendingChange(_Future):
    """The writer's future of one change of ours, joining the tree's result and the settlement."""

    def __init__(self, request: object, refusals: RefusalLog | None = None) -> None:
        super().__init__()
        self._request = request
        self._refusals = refusals
        self._lock = threading.Lock()
        self._applied: tuple[bool, Any] | None = None
        """(failed, value or exc_info) from the fs actor."""
        self._acknowledged = False
        self._answered = False

    def applied(self, value: Any) -> None:
        """The fs actor applied the change: ``value`` is its result (fs actor's thread)."""
        self._join(applied=(False, value))

    def failed(self, exc: BaseException) -> None:
        """The fs actor could not apply it: the writer gets ``exc`` once it is acknowledged."""
        self._join(applied=(True, exc_info(exc)))

    def acknowledge(self) -> None:
        """A majority holds the change: the writer hears the tree's result (cluster actor's thread)."""
        self._join(acknowledged=True)

    def refuse(self, exc: PmxcfsError) -> None:
        """The change may not survive (``exc`` says why): the writer is told so at once."""
        with self._lock:
            if self._answered:
                return
            self._answered = True
        self._answer(True, exc_info(exc))

    def set_exception(self, exc_info: Any = None) -> None:
        """Report a refusal, then pass the exception to the waiting writer."""
        exc = exc_info[1] if exc_info is not None else None
        if isinstance(exc, PmxcfsError) and self._refusals is not None:
            self._refusals.refused(self._request, exc)
        super().set_exception(exc_info)

    def _join(self, *, applied: tuple[bool, Any] | None = None, acknowledged: bool = False) -> None:
        with self._lock:
            if applied is not None:
                self._applied = applied
            self._acknowledged = self._acknowledged or acknowledged
            ready = self._applied is not None and self._acknowledged and not self._answered
            if ready:
                self._answered = True
        if ready:
            assert self._applied is not None
            self._answer(*self._applied)

    def _answer(self, failed: bool, value: Any) -> None:
        with contextlib.suppress(queue.Full):  # answered already (fail_waiters after a crash)
            if failed:
                self.set_exception(value)
            else:
                self.set(value)
