"""The domain exception hierarchy.

No errno here: fusefs/errno_map.py is the one place that turns these into errno values.
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


class StorageError(PmxcfsError):
    """The SQLite store could not be read or written."""


class CorruptDatabase(StorageError):
    """The database file loaded, but its rows break the tree's rules."""


class StatusFileRefused(PmxcfsError):
    """A status file does not take this write or truncate."""


class ErrorLatched(PmxcfsError):
    """An earlier write to the store failed; the tree refuses all changes until restart."""


class InstanceLocked(PmxcfsError):
    """Another pmxcfs already holds the lock on this database."""


class WireFormatError(ValueError, PmxcfsError):
    """Bytes that do not decode as the expected message."""
