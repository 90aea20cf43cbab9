"""The receive path: the checks every message passes, NORMAL messages and the two queues.

Reference 1.3 (check order, protocol version) and 1.7 (NORMAL messages, queue delivery).
"""

from __future__ import annotations

import logging

from dfsm.actions import Leave, Mode
from dfsm.app import DfsmLeave, Member
from dfsm.core import DfsmCore
from dfsm.members import Queued
from errors import WireFormatError
from wire import dfsm as wire

log = logging.getLogger(__name__)


class DfsmDelivery(DfsmCore):
    """dfsm_cpg_deliver_callback up to the state messages, plus dfsm_deliver_queue/sync_queue."""

    def _receive_state(self, sender: Member, base: wire.BaseHeader, data: bytes) -> None:
        raise NotImplementedError  # dfsm.sync.DfsmSync

    def _receive_guarded(self, sender: Member, data: bytes) -> None:
        """``_receive``, with a malformed message turned into LEAVE instead of an exception."""
        try:
            self._receive(sender, data)
        except WireFormatError as exc:
            self._leave(f"malformed message from {sender}: {exc}")

    def _receive(self, sender: Member, data: bytes) -> None:
        """One delivered message, checked in the original's order (reference 1.3)."""
        if self._mode.is_error:
            log.debug("[%s] error mode - ignoring message", self.name)
            return
        if self._sync is None:
            self._leave("no dfsm_sync_info - internal error")
            return
        if len(data) < wire.BASE_HEADER.size:
            self._leave(f"received short message ({len(data)} bytes)")
            return
        base = wire.decode_base_header(data)
        if base.protocol_version > self.protocol_version:
            reason = f"received message with protocol version {base.protocol_version}"
            log.error("[%s] %s: %s", self.name, self.me, reason)
            self._emit_version_error(reason)
            return
        if base.protocol_version < self.protocol_version:
            log.info("[%s] ignore message with wrong protocol version %d", self.name, base.protocol_version)
            return
        if base.type == wire.MessageType.NORMAL:
            self._receive_normal(sender, data)
        else:
            self._receive_state(sender, base, data)

    def _emit_version_error(self, reason: str) -> None:
        self._emit(Leave(reason=reason))
        self._set_mode(Mode.VERSION_ERROR)

    def _receive_normal(self, sender: Member, data: bytes) -> None:
        if len(data) < wire.NORMAL_HEADER.size:
            self._leave(f"received short message (type = 0, {len(data)} bytes)")
            return
        msg = wire.decode(data)
        assert isinstance(msg, wire.NormalMessage)
        if self._mode != Mode.SYNCED:
            self._queue_message(sender, msg.count, data)
            return
        self._deliver_normal(sender, msg)

    def _deliver_normal(self, sender: Member, msg: wire.NormalMessage) -> None:
        """SYNCED: the application applies it; our own message's result goes to its waiter."""
        failure: DfsmLeave | None = None
        try:
            result = self._app.deliver(sender, msg.subtype, msg.payload, msg.time, msg.count)
        except DfsmLeave as exc:
            failure, result = exc, exc.result
        if sender == self.me:
            self._record_local_result(msg.count, result)
        if failure is not None:
            self._fail(failure, f"deliver of message {msg.count} from {sender} failed")

    def _queue_message(self, sender: Member, count: int, data: bytes) -> None:
        """dfsm_queue_add_message: UPDATE + synced sender → sync_queue, else the sorted msg_queue."""
        assert self._sync is not None
        node = self._sync.lookup(sender)
        if node is None:
            self._leave(f"dfsm_node_info_lookup failed: queued message from non-member {sender}")
            return
        item = Queued(sender=sender, count=count, data=data)
        if self._mode == Mode.UPDATE and node.synced:
            self._sync_queue.append(item)
        else:
            self._msg_queue.insert(item)

    def _deliver_queue(self) -> bool:
        """dfsm_deliver_queue: False means LEAVE (the pass ran in a mode other than SYNCED/UPDATE)."""
        assert self._sync is not None
        items = list(self._msg_queue)
        keep: list[Queued] = []
        for index, item in enumerate(items):
            node = self._sync.lookup(item.sender)
            if node is None:
                log.info("[%s] remove message from non-member %s", self.name, item.sender)
            elif self._mode == Mode.SYNCED:
                if node.synced:
                    self._receive_guarded(item.sender, item.data)
                else:
                    keep.append(item)
            elif self._mode == Mode.UPDATE:
                (self._sync_queue if node.synced else keep).append(item)
            else:
                self._msg_queue.replace(keep + items[index:])
                return False
        self._msg_queue.replace(keep)
        return True

    def _deliver_sync_queue(self) -> bool:
        """dfsm_deliver_sync_queue: in arrival order while SYNCED; the queue is emptied either way."""
        items, self._sync_queue = self._sync_queue, []
        ok = True
        for item in items:
            if ok and self._mode == Mode.SYNCED:
                self._receive_guarded(item.sender, item.data)
            else:
                ok = False
        return ok
