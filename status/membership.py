"""The cluster as the status files show it: the corosync nodelist, who is online, quorum.

``clinfo`` is status.c's cluster-info version, shown in .version and .members: it goes up with
each nodelist read, each change of the CPG membership and each node IP that changed.
"""

from __future__ import annotations

from corosync.config import ClusterConfig


class Membership:
    """The nodelist, the online members, quorum and the cluster-info version."""

    def __init__(self) -> None:
        self.config: ClusterConfig | None = None
        """The corosync nodelist; None until it was read once (always, in local mode)."""
        self.online: frozenset[int] = frozenset()
        """Node ids of the CPG members."""
        self.quorate = False
        self.clinfo = 0
        """The cluster-info version."""
        self._names: dict[int, str] = {}
        """nodeid -> name of the corosync nodelist (remote updates are routed by it)."""

    def configure(self, config: ClusterConfig) -> None:
        """The corosync nodelist was read (again)."""
        self.config = config
        self._names = {node.nodeid: node.name for node in config.nodes}
        self.clinfo += 1

    def set_online(self, online: frozenset[int]) -> None:
        """The CPG membership changed."""
        self.online = online
        self.clinfo += 1

    def ip_changed(self) -> None:
        """A node announced an IP other than the one known (.members shows it)."""
        self.clinfo += 1

    def name_of(self, nodeid: int) -> str | None:
        """The name of node ``nodeid`` in the nodelist; None if it is not there."""
        return self._names.get(nodeid)

    def local_address(self, nodename: str) -> str | None:
        """The local node's ring0_addr, when its name did not resolve at startup."""
        if self.config is None:
            return None
        for node in self.config.nodes:
            if node.nodeid == self.config.local_nodeid or node.name == nodename:
                return node.address or None
        return None
