"""The cluster log: entries with per-node dedup, a bounded buffer and the JSON dump (logger.c)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

ENTRY_HEADER_SIZE = 48
"""sizeof(clog_entry_t) used in all size arithmetic (44 bytes padded to 8)."""
MAX_ENTRY_SIZE = 4096
"""CLOG_MAX_ENTRY_SIZE."""
RING_SIZE = 131072
"""CLOG_DEFAULT_SIZE: the ring buffer, header included."""
KEEP_BYTES = 127 * 1024
"""About what a walk of the C ring yields (reference 6.2): older entries are dropped past this."""
DEFAULT_DUMP_MAX = 50
"""Entries in .clusterlog."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One cluster log entry; msg is stored already sanitised by to_ascii(quote=True)."""

    uid: int
    time: int
    priority: int
    tag: str
    pid: int
    node: str
    ident: str
    msg: str

    def aligned_size(self) -> int:
        """Bytes this entry takes in the ring (strings with NUL, rounded up to 8)."""
        size = ENTRY_HEADER_SIZE + sum(
            len(s.encode("utf-8", "surrogateescape")) + 1 for s in (self.node, self.ident, self.tag, self.msg)
        )
        return (min(size, MAX_ENTRY_SIZE) + 7) & ~7


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


def _json_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class ClusterLog:
    """Newest-last entries, bounded like the C ring, with per-node (time, uid) dedup."""

    def __init__(self) -> None:
        self._entries: deque[LogEntry] = deque()
        self._bytes = 0
        self._newest: dict[str, tuple[int, int]] = {}

    def insert(self, entry: LogEntry) -> bool:
        """Add an entry unless its node already has a newer or equal (time, uid); see 6.3."""
        known = self._newest.get(entry.node)
        if known is not None and (entry.time, entry.uid) <= known:
            return False
        self._newest[entry.node] = (entry.time, entry.uid)
        self._entries.append(entry)
        self._bytes += entry.aligned_size()
        while self._bytes > KEEP_BYTES and len(self._entries) > 1:
            self._bytes -= self._entries.popleft().aligned_size()
        return True

    def newest_first(self, limit: int, user: str = "") -> list[LogEntry]:
        """At most ``limit`` entries, newest first, only ``user``'s if given."""
        picked: list[LogEntry] = []
        for entry in reversed(self._entries):
            if len(picked) >= limit:
                break
            if not user or entry.ident == user:
                picked.append(entry)
        return picked

    def dump_json(self, limit: int = DEFAULT_DUMP_MAX, user: str = "") -> str:
        """clog_dump_json: the .clusterlog text."""
        lines = [
            f'{{"uid": {e.uid}, "time": {e.time}, "pri": {e.priority}, "tag": "{_json_text(e.tag)}", '
            f'"pid": {e.pid}, "node": "{_json_text(e.node)}", "user": "{_json_text(e.ident)}", '
            f'"msg": "{e.msg}"}}'
            for e in self.newest_first(limit, user)
        ]
        body = ",\n".join(lines) + ("\n" if lines else "")
        return f'{{\n"data": [\n{body}]\n}}\n'
