"""Helpers shared by the codecs: bounds-checked unpacking and NUL-terminated strings.

Every failure is a WireFormatError whose reason names the byte offset, so a decoder never lets an
IndexError or struct.error escape.
"""

from __future__ import annotations

import struct
from typing import Any

from errors import WireFormatError

TEXT_ENCODING = "utf-8"
TEXT_ERRORS = "surrogateescape"
"""C strings are bytes; names that are not UTF-8 survive a round trip (as memdb/checksum.py does)."""


def wire_error(what: str, reason: str) -> WireFormatError:
    """A WireFormatError naming where and why."""
    return WireFormatError(what, reason)


def fail(what: str, offset: int, reason: str) -> WireFormatError:
    """The error for ``what`` at byte ``offset``."""
    return wire_error(what, f"at offset {offset}: {reason}")


def need(buf: bytes, offset: int, size: int, what: str) -> None:
    """Raise unless ``buf`` holds ``size`` bytes from ``offset``."""
    if len(buf) < offset + size:
        raise fail(what, offset, f"truncated: needs {size} bytes, {max(len(buf) - offset, 0)} left")


def unpack(layout: struct.Struct, buf: bytes, offset: int, what: str) -> tuple[Any, ...]:
    """``layout.unpack_from`` after a length check."""
    need(buf, offset, layout.size, what)
    return layout.unpack_from(buf, offset)


def pack(layout: struct.Struct, what: str, *values: int | bytes) -> bytes:
    """``layout.pack`` with out-of-range values reported as WireFormatError."""
    try:
        return layout.pack(*values)
    except struct.error as exc:
        raise wire_error(what, f"cannot encode: {exc}") from exc


def cstring(buf: bytes, offset: int, length: int, what: str) -> str:
    """The string stored in ``length`` bytes at ``offset``; its last byte, and only that, is NUL."""
    if length < 1:
        raise fail(what, offset, "length 0 leaves no room for the terminating NUL")
    need(buf, offset, length, what)
    raw = buf[offset : offset + length]
    nul = raw.find(0)
    if nul != length - 1:
        where = offset + length - 1 if nul < 0 else offset + nul
        problem = "not NUL-terminated" if nul < 0 else "NUL before the stated end"
        raise fail(what, where, problem)
    return raw[:-1].decode(TEXT_ENCODING, TEXT_ERRORS)


def encode_cstring(text: str, what: str) -> bytes:
    """``text`` as bytes with its terminating NUL."""
    raw = text.encode(TEXT_ENCODING, TEXT_ERRORS)
    if 0 in raw:
        raise wire_error(what, "cannot encode: contains a NUL byte")
    return raw + b"\0"
