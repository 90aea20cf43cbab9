"""QuorumHandle without a daemon."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from bindings import libquorum
from bindings.libquorum import QUORUM_SET, QuorumHandle
from errors import CsError
from tests.fakes.bindings import FakeLib

HANDLE = 11


class Quorum:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, notify: Any = None) -> None:
        self.callbacks: Any = None
        self.notes: list[tuple[bool, int, tuple[int, ...]]] = []
        self.lib = FakeLib(quorum_initialize=self._initialize, quorum_getquorate=self._getquorate)
        monkeypatch.setattr(libquorum, "_lib", lambda: self.lib)
        self.handle = QuorumHandle()
        self.quorum_type = self.handle.initialize(notify or (lambda *a: self.notes.append(a)))

    def _initialize(self, handle_ref: Any, callbacks_ref: Any, type_ref: Any) -> int:
        self.callbacks = callbacks_ref._obj
        handle_ref._obj.value = HANDLE
        type_ref._obj.value = QUORUM_SET
        return 1

    def _getquorate(self, handle: int, ref: Any) -> int:
        ref._obj.value = 1
        return 1


def test_quorum_initialize_returns_type_and_notify_gets_python_values(monkeypatch: pytest.MonkeyPatch):
    quorum = Quorum(monkeypatch)
    assert quorum.quorum_type == QUORUM_SET
    nodes = (ctypes.c_uint32 * 3)(1, 2, 3)
    quorum.callbacks.quorum_notify_fn(HANDLE, 1, 0x100000007, 3, nodes)
    quorum.callbacks.quorum_notify_fn(HANDLE, 0, 8, 0, None)
    assert quorum.notes == [(True, 0x100000007, (1, 2, 3)), (False, 8, ())]


def test_quorum_calls(monkeypatch: pytest.MonkeyPatch):
    quorum = Quorum(monkeypatch)
    assert quorum.handle.getquorate() is True
    quorum.handle.trackstart()
    quorum.handle.trackstop()
    quorum.handle.dispatch()
    assert quorum.lib.calls[-3:] == [
        ("quorum_trackstart", (HANDLE, 3)),  # CS_TRACK_CHANGES | CS_TRACK_CURRENT
        ("quorum_trackstop", (HANDLE,)),
        ("quorum_dispatch", (HANDLE, 2)),
    ]


def test_quorum_notify_error_is_reraised_by_dispatch(monkeypatch: pytest.MonkeyPatch):
    def notify(quorate: bool, ring_seq: int, nodes: tuple[int, ...]) -> None:
        raise LookupError("notify")

    quorum = Quorum(monkeypatch, notify)
    quorum.callbacks.quorum_notify_fn(HANDLE, 1, 1, 0, None)
    with pytest.raises(LookupError, match="notify"):
        quorum.handle.dispatch()


def test_quorum_finalize_releases(monkeypatch: pytest.MonkeyPatch):
    quorum = Quorum(monkeypatch)
    with quorum.handle:
        pass
    assert not quorum.handle.initialized
    assert not quorum.handle._c_objects
    with pytest.raises(CsError) as info:
        quorum.handle.getquorate()
    assert (info.value.code, info.value.call) == (9, "quorum_getquorate")
