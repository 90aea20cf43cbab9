"""The domain exception hierarchy.

No errno here: errno_map.py is the one place that turns these into errno values.
"""

from __future__ import annotations


class PmxcfsError(Exception):
    """Base of every error this daemon raises on purpose."""

    def __init__(self, what: str = "", reason: str = "") -> None:
        super().__init__(what, reason)
        self.what = what
        """The offending value (a path, a file name, a field)."""
        self.reason = reason
        """Why it was refused, in a few words."""

    def __str__(self) -> str:
        text = type(self).__name__
        if self.what:
            text += f" {self.what!r}"
        if self.reason:
            text += f": {self.reason}"
        return text


class NotFound(PmxcfsError):
    """The path, or one of its parents, does not exist."""


class AlreadyExists(PmxcfsError):
    """The name is taken, or a guest with that VMID exists elsewhere."""


class NotADirectory(PmxcfsError):
    """A parent is a file, or a directory stands where a file is expected."""


class DirectoryNotEmpty(PmxcfsError):
    """A directory with children can be neither removed nor renamed."""


class AccessDenied(PmxcfsError):
    """The tree refuses the operation (a reserved name, a lock rule, the root)."""


class NotQuorate(AccessDenied):
    """The cluster has no quorum, so the tree is read-only."""


class NotPermitted(PmxcfsError):
    """chmod/chown to anything but the one supported value."""


class FileTooLarge(PmxcfsError):
    """A file would grow beyond the 1 MiB limit."""


class InvalidArgument(PmxcfsError):
    """A request carries a value the daemon does not accept."""


class InternalError(PmxcfsError):
    """A bug met while handling a request: the request is answered EIO, the daemon goes on."""


class StorageError(PmxcfsError):
    """The SQLite store could not be read or written."""


class CorruptDatabase(StorageError):
    """The database file loaded, but its rows break the tree's rules."""


class ClusterBusy(PmxcfsError):
    """A cluster change could not be sent or its delivery was aborted (the original: EBUSY)."""


class BadStatusValue(PmxcfsError):
    """An ``rrd/`` or ``nodeip`` status value that is not NUL-terminated or too long (C: ENOMEM)."""


class StatusFileRefused(PmxcfsError):
    """A status file does not take this write or truncate."""


class ErrorLatched(PmxcfsError):
    """An earlier write to the store failed; the tree refuses all changes until restart."""


class StartupError(PmxcfsError):
    """The daemon can't start (a step of the startup sequence failed)."""


class InstanceLocked(PmxcfsError):
    """Another pmxcfs already holds the lock on this database."""


class WireFormatError(ValueError, PmxcfsError):
    """Bytes that do not decode as the expected message."""

    def __init__(self, what: str = "", reason: str = "") -> None:
        PmxcfsError.__init__(self, what, reason)


class CsError(PmxcfsError):
    """A corosync client library call returned a cs_error_t other than CS_OK."""

    def __init__(self, code: int, name: str = "", call: str = "") -> None:
        self.code = code
        """The cs_error_t value (corotypes.h)."""
        self.name = name or f"cs_error_t {code}"
        """Its symbolic name, such as ``CS_ERR_TRY_AGAIN``."""
        self.call = call
        """The library function that returned it, such as ``cpg_join``."""
        super().__init__(call, f"{self.name} ({code})")
        self.args = (code, name, call)

    def __str__(self) -> str:
        where = f"{self.call} failed" if self.call else "corosync call failed"
        return f"{where}: {self.name} ({self.code})"


class CsTryAgain(CsError):
    """CS_ERR_TRY_AGAIN (6): flow control or a sync in progress; dispatch, then retry."""


class CsLibraryError(CsError):
    """CS_ERR_LIBRARY (2): corosync is not running or went away; finalize and re-initialize."""


class CsNotExist(CsError):
    """CS_ERR_NOT_EXIST (12): no such key (cmap) or object."""


class UnknownRequest(PmxcfsError):
    """An IPC request with an operation number the server does not know (C: ECHRNG)."""


class GuestConfigUnreadable(PmxcfsError):
    """The config of the one guest an IPC property request names is missing or empty (C: EIO)."""


class ResponseTooLarge(PmxcfsError):
    """An IPC answer does not fit into the client's response buffer."""
