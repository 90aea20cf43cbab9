""".health: the operator's view of why changes are (not) accepted."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from status.health import Health, Refusal, shown_path


def parsed(health: Health) -> dict[str, object]:
    text = health.render()
    assert text.endswith("}\n")
    return dict(json.loads(text))


def test_starting() -> None:
    body = parsed(Health("n1"))
    assert body["mode"] == "starting"
    assert body["writable"] is False
    assert "corosync" not in body


def test_local_mode_is_writable() -> None:
    body = parsed(Health("n1", mode="local", quorate=True))
    assert body == {
        "nodename": "n1",
        "mode": "local",
        "quorate": True,
        "writable": True,
        "not_writable_because": None,
        "database": {"error_latched": False},
        "refused_changes": 0,
        "last_refusal": None,
    }


def test_cluster_mode_states() -> None:
    health = Health("n1", mode="cluster")
    body = parsed(health)
    assert body["writable"] is False
    assert "quorum" in str(body["not_writable_because"])
    assert body["corosync"] == {"quorum": False, "cmap": False, "kvstore": False, "dcdb": False}
    assert body["sync"] == {"dcdb": "down", "kvstore": "down"}
    health = health.with_service("quorum", True).with_service("dcdb", True).with_sync("dcdb", "synced")
    health = health.with_sync("kvstore", "start_sync")
    health = replace(health, quorate=True, online=(1, 2))
    body = parsed(health)
    assert body["writable"] is True
    assert body["sync"] == {"dcdb": "synced", "kvstore": "start_sync"}
    assert body["online"] == [1, 2]
    body = parsed(health.with_service("dcdb", False))
    assert body["writable"] is False
    assert "pve_dcdb_v1" in str(body["not_writable_because"])
    assert body["sync"] == {"dcdb": "down", "kvstore": "start_sync"}


def test_refusals_and_the_latch() -> None:
    health = Health("n1", mode="local", quorate=True)
    health = health.with_refusal(
        Refusal(5, "write", "big.cfg", "EFBIG", "file too large", "big.cfg"), latched=False
    )
    health = health.with_refusal(
        Refusal(6, "create", "x/y", "EIO", "database write failed", "x/y"), latched=True
    )
    body = parsed(health)
    assert body["refused_changes"] == 2
    assert body["last_refusal"] == {
        "time": 6,
        "op": "create",
        "path": "x/y",
        "error": "EIO",
        "reason": "database write failed",
    }
    assert body["database"] == {"error_latched": True}
    assert body["writable"] is False
    assert "restart" in str(body["not_writable_because"])


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("priv/authkey.key", "priv/…"),
        ("priv/lock/vm-100", "priv/…"),
        ("priv", "priv"),  # listed at the root: nothing to hide
        ("/priv//token.cfg", "priv/…"),
        ("nodes/n1/priv/pve-ssl.key", "nodes/n1/priv/…"),
        ("nodes/n1//priv/x/y", "nodes/n1/priv/…"),
        ("nodes/n1/priv", "nodes/n1/priv"),
        ("nodes/priv/x", "nodes/priv/x"),  # not a node's private folder
        ("privacy.cfg", "privacy.cfg"),
        ("nodes/n1/qemu-server/100.conf", "nodes/n1/qemu-server/100.conf"),
        ("a/priv/x", "a/priv/x"),
    ],
)
def test_private_paths_are_shown_up_to_their_private_folder(path: str, shown: str) -> None:
    assert shown_path(path) == shown


def test_the_file_hides_a_private_refusal_and_the_full_report_does_not() -> None:
    health = Health("n1", mode="local", quorate=True)
    health = health.with_refusal(
        Refusal(5, "create", "priv/secret-name", "EEXIST", "file exists", shown_path("priv/secret-name")),
        latched=False,
    )
    assert "secret-name" not in health.render()
    assert json.loads(health.render())["last_refusal"]["path"] == "priv/…"
    assert json.loads(health.render(full=True))["last_refusal"]["path"] == "priv/secret-name"
    shown, full = json.loads(health.render()), json.loads(health.render(full=True))
    del shown["last_refusal"]["path"], full["last_refusal"]["path"]
    assert shown == full
