"""A clock that tests move by hand (lock ages, retry spacing)."""

from __future__ import annotations


class Clock:
    """Returns ``now``; tests set or advance it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
