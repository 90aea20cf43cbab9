"""The DCDB application of the DFSM (dcdb.c), run inside the cluster actor.

Its callbacks ask the fs actor, which owns the tree: the index for STATE, the UPDATE records
the leader sends, the atomic commit on an out-of-date node, the verify checksum. Delivered
messages are told (the fs actor applies them in order; asks made later queue behind them),
this node's own with the PendingChange its writer waits on. The fs actor never asks the cluster
actor back.

As dcdb.c does, the host's corosync.conf follows the tree's copy after every delivered change
of it and after every sync commit (daemon/corosync_conf.py; local.md 5.4): the tree's copy is
asked for after the change, so a writer of corosync.conf is answered after the host file was
written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pykka

from actors.messages import (
    ApplyDelivered,
    BuildUpdates,
    CheckUnlock,
    CommitSync,
    DcdbSynced,
    GetChecksum,
    GetIndex,
    ReadConfig,
    Request,
    ask,
)
from corosync.writers import Writers
from daemon.corosync_conf import TREE_PATH, HostCorosyncConf, changes_conf
from dcdb.apply import Delivered
from dcdb.sync import choose_leader, parse_states, synced_members, update_inodes
from dfsm import DfsmFatal, DfsmLeave, Member, MemberState, StateDecision
from errors import ErrorLatched, WireFormatError
from replication.pending import PendingChange
from wire.dcdb import (
    DcdbMessageType,
    FuseMessage,
    UnlockMessage,
    UpdateRecord,
    decode_payload,
    decode_update,
    encode_update,
)

log = logging.getLogger(__name__)

FS_TIMEOUT_S = 60.0
"""How long a callback waits for the fs actor (a commit of a large tree takes a while)."""


if TYPE_CHECKING:
    from corosync.group import DfsmGroup


class DcdbApp:
    """DfsmApp for the config tree, on the dcdb ``group``; ``writers`` wait for this node's changes."""

    def __init__(
        self,
        fs: pykka.ActorRef[Any],
        group: DfsmGroup,
        writers: Writers[PendingChange],
        host_conf: HostCorosyncConf | None = None,
    ) -> None:
        self._fs = fs
        self._group = group
        self._writers = writers
        self._host_conf = host_conf
        self._master: bytes | None = None
        self._updates: list[UpdateRecord] = []

    @property
    def verifies(self) -> bool:
        """DCDB takes part in VERIFY (hourly checksum comparison)."""
        return True

    def _ask(self, message: Request[Any]) -> Any:
        try:
            return ask(self._fs, message, timeout=FS_TIMEOUT_S)
        except ErrorLatched as exc:
            raise DfsmFatal(type(message).__name__, str(exc)) from exc
        except (pykka.Timeout, pykka.ActorDeadError) as exc:
            raise DfsmLeave(type(message).__name__, f"fs actor did not answer: {exc}") from exc

    def get_state(self) -> bytes:
        """STATE: this node's memdb index."""
        index: bytes = self._ask(GetIndex())
        return index

    def process_state_update(self, states: Sequence[MemberState], me: Member) -> StateDecision:
        """Pick the leader; the leader answers with the UPDATEs the others need (2.7, 2.8)."""
        try:
            members = parse_states((s.member.nodeid, s.member.pid, s.state) for s in states)
        except WireFormatError as exc:
            raise DfsmLeave("STATE", str(exc)) from exc
        leader = choose_leader(members)
        synced = frozenset(Member(nodeid, pid) for nodeid, pid in synced_members(members, leader))
        log.info("leader is %d/%d; synced members: %s", leader.nodeid, leader.pid, sorted(synced))
        self._master = leader.raw
        if Member(leader.nodeid, leader.pid) != me:
            return StateDecision(synced=synced)
        inodes = update_inodes(leader.index, [m.index for m in members if m is not leader])
        records: tuple[UpdateRecord, ...] = self._ask(BuildUpdates(inodes=tuple(inodes)))
        return StateDecision(
            synced=synced, updates=tuple(encode_update(r) for r in records), send_update_complete=True
        )

    def process_update(self, sender: Member, payload: bytes) -> None:
        """Collect one UPDATE record from the leader."""
        try:
            self._updates.append(decode_update(payload))
        except WireFormatError as exc:
            raise DfsmLeave("UPDATE", str(exc)) from exc

    def commit(self) -> None:
        """UPDATE_COMPLETE on an out-of-date node: take the leader's tree atomically."""
        if self._master is None:
            raise DfsmLeave("UPDATE_COMPLETE", "no leader index to commit to")
        self._ask(CommitSync(master_index=self._master, records=tuple(self._updates)))
        self._sync_host_conf(notify=False)

    def cleanup(self) -> None:
        """Forget the sync round."""
        self._master = None
        self._updates = []

    def checksum(self) -> bytes:
        """VERIFY: the full tree checksum."""
        csum: bytes = self._ask(GetChecksum())
        return csum

    def on_synced(self) -> None:
        """The tree is in step with the group's: the fs actor applies deliveries again."""
        log.info("dcdb synced")
        self._fs.tell(DcdbSynced())

    def on_confchg(self, members: Sequence[Member]) -> None:
        """DCDB has no confchg callback of its own."""

    def deliver(self, sender: Member, subtype: int, payload: bytes, time: int, count: int) -> int:
        """Hand one message in total order to the fs actor (told: this thread goes on at once).

        The fs actor applies it and reports the tree's result of this node's own message to the
        PendingChange its writer waits on; a node that can't apply it leaves through DcdbApplyFailed.
        """
        try:
            message = decode_payload(subtype, payload)
        except WireFormatError as exc:
            raise DfsmLeave("NORMAL", str(exc)) from exc
        if subtype == DcdbMessageType.UNLOCK_REQUEST:
            assert isinstance(message, UnlockMessage)
            self._answer_unlock_request(message, payload)
            return 0
        local = sender == self._group.me
        delivered = Delivered(subtype=subtype, message=message, sender=sender.nodeid, time=time, local=local)
        pending = self._writers.waiting(count) if local else None
        self._fs.tell(ApplyDelivered(delivered=delivered, pending=pending))
        if isinstance(message, FuseMessage) and changes_conf(subtype, message.path, message.to):
            self._sync_host_conf(notify=local)
        return 0

    def _sync_host_conf(self, *, notify: bool) -> None:
        """Write the tree's corosync.conf to the host if it is newer (never raises for the file)."""
        if self._host_conf is not None:
            self._host_conf.sync(self._ask(ReadConfig(path=TREE_PATH)), notify=notify)

    def _answer_unlock_request(self, message: UnlockMessage, payload: bytes) -> None:
        """Only the lowest node checks the lock's age and, if expired, multicasts UNLOCK."""
        if not self._group.is_lowest:
            return
        if self._ask(CheckUnlock(message=message)):
            log.info("lock %s expired - sending unlock", message.path)
            self._group.send(DcdbMessageType.UNLOCK, payload)
