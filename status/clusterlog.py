"""The cluster log (logger.c): entries, per-node dedup, the bounded buffer, merge and JSON dump.

Entries are ``wire.kvstore.ClogEntry`` values, the same records the kvstore group carries in
LOG messages and STATE rings. The buffer is a deque bounded by aligned bytes rather than an
offset-exact ring (reference 6.2 allows the approximation); it is bounded by the merge limit,
so the whole log always fits a fresh 131072-byte ring as the STATE.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import replace

from wire.kvstore import (
    CLOG_DEFAULT_SIZE,
    CLOG_ENTRY_SIZE,
    CLOG_MAX_ENTRY_SIZE,
    ClogEntry,
    encode_clog,
    fnv1a_64,
    layout_clog,
)

ENTRY_HEADER_SIZE = CLOG_ENTRY_SIZE
"""sizeof(clog_entry_t) used in all size arithmetic (44 bytes padded to 8)."""
MAX_ENTRY_SIZE = CLOG_MAX_ENTRY_SIZE
"""CLOG_MAX_ENTRY_SIZE."""
RING_SIZE = CLOG_DEFAULT_SIZE
"""CLOG_DEFAULT_SIZE: the ring buffer, header included."""
MERGE_LIMIT = RING_SIZE - 8 - MAX_ENTRY_SIZE
"""A merge stops once the entries taken reach this many aligned bytes (clusterlog_merge)."""
KEEP_BYTES = MERGE_LIMIT
"""Older entries are dropped past this: about what a walk of the C ring yields (124-127 KiB)."""
DEFAULT_DUMP_MAX = 50
"""Entries in .clusterlog."""
MAX_STRING = 255
"""node, ident and tag are at most 255 bytes with their NUL (u8 lengths)."""
MAX_PRIORITY = 7
"""syslog priorities 0..7; anything else is not logged."""

Key = tuple[int, int, int]
"""(time, node_digest, uid): what identifies an entry across nodes."""


def entry_key(entry: ClogEntry) -> Key:
    """The identity of an entry in merges and in the STATE sort order."""
    return (entry.time, entry.node_digest, entry.uid)


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` bytes (the original truncates the C string)."""
    raw = _raw(text)
    return text if len(raw) <= limit else raw[:limit].decode("utf-8", "surrogateescape")


def entry_size(entry: ClogEntry) -> int:
    """48 + the string lengths with their NULs."""
    return CLOG_ENTRY_SIZE + sum(len(_raw(s)) + 1 for s in (entry.node, entry.ident, entry.tag, entry.msg))


def aligned_size(entry: ClogEntry) -> int:
    """Bytes the entry takes in the ring: its size rounded up to 8."""
    return (entry_size(entry) + 7) & ~7


def new_entry(
    *, uid: int, time: int, priority: int, tag: str, pid: int, node: str, ident: str, msg: str
) -> ClogEntry:
    """An entry with its digests; ``msg`` is already sanitised (``to_ascii``) and is cut to fit 4096."""
    node, ident, tag = (_cut(s, MAX_STRING - 1) for s in (node, ident, tag))
    room = MAX_ENTRY_SIZE - CLOG_ENTRY_SIZE - sum(len(_raw(s)) + 1 for s in (node, ident, tag)) - 1
    return ClogEntry(
        uid=uid,
        time=time,
        node_digest=fnv1a_64(_raw(node) + b"\0"),
        ident_digest=fnv1a_64(_raw(ident) + b"\0"),
        pid=pid,
        priority=priority,
        node=node,
        ident=ident,
        tag=tag,
        msg=_cut(msg, room),
    )


