"""Values the tests take from the reference itself, kept apart from the code under test."""

from __future__ import annotations

PLUGIN_NAMES = (
    ".version",
    ".members",
    ".vmlist",
    ".rrd",
    ".clusterlog",
    ".debug",
    "local",
    "qemu-server",
    "openvz",
    "lxc",
)
"""The root's plugin names (reference 3.1): six status files, then four links."""
STATUS_NAMES = PLUGIN_NAMES[:6]
LINK_NAMES = PLUGIN_NAMES[6:]
