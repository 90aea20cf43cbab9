"""Every decoder of wire/ on random bytes and on mutated real messages (hypothesis).

A decoder either returns a value or raises WireFormatError naming an offset; nothing else
escapes (no IndexError, struct.error, UnicodeError, RecursionError, MemoryError). Where the
codec is canonical, encode(decode(x)) == x; where C leaves garbage in bytes the decoder ignores
(the kvstore key's tail, a log entry's 4 padding bytes, the unreachable parts of a log ring),
the re-encoding equals x with those bytes zeroed and decodes to the same value.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from errors import PmxcfsError, WireFormatError
from tests.fuzz import corpus
from tests.fuzz.garbage import DCDB_GROUP, KVSTORE_GROUP
from tests.fuzz.strategies import fuzz, garbage, mutated
from wire import dcdb, kvstore
from wire import dfsm as wire

EXAMPLES = 150
"""Per decoder in the normal suite (well under a second each)."""

DCDB_SUBTYPES = st.one_of(st.sampled_from(list(dcdb.DcdbMessageType)), st.integers(0, 0xFFFF))
KV_SUBTYPES = st.one_of(st.sampled_from(list(kvstore.KvstoreMessageType)), st.integers(0, 0xFFFF))
PADDING = kvstore.CLOG_ENTRY_SIZE - kvstore.CLOG_ENTRY_HEADER.size


def decode_or_reject(decode: Callable[[bytes], object], buf: bytes) -> object | None:
    """The decoded value, or None after the documented error; anything else fails the test."""
    try:
        return decode(buf)
    except WireFormatError as exc:
        error = exc
    assert isinstance(error, ValueError)
    assert isinstance(error, PmxcfsError)
    assert "at offset" in str(error), str(error)
    return None


# ----- canonical re-encodings ---------------------------------------------------------------


def exact(encode: Callable[[object], bytes]) -> Callable[[bytes, object], None]:
    def check(buf: bytes, value: object) -> None:
        assert encode(value) == buf

    return check


def kv_update_round_trip(buf: bytes, value: object) -> None:
    assert isinstance(value, kvstore.KvUpdate)
    key_end = buf.index(0) + 1
    masked = buf[:key_end] + bytes(kvstore.KV_KEY_SIZE - key_end) + buf[kvstore.KV_KEY_SIZE :]
    assert kvstore.encode_update(value) == masked
    assert kvstore.decode_update(masked) == value


def log_round_trip(buf: bytes, value: object) -> None:
    assert isinstance(value, kvstore.ClogEntry)
    masked = buf[:-PADDING] + bytes(PADDING)
    assert kvstore.encode_log(value) == masked
    assert kvstore.decode_log(masked) == value


def clog_round_trip(buf: bytes, value: object) -> None:
    """The ring re-encodes to its reachable entries; if their slots don't overlap, it reads back."""
    assert isinstance(value, kvstore.ClogState)
    spans = sorted((s.offset, s.offset + len(kvstore.encode_log(s.entry))) for s in value.slots)
    if any(end > start for (_, end), (start, _) in itertools.pairwise(spans)):
        return  # a crafted ring with overlapping entries: re-encoding overwrites one with the other
    again = kvstore.encode_clog(value)
    assert len(again) == len(buf)
    assert kvstore.decode_clog(again) == value


@dataclass(frozen=True)
class Case:
    name: str
    decode: Callable[[bytes], object]
    seeds: Callable[[], tuple[bytes, ...]]
    round_trip: Callable[[bytes, object], None]


CASES = [
    Case("dfsm-dcdb", wire.decode, lambda: corpus.messages(DCDB_GROUP), exact(wire.encode)),
    Case("dfsm-kvstore", wire.decode, lambda: corpus.messages(KVSTORE_GROUP), exact(wire.encode)),
    Case("dcdb-fuse", dcdb.decode_fuse, lambda: corpus.payloads("fuse"), exact(dcdb.encode_fuse)),
    Case("dcdb-unlock", dcdb.decode_unlock, lambda: corpus.payloads("unlock"), exact(dcdb.encode_unlock)),
    Case("dcdb-index", dcdb.decode_index, lambda: corpus.payloads("index"), exact(dcdb.encode_index)),
    Case("dcdb-update", dcdb.decode_update, lambda: corpus.payloads("update"), exact(dcdb.encode_update)),
    Case(
        "dcdb-verify-request",
        dcdb.decode_verify_request,
        lambda: corpus.payloads("verify_request"),
        exact(dcdb.encode_verify_request),
    ),
    Case("dcdb-verify", dcdb.decode_verify, lambda: corpus.payloads("verify"), exact(dcdb.encode_verify)),
    Case("kvstore-update", kvstore.decode_update, lambda: corpus.payloads("kv"), kv_update_round_trip),
    Case("kvstore-log", kvstore.decode_log, lambda: corpus.payloads("log"), log_round_trip),
    Case("kvstore-clog", kvstore.decode_clog, lambda: corpus.payloads("clog"), clog_round_trip),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_decoder_raises_only_wire_format_error(case: Case) -> None:
    seeds = case.seeds()
    assert seeds, f"no captured seeds for {case.name}"
    for seed in seeds:  # the seeds themselves decode and round-trip
        value = case.decode(seed)
        case.round_trip(seed, value)
    accepted: list[int] = []

    @fuzz(EXAMPLES)
    @given(garbage(seeds))
    def run(buf: bytes) -> None:
        value = decode_or_reject(case.decode, buf)
        if value is not None:
            accepted.append(len(buf))
            case.round_trip(buf, value)

    run()
    assert accepted, "no example decoded: the round trip was never checked"


@fuzz(EXAMPLES)
@given(DCDB_SUBTYPES, garbage(corpus.payloads("fuse") + corpus.payloads("unlock")))
def test_dcdb_payload_by_subtype(subtype: int, buf: bytes) -> None:
    value = decode_or_reject(lambda b: dcdb.decode_payload(subtype, b), buf)
    if value is not None:
        assert subtype in dcdb.FUSE_TYPES | dcdb.UNLOCK_TYPES
        assert dcdb.encode_payload(value) == buf


@fuzz(EXAMPLES)
@given(KV_SUBTYPES, garbage(corpus.payloads("kv") + corpus.payloads("log")))
def test_kvstore_payload_by_subtype(subtype: int, buf: bytes) -> None:
    value = decode_or_reject(lambda b: kvstore.decode_payload(subtype, b), buf)
    if isinstance(value, kvstore.KvUpdate):
        assert subtype == kvstore.KvstoreMessageType.UPDATE
        kv_update_round_trip(buf, value)
    elif value is not None:
        assert subtype == kvstore.KvstoreMessageType.LOG
        log_round_trip(buf, value)


@fuzz(EXAMPLES)
@given(st.binary(max_size=64))
def test_base_header_reads_any_sixteen_bytes(buf: bytes) -> None:
    header = decode_or_reject(wire.decode_base_header, buf)
    assert (header is not None) == (len(buf) >= wire.BASE_HEADER.size)


@fuzz(EXAMPLES)
@given(mutated(corpus.payloads("clog"), max_mutations=8))
def test_clog_ring_walk_always_ends(buf: bytes) -> None:
    """Many mutations of one ring: prev chains into cycles, into the header, past the end."""
    state = decode_or_reject(kvstore.decode_clog, buf)
    if isinstance(state, kvstore.ClogState):
        offsets = [slot.offset for slot in state.slots]
        assert len(offsets) == len(set(offsets))
        assert all(kvstore.CLOG_BASE.size <= o < len(buf) for o in offsets)
