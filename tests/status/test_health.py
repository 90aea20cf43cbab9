""".health: the operator's view of why changes are (not) accepted."""

from __future__ import annotations

import json
from dataclasses import replace

from status.health import Health, Refusal


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
    health = health.with_refusal(Refusal(5, "write", "big.cfg", "EFBIG", "file too large"), latched=False)
    health = health.with_refusal(Refusal(6, "create", "x/y", "EIO", "database write failed"), latched=True)
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
