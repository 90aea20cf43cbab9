"""The barrier messages: our own 8-byte format in a group per node."""

from __future__ import annotations

import pytest

from wire.barrier import barrier_group, decode_barrier, encode_barrier


@pytest.mark.parametrize("number", [0, 1, 2**32, 2**64 - 1])
def test_a_barrier_comes_back_as_its_number(number: int) -> None:
    payload = encode_barrier(number)
    assert len(payload) == 8
    assert decode_barrier(payload) == number


@pytest.mark.parametrize("payload", [b"", b"\0" * 7, b"\0" * 9, b"a DCDB message"])
def test_anything_else_is_not_a_barrier(payload: bytes) -> None:
    assert decode_barrier(payload) is None


def test_each_node_has_its_own_group() -> None:
    assert barrier_group(3) == b"pmxcfs_py_barrier_v2_3"
    assert barrier_group(3) != barrier_group(30)
