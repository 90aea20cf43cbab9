"""libqb's main loop (``qb_loop_t``): :class:`QbLoop`, the loop an IPC service runs on.

Threading: a :class:`QbLoop` and the IpcService attached to it are used from one thread only,
the one that calls :meth:`QbLoop.run`; the only call another thread may make is
:meth:`QbLoop.wake`. Callbacks run on the loop thread while the GIL is held.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import threading
from collections.abc import Callable
from ctypes import c_void_p

from bindings.libqb import (
    POLLIN,
    QB_LOOP_HIGH,
    guarded,
    lib,
    os_error,
    qb_ipcs_dispatch_add_fn,
    qb_ipcs_dispatch_del_fn,
    qb_ipcs_dispatch_mod_fn,
    qb_ipcs_job_add_fn,
    qb_ipcs_poll_handlers,
    qb_loop_poll_dispatch_fn,
)

log = logging.getLogger(__name__)


class QbLoop:
    """A ``qb_loop_t``: poll sources and jobs, run by :meth:`run` on one thread.

    :meth:`wake` is the one thread-safe entry: it writes to a pipe the loop watches, and the
    loop then calls the ``on_wake`` function given to the constructor on its own thread.
    """

    def __init__(self, on_wake: Callable[[], None]) -> None:
        self._loop: int | None = lib().qb_loop_create()
        if not self._loop:
            raise OSError(errno.ENOMEM, "qb_loop_create failed")
        self._on_wake = on_wake
        self._lock = threading.Lock()
        """Orders :meth:`wake` against :meth:`destroy`, which closes the pipe."""
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_fn = qb_loop_poll_dispatch_fn(guarded("wake", 0, self._dispatch_wake))
        res = lib().qb_loop_poll_add(
            self._loop, QB_LOOP_HIGH, self._wake_r, POLLIN, None, ctypes.cast(self._wake_fn, c_void_p)
        )
        if res < 0:
            self.destroy()
            raise os_error(res, "qb_loop_poll_add")
        # The service's poll handlers call back into this loop; kept here for its lifetime.
        self.poll_handlers = qb_ipcs_poll_handlers(
            job_add=qb_ipcs_job_add_fn(guarded("job_add", -errno.EIO, self._job_add)),
            dispatch_add=qb_ipcs_dispatch_add_fn(guarded("dispatch_add", -errno.EIO, self._poll_add)),
            dispatch_mod=qb_ipcs_dispatch_mod_fn(guarded("dispatch_mod", -errno.EIO, self._poll_mod)),
            dispatch_del=qb_ipcs_dispatch_del_fn(guarded("dispatch_del", -errno.EIO, self._poll_del)),
        )

    @property
    def handle(self) -> int:
        """The ``qb_loop_t *``."""
        if not self._loop:
            raise ValueError("the loop was destroyed")
        return self._loop

    def run(self) -> None:
        """Run until :meth:`stop` is called from a callback (qb_loop_run; the GIL is released)."""
        lib().qb_loop_run(self.handle)

    def stop(self) -> None:
        """Make :meth:`run` return after the current callback (loop thread only)."""
        lib().qb_loop_stop(self.handle)

    def wake(self) -> None:
        """From any thread: have the loop call ``on_wake`` soon (nothing once destroyed)."""
        with self._lock:
            if not self._loop:
                return
            with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
                os.write(self._wake_w, b"\0")

    def destroy(self) -> None:
        """Free the loop and the wake pipe (after :meth:`run` returned, or if it never ran)."""
        with self._lock:
            if not self._loop:
                return
            loop, self._loop = self._loop, None
            lib().qb_loop_poll_del(loop, self._wake_r)
            lib().qb_loop_destroy(loop)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _dispatch_wake(self, _fd: int, _revents: int, _data: int | None) -> int:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass
        self._on_wake()
        return 0

    def _job_add(self, priority: int, data: int | None, fn: int | None) -> int:
        result: int = lib().qb_loop_job_add(self.handle, priority, data, fn)
        return result

    def _poll_add(self, priority: int, fd: int, events: int, data: int | None, fn: int | None) -> int:
        result: int = lib().qb_loop_poll_add(self.handle, priority, fd, events, data, fn)
        return result

    def _poll_mod(self, priority: int, fd: int, events: int, data: int | None, fn: int | None) -> int:
        result: int = lib().qb_loop_poll_mod(self.handle, priority, fd, events, data, fn)
        return result

    def _poll_del(self, fd: int) -> int:
        result: int = lib().qb_loop_poll_del(self.handle, fd)
        return result
