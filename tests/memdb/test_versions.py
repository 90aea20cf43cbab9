"""Table 1.6: versions, inodes and the StoreChange each successful change produces."""

from __future__ import annotations

from memdb.records import DT_DIR, DT_REG, Row, StoreChange
from memdb.tree import MemDb


def _attrs(db: MemDb, path: str) -> tuple[int, int, int, int]:
    attr = db.getattr(path)
    assert attr is not None, path
    return attr.inode, attr.version, attr.writer, attr.mtime


def test_fresh_db_first_entry_gets_inode_2(db: MemDb) -> None:
    assert db.root.version == 1
    db.mkdir("a", 0, 10)
    assert _attrs(db, "a") == (2, 2, 0, 10)
    assert db.root.version == 2


def test_mkdir_versions_and_change(db: MemDb) -> None:
    db.mkdir("p", 0, 10)
    applied = db.mkdir("p/c", 5, 77)
    assert applied.result == 0
    assert applied.paths == ()
    assert applied.vmlist_changed is False
    assert db.root.version == 3
    assert (db.root.writer, db.root.mtime) == (5, 77)
    assert _attrs(db, "p/c") == (3, 3, 5, 77)
    assert _attrs(db, "p") == (2, 2, 0, 10)  # parent untouched
    assert applied.change == StoreChange(
        version=3,
        writer=5,
        mtime=77,
        upsert=Row(3, 2, 3, 5, 77, DT_DIR, "c", None),
        delete_inode=None,
    )


def test_create_versions_and_change(db: MemDb) -> None:
    db.mkdir("p", 0, 10)
    applied = db.create("p/f", 4, 88)
    assert applied.result == 0
    assert applied.paths == ("p/f",)
    assert db.root.version == 3
    assert _attrs(db, "p/f") == (3, 3, 4, 88)
    assert _attrs(db, "p") == (2, 2, 0, 10)
    assert applied.change == StoreChange(3, 4, 88, Row(3, 2, 3, 4, 88, DT_REG, "f", None), None)
    attr = db.getattr("p/f")
    assert attr is not None
    assert (attr.size, attr.type) == (0, DT_REG)


def test_write_keeps_inode_and_upserts_whole_blob(db: MemDb) -> None:
    db.mkdir("p", 0, 10)
    db.create("p/f", 0, 10)
    db.write("p/f", 0, 11, b"0123456789", 0)
    applied = db.write("p/f", 9, 99, b"AB", 4)
    assert applied.result == 2
    assert applied.paths == ("p/f",)
    assert db.root.version == 5
    assert (db.root.writer, db.root.mtime) == (9, 99)
    assert _attrs(db, "p/f") == (3, 5, 9, 99)
    assert _attrs(db, "p") == (2, 2, 0, 10)
    assert applied.change == StoreChange(5, 9, 99, Row(3, 2, 5, 9, 99, DT_REG, "f", b"0123AB6789"), None)


def test_truncate_bumps_even_without_size_change(db: MemDb) -> None:
    db.create("f", 0, 10)
    db.write("f", 0, 10, b"abc", 0)
    applied = db.truncate("f", 2, 50, 3)
    assert applied.result == 0
    assert applied.paths == ("f",)
    assert db.root.version == 4
    assert _attrs(db, "f") == (2, 4, 2, 50)
    assert db.read_all("f") == b"abc"
    assert applied.change == StoreChange(4, 2, 50, Row(2, 0, 4, 2, 50, DT_REG, "f", b"abc"), None)


def test_truncate_to_zero_stores_null(db: MemDb) -> None:
    db.create("f", 0, 10)
    db.write("f", 0, 10, b"abc", 0)
    applied = db.truncate("f", 0, 20, 0)
    assert applied.change is not None
    assert applied.change.upsert == Row(2, 0, 4, 0, 20, DT_REG, "f", None)
    assert db.read_all("f") == b""


