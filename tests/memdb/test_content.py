"""Write content semantics (1.5 step 9), the check_memdb tests (8.2) and checksums (1.8)."""

from __future__ import annotations

import hashlib
import struct

import pytest

from errors import AlreadyExists, DirectoryNotEmpty, NotFound
from memdb.checksum import entry_checksum
from memdb.records import DT_DIR, DT_REG
from memdb.tree import MemDb
from tests.memdb.helpers import MIB, content_state, fresh, reload

INDEX_VECTOR = "913fd95015af9d93f10dd51ba2a7bb11351bcfe040be21e95fcba834adc3ec10"


def _file(db: MemDb, content: bytes, path: str = "f") -> None:
    db.create(path, 0, 1)
    if content:
        db.write(path, 0, 1, content, 0)


@pytest.mark.parametrize(
    ("old", "data", "offset", "truncate", "expected"),
    [
        pytest.param(b"abc", b"Z", 5, False, b"abc\0\0Z", id="grow-zero-fill-gap"),
        pytest.param(b"abc", b"Z", 5, True, b"abc\0\0Z", id="grow-with-truncate-flag"),
        pytest.param(b"abc", b"WXYZ", 1, False, b"aWXYZ", id="grow-overlapping-end"),
        pytest.param(b"abc", b"XYZ", 2, True, b"abXYZ", id="grow-overlap-truncate"),
        pytest.param(b"0123456789", b"X", 3, False, b"012X456789", id="overwrite-in-place"),
        pytest.param(b"0123456789", b"ab", 2, True, b"01ab", id="truncate-then-copy"),
        pytest.param(b"0123456789", b"", 0, False, b"0123456789", id="empty-write-keeps-content"),
        pytest.param(b"0123456789", b"", 4, True, b"0123", id="truncate-shrink"),
        pytest.param(b"0123456789", b"", 10, True, b"0123456789", id="truncate-same-size"),
        pytest.param(b"0123456789", b"abc", 7, False, b"0123456abc", id="overwrite-tail-exact"),
        pytest.param(b"", b"xy", 3, False, b"\0\0\0xy", id="empty-file-write-at-offset"),
        pytest.param(b"", b"xy", 0, False, b"xy", id="empty-file-write"),
        pytest.param(b"", b"", 4, True, b"\0\0\0\0", id="empty-file-truncate-zero-fills"),
        pytest.param(b"", b"", 0, True, b"", id="empty-file-truncate-zero"),
    ],
)
def test_write_content(
    db: MemDb, old: bytes, data: bytes, offset: int, truncate: bool, expected: bytes
) -> None:
    _file(db, old)
    applied = db.write("f", 0, 2, data, offset, truncate=truncate)
    assert applied.result == len(data)
    assert db.read_all("f") == expected
    attr = db.getattr("f")
    assert attr is not None
    assert attr.size == len(expected)
    assert applied.change is not None
    assert applied.change.upsert is not None
    assert applied.change.upsert.data == (expected or None)


def test_truncate_grows_with_zeros(db: MemDb) -> None:
    _file(db, b"he")
    db.truncate("f", 0, 2, 5)
    assert db.read_all("f") == b"he\0\0\0"


def test_truncate_empty_file_to_n_is_zero_filled(db: MemDb) -> None:
    # The C quirk (size N, no buffer) must not be copied: the reimplementation zero-fills.
    db.create("f", 0, 1)
    applied = db.truncate("f", 0, 2, 100)
    assert db.read_all("f") == bytes(100)
    assert db.read("f", 10, 95) == bytes(5)
    assert applied.change is not None
    assert applied.change.upsert is not None
    assert applied.change.upsert.data == bytes(100)
    assert db.statfs().bfree == 32768 - 1


def test_write_exactly_one_mib_is_allowed(db: MemDb) -> None:
    db.create("f", 0, 1)
    assert db.write("f", 0, 1, b"\1" * MIB, 0).result == MIB
    assert db.truncate("f", 0, 1, MIB).result == 0
    db.write("f", 0, 1, b"", MIB)
    assert len(db.read_all("f")) == MIB


def test_read_with_size_and_offset(db: MemDb) -> None:
    _file(db, b"0123456789")
    assert db.read("f", 4, 2) == b"2345"
    assert db.read("f", 100, 8) == b"89"
    assert db.read("f", 4, 10) == b""
    assert db.read("f", 4, 50) == b""


