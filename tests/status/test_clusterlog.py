"""The cluster log: JSON dump against the C vector, escaping (6.4) and dedup (6.3)."""

from __future__ import annotations

import json
import re

import pytest

from status.clusterlog import ENTRY_HEADER_SIZE, ClusterLog, aligned_size, new_entry, to_ascii
from tests.vectors import VECTORS
from wire.kvstore import ClogEntry

VECTOR = VECTORS / "node1-clusterlog.json"

_LINE = re.compile(
    r'\{"uid": (\d+), "time": (\d+), "pri": (\d+), "tag": "([^"]*)", "pid": (\d+), '
    r'"node": "([^"]*)", "user": "([^"]*)", "msg": "((?:[^"\\]|\\.)*)"\}'
)


def log_entry(uid: int, time: int, pri: int, tag: str, pid: int, node: str, user: str, msg: str) -> ClogEntry:
    return new_entry(uid=uid, time=time, priority=pri, tag=tag, pid=pid, node=node, ident=user, msg=msg)


def vector_entries() -> list[ClogEntry]:
    """The vector's entries newest first, with msg kept as the already escaped text."""
    entries = []
    for line in VECTOR.read_text().splitlines():
        m = _LINE.fullmatch(line.rstrip(","))
        if m is None:
            continue
        uid, time_, pri, tag, pid, node, user, msg = m.groups()
        entries.append(log_entry(int(uid), int(time_), int(pri), tag, int(pid), node, user, msg))
    return entries


def entry(node: str = "n1", time: int = 100, uid: int = 1, msg: str = "m", ident: str = "root") -> ClogEntry:
    return new_entry(uid=uid, time=time, priority=6, tag="t", pid=1, node=node, ident=ident, msg=msg)


def test_dump_json_reproduces_the_vector() -> None:
    entries = vector_entries()
    assert len(entries) == 12
    log = ClusterLog()
    for e in reversed(entries):  # oldest first
        assert log.insert(e)
    assert log.dump_json() == VECTOR.read_text()


def test_vector_msg_is_already_escaped() -> None:
    quoted = [e.msg for e in vector_entries() if "quoted" in e.msg]
    assert quoted
    assert quoted[0] == to_ascii('hello from node2 "quoted" ä tab\there'.encode(), quote=True)


def test_dump_json_empty() -> None:
    assert ClusterLog().dump_json() == '{\n"data": [\n]\n}\n'


def test_dump_json_limit_and_user_filter() -> None:
    log = ClusterLog()
    for e in reversed(vector_entries()):
        log.insert(e)
    three = json.loads(log.dump_json(limit=3))["data"]
    assert [(d["uid"], d["node"], d["time"]) for d in three] == [
        (1, "node1", 1795608717),
        (4, "node3", 1795608607),
        (3, "node3", 1795608607),
    ]
    # filtered entries don't count towards the limit
    root_pam = json.loads(log.dump_json(limit=3, user="root@pam"))["data"]
    assert [(d["uid"], d["node"]) for d in root_pam] == [(3, "node3"), (2, "node3"), (4, "node2")]
    assert all(d["user"] == "root@pam" for d in root_pam)


def test_dump_json_default_limit_is_50() -> None:
    log = ClusterLog()
    for i in range(60):
        log.insert(entry(time=1000 + i, uid=i + 1, msg=f"m{i}"))
    data = json.loads(log.dump_json())["data"]
    assert len(data) == 50
    assert data[0]["msg"] == "m59"
    assert data[-1]["msg"] == "m10"


def test_dump_json_line_layout() -> None:
    log = ClusterLog()
    log.insert(log_entry(7, 1700000000, 3, "pvedaemon", 1234, "n1", "root@pam", "x"))
    log.insert(log_entry(8, 1700000001, 6, "cluster", 99, "n1", "root", "y"))
    assert log.dump_json() == (
        '{\n"data": [\n'
        '{"uid": 8, "time": 1700000001, "pri": 6, "tag": "cluster", "pid": 99, "node": "n1", '
        '"user": "root", "msg": "y"},\n'
        '{"uid": 7, "time": 1700000000, "pri": 3, "tag": "pvedaemon", "pid": 1234, "node": "n1", '
        '"user": "root@pam", "msg": "x"}\n'
        "]\n}\n"
    )


