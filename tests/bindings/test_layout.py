"""Struct sizes and offsets, as gcc computes them from /usr/include/corosync/*.h on x86_64."""

from __future__ import annotations

import ctypes

import pytest

from bindings import _types, libcmap, libcpg, libquorum

# (struct, sizeof, {field: offsetof}) measured with a C program including the real headers.
LAYOUTS = [
    (libcpg.cpg_name, 132, {"length": 0, "value": 4}),
    (libcpg.cpg_address, 12, {"nodeid": 0, "pid": 4, "reason": 8}),
    (libcpg.cpg_ring_id, 16, {"nodeid": 0, "seq": 8}),
    (
        libcpg.cpg_model_v1_data_t,
        40,
        {"model": 0, "cpg_deliver_fn": 8, "cpg_confchg_fn": 16, "cpg_totem_confchg_fn": 24, "flags": 32},
    ),
    (libcpg.cpg_model_data_t, 4, {"model": 0}),
    (_types.iovec, 16, {"iov_base": 0, "iov_len": 8}),
    (libcmap.cmap_notify_value, 24, {"type": 0, "len": 8, "data": 16}),
    (libquorum.quorum_callbacks_t, 8, {"quorum_notify_fn": 0}),
]


@pytest.mark.parametrize(("struct", "size", "offsets"), LAYOUTS, ids=lambda v: getattr(v, "__name__", ""))
def test_struct_layout_matches_header(struct: type[ctypes.Structure], size: int, offsets: dict[str, int]):
    assert ctypes.sizeof(struct) == size
    for name, offset in offsets.items():
        assert getattr(struct, name).offset == offset, name


def test_enums_and_handles_are_c_sized():
    assert ctypes.sizeof(_types.cs_error_t) == 4
    assert ctypes.sizeof(_types.cs_dispatch_flags_t) == 4
    assert ctypes.sizeof(libcpg.cpg_guarantee_t) == 4
    for handle in (libcpg.cpg_handle_t, libcmap.cmap_handle_t, libquorum.quorum_handle_t):
        assert ctypes.sizeof(handle) == 8


def test_constants_match_headers():
    assert (_types.CS_DISPATCH_ONE, _types.CS_DISPATCH_ALL, _types.CS_DISPATCH_BLOCKING) == (1, 2, 3)
    assert (_types.CS_TRACK_CURRENT, _types.CS_TRACK_CHANGES, _types.CS_TRACK_CHANGES_ONLY) == (1, 2, 4)
    assert libcpg.CPG_TYPE_AGREED == 2
    assert libcpg.CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF == 1
    assert (libcmap.CMAP_TRACK_ADD, libcmap.CMAP_TRACK_DELETE, libcmap.CMAP_TRACK_MODIFY) == (4, 1, 2)
    assert libcmap.CMAP_TRACK_PREFIX == 8
    assert [r.value for r in libcpg.CpgReason] == [0, 1, 2, 3, 4, 5]
