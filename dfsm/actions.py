"""The DFSM modes and the actions the machine asks its owner to carry out (dfsm.c)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

ERROR_MODE_START = 128
"""DFSM_ERROR_MODE_START: modes at or above it are error modes; messages are then ignored."""


class Mode(IntEnum):
    """dfsm_mode_t (reference 1.4)."""

    START = 0
    """After (re)initialisation, before the first configuration change."""
    START_SYNC = 1
    """A configuration change was seen; the members exchange their states."""
    SYNCED = 2
    """Normal operation: NORMAL messages are delivered at once."""
    UPDATE = 3
    """This node is out of date and waits for UPDATE ... UPDATE_COMPLETE from the leader."""
    LEAVE = 253
    """Recoverable: leave the CPG group and rejoin later."""
    VERSION_ERROR = 254
    """Permanent: a peer speaks a newer protocol."""
    ERROR = 255
    """Permanent: a serious internal error (a database failure)."""

    @property
    def is_error(self) -> bool:
        """Whether this is LEAVE, VERSION_ERROR or ERROR."""
        return self >= ERROR_MODE_START


@dataclass(frozen=True, slots=True, kw_only=True)
class Multicast:
    """Multicast ``data`` to the group (``cpg_mcast_joined``, CPG_TYPE_AGREED).

    Carry out the multicasts of one batch in order. When one with ``must_succeed`` fails (after the
    original's 100 TRY_AGAIN retries), skip the batch's remaining multicasts and report it with
    ``Dfsm.multicast_failed``: C leaves the group at that point. Any other failure is reported too,
    so a waiting sender learns that its message is gone.
    """

    data: bytes
    must_succeed: bool
    """SYNC_START, STATE, VERIFY, UPDATE_COMPLETE and the queue resend; not UPDATE/VERIFY_REQUEST/NORMAL."""
    count: int | None = None
    """The header count of a NORMAL message (new or resent), else None."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalResult:
    """A message this node sent with ``wait=True`` is finished (reference 1.9).

    ``processed`` is True when the message was delivered here and the application ran on it;
    ``result`` is then what ``deliver`` returned (-1 when it raised DfsmLeave without a result).
    ``processed`` False means the send failed, the wait was aborted (initialize/finalize), or a
    later own message was delivered first; ``result`` is then None and the sender keeps its preset
    (DCDB: -EBUSY).
    """

    count: int
    result: int | None
    processed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeChanged:
    """The mode changed (only real changes; the escalation rule may refuse one)."""

    old: Mode
    new: Mode


@dataclass(frozen=True, slots=True, kw_only=True)
class Leave:
    """This node must leave the CPG group (mode LEAVE, VERSION_ERROR or ERROR); ``reason`` says why.

    The owner does what the original's dispatch does after every callback: ``cpg_leave`` while
    joined; once the confchg confirming the departure arrived (``we_are_member`` False), drop the
    fd and re-initialise after more than 5 s, unless the machine is no longer ``restartable``.
    """

    reason: str


Action = Multicast | LocalResult | ModeChanged | Leave