# ----- to_ascii (reference 6.4) -------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "quote", "expected"),
    [
        (b"plain text 123 ~", True, "plain text 123 ~"),
        (b'say "hi"', True, 'say \\"hi\\"'),
        (b'say "hi"', False, 'say "hi"'),
        (b"a\nb", True, "a#010b"),
        (b"a\tb", True, "a#009b"),
        (b"\x00", True, "#000"),
        (b"\x1f", False, "#031"),
        (b"\x7f", True, "#127"),
        ("ä".encode(), True, "\\u00e4"),
        ("ä".encode(), False, "\\u00e4"),
        ("\u0080".encode(), True, "\\u0080"),
        ("€".encode(), True, "\\u20ac"),
        ("\uffff".encode(), True, "\\uffff"),
        ("a😀b".encode(), True, "ab"),
        ("\U00010000".encode(), True, ""),
        (b"a\xffb", True, "a?b"),
        (b"\xff\n", True, "?#010"),
        (b'\xc3"', True, '?\\"'),
        (b'\xfe"', False, '?"'),
        # our deliberate deviation: backslash escaped in quote mode (valid JSON) ...
        (b"C:\\dir", True, "C:\\\\dir"),
        # ... but not in syslog mode
        (b"C:\\dir", False, "C:\\dir"),
        (b"", True, ""),
    ],
)
def test_to_ascii(raw: bytes, quote: bool, expected: str) -> None:
    assert to_ascii(raw, quote=quote) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # C (cfs-utils.c utf8_to_ascii) validates the whole string first; an invalid string is
        # then converted byte by byte, so even its valid multi-byte characters become '?'
        ("ä".encode() + b"\xff", "???"),
        (b"\x7f\xff", "??"),
        ("😀".encode() + b"\xff", "?????"),
    ],
)
def test_to_ascii_invalid_string_is_converted_byte_by_byte(raw: bytes, expected: str) -> None:
    assert to_ascii(raw, quote=True) == expected


def test_escaped_message_keeps_the_dump_valid_json() -> None:
    log = ClusterLog()
    raw = 'a "q" \\ b\n\tä😀'.encode() + b""
    log.insert(entry(msg=to_ascii(raw, quote=True)))
    (parsed,) = json.loads(log.dump_json())["data"]
    assert parsed["msg"] == 'a "q" \\ b#010#009ä'


def test_node_tag_and_user_stay_valid_json_in_the_dump() -> None:
    log = ClusterLog()
    log.insert(log_entry(1, 1, 6, 'ta"g', 1, "no\\de", 'us"er', "m"))
    (parsed,) = json.loads(log.dump_json())["data"]
    assert (parsed["tag"], parsed["node"], parsed["user"]) == ('ta"g', "no\\de", 'us"er')


# ----- dedup (reference 6.3) ---------------------------------------------------


def test_dedup_per_node_time_then_uid() -> None:
    log = ClusterLog()
    assert log.insert(entry(time=100, uid=5))
    assert not log.insert(entry(time=100, uid=5))  # equal: dropped
    assert not log.insert(entry(time=100, uid=4))  # same second, older uid: dropped
    assert not log.insert(entry(time=99, uid=9))  # older time: dropped whatever the uid
    assert log.insert(entry(time=100, uid=6))  # same second, newer uid
    assert log.insert(entry(time=101, uid=1))  # newer time, uid may go down (restart)
    assert not log.insert(entry(time=101, uid=1))
    data = json.loads(log.dump_json())["data"]
    assert [(d["time"], d["uid"]) for d in data] == [(101, 1), (100, 6), (100, 5)]


def test_dedup_is_per_node() -> None:
    log = ClusterLog()
    assert log.insert(entry(node="n1", time=200, uid=3))
    assert log.insert(entry(node="n2", time=100, uid=1))  # another node: older is fine
    assert log.insert(entry(node="n3", time=200, uid=3))
    assert not log.insert(entry(node="n2", time=100, uid=1))
    assert len(json.loads(log.dump_json())["data"]) == 3


def test_restarted_node_loses_entries_in_the_same_second() -> None:
    log = ClusterLog()
    assert log.insert(entry(time=500, uid=7))
    assert not log.insert(entry(time=500, uid=1))  # restart: uid starts at 1 again
    assert log.insert(entry(time=501, uid=2))


def test_backwards_clock_drops_local_entries_until_it_catches_up() -> None:
    log = ClusterLog()
    assert log.insert(entry(time=1000, uid=1))
    assert not log.insert(entry(time=990, uid=2))
    assert not log.insert(entry(time=999, uid=3))
    assert log.insert(entry(time=1000, uid=4))


def test_the_log_is_bounded_and_keeps_the_newest() -> None:
    log = ClusterLog()
    msg = "x" * 200
    size = aligned_size(entry(msg=msg))
    assert size == (ENTRY_HEADER_SIZE + len("n1") + len("root") + len("t") + len(msg) + 4 + 7) // 8 * 8
    n = 2000  # about 500 KiB of entries: far more than the 128 KiB ring
    for i in range(n):
        log.insert(entry(time=i + 1, uid=i + 1, msg=msg))
    kept = log.newest_first(10_000)
    assert kept[0].uid == n
    # about what a walk of the C ring yields: 124-127 KiB of aligned entries, never more than the ring
    kept_bytes = sum(aligned_size(e) for e in kept)
    assert 124 * 1024 - size <= kept_bytes <= 131072 - 8
    assert [e.uid for e in kept] == list(range(n, n - len(kept), -1))
