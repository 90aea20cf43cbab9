"""Seeds for the fuzzers: real messages captured from C pmxcfs nodes (../shared/vectors).

Whole CPG messages per group, payloads per kind, IPC requests and responses. Distinct byte
strings only, at most ``PER_KIND`` of each kind, so mutations spread over all layouts.
"""

from __future__ import annotations

import functools
import json

from tests.vectors import VECTORS
from tests.wire import capture
from wire import dfsm

PER_KIND = 8
"""Seeds kept per payload kind (the capture holds up to 134 of one kind)."""
WHOLE_MESSAGE_LIMIT = 20_000
"""Whole messages above this size (kvstore STATE rings, big WRITEs) only as payload seeds."""


def _distinct(items: list[bytes], limit: int = PER_KIND) -> tuple[bytes, ...]:
    seen: dict[bytes, None] = {}
    for item in items:
        seen.setdefault(item, None)
    kept = sorted(seen, key=len)
    if len(kept) <= limit:
        return tuple(kept)
    step = len(kept) / limit
    return tuple(kept[int(i * step)] for i in range(limit))


@functools.cache
def payloads(kind: str) -> tuple[bytes, ...]:
    """Payloads the capturer read as ``kind``: fuse, unlock, index, update, verify_request,
    verify, kv, log, clog."""
    return _distinct([dfsm.decode(line.raw).payload for line in capture.with_payload(kind)])


@functools.cache
def messages(group: str) -> tuple[bytes, ...]:
    """Whole CPG messages of ``group`` (up to WHOLE_MESSAGE_LIMIT bytes), a few of each type."""
    by_type: dict[str, list[bytes]] = {}
    for line in capture.lines():
        if line.group == group and line.dir == "send" and len(line.raw) <= WHOLE_MESSAGE_LIMIT:
            key = f"{line.type_name}/{line.decoded.get('subtype')}"
            by_type.setdefault(key, []).append(line.raw)
    return tuple(raw for key in sorted(by_type) for raw in _distinct(by_type[key], 4))


@functools.cache
def ipc_requests() -> tuple[bytes, ...]:
    """Every captured IPC request, header included."""
    with open(VECTORS / "ipc-capture.jsonl") as lines:
        return _distinct([bytes.fromhex(json.loads(line)["request_hex"]) for line in lines], 100)


@functools.cache
def ipc_responses() -> tuple[bytes, ...]:
    """Every captured IPC response, header included (its padding holds C's garbage)."""
    with open(VECTORS / "ipc-capture.jsonl") as lines:
        return _distinct([bytes.fromhex(json.loads(line)["response_hex"]) for line in lines], 100)
