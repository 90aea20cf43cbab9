"""The handler boundary every actor of ours runs behind: no handler failure stops an actor.

pykka hands an exception raised while handling an *asked* message back to the asker, but one
raised while handling a *told* message stops the actor for good (every later ask then fails
or times out). :class:`ServingActor` catches every failure at the boundary: the asker gets
an error (its own domain error, or :class:`errors.InternalError`, EIO, for a bug), a future
carried inside a told message is failed with EIO, the failure is logged once, and the actor
goes on serving. By the project's rule a :class:`Request` is asked and anything else is told.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import sys
from typing import Any

import pykka

from actors.messages import Request
from errors import InternalError, PmxcfsError

log = logging.getLogger(__name__)


class ServingActor(pykka.ThreadingActor):
    """A pykka actor whose handler failures answer an error instead of stopping it.

    Subclasses implement :meth:`receive` (not ``on_receive``) and may override
    :meth:`recover` to restore what a failed told message would have restored.
    """

    def __init__(self) -> None:
        super().__init__()
        self._failed_kinds: set[str] = set()
        """Message types whose failure was logged with its traceback (once per type)."""

    def receive(self, message: object) -> object:
        """Handle one message; override in the actor."""
        return self.unexpected(message)

    def unexpected(self, message: object) -> object:
        """A message this actor does not know: pykka logs it; an asker gets None."""
        return super().on_receive(message)

    def recover(self, message: object) -> None:
        """After a told ``message`` failed: put right what its handler would have done."""

    def on_receive(self, message: object) -> object:
        """The boundary: run :meth:`receive`, turn any failure into an answer."""
        try:
            return self.receive(message)
        except PmxcfsError as exc:
            if isinstance(message, Request):
                raise  # the asker's answer (ENOENT, EEXIST, ...)
            self._told_failed(message, exc)
        except Exception as exc:
            self._log_failure(message, exc)
            if isinstance(message, Request):
                raise InternalError(type(message).__name__, f"{type(exc).__name__}: {exc}") from exc
            self._told_failed(message, exc)
        return None

    def _log_failure(self, message: object, exc: Exception) -> None:
        kind = type(message).__name__
        first = kind not in self._failed_kinds
        self._failed_kinds.add(kind)
        log.error(
            "%s: handling %s failed: %s: %s (answered EIO, still serving)",
            type(self).__name__,
            kind,
            type(exc).__name__,
            exc,
            exc_info=sys.exc_info() if first else None,
        )

    def _told_failed(self, message: object, exc: Exception) -> None:
        if isinstance(exc, PmxcfsError):
            log.warning("%s: %s refused: %s", type(self).__name__, type(message).__name__, exc)
        error = exc if isinstance(exc, PmxcfsError) else InternalError(type(message).__name__, str(exc))
        fail_waiters(message, error)
        try:
            self.recover(message)
        except Exception:
            log.exception(
                "%s: recovering from a failed %s failed", type(self).__name__, type(message).__name__
            )


def fail_waiters(message: object, error: PmxcfsError) -> None:
    """Fail every unanswered future carried by a told ``message`` (its waiting callers)."""
    if not dataclasses.is_dataclass(message):
        return
    for field in dataclasses.fields(message):
        value: Any = getattr(message, field.name)
        if isinstance(value, pykka.Future):
            with contextlib.suppress(queue.Full):  # already answered
                value.set_exception((type(error), error, None))
