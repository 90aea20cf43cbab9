"""The DFSM as a pure state machine: the owner feeds it CPG events and carries out its actions.

One instance per CPG group (DCDB: protocol 1; kvstore: protocol 0). No threads, no I/O, no clock
of its own: ``clock`` returns time(NULL). Every input method returns the list of actions the event
caused, in order (see ``dfsm.actions``); a malformed message is a LEAVE, never an exception.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dfsm.actions import Action, Leave, LocalResult, Mode, Multicast
from dfsm.app import DfsmFatal, DfsmLeave, Member
from dfsm.core import ZERO_EPOCH
from dfsm.members import SyncInfo
from dfsm.sync import DfsmSync
from wire import dcdb
from wire import dfsm as wire

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger(__name__)


class Dfsm(DfsmSync):
    """``dfsm_t``: modes, sync rounds, queues, counters and verification of one CPG group.

    Inputs: ``on_confchg``, ``on_deliver``, ``send_normal``, ``multicast_failed``,
    ``verify_request`` (the hourly timer), ``initialize``, ``finalize``, ``set_error_mode``.
    """

    @property
    def mode(self) -> Mode:
        """The current mode."""
        return self._mode

    @property
    def restartable(self) -> bool:
        """False in VERSION_ERROR and ERROR: the group stays down until pmxcfs restarts."""
        return self._mode not in (Mode.ERROR, Mode.VERSION_ERROR)

    @property
    def we_are_member(self) -> bool:
        """Whether the last confchg listed us (False again after initialize/finalize)."""
        return self._we_are_member

    @property
    def is_lowest_nodeid(self) -> bool:
        """dfsm_lowest_nodeid: we have the lowest nodeid of the group (UNLOCK, verify)."""
        return self._lowest_nodeid != 0 and self._lowest_nodeid == self.me.nodeid

    @property
    def sync_epoch(self) -> wire.Epoch:
        """The epoch our state messages carry; other state messages must match it."""
        return self._sync_epoch

    @property
    def msgcount(self) -> int:
        """The count of the last NORMAL message sent (never reset)."""
        return self._msgcount

    @property
    def members(self) -> tuple[Member, ...]:
        """The member list of the last confchg, sorted by (nodeid, pid)."""
        return tuple(node.member for node in self._sync.nodes) if self._sync else ()

    @property
    def queue_lengths(self) -> tuple[int, int]:
        """(msg_queue, sync_queue) lengths, for logs and tests."""
        return len(self._msg_queue), len(self._sync_queue)

    def on_confchg(
        self, members: Sequence[Member], left: Sequence[Member], joined: Sequence[Member]
    ) -> list[Action]:
        """A CPG configuration change (reference 1.6). ``left`` is only logged, as in C."""
        log.debug("[%s] confchg left: %s", self.name, ", ".join(str(member) for member in left))
        return self._run(lambda: self._confchg(tuple(members), tuple(joined)))

    def on_deliver(self, nodeid: int, pid: int, data: bytes) -> list[Action]:
        """A CPG delivery (reference 1.3, 1.7); our own multicasts come back here too."""
        return self._run(lambda: self._receive_guarded(Member(nodeid=nodeid, pid=pid), data))

    def send_normal(self, subtype: int, payload: bytes, *, wait: bool = True) -> tuple[int, list[Action]]:
        """Build the next NORMAL message (count pre-incremented, reference 1.8).

        With ``wait``, a LocalResult for the returned count follows once the message is delivered
        here (or the wait is aborted). Called from inside an app callback, the multicast joins the
        actions of the event being processed and the returned list is empty.
        """
        counts: list[int] = []
        actions = self._run(lambda: counts.append(self._multicast_normal(subtype, payload, wait=wait)))
        return counts[0], actions

    def multicast_failed(self, action: Multicast) -> list[Action]:
        """The owner could not multicast ``action``: LEAVE if it had to succeed, else fail its waiter."""
        return self._run(lambda: self._multicast_failed(action))

    def verify_request(self) -> list[Action]:
        """dfsm_verify_request: the hourly timer; only the lowest node in SYNCED sends (1.10)."""
        return self._run(self._verify_request)

    def initialize(self) -> list[Action]:
        """dfsm_initialize before a (re)join: drop msg_queue, abort waiters, mode START.

        Raises:
            DfsmFatal: the machine is in VERSION_ERROR or ERROR and must not rejoin.
        """
        if not self.restartable:
            raise DfsmFatal(self.name, f"mode {self._mode.name} is permanent; restart pmxcfs")
        return self._run(self._initialize)

    def finalize(self) -> list[Action]:
        """dfsm_finalize (corosync went away or shutdown): abort every waiter."""
        return self._run(self._finalize)

    def fail(self, failure: DfsmLeave, context: str) -> list[Action]:
        """The application failed outside a callback: LEAVE (and ERROR first if ``failure`` is fatal)."""
        return self._run(lambda: self._fail(failure, context))

    def set_error_mode(self) -> list[Action]:
        """dfsm_set_errormode: the application hit a serious internal error (mode ERROR, permanent)."""
        return self._run(self._set_error_mode)

    # -- implementations

    def _confchg(self, members: tuple[Member, ...], joined: tuple[Member, ...]) -> None:
        self._we_are_member = False
        self._epoch_counter += 1
        self._sync_epoch = wire.Epoch(
            epoch=self._epoch_counter, time=self._now(), nodeid=self.me.nodeid, pid=self.me.pid
        )
        self._csum_id, self._csum_epoch = self._csum_counter, ZERO_EPOCH
        self._sync_queue = []
        if self._mode.is_error:
            log.debug("[%s] already left group - ignore confchg", self.name)
            return
        self._lowest_nodeid = min((member.nodeid for member in members), default=0)
        self._we_are_member = self.me in members
        log.info("[%s] members: %s", self.name, ", ".join(str(member) for member in members))
        self._release_sync_resources()
        self._sync = SyncInfo(members, self.me)
        if not self._we_are_member:
            if self._mode != Mode.START:
                self._leave(f"we ({self.me}) left the process group", release=False)
            return
        if len(members) > 1:
            self._start_sync(joined)
        else:
            self._sync_alone()
        self._app.on_confchg(members)

    def _start_sync(self, joined: tuple[Member, ...]) -> None:
        """Step 9: resend our queued messages if someone joined, then START_SYNC (+ SYNC_START)."""
        if joined and self._msg_queue:
            log.info("[%s] queue not empty - resending %d messages", self.name, len(self._msg_queue))
            for item in self._msg_queue:
                if item.sender == self.me:
                    self._emit(Multicast(data=item.data, must_succeed=True, count=item.count))
            self._msg_queue.clear()
        self._set_mode(Mode.START_SYNC)
        if self._lowest_nodeid == self.me.nodeid:
            self._multicast_state(wire.MessageType.SYNC_START, b"", must_succeed=True)

    def _sync_alone(self) -> None:
        """Step 10: the only member is synced at once; no SYNC_START, no STATE."""
        assert self._sync is not None
        assert self._sync.local is not None
        self._set_mode(Mode.SYNCED)
        self._sync.local.synced = True
        if not self._deliver_queue():
            self._leave("dfsm_deliver_queue failed", release=False)

    def _multicast_failed(self, action: Multicast) -> None:
        if action.must_succeed:
            self._leave("cpg_send_message failed")
        elif action.count in self._waiting:
            self._waiting.discard(action.count)
            self._emit(LocalResult(count=action.count, result=None, processed=False))

    def _verify_request(self) -> None:
        if not self.is_lowest_nodeid or self._mode != Mode.SYNCED:
            return
        if self._csum_counter != self._csum_id:
            log.info("[%s] delay verify request %016X", self.name, self._csum_counter + 1)
            return
        self._csum_counter += 1
        payload = dcdb.encode_verify_request(dcdb.VerifyRequest(csum_id=self._csum_counter))
        self._multicast_state(wire.MessageType.VERIFY_REQUEST, payload, must_succeed=False)

    def _set_error_mode(self) -> None:
        self._emit(Leave(reason="serious internal error"))
        self._set_mode(Mode.ERROR)

    def _initialize(self) -> None:
        self._msg_queue.clear()
        self._abort_waiters()
        self._we_are_member = False
        self._set_mode(Mode.START)

    def _finalize(self) -> None:
        self._abort_waiters()
        self._we_are_member = False
