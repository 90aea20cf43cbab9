"""What every corosync handle class shares: the uint64 handle, callback lifetimes and errors."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, ParamSpec

from bindings._loader import cs_error
from bindings._types import CS_ERR_BAD_HANDLE
from errors import CsLibraryError

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

P = ParamSpec("P")


def _urgent(exc: BaseException) -> bool:
    """KeyboardInterrupt, SystemExit and the like: more important than an ordinary error."""
    return not isinstance(exc, Exception)


class CsHandle:
    """Base of the handle classes: one connection to one corosync service.

    Not thread-safe: every call and every callback of one handle must run on one thread (the
    cluster actor's). C calls the callbacks only from inside ``dispatch``. A callback that raises
    does not unwind into C: the exception is stored and re-raised by ``dispatch`` once the C call
    has returned. Finalize before dropping the object; nothing finalizes it on garbage collection.
    """

    def __init__(self) -> None:
        self._handle: int | None = None
        """The C handle while initialized, else None."""
        self._c_objects: dict[Hashable, object] = {}
        """ctypes objects C points to (callback structs, CFUNCTYPE thunks), by key."""
        self._retired: list[object] = []
        """Objects dropped during a dispatch: a thunk may still be running, so freed only after it."""
        self._dispatching = 0
        """Depth of dispatch calls in progress."""
        self._pending: BaseException | None = None
        """The first exception a callback raised during the current dispatch."""
        self._dropped = 0
        """How many later callback exceptions of the same dispatch were dropped."""

    @property
    def initialized(self) -> bool:
        """Whether initialize succeeded and finalize has not run since."""
        return self._handle is not None

    def _require(self, call: str) -> int:
        """The C handle, or CsError(CS_ERR_BAD_HANDLE) as C would give for a stale handle."""
        if self._handle is None:
            raise cs_error(CS_ERR_BAD_HANDLE, call)
        return self._handle

    def _keep(self, key: Hashable, obj: object) -> None:
        """Hold ``obj`` for as long as C may use it, until ``_release(key)``."""
        self._release(key)
        self._c_objects[key] = obj

    def _release(self, key: Hashable | None = None) -> None:
        """Stop holding the object under ``key`` (all of them for None), after any running dispatch."""
        keys = list(self._c_objects) if key is None else [key]
        for k in keys:
            obj = self._c_objects.pop(k, None)
            if obj is not None and self._dispatching:
                self._retired.append(obj)

    def _guarded(self, func: Callable[P, None]) -> Callable[P, None]:
        """Wrap a callback that C calls: it stores any exception instead of raising it."""

        @functools.wraps(func)
        def guard(*args: P.args, **kwargs: P.kwargs) -> None:
            try:
                func(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - must not unwind into C; dispatch re-raises it
                self._store(exc)

        return guard

    def _store(self, exc: BaseException) -> None:
        if self._pending is None or (_urgent(exc) and not _urgent(self._pending)):
            if self._pending is not None:
                self._dropped += 1
            self._pending = exc
        else:
            self._dropped += 1

    def _raise_pending(self) -> None:
        """Re-raise the exception a callback stored, if any."""
        exc, self._pending = self._pending, None
        dropped, self._dropped = self._dropped, 0
        if exc is not None:
            if dropped:
                exc.add_note(
                    f"{dropped} more exception(s) raised in callbacks of the same dispatch were dropped"
                )
            raise exc

    def _dispatch_via(self, func: Callable[[int, int], object], call: str, flags: int) -> None:
        """Run the C dispatch ``func``, then re-raise what a callback raised (even if C failed)."""
        handle = self._require(call)
        self._dispatching += 1
        try:
            func(handle, flags)
        finally:
            self._dispatching -= 1
            if not self._dispatching:
                self._retired.clear()
                self._raise_pending()

    def _finalize_via(self, func: Callable[[int], object], call: str) -> None:
        """Run the C finalize ``func``; the handle and the callbacks are released whatever it returns.

        CS_ERR_LIBRARY is not raised: it means corosync is already gone, and the library frees
        its side of the handle anyway (cpg_finalize returns it after a corosync crash).
        """
        handle = self._require(call)
        self._handle = None
        try:
            with contextlib.suppress(CsLibraryError):
                func(handle)
        finally:
            self._release()

    def finalize(self) -> None:  # pragma: no cover - overridden
        """Close the connection; the object may be initialized again."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.initialized:
            self.finalize()
