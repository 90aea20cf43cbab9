"""CmapHandle without a daemon: a fake library backed by a dict of keys."""

from __future__ import annotations

import ctypes
from types import SimpleNamespace
from typing import Any

import pytest

from bindings import libcmap
from bindings.libcmap import CMAP_TRACK_ADD, CMAP_TRACK_ALL, CMAP_TRACK_PREFIX, CmapHandle, NodeEntry
from errors import CsError, CsNotExist
from tests.fakes.bindings import FakeLib

HANDLE = 5


class Cmap:
    """A CmapHandle over ``keys``; strings are handed out as buffers the test owns, and free() is recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, keys: dict[str, str | int]) -> None:
        self.keys = keys
        self.buffers: list[Any] = []
        self.freed: list[int | None] = []
        self.notify: dict[int, Any] = {}
        impl: dict[str, Any] = {
            "cmap_initialize": self._initialize,
            "cmap_get_string": self._get_string,
            "cmap_track_add": self._track_add,
        }
        for bits in (8, 16, 32, 64):
            impl[f"cmap_get_uint{bits}"] = self._get_uint
        self.lib = FakeLib(**impl)
        monkeypatch.setattr(libcmap, "_lib", lambda: self.lib)
        monkeypatch.setattr(
            libcmap, "_libc", lambda: SimpleNamespace(free=lambda p: self.freed.append(p.value))
        )
        self.handle = CmapHandle()
        self.handle.initialize()

    def _initialize(self, handle_ref: Any) -> int:
        handle_ref._obj.value = HANDLE
        return 1

    def _get_string(self, handle: int, key: bytes, out_ref: Any) -> int:
        value = self.keys.get(key.decode())
        if value is None:
            return 12
        if not isinstance(value, str):
            return 7
        buf = ctypes.create_string_buffer(value.encode())
        self.buffers.append(buf)
        out_ref._obj.value = ctypes.addressof(buf)
        return 1

    def _get_uint(self, handle: int, key: bytes, out_ref: Any) -> int:
        value = self.keys.get(key.decode())
        if value is None:
            return 12
        if not isinstance(value, int):
            return 7
        out_ref._obj.value = value
        return 1

    def _track_add(
        self, handle: int, key: bytes, track_type: int, notify: Any, user: Any, track_ref: Any
    ) -> int:
        track_ref._obj.value = 1000 + len(self.notify)
        self.notify[track_ref._obj.value] = (key, track_type, notify)
        return 1


def test_get_string_frees_what_the_library_malloced(monkeypatch: pytest.MonkeyPatch):
    cmap = Cmap(monkeypatch, {"totem.cluster_name": "pve-prod"})
    assert cmap.handle.get_string("totem.cluster_name") == "pve-prod"
    assert cmap.freed == [ctypes.addressof(cmap.buffers[0])]
    assert cmap.lib.calls[-1][0] == "cmap_get_string"
    assert cmap.lib.calls[-1][1][:2] == (HANDLE, b"totem.cluster_name")


def test_missing_key_raises_not_exist_and_frees_nothing(monkeypatch: pytest.MonkeyPatch):
    cmap = Cmap(monkeypatch, {})
    with pytest.raises(CsNotExist, match="cmap_get_string failed: CS_ERR_NOT_EXIST"):
        cmap.handle.get_string("totem.cluster_name")
    assert cmap.freed == []


@pytest.mark.parametrize(
    ("method", "value"), [("get_uint8", 200), ("get_uint16", 60000), ("get_uint32", 2**32 - 1)]
)
def test_get_uint(monkeypatch: pytest.MonkeyPatch, method: str, value: int):
    cmap = Cmap(monkeypatch, {"k": value})
    assert getattr(cmap.handle, method)("k") == value


def test_get_uint64_and_type_mismatch(monkeypatch: pytest.MonkeyPatch):
    cmap = Cmap(monkeypatch, {"totem.config_version": 2**40 + 3, "totem.cluster_name": "x"})
    assert cmap.handle.get_uint64("totem.config_version") == 2**40 + 3
    with pytest.raises(CsError) as info:
        cmap.handle.get_uint32("totem.cluster_name")
    assert info.value.code == 7


def test_nodelist_reads_entries_until_none_is_left(monkeypatch: pytest.MonkeyPatch):
    keys: dict[str, str | int] = {
        "nodelist.node.0.nodeid": 1,
        "nodelist.node.0.name": "node1",
        "nodelist.node.0.ring0_addr": "10.0.0.1",
        "nodelist.node.1.nodeid": 2,
        "nodelist.node.1.ring0_addr": "10.0.0.2",  # no name: pmxcfs names it by its address
        "nodelist.node.1.quorum_votes": 3,
        "nodelist.node.2.name": "nodeid-less",  # skipped, as pmxcfs does
        "nodelist.node.2.ring0_addr": "10.0.0.3",
        "nodelist.node.3.nodeid": 4,
        "nodelist.node.3.name": "node4",
        "nodelist.node.3.quorum_votes": 0,
        "nodelist.node.5.nodeid": 6,  # after a gap: not reached
        "nodelist.node.5.name": "node6",
    }
    cmap = Cmap(monkeypatch, keys)
    assert cmap.handle.nodelist() == (
        NodeEntry(1, "node1", "10.0.0.1", 1),
        NodeEntry(2, "10.0.0.2", "10.0.0.2", 3),
        NodeEntry(4, "node4", "", 0),
    )
    assert len(cmap.freed) == len(cmap.buffers)  # every string freed


def test_empty_nodelist(monkeypatch: pytest.MonkeyPatch):
    assert Cmap(monkeypatch, {}).handle.nodelist() == ()


def test_track_add_notify_and_delete(monkeypatch: pytest.MonkeyPatch):
    cmap = Cmap(monkeypatch, {})
    events: list[tuple[int, str]] = []
    track = cmap.handle.track_add("nodelist.node.", lambda event, key: events.append((event, key)))
    key, track_type, notify = cmap.notify[track]
    assert (key, track_type) == (b"nodelist.node.", CMAP_TRACK_ALL | CMAP_TRACK_PREFIX)
    assert track_type == 15
    value = libcmap.cmap_notify_value()
    notify(HANDLE, track, CMAP_TRACK_ADD, b"nodelist.node.3.name", value, value, None)
    assert events == [(CMAP_TRACK_ADD, "nodelist.node.3.name")]
    assert cmap.handle._c_objects
    cmap.handle.track_delete(track)
    assert cmap.lib.calls[-1] == ("cmap_track_delete", (HANDLE, track))
    assert not cmap.handle._c_objects


def test_track_without_prefix(monkeypatch: pytest.MonkeyPatch):
    cmap = Cmap(monkeypatch, {})
    track = cmap.handle.track_add("totem.config_version", lambda *_: None, CMAP_TRACK_ALL)
    assert cmap.notify[track][1] == 7


def test_track_callback_error_is_reraised_by_dispatch(monkeypatch: pytest.MonkeyPatch):
    cmap = Cmap(monkeypatch, {})

    def boom(event: int, key: str) -> None:
        raise RuntimeError(key)

    track = cmap.handle.track_add("a.", boom)
    value = libcmap.cmap_notify_value()
    cmap.notify[track][2](HANDLE, track, 2, b"a.b", value, value, None)
    with pytest.raises(RuntimeError, match=r"a\.b"):
        cmap.handle.dispatch()


def test_finalize_drops_the_tracks(monkeypatch: pytest.MonkeyPatch):
    cmap = Cmap(monkeypatch, {})
    cmap.handle.track_add("a.", lambda *_: None)
    cmap.handle.finalize()
    assert not cmap.handle.initialized
    assert not cmap.handle._c_objects
    with pytest.raises(CsError) as info:
        cmap.handle.get_string("a")
    assert info.value.code == 9
