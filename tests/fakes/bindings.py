"""A stand-in for a loaded corosync library: Python functions behind the C names, same errcheck."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from bindings._loader import check_cs_error
from bindings._types import CS_OK


class FakeLib:
    """``getattr(fake, "cpg_join")(...)`` records the call and runs ``impl["cpg_join"]`` (default: CS_OK).

    Results go through the real check_cs_error, so a fake returning 6 raises CsTryAgain as C would.
    Arguments are what the binding passed: ``byref(x)._obj`` is ``x``.
    """

    def __init__(self, **impl: Callable[..., int]) -> None:
        self.impl = impl
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def __getattr__(self, name: str) -> Callable[..., int]:
        if name.startswith("__"):
            raise AttributeError(name)

        def call(*args: Any) -> int:
            self.calls.append((name, args))
            result = self.impl.get(name, lambda *_: CS_OK)(*args)
            return check_cs_error(result, SimpleNamespace(__name__=name), args)

        return call


def returns(code: int) -> Callable[..., int]:
    return lambda *_: code
