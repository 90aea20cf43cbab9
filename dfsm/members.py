"""Membership bookkeeping and the two message queues of dfsm.c (reference 1.5, 1.7)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dfsm.app import Member, MemberState

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator


@dataclass(slots=True)
class NodeInfo:
    """dfsm_node_info_t: one member's progress in the current sync round."""

    member: Member
    state: bytes | None = None
    """The STATE blob received in this round, None until it arrives."""
    synced: bool = False


class SyncInfo:
    """dfsm_sync_info_t: the member list of the last confchg, sorted by (nodeid, pid)."""

    def __init__(self, members: Iterable[Member], me: Member) -> None:
        self.nodes = [NodeInfo(member) for member in sorted(members)]
        self._by_member = {node.member: node for node in self.nodes}
        self.local = self._by_member.get(me)
        """Our own entry; None only when we are not in the list."""

    def lookup(self, member: Member) -> NodeInfo | None:
        """The entry of ``member``, or None for a non-member."""
        return self._by_member.get(member)

    def all_states_in(self) -> bool:
        """Whether every member's STATE has arrived."""
        return all(node.state is not None for node in self.nodes)

    def states(self) -> tuple[MemberState, ...]:
        """The collected states in (nodeid, pid) order (call only when all are in)."""
        return tuple(MemberState(member=node.member, state=node.state or b"") for node in self.nodes)

    def clear_states(self) -> None:
        """Free the collected states (the synced flags stay)."""
        for node in self.nodes:
            node.state = None

    def mark_synced(self, members: frozenset[Member]) -> None:
        """Set ``synced`` on every listed member."""
        for node in self.nodes:
            if node.member in members:
                node.synced = True

    def mark_all_synced(self) -> None:
        """Set ``synced`` on every member (UPDATE_COMPLETE)."""
        for node in self.nodes:
            node.synced = True


@dataclass(frozen=True, slots=True)
class Queued:
    """dfsm_queued_message_t: a NORMAL message held back until this node is synced."""

    sender: Member
    count: int
    """The sender's header count, the msg_queue sort key."""
    data: bytes
    """The whole message, header included, exactly as received."""


def _count(item: Queued) -> int:
    return item.count


class MessageQueue:
    """msg_queue: kept sorted by the header count; equal counts keep their arrival order.

    GLib's ``g_sequence_insert_sorted`` walks right on a tie, so a new message goes after the queued
    ones with the same count (the C comparator truncates the u64 difference to int, which orders
    counts that differ by less than 2**31 the same way).
    """

    def __init__(self) -> None:
        self._items: list[Queued] = []

    def insert(self, item: Queued) -> None:
        """Insert ``item`` after every queued message with a count <= its count."""
        bisect.insort_right(self._items, item, key=_count)

    def replace(self, items: list[Queued]) -> None:
        """Keep only ``items`` (already in queue order)."""
        self._items = items

    def clear(self) -> None:
        """Drop every message."""
        self._items = []

    def __iter__(self) -> Iterator[Queued]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)
