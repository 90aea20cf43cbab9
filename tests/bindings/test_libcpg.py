"""CpgHandle without a daemon: a fake library, and the CFUNCTYPE thunks called as C would call them."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from bindings import libcpg
from bindings.libcpg import CpgAddress, CpgHandle, CpgReason, CpgRingId, decode_group, encode_group
from errors import CsError, CsLibraryError
from tests.fakes.bindings import FakeLib, returns

HANDLE = 77


class Cpg:
    """A CpgHandle on a FakeLib, with what its Python callbacks received."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, **impl: Any) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.raise_in: dict[str, BaseException] = {}
        self.data: libcpg.cpg_model_v1_data_t | None = None
        self.model: int | None = None
        self.lib = FakeLib(**{"cpg_model_initialize": self._model_initialize, **impl})
        monkeypatch.setattr(libcpg, "_lib", lambda: self.lib)
        self.handle = CpgHandle()

    def _model_initialize(self, handle_ref: Any, model: int, header: Any, context: Any) -> int:
        self.model = model
        self.data = ctypes.cast(header, ctypes.POINTER(libcpg.cpg_model_v1_data_t)).contents
        handle_ref._obj.value = HANDLE
        return 1

    def _event(self, *event: Any) -> None:
        self.events.append(event)
        if event[0] in self.raise_in:
            raise self.raise_in[event[0]]

    def initialize(self, totem: bool = True, confchg: bool = True) -> Cpg:
        self.handle.initialize(
            lambda *a: self._event("deliver", *a),
            (lambda *a: self._event("confchg", *a)) if confchg else None,
            (lambda *a: self._event("totem", *a)) if totem else None,
        )
        return self

    def deliver(self, payload: bytes, group: bytes = b"pve_dcdb_v1") -> None:
        """Call the deliver thunk through libffi, as cpg_dispatch does."""
        assert self.data is not None
        name = encode_group(group)
        buf = ctypes.create_string_buffer(payload, len(payload))
        address = ctypes.addressof(buf) if payload else None
        self.data.cpg_deliver_fn(HANDLE, ctypes.byref(name), 3, 4242, address, len(payload))


@pytest.fixture
def cpg(monkeypatch: pytest.MonkeyPatch) -> Cpg:
    return Cpg(monkeypatch).initialize()


def test_group_name_length_includes_the_nul():
    name = encode_group(b"pve_dcdb_v1")
    assert name.length == 12
    assert ctypes.string_at(ctypes.addressof(name) + 4, 12) == b"pve_dcdb_v1\0"
    assert encode_group(b"pve_kvstore_v1").length == 15
    assert encode_group(b"x" * 127).length == 128


@pytest.mark.parametrize("bad", [b"", b"a\0b", b"x" * 128])
def test_bad_group_names_are_refused(bad: bytes):
    with pytest.raises(ValueError, match="bad CPG group name"):
        encode_group(bad)


def test_decode_group_strips_one_nul_only():
    assert decode_group(encode_group(b"pve_dcdb_v1")) == b"pve_dcdb_v1"
    name = libcpg.cpg_name(length=3, value=b"abc")
    assert decode_group(name) == b"abc"  # a peer that sends no NUL
    name = libcpg.cpg_name(length=4, value=b"ab\0\0")
    assert decode_group(name) == b"ab\0"
    name = libcpg.cpg_name(length=1000, value=b"z" * 128)
    assert decode_group(name) == b"z" * 128  # a bogus length is clamped to the array


def test_initialize_uses_model_v1_with_initial_totem_conf(cpg: Cpg):
    assert cpg.handle.initialized
    assert cpg.model == libcpg.CPG_MODEL_V1
    assert cpg.data is not None
    assert cpg.data.model == 1
    assert cpg.data.flags == libcpg.CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF
    assert all([cpg.data.cpg_deliver_fn, cpg.data.cpg_confchg_fn, cpg.data.cpg_totem_confchg_fn])


def test_initialize_without_confchg_callback_leaves_it_null(monkeypatch: pytest.MonkeyPatch):
    cpg = Cpg(monkeypatch).initialize(confchg=False)
    assert cpg.data is not None
    assert not cpg.data.cpg_confchg_fn  # NULL: libcpg's dispatch skips the confchg
    assert cpg.data.cpg_deliver_fn


def test_initialize_without_totem_callback(monkeypatch: pytest.MonkeyPatch):
    cpg = Cpg(monkeypatch).initialize(totem=False)
    assert cpg.data is not None
    assert cpg.data.flags == 0
    assert not cpg.data.cpg_totem_confchg_fn


def test_initialize_twice_is_refused(cpg: Cpg):
    with pytest.raises(RuntimeError, match="already initialized"):
        cpg.initialize()


def test_failed_initialize_leaves_the_handle_uninitialized(monkeypatch: pytest.MonkeyPatch):
    cpg = Cpg(monkeypatch, cpg_model_initialize=returns(2))
    with pytest.raises(CsLibraryError):
        cpg.initialize()
    assert not cpg.handle.initialized
    assert not cpg.handle._c_objects


