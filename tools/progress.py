"""Progress lines on stderr for long work: a count that goes up, and its total when known."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

MIN_INTERVAL_S = 0.2
"""Redraw at most this often (the last count is always shown)."""


class Progress:
    """Shows ``label: done/total unit``; silent unless enabled.

    On a terminal the line is redrawn in place; elsewhere (``--progress`` into a log) each
    update is a line of its own, at most one per ``MIN_INTERVAL_S``.
    """

    def __init__(
        self,
        *,
        enabled: bool,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._tty = self.stream.isatty()
        self._label = ""
        self._unit = ""
        self._total: int | None = None
        self._done = 0
        self._shown_at = float("-inf")
        self._shown = ""

    @classmethod
    def for_stderr(cls, *, forced: bool) -> Progress:
        """Enabled with ``--progress``, or when stderr is a terminal."""
        return cls(enabled=forced or sys.stderr.isatty())

    def start(self, label: str, total: int | None = None, unit: str = "") -> None:
        """Begin a new count (ends any count still open)."""
        self.finish()
        self._label, self._total, self._unit, self._done = label, total, unit, 0
        self._shown_at = float("-inf")
        self._shown = ""
        self._show()

    def phase(self, text: str) -> None:
        """One line that says what is being done (work without a count)."""
        self.finish()
        if self.enabled:
            self.stream.write(f"{text}\n")
            self.stream.flush()

    def update(self, done: int, total: int | None = None) -> None:
        """Set the count (and the total, if it changed)."""
        self._done = done
        if total is not None:
            self._total = total
        if self._clock() - self._shown_at >= MIN_INTERVAL_S:
            self._show()

    def advance(self, step: int = 1) -> None:
        """Add ``step`` to the count."""
        self.update(self._done + step)

    def finish(self) -> None:
        """Show the final count and end the line."""
        if not self._label:
            return
        self._show(final=True)
        self._label = ""

    def _show(self, *, final: bool = False) -> None:
        if not self.enabled:
            return
        count = f"{self._done}" if self._total is None else f"{self._done}/{self._total}"
        text = f"{self._label}: {count} {self._unit}".rstrip()
        if self._tty:
            self.stream.write(f"\r{text}" + ("\n" if final else ""))
        elif text != self._shown:
            self.stream.write(text + "\n")
        self._shown = text
        self.stream.flush()
        self._shown_at = self._clock()
