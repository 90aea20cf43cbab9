"""What corosync's configuration map (cmap) says about the cluster: plain values.

Read by the quorum actor, rendered by the status files (.members), carried in
ClusterConfigChanged.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """One node of the corosync nodelist."""

    nodeid: int
    name: str
    votes: int = 1
    address: str = ""
    """``ring0_addr``; the fallback for the node's IP when its name does not resolve."""


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """What cmap says about the cluster."""

    name: str
    config_version: int
    nodes: tuple[ClusterNode, ...]
    local_nodeid: int = 0
