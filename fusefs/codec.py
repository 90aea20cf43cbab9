"""The codec fusepy uses for paths: UTF-8, with any other byte kept (surrogateescape).

The original allows every byte but '/' and NUL in names; fusepy decodes paths strictly,
which would refuse such a name with EINVAL. Registering this codec keeps the bytes intact:
they round-trip as lone surrogates through the tree and back to the same bytes on disk.
"""

from __future__ import annotations

import codecs

FS_ENCODING = "pmxcfs-utf8"
"""Pass as fusepy's ``encoding``."""


def _encode(text: str, errors: str = "strict") -> tuple[bytes, int]:
    return codecs.utf_8_encode(text, "surrogateescape")


def _decode(data: bytes, errors: str = "strict") -> tuple[str, int]:
    return codecs.utf_8_decode(data, "surrogateescape", True)


def _search(name: str) -> codecs.CodecInfo | None:
    if name != FS_ENCODING.replace("-", "_"):
        return None
    return codecs.CodecInfo(_encode, _decode, name=FS_ENCODING)  # type: ignore[arg-type]


codecs.register(_search)
