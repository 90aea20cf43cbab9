"""The DFSM's state and the primitives every handler uses: modes, leaving, sending, results."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dfsm.actions import Action, Leave, LocalResult, Mode, ModeChanged, Multicast
from dfsm.app import DfsmApp, DfsmFatal, DfsmLeave, Member
from dfsm.members import MessageQueue, Queued, SyncInfo
from wire import dfsm as wire

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

ZERO_EPOCH = wire.Epoch(epoch=0, time=0, nodeid=0, pid=0)
"""The all-zero sync epoch: the initial sync_epoch, and csum_epoch after a confchg."""
TIME_MASK = 0xFFFFFFFF
"""Header times are time(NULL) truncated to 32 bits."""
CSUM_SIZE = 32

_MODE_LOG = {
    Mode.START: "start cluster connection",
    Mode.START_SYNC: "starting data syncronisation",
    Mode.SYNCED: "all data is up to date",
    Mode.UPDATE: "waiting for updates from leader",
    Mode.LEAVE: "leaving CPG group",
    Mode.ERROR: "serious internal error - stop cluster connection",
    Mode.VERSION_ERROR: "detected newer protocol - please update this node",
}


class DfsmCore:
    """The fields of ``struct dfsm`` and the helpers shared by the receive and sync paths."""

    def __init__(
        self,
        app: DfsmApp,
        *,
        protocol_version: int,
        nodeid: int,
        pid: int,
        clock: Callable[[], int],
        name: str = "dfsm",
    ) -> None:
        self._app = app
        self.protocol_version = protocol_version
        """Ours: DCDB 1, kvstore 0. A newer peer means VERSION_ERROR, an older one is ignored."""
        self.me = Member(nodeid=nodeid, pid=pid)
        """Our CPG identity (cpg_local_get, getpid)."""
        self.name = name
        """The log domain (group name)."""
        self._clock = clock
        self._mode = Mode.START
        self._sync: SyncInfo | None = None
        self._app_data = False  # C: sync_info->data, set once process_state_update has run
        self._lowest_nodeid = 0
        self._we_are_member = False
        self._epoch_counter = 0
        self._sync_epoch = ZERO_EPOCH
        self._msg_queue = MessageQueue()
        self._sync_queue: list[Queued] = []
        self._msgcount = 0
        self._waiting: set[int] = set()
        self._csum = bytes(CSUM_SIZE)
        self._csum_epoch = ZERO_EPOCH
        self._csum_id = 0
        self._csum_counter = 0
        self._out: list[Action] = []
        self._depth = 0

    # -- batching: every public entry point returns the actions of its event, nested calls included

    def _run(self, step: Callable[[], None]) -> list[Action]:
        """Run ``step``; at the outermost level return (and forget) the actions it gathered.

        An application callback that raises anything but DfsmLeave/DfsmFatal is a bug: the
        exception propagates to the owner, and the actions gathered so far come out with the next
        event.
        """
        self._depth += 1
        try:
            step()
        finally:
            self._depth -= 1
        if self._depth:
            return []
        out, self._out = self._out, []
        return out

    def _emit(self, action: Action) -> None:
        self._out.append(action)

    def _now(self) -> int:
        return self._clock() & TIME_MASK

    # -- modes and leaving

    def _set_mode(self, new: Mode) -> None:
        """dfsm_set_mode: below 128 always; an error mode only replaces a normal or a lower error mode."""
        old = self._mode
        if new == old or (new.is_error and old.is_error and new < old):
            return
        self._mode = new
        self._emit(ModeChanged(old=old, new=new))
        level = logging.WARNING if new.is_error else logging.INFO
        log.log(level, "[%s] %s: %s", self.name, self.me, _MODE_LOG[new])
        if new == Mode.SYNCED:
            self._app.on_synced()

    def _leave(self, reason: str, *, release: bool = True) -> None:
        """The ``leave:`` label: mode LEAVE, then (on the receive path) free the sync resources."""
        log.warning("[%s] %s: %s", self.name, self.me, reason)
        self._emit(Leave(reason=reason))
        self._set_mode(Mode.LEAVE)
        if release:
            self._release_sync_resources()

    def _fail(self, exc: DfsmLeave, context: str, *, release: bool = True) -> None:
        """A callback refused: ERROR first if it was fatal, then the leave path."""
        if isinstance(exc, DfsmFatal):
            self._set_mode(Mode.ERROR)
        self._leave(f"{context}: {exc}", release=release)

    def _release_sync_resources(self) -> None:
        """dfsm_release_sync_resources without a member list: app cleanup, then drop the states."""
        if self._sync is None:
            return
        if self._app_data:
            self._app_data = False
            self._app.cleanup()
        self._sync.clear_states()

    # -- sending

    def _multicast_state(self, msg_type: wire.MessageType, payload: bytes, *, must_succeed: bool) -> None:
        """dfsm_send_state_message_full: a state message under our current sync epoch."""
        msg = wire.StateMessage(
            type=msg_type,
            protocol_version=self.protocol_version,
            time=self._now(),
            epoch=self._sync_epoch,
            payload=payload,
        )
        self._emit(Multicast(data=wire.encode(msg), must_succeed=must_succeed))

    def _multicast_normal(self, subtype: int, payload: bytes, *, wait: bool) -> int:
        """dfsm_send_message_sync: the next count, a result record if wanted, the multicast."""
        self._msgcount += 1
        count = self._msgcount
        if wait:
            self._waiting.add(count)
        msg = wire.NormalMessage(
            subtype=subtype,
            protocol_version=self.protocol_version,
            time=self._now(),
            count=count,
            payload=payload,
        )
        self._emit(Multicast(data=wire.encode(msg), must_succeed=False, count=count))
        return count

    # -- local results (reference 1.9)

    def _record_local_result(self, count: int, result: int) -> None:
        """dfsm_record_local_result: fill this count's record; msgcount_rcvd = count wakes lower ones too."""
        if count in self._waiting:
            self._waiting.discard(count)
            self._emit(LocalResult(count=count, result=result, processed=True))
        self._abort_waiters(below=count)

    def _abort_waiters(self, *, below: int | None = None) -> None:
        """Wake waiters unprocessed: all of them, or those whose count is below ``below``."""
        for count in sorted(self._waiting):
            if below is None or count < below:
                self._waiting.discard(count)
                self._emit(LocalResult(count=count, result=None, processed=False))