def test_deliver_thunk_gives_python_values(cpg: Cpg):
    cpg.deliver(b"\x00abc\xff")
    cpg.deliver(b"")
    assert cpg.events == [
        ("deliver", b"pve_dcdb_v1", 3, 4242, b"\x00abc\xff"),
        ("deliver", b"pve_dcdb_v1", 3, 4242, b""),
    ]


def test_confchg_thunk_gives_tuples_of_addresses(cpg: Cpg):
    assert cpg.data is not None
    members = (libcpg.cpg_address * 2)((1, 100, 0), (2, 200, 0))
    left = (libcpg.cpg_address * 1)((3, 300, 3))
    joined = (libcpg.cpg_address * 1)((2, 200, 9))
    name = encode_group(b"pve_kvstore_v1")
    cpg.data.cpg_confchg_fn(HANDLE, ctypes.byref(name), members, 2, left, 1, joined, 1)
    ((kind, group, got_members, got_left, got_joined),) = cpg.events
    assert (kind, group) == ("confchg", b"pve_kvstore_v1")
    assert got_members == (CpgAddress(1, 100, 0), CpgAddress(2, 200, 0))
    assert got_left == (CpgAddress(3, 300, CpgReason.NODEDOWN),)
    assert got_left[0].reason is CpgReason.NODEDOWN
    assert got_joined == (CpgAddress(2, 200, 9),)  # unknown reason: kept as a plain int


def test_totem_thunk_takes_the_ring_id_by_value(cpg: Cpg):
    assert cpg.data is not None
    nodes = (ctypes.c_uint32 * 3)(1, 2, 3)
    cpg.data.cpg_totem_confchg_fn(HANDLE, libcpg.cpg_ring_id(2, 0x1234567890), 3, nodes)
    assert cpg.events == [("totem", CpgRingId(2, 0x1234567890), (1, 2, 3))]


def test_callback_exception_is_stored_then_reraised_by_dispatch(cpg: Cpg, capfd: pytest.CaptureFixture[str]):
    cpg.raise_in["deliver"] = ValueError("bad message")
    cpg.deliver(b"x")  # C called the thunk: nothing may escape into C
    assert capfd.readouterr().err == ""
    with pytest.raises(ValueError, match="bad message"):
        cpg.handle.dispatch()
    cpg.handle.dispatch()  # raised once only
    assert cpg.lib.names().count("cpg_dispatch") == 2


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3)])
def test_keyboard_interrupt_and_system_exit_are_deferred_too(cpg: Cpg, exc: BaseException):
    cpg.raise_in["deliver"] = exc
    cpg.deliver(b"x")
    with pytest.raises(type(exc)):
        cpg.handle.dispatch()


def test_first_exception_wins_and_notes_the_rest(cpg: Cpg):
    cpg.raise_in["deliver"] = ValueError("first")
    cpg.deliver(b"x")
    cpg.raise_in["deliver"] = KeyError("second")
    cpg.deliver(b"y")
    with pytest.raises(ValueError, match="first") as info:
        cpg.handle.dispatch()
    assert info.value.__notes__ == [
        "1 more exception(s) raised in callbacks of the same dispatch were dropped"
    ]


def test_interrupt_beats_an_ordinary_error(cpg: Cpg):
    cpg.raise_in["deliver"] = ValueError("first")
    cpg.deliver(b"x")
    cpg.raise_in["deliver"] = KeyboardInterrupt()
    cpg.deliver(b"y")
    with pytest.raises(KeyboardInterrupt):
        cpg.handle.dispatch()


def test_callback_error_wins_over_dispatch_error(monkeypatch: pytest.MonkeyPatch):
    def dispatch(handle: int, flags: int) -> int:
        cpg.deliver(b"x")  # C runs a callback, then fails
        return 2

    cpg = Cpg(monkeypatch, cpg_dispatch=dispatch).initialize()
    cpg.raise_in["deliver"] = ValueError("from callback")
    with pytest.raises(ValueError, match="from callback") as info:
        cpg.handle.dispatch()
    assert isinstance(info.value.__context__, CsLibraryError)


def test_dispatch_error_alone(monkeypatch: pytest.MonkeyPatch):
    cpg = Cpg(monkeypatch, cpg_dispatch=returns(2)).initialize()
    with pytest.raises(CsLibraryError, match="cpg_dispatch failed: CS_ERR_LIBRARY"):
        cpg.handle.dispatch()
    assert cpg.lib.calls[-1] == ("cpg_dispatch", (HANDLE, libcpg.CS_DISPATCH_ALL))


