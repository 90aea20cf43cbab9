"""The kvstore application of the DFSM (status.c), run inside the cluster actor.

Group pve_kvstore_v1, protocol 0: no verify, no UPDATE phase. The STATE is the cluster log
ring; once every member's is in, the logs are merged and everyone is synced at once (the
status actor then re-broadcasts its kv entries). NORMAL messages are fire-and-forget UPDATE
and LOG; a node ignores its own (it applied them when sending) and a malformed one is
logged and dropped, never a reason to leave. The status actor owns the state: this app asks
it for the STATE and the merge and tells it everything else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from actors.messages import GetClogState, KvDelivered, KvstoreSynced, LogDelivered, MergeClogStates, ask
from dfsm import DfsmLeave, Member, MemberState, StateDecision
from errors import WireFormatError
from wire.kvstore import ClogEntry, KvUpdate, decode_payload

log = logging.getLogger(__name__)

STATUS_TIMEOUT_S = 10.0
"""How long a sync callback waits for the status actor."""


class KvstoreApp:
    """DfsmApp for the node status; ``on_members`` hears every confchg's member node ids."""

    def __init__(
        self,
        status: pykka.ActorRef[Any] | None,
        *,
        me: Member,
        on_members: Callable[[frozenset[int]], None],
    ) -> None:
        self._status = status
        self._me = me
        self._on_members = on_members

    @property
    def verifies(self) -> bool:
        """The kvstore group has no checksum and takes no part in VERIFY."""
        return False

    def _ask(self, message: Any) -> Any:
        if self._status is None:
            raise DfsmLeave(type(message).__name__, "no status actor")
        try:
            return ask(self._status, message, timeout=STATUS_TIMEOUT_S)
        except (pykka.Timeout, pykka.ActorDeadError) as exc:
            raise DfsmLeave(type(message).__name__, f"status actor did not answer: {exc}") from exc

    def _tell(self, message: object) -> None:
        if self._status is not None:
            self._status.tell(message)

    def get_state(self) -> bytes:
        """STATE: this node's cluster log, sorted, in a fresh ring."""
        state: bytes = self._ask(GetClogState())
        return state

    def process_state_update(self, states: Sequence[MemberState], me: Member) -> StateDecision:
        """Merge the logs (our live log stands in for our STATE); everyone is synced."""
        if len(states) > 1:
            self._ask(MergeClogStates(states=tuple(None if s.member == me else s.state for s in states)))
        return StateDecision(synced=frozenset(s.member for s in states))

    def process_update(self, sender: Member, payload: bytes) -> None:
        """Never expected: every member is synced after the state exchange."""
        log.warning("ignore kvstore UPDATE from %s: the kvstore group has no update phase", sender)

    def commit(self) -> None:
        """Nothing to commit (no update phase)."""

    def cleanup(self) -> None:
        """Nothing is kept between sync rounds."""

    def checksum(self) -> bytes:
        """Not used (``verifies`` is False)."""
        return b""

    def on_synced(self) -> None:
        """Synced: the status actor announces this node's IP."""
        self._tell(KvstoreSynced())

    def on_confchg(self, members: Sequence[Member]) -> None:
        """Online are the nodes with a process in the group."""
        self._on_members(frozenset(member.nodeid for member in members))

    def deliver(self, sender: Member, subtype: int, payload: bytes, time: int, count: int) -> int:
        """Hand an UPDATE or LOG of another node to the status actor; answers 1 (handled)."""
        if sender == self._me:
            return 1
        try:
            message = decode_payload(subtype, payload)
        except WireFormatError as exc:
            log.warning("ignore kvstore message from %s: %s", sender, exc)
            return 1
        if isinstance(message, KvUpdate):
            self._tell(KvDelivered(nodeid=sender.nodeid, key=message.key, value=message.value))
        elif isinstance(message, ClogEntry):
            self._tell(LogDelivered(entry=message))
        return 1
