"""State messages: SYNC_START, STATE, UPDATE, UPDATE_COMPLETE, VERIFY_REQUEST, VERIFY.

Reference 1.7 (the per-mode table and its QUIRKs) and 1.10 (verification).
"""

from __future__ import annotations

import logging

from dfsm.actions import Mode
from dfsm.app import DfsmLeave, Member
from dfsm.delivery import DfsmDelivery
from errors import WireFormatError
from wire import dcdb
from wire import dfsm as wire

log = logging.getLogger(__name__)

T = wire.MessageType
_VERIFY_TYPES = (T.VERIFY_REQUEST, T.VERIFY)


def _split_state(data: bytes) -> tuple[wire.Epoch, bytes]:
    """The epoch and payload of a state message of any type (an unknown type is judged as C does)."""
    fields = wire.STATE_HEADER.unpack_from(data)
    epoch = wire.Epoch(epoch=fields[5], time=fields[6], nodeid=fields[7], pid=fields[8])
    return epoch, data[wire.STATE_HEADER.size :]


class DfsmSync(DfsmDelivery):
    """The state-message half of dfsm_cpg_deliver_callback."""

    def _receive_state(self, sender: Member, base: wire.BaseHeader, data: bytes) -> None:
        if len(data) < wire.STATE_HEADER.size:
            self._leave(f"received short state message (type = {base.type}, {len(data)} bytes)")
            return
        epoch, payload = _split_state(data)
        if base.type != T.SYNC_START and epoch != self._sync_epoch:
            log.debug("[%s] ignore message (type %d) with wrong epoch %s", self.name, base.type, epoch)
            return
        if self._mode == Mode.SYNCED:
            self._state_in_synced(sender, base.type, epoch, payload)
            return
        if self._mode == Mode.START_SYNC:
            handled = self._state_in_start_sync(sender, base.type, epoch, payload)
        elif self._mode == Mode.UPDATE:
            handled = self._state_in_update(sender, base.type, payload)
        else:
            self._leave(f"internal error - unknown mode {self._mode}")
            return
        if not handled:
            # QUIRK: C logs "ignore verify message while not synced", then leaves all the same.
            verify = base.type in _VERIFY_TYPES
            what = "verify message while not synced" if verify else "unknown state message type"
            self._leave(f"{what} (type = {base.type}, mode = {self._mode.name})")

    def _state_in_synced(self, sender: Member, msg_type: int, epoch: wire.Epoch, payload: bytes) -> None:
        if msg_type == T.UPDATE_COMPLETE:
            assert self._sync is not None
            self._sync.mark_all_synced()
            if not self._deliver_queue():
                self._leave("dfsm_deliver_queue failed")
        elif msg_type == T.VERIFY_REQUEST:
            self._on_verify_request(sender, epoch, payload)
        elif msg_type == T.VERIFY:
            self._on_verify(epoch, payload)
        else:
            log.debug("[%s] ignore state sync message %d", self.name, msg_type)

    def _state_in_start_sync(self, sender: Member, msg_type: int, epoch: wire.Epoch, payload: bytes) -> bool:
        if msg_type == T.SYNC_START:
            self._on_sync_start(sender, epoch)
        elif msg_type == T.STATE:
            self._on_state(sender, payload)
        else:
            return False
        return True

    def _state_in_update(self, sender: Member, msg_type: int, payload: bytes) -> bool:
        if msg_type == T.UPDATE:
            try:
                self._app.process_update(sender, payload)
            except DfsmLeave as exc:
                self._fail(exc, f"process_update from {sender} failed")
        elif msg_type == T.UPDATE_COMPLETE:
            self._commit()
        else:
            return False
        return True

    def _on_sync_start(self, sender: Member, epoch: wire.Epoch) -> None:
        if sender.nodeid != self._lowest_nodeid:
            # QUIRK: logged as ignored, processed anyway.
            log.warning("[%s] ignore sync request from wrong member %s", self.name, sender)
        log.info("[%s] received sync request (epoch %s)", self.name, epoch)
        self._sync_epoch = epoch
        self._release_sync_resources()
        try:
            state = self._app.get_state()
        except DfsmLeave as exc:
            self._fail(exc, "dfsm_get_state_fn failed")
            return
        if not state:
            self._leave("dfsm_get_state_fn failed: empty state")
            return
        self._multicast_state(T.STATE, state, must_succeed=True)

    def _on_state(self, sender: Member, payload: bytes) -> None:
        assert self._sync is not None
        node = self._sync.lookup(sender)
        if node is None:
            self._leave(f"received state for non-member {sender}")
            return
        if node.state is not None:
            self._leave(f"received duplicate state for member {sender}")
            return
        if payload:  # C: g_memdup2 of 0 bytes is NULL, so an empty STATE never counts as received
            node.state = payload
        if self._sync.all_states_in():
            log.info("[%s] received all states", self.name)
            self._process_states()

    def _process_states(self) -> None:
        """All states are in: the app decides, the leader's UPDATEs go out, then SYNCED or UPDATE."""
        sync = self._sync
        assert sync is not None
        assert sync.local is not None
        self._app_data = True
        try:
            decision = self._app.process_state_update(sync.states(), self.me)
        except DfsmLeave as exc:
            self._fail(exc, "process_state_update failed")
            return
        sync.mark_synced(decision.synced)
        for update in decision.updates:
            self._multicast_state(T.UPDATE, update, must_succeed=False)
        if decision.send_update_complete:
            self._multicast_state(T.UPDATE_COMPLETE, b"", must_succeed=True)
        if sync.local.synced:
            self._set_mode(Mode.SYNCED)
            self._release_sync_resources()
        else:
            self._set_mode(Mode.UPDATE)
        if not self._deliver_queue():
            self._leave("dfsm_deliver_queue failed")

    def _commit(self) -> None:
        """UPDATE_COMPLETE in UPDATE: commit, everyone synced, sync_queue, then msg_queue."""
        assert self._sync is not None
        try:
            self._app.commit()
        except DfsmLeave as exc:
            self._fail(exc, "commit failed")
            return
        self._sync.mark_all_synced()
        self._set_mode(Mode.SYNCED)
        if not self._deliver_sync_queue():
            self._leave("dfsm_deliver_sync_queue failed")
        elif not self._deliver_queue():
            self._leave("dfsm_deliver_queue failed")
        else:
            self._release_sync_resources()

    def _on_verify_request(self, sender: Member, epoch: wire.Epoch, payload: bytes) -> None:
        try:
            request = dcdb.decode_verify_request(payload)
        except WireFormatError:
            self._leave(f"received verify request with wrong length ({len(payload)} bytes) from {sender}")
            return
        if not self._app.verifies:
            return
        try:
            csum = self._app.checksum()
        except DfsmLeave as exc:
            self._fail(exc, "unable to compute data checksum")
            return
        self._csum, self._csum_epoch, self._csum_id = csum, epoch, request.csum_id
        if sender == self.me:
            verify = dcdb.Verify(csum_id=request.csum_id, csum=csum)
            self._multicast_state(T.VERIFY, dcdb.encode_verify(verify), must_succeed=True)

    def _on_verify(self, epoch: wire.Epoch, payload: bytes) -> None:
        if not self._app.verifies:
            return
        try:
            verify = dcdb.decode_verify(payload)
        except WireFormatError:
            self._leave(f"received verify message with wrong length ({len(payload)} bytes)")
            return
        if verify.csum_id != self._csum_id or epoch != self._csum_epoch:
            log.info("[%s] skip verification - no checksum saved", self.name)
        elif verify.csum != self._csum:
            self._leave(f"wrong checksum {verify.csum[:8].hex()} != {self._csum[:8].hex()} - restarting")
        else:
            log.info("[%s] data verification successful", self.name)
