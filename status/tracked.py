"""The files whose change counters appear in .version (status.c memdb_change_array)."""

from __future__ import annotations

from collections.abc import Iterable

TRACKED_FILES: tuple[str, ...] = (
    "corosync.conf",
    "corosync.conf.new",
    "storage.cfg",
    "user.cfg",
    "domains.cfg",
    "notifications.cfg",
    "priv/notifications.cfg",
    "priv/shadow.cfg",
    "priv/acme/plugins.cfg",
    "priv/tfa.cfg",
    "priv/token.cfg",
    "priv/wg-keys.cfg",
    "datacenter.cfg",
    "vzdump.cron",
    "vzdump.conf",
    "jobs.cfg",
    "ha/crm_commands",
    "ha/manager_status",
    "ha/resources.cfg",
    "ha/rules.cfg",
    "ha/groups.cfg",
    "ha/fence.cfg",
    "status.cfg",
    "replication.cfg",
    "ceph.conf",
    "sdn/vnets.cfg",
    "sdn/zones.cfg",
    "sdn/controllers.cfg",
    "sdn/subnets.cfg",
    "sdn/ipams.cfg",
    "sdn/mac-cache.json",
    "sdn/pve-ipam-state.json",
    "sdn/dns.cfg",
    "sdn/fabrics.cfg",
    "sdn/route-maps.cfg",
    "sdn/prefix-lists.cfg",
    "sdn/.running-config",
    "virtual-guest/cpu-models.conf",
    "virtual-guest/profiles.cfg",
    "firewall/cluster.fw",
    "mapping/directory.cfg",
    "mapping/pci.cfg",
    "mapping/usb.cfg",
)
"""In .version order. A counter matches its path string exactly (no leading slash)."""

TRACKED_PATHS: frozenset[str] = frozenset(TRACKED_FILES)
"""For membership tests on the change path."""


class ChangeCounters:
    """The tracked files' change counters as the status actor counts them (.version).

    A change counts the tracked paths it touched, exactly as named (no leading slash); a reload
    of the whole tree counts every tracked file once.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(TRACKED_FILES, 0)
        """Path -> changes counted, in .version order."""

    def changed(self, paths: Iterable[str]) -> None:
        """A change touched ``paths``: count those that are tracked."""
        for path in paths:
            if path in self.counts:
                self.counts[path] += 1

    def reloaded(self) -> None:
        """The tree was loaded anew: count every tracked file."""
        for path in self.counts:
            self.counts[path] += 1
