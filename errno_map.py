"""The one table from domain errors to errno, beside errors.py.

The FUSE operations, the IPC answers and the refusal log all map through it.
"""

from __future__ import annotations

import errno

import pykka

from errors import (
    AccessDenied,
    AlreadyExists,
    BadStatusValue,
    ClusterBusy,
    DirectoryNotEmpty,
    ErrorLatched,
    FileTooLarge,
    GuestConfigUnreadable,
    InternalError,
    InvalidArgument,
    NotADirectory,
    NotFound,
    NotPermitted,
    NotQuorate,
    ResponseTooLarge,
    StatusFileRefused,
    StorageError,
    UnknownRequest,
)

ERRNO_FOR: dict[type[BaseException], int] = {
    NotFound: errno.ENOENT,
    AlreadyExists: errno.EEXIST,
    NotADirectory: errno.ENOTDIR,
    DirectoryNotEmpty: errno.ENOTEMPTY,
    NotQuorate: errno.EACCES,  # the original answers EACCES, not EROFS, without quorum
    AccessDenied: errno.EACCES,
    NotPermitted: errno.EPERM,
    FileTooLarge: errno.EFBIG,
    InvalidArgument: errno.EINVAL,
    ErrorLatched: errno.EIO,
    InternalError: errno.EIO,  # a handler failed; the actor goes on serving
    StorageError: errno.EIO,
    BadStatusValue: errno.ENOMEM,  # the original's status store answers ENOMEM to such values
    StatusFileRefused: errno.EIO,  # the original's status files answer EIO to writes
    ClusterBusy: errno.EBUSY,  # not sent, or the wait for its delivery was aborted
    UnknownRequest: errno.ECHRNG,  # the C IPC server's answer to an unknown request id
    GuestConfigUnreadable: errno.EIO,
    ResponseTooLarge: errno.EMSGSIZE,  # C disconnects the client instead
    pykka.Timeout: errno.EIO,  # the owning actor did not answer in time
    pykka.ActorDeadError: errno.EIO,  # shutting down
}


def errno_for(exc: BaseException) -> int | None:
    """The errno for ``exc``, looked up along its class hierarchy; None if unknown."""
    for cls in type(exc).__mro__:
        code = ERRNO_FOR.get(cls)
        if code is not None:
            return code
    return None