def test_set_mtime_uses_given_mtime(db: MemDb) -> None:
    db.mkdir("p", 0, 10)
    db.create("p/f", 0, 10)
    db.write("p/f", 0, 10, b"data", 0)
    applied = db.set_mtime("p/f", 6, 5)  # going back in time is fine outside locks
    assert applied.result == 0
    assert applied.paths == ("p/f",)
    assert applied.vmlist_changed is False
    assert db.root.version == 5
    assert (db.root.writer, db.root.mtime) == (6, 5)
    assert _attrs(db, "p/f") == (3, 5, 6, 5)
    assert _attrs(db, "p") == (2, 2, 0, 10)
    assert db.read_all("p/f") == b"data"
    assert applied.change == StoreChange(5, 6, 5, Row(3, 2, 5, 6, 5, DT_REG, "f", b"data"), None)


def test_set_mtime_on_dir(db: MemDb) -> None:
    db.mkdir("p", 0, 10)
    applied = db.set_mtime("p", 0, 1)
    assert _attrs(db, "p") == (2, 3, 0, 1)
    assert applied.change is not None
    assert applied.change.upsert == Row(2, 0, 3, 0, 1, DT_DIR, "p", None)


def test_rename_keeps_inode_sets_version_writer_mtime(db: MemDb) -> None:
    db.mkdir("a", 0, 10)  # 2
    db.mkdir("b", 0, 10)  # 3
    db.create("a/f", 0, 10)  # 4
    db.write("a/f", 0, 10, b"payload", 0)  # 5
    applied = db.rename("a/f", "b/g", 3, 123)
    assert applied.result == 0
    assert applied.paths == ("a/f", "b/g")
    assert db.root.version == 6
    assert (db.root.writer, db.root.mtime) == (3, 123)
    assert db.getattr("a/f") is None
    assert _attrs(db, "b/g") == (4, 6, 3, 123)
    assert db.read_all("b/g") == b"payload"
    assert _attrs(db, "a") == (2, 2, 0, 10)
    assert _attrs(db, "b") == (3, 3, 0, 10)
    assert db.readdir("a") == ()
    assert db.readdir("b") == ("g",)
    assert applied.change == StoreChange(6, 3, 123, Row(4, 3, 6, 3, 123, DT_REG, "g", b"payload"), None)
    assert db.lookup("b/g") is db.index[4]


def test_rename_replacing_target_deletes_its_inode(db: MemDb) -> None:
    db.create("src", 0, 10)  # 2
    db.write("src", 0, 10, b"new", 0)  # 3
    db.create("dst", 0, 10)  # 4
    db.write("dst", 0, 10, b"old", 0)  # 5
    applied = db.rename("src", "dst", 0, 60)
    assert applied.change == StoreChange(6, 0, 60, Row(2, 0, 6, 0, 60, DT_REG, "dst", b"new"), 4)
    assert 4 not in db.index
    assert db.read_all("dst") == b"new"
    assert db.getattr("src") is None
    assert set(db.readdir("")) == {"dst"}
    assert db.statfs().files - db.statfs().ffree == 2


def test_rename_file_replaces_empty_dir_and_dir_replaces_file(db: MemDb) -> None:
    # Quirk 4: the target is replaced whatever its type.
    db.create("f", 0, 10)  # 2
    db.mkdir("emptydir", 0, 10)  # 3
    applied = db.rename("f", "emptydir", 0, 20)
    assert applied.change is not None
    assert applied.change.delete_inode == 3
    attr = db.getattr("emptydir")
    assert attr is not None
    assert (attr.inode, attr.type) == (2, DT_REG)

    db.mkdir("d2", 0, 30)  # 5
    applied = db.rename("d2", "emptydir", 0, 40)
    assert applied.change is not None
    assert applied.change.delete_inode == 2
    attr = db.getattr("emptydir")
    assert attr is not None
    assert (attr.inode, attr.type) == (5, DT_DIR)


