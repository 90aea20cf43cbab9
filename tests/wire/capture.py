"""The CPG messages of dfsm-capture.jsonl, with their raw bytes (see ../shared/vectors/README.md)."""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from tests.vectors import VECTORS

CAPTURE = VECTORS / "dfsm-capture.jsonl"
DCDB_GROUP = "pve_dcdb_v1"
KVSTORE_GROUP = "pve_kvstore_v1"


@dataclass(frozen=True)
class Line:
    """One send or recv line: the raw message and the capturer's reading of it."""

    id: int
    dir: str
    group: str
    capture_node: str
    nodeid: int
    pid: int
    phase: str
    decoded: dict[str, Any]
    raw: bytes

    @property
    def type_name(self) -> str:
        return str(self.decoded["type_name"])

    @property
    def payload_kind(self) -> str | None:
        """Which payload reading the capturer made: fuse, unlock, kv, log, index, clog, update, ..."""
        for kind in ("fuse", "unlock", "kv", "log", "index", "clog", "update", "verify_request", "verify"):
            if kind in self.decoded:
                return kind
        return None

    def label(self) -> str:
        sub = self.decoded.get("subtype_name") or self.type_name
        return f"{self.id}-{self.dir}-{self.capture_node}-{sub}"


def _raw(line: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> bytes:
    if "hex" in line:
        return bytes.fromhex(line["hex"])
    if "gzip_b64" in line:
        raw = gzip.decompress(base64.b64decode(line["gzip_b64"]))
        assert hashlib.sha256(raw).hexdigest() == line["sha256"], line["id"]
        return raw
    return _raw(by_id[line["same_bytes_as_send_id"]], by_id)


@functools.cache
def lines() -> tuple[Line, ...]:
    """Every send and recv line, in file order."""
    assert CAPTURE.is_file(), f"missing vector {CAPTURE}"
    parsed = [json.loads(text) for text in CAPTURE.read_text().splitlines() if text.strip()]
    by_id = {line["id"]: line for line in parsed}
    result = []
    for line in parsed:
        if line["dir"] not in ("send", "recv"):
            continue
        raw = _raw(line, by_id)
        assert len(raw) == line["len"], line["id"]
        result.append(
            Line(
                id=line["id"],
                dir=line["dir"],
                group=line["group"],
                capture_node=line["capture_node"],
                nodeid=line["nodeid"],
                pid=line["pid"],
                phase=line["phase"],
                decoded=line["decoded"],
                raw=raw,
            )
        )
    return tuple(result)


def with_payload(kind: str) -> list[Line]:
    """The lines whose payload the capturer read as ``kind``."""
    return [line for line in lines() if line.payload_kind == kind]


def of_type(type_name: str, *, group: str = DCDB_GROUP, direction: str | None = None) -> list[Line]:
    """The lines of one DFSM message type in one group (optionally only sends or recvs)."""
    return [
        line
        for line in lines()
        if line.group == group and line.type_name == type_name and direction in (None, line.dir)
    ]


def first(kind: str) -> Line:
    """The first line with a ``kind`` payload: a real message for the malformed-input tests."""
    return with_payload(kind)[0]


def labels(selected: list[Line]) -> list[str]:
    return [line.label() for line in selected]
