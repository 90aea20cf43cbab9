"""route(): which part of the plugin tree a FUSE path belongs to (reference 3.1)."""

from __future__ import annotations

import pytest

from fusefs.operations import LINK_NAMES, Route, link_targets, route
from tests.expected import PLUGIN_NAMES


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", (Route.ROOT, "")),
        ("", (Route.ROOT, "")),
        ("//", (Route.ROOT, "")),
        ("/.version", (Route.STATUS, ".version")),
        ("/.members", (Route.STATUS, ".members")),
        ("/.vmlist", (Route.STATUS, ".vmlist")),
        ("/.rrd", (Route.STATUS, ".rrd")),
        ("/.clusterlog", (Route.STATUS, ".clusterlog")),
        ("/.debug", (Route.STATUS, ".debug")),
        ("//.debug", (Route.STATUS, ".debug")),
        ("/local", (Route.LINK, "local")),
        ("/qemu-server", (Route.LINK, "qemu-server")),
        ("/openvz", (Route.LINK, "openvz")),
        ("/lxc", (Route.LINK, "lxc")),
        ("/local/x", (Route.NONE, "local/x")),
        ("/lxc/100.conf", (Route.NONE, "lxc/100.conf")),
        ("/.version/x", (Route.NONE, ".version/x")),
        ("/.debug/a/b", (Route.NONE, ".debug/a/b")),
        ("/nodes", (Route.MEMDB, "nodes")),
        ("/nodes/node1/.version", (Route.MEMDB, "nodes/node1/.version")),
        ("/nodes/node1/local", (Route.MEMDB, "nodes/node1/local")),
        ("/.versions", (Route.MEMDB, ".versions")),
        ("/Local", (Route.MEMDB, "Local")),
        ("/priv/lock/x", (Route.MEMDB, "priv/lock/x")),
        ("/corosync.conf", (Route.MEMDB, "corosync.conf")),
    ],
)
def test_route(path: str, expected: tuple[Route, str]) -> None:
    assert route(path) == expected


def test_every_plugin_name_routes_to_a_plugin() -> None:
    for name in PLUGIN_NAMES:
        kind, rel = route("/" + name)
        assert kind in (Route.STATUS, Route.LINK)
        assert rel == name
    assert set(LINK_NAMES) == {"local", "qemu-server", "openvz", "lxc"}


def test_link_targets() -> None:
    assert link_targets("node1") == {
        "local": "nodes/node1",
        "qemu-server": "nodes/node1/qemu-server",
        "openvz": "nodes/node1/openvz",
        "lxc": "nodes/node1/lxc",
    }
