"""QuorumActor: owns the corosync quorum and cmap connections (quorum.c, confdb.c).

It tells its listeners (the fs and status actors) ``QuorumChanged`` and tells the status
actor ``ClusterConfigChanged`` whenever cmap's nodelist is (re)read. Without corosync the
node is not quorate; the services reconnect on their own with the original's rhythm.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from actors.messages import (
    ClusterConfigChanged,
    FdReadable,
    QuorumChanged,
    RingQuorum,
    ServiceStateChanged,
    Tick,
)
from actors.serving import ServingActor
from bindings._types import CS_TRACK_CHANGES
from bindings.libcmap import CMAP_TRACK_ADD, CMAP_TRACK_DELETE, CMAP_TRACK_MODIFY, CmapHandle
from bindings.libquorum import QUORUM_SET, QuorumHandle
from corosync.config import ClusterConfig, ClusterNode
from corosync.poller import FdPoller
from corosync.service import RETRY_SPACING_S, Service
from errors import CsError, CsNotExist

log = logging.getLogger(__name__)


def read_cluster_config(cmap: CmapHandle) -> ClusterConfig:
    """Cluster name (required), config version (0 if unreadable), nodelist, own node id."""
    name = cmap.get_string("totem.cluster_name")
    try:
        version = cmap.get_uint64("totem.config_version")
    except CsError as exc:
        log.debug("totem.config_version: %s", exc)
        version = 0
    try:
        local = cmap.get_uint32("runtime.votequorum.this_node_id")
    except CsNotExist:
        local = 0
    nodes = tuple(ClusterNode(n.nodeid, n.name, n.quorum_votes, n.ring0_addr) for n in cmap.nodelist())
    return ClusterConfig(name=name, config_version=version, nodes=nodes, local_nodeid=local)


class QuorumActor(ServingActor):
    """Follows quorum and the corosync configuration.

    Accepts (told): Tick, FdReadable (from the ticker and poller). Its services' connection
    states are told to the config listeners (ServiceStateChanged).
    """

    def __init__(
        self,
        poller: FdPoller,
        *,
        quorum_listeners: Sequence[pykka.ActorRef[Any]],
        config_listeners: Sequence[pykka.ActorRef[Any]],
        ring_listeners: Sequence[pykka.ActorRef[Any]] = (),
        retry_spacing: float = RETRY_SPACING_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._poller = poller
        self._quorum_listeners = tuple(quorum_listeners)
        self._config_listeners = tuple(config_listeners)
        self._ring_listeners = tuple(ring_listeners)
        self._spacing = retry_spacing
        self._clock = clock
        self._quorate = False
        self._config_dirty = False
        self._quorum = Service(
            "quorum",
            self._connect_quorum,
            on_down=lambda: self._set_quorate(False),
            on_state=self._tell_state,
        )
        self._cmap = Service(
            "cmap", self._connect_cmap, after_dispatch=self._reread_config, on_state=self._tell_state
        )

    def on_start(self) -> None:
        """Connect right away; later retries come with the ticks."""
        self._start_due()

    def on_stop(self) -> None:
        """Close both connections."""
        for service in (self._quorum, self._cmap):
            service.stop(self._poller)

    def receive(self, message: object) -> object:
        """Dispatch one message."""
        match message:
            case FdReadable(fd=fd):
                for service in (self._quorum, self._cmap):
                    if service.connected and service.fd == fd:
                        service.dispatch(self._poller, self.actor_ref)
                return None
            case Tick():
                self._start_due()
                return None
            case _:
                return self.unexpected(message)

    def recover(self, message: object) -> None:
        """A failed dispatch takes its connection down; the tick reconnects it (5 s rhythm)."""
        if isinstance(message, FdReadable):
            for service in (self._quorum, self._cmap):
                if service.connected and service.fd == message.fd:
                    service.stop(self._poller)

    def _tell_state(self, name: str, connected: bool) -> None:
        for listener in self._config_listeners:
            listener.tell(ServiceStateChanged(name=name, connected=connected))

    def _start_due(self) -> None:
        now = self._clock()
        for service in (self._quorum, self._cmap):
            if service.due(now, self._spacing):
                service.start(now, self._poller, self.actor_ref)

    # ----- quorum --------------------------------------------------------------------

    def _connect_quorum(self) -> QuorumHandle:
        handle = QuorumHandle()
        quorum_type = handle.initialize(self._on_quorum)
        try:
            if quorum_type != QUORUM_SET:
                raise CsError(0, "no quorum provider (quorum type is not QUORUM_SET)", "quorum_initialize")
            handle.trackstart(CS_TRACK_CHANGES)  # corosync answers with the current state at once
        except BaseException:
            handle.finalize()
            raise
        return handle

    def _on_quorum(self, quorate: bool, ring_seq: int, nodes: tuple[int, ...]) -> None:
        self._set_quorate(quorate)
        for listener in self._ring_listeners:
            listener.tell(RingQuorum(ring_seq=ring_seq, quorate=quorate))

    def _set_quorate(self, quorate: bool) -> None:
        if quorate == self._quorate:
            return
        self._quorate = quorate
        log.info("node has quorum" if quorate else "node lost quorum")
        for listener in self._quorum_listeners:
            listener.tell(QuorumChanged(quorate=quorate))

    # ----- cmap ----------------------------------------------------------------------

    def _connect_cmap(self) -> CmapHandle:
        handle = CmapHandle()
        handle.initialize()
        try:
            handle.track_add("nodelist.node.", self._on_config_change)
            handle.track_add(
                "totem.config_version",
                self._on_config_change,
                CMAP_TRACK_ADD | CMAP_TRACK_DELETE | CMAP_TRACK_MODIFY,
            )
        except BaseException:
            handle.finalize()
            raise
        self._config_dirty = True
        self._reread_config(handle)
        return handle

    def _on_config_change(self, event: int, key: str) -> None:
        self._config_dirty = True

    def _reread_config(self, handle: CmapHandle | None = None) -> None:
        """Read the configuration if it changed; on failure the last one stays in place."""
        handle = handle or self._cmap.handle
        if not self._config_dirty or handle is None:
            return
        self._config_dirty = False
        try:
            self._publish(read_cluster_config(handle))
        except CsError as exc:
            log.warning("unable to read the corosync configuration: %s", exc)

    def _publish(self, config: ClusterConfig) -> None:
        for listener in self._config_listeners:
            listener.tell(ClusterConfigChanged(config=config))