def test_read_returns_a_copy_not_affected_by_later_writes(db: MemDb) -> None:
    _file(db, b"abc")
    got = db.read_all("f")
    db.write("f", 0, 2, b"X", 0)
    assert got == b"abc"
    assert db.read_all("f") == b"Xbc"


# ----- check_memdb.c (8.2) ------------------------------------------------------------


def test_check_memdb_setup() -> None:
    db = fresh()
    st = db.statfs()
    assert st.files - st.ffree == 1


def test_check_memdb_dirtest1(db: MemDb) -> None:
    with pytest.raises(NotFound):
        db.mkdir("/dir1/sdir1", 0, 1234)
    with pytest.raises(NotFound):
        db.delete("/dir1", 0, 1234)
    assert db.mkdir("/dir1", 0, 1234).result == 0
    with pytest.raises(AlreadyExists):
        db.mkdir("/dir1", 0, 1234)
    assert db.mkdir("/dir1/sdir1", 0, 1234).result == 0
    with pytest.raises(AlreadyExists):
        db.mkdir("/dir1/sdir1", 0, 1234)
    with pytest.raises(DirectoryNotEmpty):
        db.delete("/dir1", 0, 1234)
    assert db.delete("/dir1/sdir1", 0, 1234).result == 0
    assert db.delete("/dir1", 0, 1234).result == 0
    assert db.statfs().files - db.statfs().ffree == 1


def test_check_memdb_filetest1(db: MemDb) -> None:
    fn = "/dir1/f1"
    buf = bytes(1024)
    with pytest.raises(NotFound):
        db.read_all(fn)
    db.mkdir("/dir1", 0, 1234)
    with pytest.raises(NotFound):
        db.read_all(fn)
    with pytest.raises(NotFound):
        db.write(fn, 0, 1234, buf, 0)
    assert db.create(fn, 0, 1234).result == 0
    assert db.write(fn, 0, 1234, buf, 0).result == 1024
    assert db.read_all(fn) == buf
    assert db.write(fn, 0, 1234, b"0123456789", 0, truncate=True).result == 10
    assert len(db.read_all(fn)) == 10
    assert db.write(fn, 0, 1234, b"X", 3).result == 1
    assert db.write(fn, 0, 1234, b"X", 6).result == 1
    assert db.read_all(fn) == b"012X45X789"
    assert db.delete(fn, 0, 1234).result == 0
    with pytest.raises(NotFound):
        db.delete(fn, 0, 1234)
    assert db.delete("/dir1", 0, 1234).result == 0


def _indextest_db() -> MemDb:
    db = fresh()
    zeros = bytes(32 * 1024)
    for i in range(100):
        assert db.create(f"testfile{i}", 0, 1234).result == 0
        assert db.write(f"testfile{i}", 0, 1234, zeros, 0).result == len(zeros)
    return db


def test_check_memdb_indextest1() -> None:
    db = _indextest_db()
    st = db.statfs()
    assert st.files - st.ffree == 101
    index = db.encode_index()
    version, last_inode, writer, mtime, size, total = struct.unpack_from("<QQIIII", index)
    assert version == 201
    assert last_inode == 200
    assert writer == 0
    assert mtime == 1234
    assert size == 101
    assert total == 32 + 101 * 40
    assert len(index) == total
    assert hashlib.sha256(index).hexdigest() == INDEX_VECTOR


def test_index_vector_survives_reload() -> None:
    db = _indextest_db()
    again = reload(db)
    assert hashlib.sha256(again.encode_index()).hexdigest() == INDEX_VECTOR
    assert again.checksum() == db.checksum()


def test_check_memdb_loaddb1(db: MemDb) -> None:
    t = 1234
    db.mkdir("dir1", 0, t)
    db.create("dir1/file1", 0, t)
    db.create("dir1/file2", 0, t)
    db.mkdir("dir2", 0, t)
    db.rename("dir1/file1", "dir2/file1", 0, t)
    db.rename("dir1/file2", "dir2/file2", 0, t)
    for name in ("dir2/file1", "dir2/file2"):
        with pytest.raises(AlreadyExists):
            db.create(name, 0, t)
    # the children (inodes 3, 4) come before their parent (5) in rowid order
    assert db.index[3].parent == 5
    again = reload(db)
    for name in ("dir2/file1", "dir2/file2"):
        with pytest.raises(AlreadyExists):
            again.create(name, 0, t)
    assert content_state(again) == content_state(db)
    assert again.encode_index() == db.encode_index()
    assert again.root.version == db.root.version