def to_ascii(data: bytes, *, quote: bool) -> str:
    r"""utf8_to_ascii: control characters as #NNN, other non-ASCII as \uXXXX.

    Code points from U+10000 up are dropped. A message that is not valid UTF-8 is
    converted byte by byte, every byte from 127 up becoming '?'.
    In quote mode '"' and (unlike the original, whose output was then not valid JSON)
    '\' are backslash-escaped.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(_ascii_byte(byte, quote) for byte in data)
    return "".join(_ascii_char(char, quote) for char in text)


def _ascii_char(char: str, quote: bool) -> str:
    code = ord(char)
    if quote and char in '"\\':
        return "\\" + char
    if code < 32 or code == 127:
        return f"#{code:03d}"
    if code < 127:
        return char
    return f"\\u{code:04x}" if code < 0x10000 else ""


def _ascii_byte(byte: int, quote: bool) -> str:
    """A byte of a message that is not valid UTF-8."""
    char = chr(byte)
    if quote and char in '"\\':
        return "\\" + char
    if byte < 32:
        return f"#{byte:03d}"
    return char if byte < 127 else "?"


def json_text(value: str) -> str:
    """``value`` as the inside of a JSON string.

    Quotes and backslashes are escaped, control characters shown as #NNN (the original prints
    node, tag and user names unescaped).
    """
    return "".join(
        _ascii_char(char, True) if char in '"\\' or ord(char) < 32 or ord(char) == 127 else char
        for char in value
    )


def json_safe(escaped: str) -> str:
    """An already escaped message as it is, unless it would break the JSON (a peer's raw bytes)."""
    try:
        json.loads(f'"{escaped}"')  # strict: ujson lets raw control characters through
    except ValueError:
        return to_ascii(escaped.encode("utf-8", "surrogateescape"), quote=True)
    return escaped


def newest_first(entries: Sequence[ClogEntry], limit: int | None = None, user: str = "") -> list[ClogEntry]:
    """At most ``limit`` of ``entries`` (oldest first), newest first; ``user``'s only if given."""
    digest = fnv1a_64(_raw(user) + b"\0") if user else None
    picked: list[ClogEntry] = []
    for entry in reversed(entries):
        if limit is not None and len(picked) >= limit:
            break
        if digest is None or entry.ident_digest == digest:
            picked.append(entry)
    return picked


def dump_json(entries: Sequence[ClogEntry], limit: int = DEFAULT_DUMP_MAX, user: str = "") -> str:
    """clog_dump_json: the newest ``limit`` of ``entries`` (oldest first) as .clusterlog's JSON."""
    lines = [
        f'{{"uid": {e.uid}, "time": {e.time}, "pri": {e.priority}, "tag": "{json_text(e.tag)}", '
        f'"pid": {e.pid}, "node": "{json_text(e.node)}", "user": "{json_text(e.ident)}", '
        f'"msg": "{json_safe(e.msg)}"}}'
        for e in newest_first(entries, limit, user)
    ]
    body = ",\n".join(lines) + ("\n" if lines else "")
    return f'{{\n"data": [\n{body}]\n}}\n'


class ClusterLog:
    """Newest-last entries, bounded like the C ring, with per-node (time, uid) dedup."""

    def __init__(self) -> None:
        self._entries: deque[ClogEntry] = deque()
        self._bytes = 0
        self._newest: dict[int, tuple[int, int]] = {}
        """node_digest -> (time, uid) of the newest entry accepted from that node."""
        self._frozen: tuple[ClogEntry, ...] | None = None
        """:meth:`entries` until the log changes."""

    def __len__(self) -> int:
        return len(self._entries)

    def insert(self, entry: ClogEntry) -> bool:
        """Add an entry unless its node already has a newer or equal (time, uid); see 6.3."""
        known = self._newest.get(entry.node_digest)
        if known is not None and (entry.time, entry.uid) <= known:
            return False
        self._newest[entry.node_digest] = (entry.time, entry.uid)
        self._append(entry)
        return True

    def _append(self, entry: ClogEntry) -> None:
        self._frozen = None
        self._entries.append(replace(entry, prev=0, next=0))
        self._bytes += aligned_size(entry)
        while self._bytes > KEEP_BYTES and len(self._entries) > 1:
            self._bytes -= aligned_size(self._entries.popleft())

    def newest_first(self, limit: int | None = None, user: str = "") -> list[ClogEntry]:
        """At most ``limit`` entries (all if None), newest first, only ``user``'s if given."""
        return newest_first(self._entries, limit, user)

    def dump_json(self, limit: int = DEFAULT_DUMP_MAX, user: str = "") -> str:
        """clog_dump_json: the .clusterlog text."""
        return dump_json(self._entries, limit, user)

    def entries(self) -> tuple[ClogEntry, ...]:
        """The entries, oldest first, as an immutable value (the same one until the log changes)."""
        if self._frozen is None:
            self._frozen = tuple(self._entries)
        return self._frozen

    def state(self) -> bytes:
        """clog_sort: the kvstore STATE, every entry sorted by (time, node, uid) in a fresh ring."""
        ordered = sorted(self._entries, key=entry_key)
        return encode_clog(layout_clog(ordered, RING_SIZE))

    def merge(self, logs: Sequence[Sequence[ClogEntry] | None]) -> int:
        """clusterlog_merge: the members' logs (newest first; None is this live log) become this log.

        The entry with the greatest time is taken next (ties: the first log in member order);
        an entry already taken is skipped; time 0 ends the walk; the merge stops once the
        taken entries reach MERGE_LIMIT bytes. Returns the number of entries kept.
        """
        inputs = [self.newest_first() if entries is None else list(entries) for entries in logs]
        positions = [0] * len(inputs)
        taken: dict[Key, ClogEntry] = {}
        total = 0
        while total < MERGE_LIMIT:
            best = -1
            for i, entries in enumerate(inputs):
                if positions[i] < len(entries) and (
                    best < 0 or entries[positions[i]].time > inputs[best][positions[best]].time
                ):
                    best = i
            if best < 0 or inputs[best][positions[best]].time == 0:
                break
            entry = inputs[best][positions[best]]
            positions[best] += 1
            if entry_key(entry) not in taken:
                taken[entry_key(entry)] = entry
                total += aligned_size(entry)
        self._replace(sorted(taken.values(), key=entry_key))
        return len(taken)

    def _replace(self, oldest_first: Iterable[ClogEntry]) -> None:
        self._frozen = None
        self._entries.clear()
        self._bytes = 0
        self._newest.clear()
        for entry in oldest_first:
            known = self._newest.get(entry.node_digest)
            if known is None or (entry.time, entry.uid) > known:
                self._newest[entry.node_digest] = (entry.time, entry.uid)
            self._append(entry)
