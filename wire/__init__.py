"""Pure codecs, bytes <-> frozen dataclasses, for the CPG messages of both pmxcfs groups."""

from wire import dcdb, dfsm, kvstore

__all__ = ["dcdb", "dfsm", "kvstore"]