def test_check_memdb_loaddb2(db: MemDb) -> None:
    t = 1234
    db.mkdir("dir1", 0, t)
    db.mkdir("dir1/sd1", 0, t)
    db.create("dir1/file1", 0, t)
    db.create("dir1/file2", 0, t)
    db.mkdir("dir2", 0, t)
    db.rename("dir1/sd1", "dir2/sd1", 0, t)
    db.rename("dir1/file1", "dir2/sd1/file1", 0, t)
    db.rename("dir1/file2", "dir2/sd1/file2", 0, t)
    db.create("dir2/file3", 0, t)
    with pytest.raises(AlreadyExists):
        db.mkdir("dir2/sd1", 0, t)
    again = reload(db)
    with pytest.raises(AlreadyExists):
        again.mkdir("dir2/sd1", 0, t)
    assert set(again.readdir("dir2/sd1")) == {"file1", "file2"}
    assert set(again.readdir("dir2")) == {"sd1", "file3"}
    assert again.readdir("dir1") == ()
    assert content_state(again) == content_state(db)
    assert again.encode_index() == db.encode_index()


# ----- checksums and index layout (1.8), re-derived from the documented layout --------


def _ref_fields(inode: int | None, e) -> bytes:
    out = b"" if inode is None else struct.pack("<Q", inode)
    out += struct.pack("<QIIIBQ", e.version, e.writer, e.mtime, len(e.data), e.type, e.parent)
    out += e.name.encode()
    if e.type == DT_REG and e.data:
        out += e.data
    return out


def _small_tree() -> MemDb:
    db = fresh()
    db.mkdir("dir", 3, 100)
    db.create("dir/file", 4, 200)
    db.write("dir/file", 5, 300, b"some data", 0)
    db.create("empty", 6, 400)
    return db


def test_entry_checksum_layout() -> None:
    db = _small_tree()
    for e in db.entries():
        assert entry_checksum(e) == hashlib.sha256(_ref_fields(e.inode, e)).digest()


def test_tree_checksum_layout() -> None:
    db = _small_tree()
    ordered = sorted(db.entries(), key=lambda e: e.inode)
    expected = hashlib.sha256(b"".join(_ref_fields(e.inode, e) for e in ordered)).digest()
    assert db.checksum() == expected


def test_encode_index_layout() -> None:
    db = _small_tree()
    ordered = sorted(db.entries(), key=lambda e: e.inode)
    header = struct.pack(
        "<QQIIII",
        db.root.version,
        ordered[-1].inode,
        db.root.writer,
        db.root.mtime,
        len(ordered),
        32 + 40 * len(ordered),
    )
    body = b"".join(
        struct.pack("<Q", e.inode) + hashlib.sha256(_ref_fields(None, e)).digest() for e in ordered
    )
    assert db.encode_index() == header + body
    # root contributes version/writer/mtime of the global state, type DIR, empty name
    root_digest = hashlib.sha256(
        struct.pack("<QIIIBQ", db.root.version, db.root.writer, db.root.mtime, 0, DT_DIR, 0)
    ).digest()
    assert db.encode_index()[32:72] == struct.pack("<Q", 0) + root_digest


def test_last_inode_is_highest_not_latest(db: MemDb) -> None:
    db.create("a", 0, 1)  # 2
    db.create("b", 0, 1)  # 3
    db.delete("b", 0, 1)  # 4
    db.write("a", 0, 1, b"x", 0)  # 5
    _, last_inode, *_ = struct.unpack_from("<QQIIII", db.encode_index())
    assert last_inode == 2


def test_tree_checksum_changes_with_content(db: MemDb) -> None:
    db.create("a", 0, 1)
    db.write("a", 0, 1, b"x", 0)
    before = db.checksum()
    other = fresh()
    other.create("a", 0, 1)
    other.write("a", 0, 1, b"y", 0)
    assert other.checksum() != before
    same = fresh()
    same.create("a", 0, 1)
    same.write("a", 0, 1, b"x", 0)
    assert same.checksum() == before
