"""statfs values (3.4)."""

from __future__ import annotations

from memdb.tree import MemDb


def test_fresh_tree(db: MemDb) -> None:
    st = db.statfs()
    assert st.bsize == 4096
    assert st.blocks == 32768
    assert st.bfree == 32768
    assert st.files == 262144
    assert st.ffree == 262144 - 1
    assert st.files - st.ffree == 1
    assert st.namemax == 256


def test_entries_counted_root_included(db: MemDb) -> None:
    db.mkdir("a", 0, 1)
    db.create("a/b", 0, 1)
    db.create("c", 0, 1)
    assert db.statfs().ffree == 262144 - 4
    db.delete("c", 0, 1)
    assert db.statfs().ffree == 262144 - 3


def test_bfree_ceil_of_total_size(db: MemDb) -> None:
    db.create("a", 0, 1)
    db.write("a", 0, 1, b"x", 0)
    assert db.statfs().bfree == 32768 - 1
    db.create("b", 0, 1)
    db.write("b", 0, 1, b"y", 0)
    # 2 bytes in total: ceil over the sum, not per file
    assert db.statfs().bfree == 32768 - 1
    db.write("a", 0, 1, bytes(4094), 0)  # 4094 + 1 = 4095 bytes
    assert db.statfs().bfree == 32768 - 1
    db.write("a", 0, 1, bytes(4095), 0)  # 4095 + 1 = 4096 bytes
    assert db.statfs().bfree == 32768 - 1
    db.write("a", 0, 1, bytes(4096), 0)  # 4097 bytes
    assert db.statfs().bfree == 32768 - 2


def test_bfree_after_big_write_and_truncate(db: MemDb) -> None:
    db.create("a", 0, 1)
    db.write("a", 0, 1, bytes(1024 * 1024), 0)
    assert db.statfs().bfree == 32768 - 256
    db.truncate("a", 0, 1, 0)
    assert db.statfs().bfree == 32768


def test_directories_have_size_zero(db: MemDb) -> None:
    db.mkdir("a", 0, 1)
    attr = db.getattr("a")
    assert attr is not None
    assert attr.size == 0
    assert db.statfs().bfree == 32768