def test_finalize_inside_a_callback_keeps_thunks_until_dispatch_returns(monkeypatch: pytest.MonkeyPatch):
    def dispatch(handle: int, flags: int) -> int:
        cpg.deliver(b"x")
        assert cpg.handle._retired  # the running thunk is still referenced
        return 1

    cpg = Cpg(monkeypatch, cpg_dispatch=dispatch).initialize()
    original = cpg._event

    def event_then_finalize(*event: Any) -> None:
        original(*event)
        cpg.handle.finalize()

    cpg._event = event_then_finalize  # type: ignore[method-assign]
    cpg.handle.dispatch()
    assert not cpg.handle.initialized
    assert not cpg.handle._retired
    assert not cpg.handle._c_objects


def test_join_and_leave_send_the_name_with_its_nul(cpg: Cpg):
    cpg.handle.join(b"pve_dcdb_v1")
    cpg.handle.leave(b"pve_dcdb_v1")
    for (call, (handle, name_ref)), expected in zip(
        cpg.lib.calls[-2:], ["cpg_join", "cpg_leave"], strict=True
    ):
        assert (call, handle) == (expected, HANDLE)
        assert name_ref._obj.length == 12
        assert decode_group(name_ref._obj) == b"pve_dcdb_v1"


def test_join_try_again_is_its_own_exception(monkeypatch: pytest.MonkeyPatch):
    cpg = Cpg(monkeypatch, cpg_join=returns(6)).initialize()
    with pytest.raises(CsError) as info:
        cpg.handle.join(b"g")
    assert type(info.value).__name__ == "CsTryAgain"


def test_mcast_builds_an_iovec_without_copying(monkeypatch: pytest.MonkeyPatch):
    seen: list[Any] = []

    def mcast(handle: int, guarantee: int, vector: Any, count: int) -> int:
        seen.append(
            (guarantee, count, b"".join(ctypes.string_at(v.iov_base, v.iov_len) for v in vector[:count]))
        )
        return 1

    cpg = Cpg(monkeypatch, cpg_mcast_joined=mcast).initialize()
    parts = [b"head", b"", b"\x00body\xff" * 1000]
    cpg.handle.mcast(parts)
    cpg.handle.mcast([])
    assert seen == [(libcpg.CPG_TYPE_AGREED, 3, b"".join(parts)), (2, 0, b"")]


def test_out_parameters(monkeypatch: pytest.MonkeyPatch):
    def fill(value: int) -> Any:
        def impl(handle: int, ref: Any) -> int:
            ref._obj.value = value
            return 1

        return impl

    def membership(handle: int, name_ref: Any, members: Any, count_ref: Any) -> int:
        assert count_ref._obj.value == libcpg.CPG_MEMBERS_MAX
        members[0] = libcpg.cpg_address(1, 10, 0)
        members[1] = libcpg.cpg_address(2, 20, 0)
        count_ref._obj.value = 2
        return 1

    cpg = Cpg(
        monkeypatch,
        cpg_fd_get=fill(9),
        cpg_local_get=fill(4),
        cpg_max_atomic_msgsize_get=fill(1047552),
        cpg_membership_get=membership,
    ).initialize()
    assert cpg.handle.fd() == 9
    assert cpg.handle.local_get() == 4
    assert cpg.handle.max_atomic_msgsize() == 1047552
    assert cpg.handle.membership_get(b"g") == (CpgAddress(1, 10, 0), CpgAddress(2, 20, 0))


@pytest.mark.parametrize(
    ("method", "args", "call"),
    [
        ("dispatch", (), "cpg_dispatch"),
        ("join", (b"g",), "cpg_join"),
        ("leave", (b"g",), "cpg_leave"),
        ("mcast", ([b"x"],), "cpg_mcast_joined"),
        ("fd", (), "cpg_fd_get"),
        ("local_get", (), "cpg_local_get"),
        ("membership_get", (b"g",), "cpg_membership_get"),
        ("max_atomic_msgsize", (), "cpg_max_atomic_msgsize_get"),
        ("finalize", (), "cpg_finalize"),
    ],
)
def test_uninitialized_handle_is_a_bad_handle(method: str, args: tuple[Any, ...], call: str):
    with pytest.raises(CsError) as info:
        getattr(CpgHandle(), method)(*args)
    assert (info.value.code, info.value.call) == (9, call)


def test_finalize_ignores_library_error_and_releases(monkeypatch: pytest.MonkeyPatch):
    cpg = Cpg(monkeypatch, cpg_finalize=returns(2)).initialize()
    cpg.handle.finalize()
    assert not cpg.handle.initialized
    assert not cpg.handle._c_objects


def test_finalize_raises_other_errors_but_still_releases(monkeypatch: pytest.MonkeyPatch):
    cpg = Cpg(monkeypatch, cpg_finalize=returns(9)).initialize()
    with pytest.raises(CsError, match="CS_ERR_BAD_HANDLE"):
        cpg.handle.finalize()
    assert not cpg.handle.initialized
    assert not cpg.handle._c_objects


def test_context_manager_finalizes_and_handle_can_be_reused(cpg: Cpg):
    with cpg.handle as handle:
        assert handle is cpg.handle
    assert cpg.lib.names()[-1] == "cpg_finalize"
    assert not cpg.handle.initialized
    cpg.initialize()
    assert cpg.handle.initialized
