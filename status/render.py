"""Text of the status files, byte for byte as the original's printf templates (status.c)."""

from __future__ import annotations

from collections.abc import Mapping

from corosync.config import ClusterConfig
from memdb.records import VmListSnapshot
from status.clusterlog import json_text
from status.tracked import TRACKED_FILES


def render_version(
    *,
    starttime: int,
    clinfo: int,
    vmlist: int,
    counters: Mapping[str, int],
    kvstore: Mapping[str, Mapping[str, int]],
) -> str:
    """.version: start time, cluster-info and vmlist versions, tracked counters, kv versions.

    ``kvstore`` maps node name -> key -> version, the local node first.
    """
    lines = [
        "{\n",
        f'"starttime": {starttime},\n',
        f'"clinfo": {clinfo},\n',
        f'"vmlist": {vmlist},\n',
    ]
    lines += [f'"{path}": {counters.get(path, 0)},\n' for path in TRACKED_FILES]
    lines.append('"kvstore": {\n')
    blocks = []
    for node, keys in kvstore.items():
        entries = ",\n".join(f'"{json_text(key)}": {version}' for key, version in keys.items())
        blocks.append(f'"{json_text(node)}": {{\n{entries}}}\n')
    lines.append(",\n".join(blocks))
    lines.append("}\n}\n")
    return "".join(lines)


def render_members(
    *,
    nodename: str,
    clinfo: int,
    config: ClusterConfig | None = None,
    quorate: bool = False,
    online: frozenset[int] = frozenset(),
    ips: Mapping[str, str] | None = None,
) -> str:
    """.members: without a cluster config (local mode) just the node name and version.

    ``ips`` maps node names to the IPs they announced (``nodeip``).
    """
    head = f'{{\n"nodename": "{nodename}",\n"version": {clinfo}'
    if config is None:
        return head + "\n}\n"
    ips = ips or {}
    cluster = (
        f'"cluster": {{ "name": "{config.name}", "version": {config.config_version}, '
        f'"nodes": {len(config.nodes)}, "quorate": {int(quorate)} }}'
    )
    nodes = []
    for node in config.nodes:
        ip = f', "ip": "{json_text(ips[node.name])}"' if node.name in ips else ""
        nodes.append(f'  "{node.name}": {{ "id": {node.nodeid}, "online": {int(node.nodeid in online)}{ip}}}')
    return f'{head},\n{cluster},\n"nodelist": {{\n' + ",\n".join(nodes) + "\n  }\n}\n"


def render_vmlist(snapshot: VmListSnapshot) -> str:
    """.vmlist: every guest with its node, type and per-guest version."""
    if not snapshot.vms:
        return f'{{\n"version": {snapshot.version}\n\n}}\n'
    entries = ",\n".join(
        f'"{vm.vmid}": {{ "node": "{vm.node}", "type": "{vm.vmtype}", "version": {vm.version} }}'
        for vm in snapshot.vms
    )
    return f'{{\n"version": {snapshot.version},\n"ids": {{\n{entries}}}\n\n}}\n'