def test_rename_empty_dir(db: MemDb) -> None:
    db.mkdir("a", 0, 10)
    db.mkdir("a/empty", 0, 10)
    applied = db.rename("a/empty", "moved", 1, 20)
    assert _attrs(db, "moved") == (3, 4, 1, 20)
    assert applied.change == StoreChange(4, 1, 20, Row(3, 0, 4, 1, 20, DT_DIR, "moved", None), None)


def test_rename_onto_itself_is_a_noop(db: MemDb) -> None:
    db.create("f", 0, 10)
    db.write("f", 0, 10, b"x", 0)
    applied = db.rename("f", "f", 0, 99)
    assert db.root.version == 3
    assert _attrs(db, "f") == (2, 3, 0, 10)
    assert db.read_all("f") == b"x"
    assert applied.change is None


def test_rename_target_basename_is_not_checked(db: MemDb) -> None:
    # 1.5 rename step 6: the basename of `to` is not checked for "." / "..".
    db.mkdir("e", 0, 10)
    db.create("f", 0, 10)
    db.rename("f", "e/..", 0, 20)
    assert db.readdir("e") == ("..",)
    assert db.getattr("f") is None


def test_delete_bumps_only_global_version(db: MemDb) -> None:
    db.mkdir("p", 0, 10)  # 2
    db.create("p/f", 0, 10)  # 3
    db.write("p/f", 0, 10, b"abc", 0)  # 4
    applied = db.delete("p/f", 8, 321)
    assert applied.result == 0
    assert applied.paths == ("p/f",)
    assert db.root.version == 5
    assert (db.root.writer, db.root.mtime) == (8, 321)
    assert db.getattr("p/f") is None
    assert 3 not in db.index
    assert _attrs(db, "p") == (2, 2, 0, 10)
    assert applied.change == StoreChange(version=5, writer=8, mtime=321, upsert=None, delete_inode=3)


def test_delete_empty_dir(db: MemDb) -> None:
    db.mkdir("p", 0, 10)
    applied = db.delete("p", 0, 20)
    assert applied.change == StoreChange(3, 0, 20, None, 2)
    assert db.readdir("") == ()


def test_inodes_are_never_reused(db: MemDb) -> None:
    db.create("a", 0, 10)  # 2
    db.delete("a", 0, 10)  # 3
    db.create("a", 0, 10)  # 4
    attr = db.getattr("a")
    assert attr is not None
    assert attr.inode == 4


def test_each_success_bumps_version_exactly_once(db: MemDb) -> None:
    ops = [
        lambda: db.mkdir("d", 0, 1),
        lambda: db.create("d/f", 0, 1),
        lambda: db.write("d/f", 0, 1, b"x", 0),
        lambda: db.truncate("d/f", 0, 1, 5),
        lambda: db.set_mtime("d/f", 0, 1),
        lambda: db.rename("d/f", "g", 0, 1),
        lambda: db.delete("g", 0, 1),
    ]
    for expected, op in enumerate(ops, start=2):
        applied = op()
        assert db.root.version == expected
        assert applied.change is not None
        assert applied.change.version == expected


def test_check_memdb_version_vector(db: MemDb) -> None:
    # 1.2: 100 x (create + 32 KiB write): global 201, file i has inode 2+2i, version 3+2i.
    zeros = bytes(32 * 1024)
    for i in range(100):
        db.create(f"testfile{i}", 0, 1234)
        assert db.write(f"testfile{i}", 0, 1234, zeros, 0).result == len(zeros)
    assert db.root.version == 201
    for i in range(100):
        attr = db.getattr(f"testfile{i}")
        assert attr is not None
        assert (attr.inode, attr.version, attr.size) == (2 + 2 * i, 3 + 2 * i, 32 * 1024)
    assert max(e.inode for e in db.entries()) == 200
    assert len(list(db.entries())) == 101
