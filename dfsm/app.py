"""What an application plugs into the DFSM: the callbacks of ``dfsm_callbacks_t`` (dfsm.h, dfsm.c).

DCDB (the config tree, group pve_dcdb_v1) and the kvstore (status, group pve_kvstore_v1) each
implement :class:`DfsmApp`. Where a C callback returns ``-1`` to make the node leave the group, the
Python callback raises :class:`DfsmLeave`; where DCDB latches the permanent ERROR mode
(``dfsm_set_errormode``, memdb's sticky ``errors`` flag) it raises :class:`DfsmFatal`.

A callback may send fire-and-forget NORMAL messages itself by calling ``Dfsm.send_normal`` on the
machine it belongs to (kvstore re-broadcasts its kv entries from ``process_state_update`` and
announces ``nodeip`` from ``on_synced``; DCDB's lowest node answers UNLOCK_REQUEST with UNLOCK from
``deliver``). Such nested sends are returned with the actions of the event being processed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from errors import PmxcfsError

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True, slots=True, order=True)
class Member:
    """A CPG group member. Ordered by (nodeid, pid), the order in which dfsm.c sorts sync_info."""

    nodeid: int
    """The corosync node id."""
    pid: int
    """The id of the pmxcfs process holding the CPG handle."""

    def __str__(self) -> str:
        return f"{self.nodeid}/{self.pid}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberState:
    """One member's STATE blob, as collected during a sync round (a ``dfsm_node_info_t``)."""

    member: Member
    state: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class StateDecision:
    """What ``process_state_update`` decided once every member's STATE was in.

    DCDB marks the leader and every member with a byte-identical index as synced; the leader sends
    one UPDATE per differing inode and then, always, UPDATE_COMPLETE (reference 2.7). kvstore marks
    everyone synced and sends nothing (3.3).
    """

    synced: frozenset[Member]
    """The members whose ``synced`` flag is set; a member not listed waits for UPDATE_COMPLETE."""
    updates: tuple[bytes, ...] = ()
    """UPDATE payloads to multicast (one record each), in this order, under the current epoch."""
    send_update_complete: bool = False
    """Multicast UPDATE_COMPLETE after the updates (the DCDB leader, even with zero updates)."""


class DfsmLeave(PmxcfsError):
    """A callback failed in a way that makes this node leave the group and rejoin later (LEAVE)."""

    def __init__(self, what: str = "", reason: str = "", *, result: int = -1) -> None:
        super().__init__(what, reason)
        self.result = result
        """For ``deliver``: the application result the local sender sees (C leaves it at -1)."""


class DfsmFatal(DfsmLeave):
    """A serious internal error (e.g. a failed database write): mode ERROR until pmxcfs restarts."""


class DfsmApp(Protocol):
    """The application side of one DFSM instance; every method runs on the owner's thread."""

    @property
    def verifies(self) -> bool:
        """Whether this application takes part in VERIFY_REQUEST/VERIFY (C: has a checksum_fn)."""
        ...

    def get_state(self) -> bytes:
        """This node's STATE blob for the current sync round; empty means LEAVE."""
        ...

    def process_state_update(self, states: Sequence[MemberState], me: Member) -> StateDecision:
        """Decide who is synced, given every member's STATE in (nodeid, pid) order."""
        ...

    def process_update(self, sender: Member, payload: bytes) -> None:
        """Collect one UPDATE record while this node is out of date."""
        ...

    def commit(self) -> None:
        """Apply the collected updates atomically (UPDATE_COMPLETE on an out-of-date node)."""
        ...

    def cleanup(self) -> None:
        """Drop the sync round's data (collected updates); runs whenever sync resources are freed."""
        ...

    def deliver(self, sender: Member, subtype: int, payload: bytes, time: int, count: int) -> int:
        """Apply one NORMAL message in total order; the return value is the local sender's result."""
        ...

    def checksum(self) -> bytes:
        """The 32-byte checksum of the whole data set (only called when ``verifies``)."""
        ...

    def on_synced(self) -> None:
        """The mode has just changed to SYNCED (``dfsm_synced_fn``)."""
        ...

    def on_confchg(self, members: Sequence[Member]) -> None:
        """A configuration change was handled and this node is still a member (``dfsm_confchg_fn``)."""
        ...
