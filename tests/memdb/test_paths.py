"""Path resolution and name rules (1.3)."""

from __future__ import annotations

import pytest

from errors import AccessDenied, AlreadyExists, NotFound
from memdb.paths import components, is_lockdir_path, split_parent
from memdb.tree import MemDb


@pytest.fixture
def tree(db: MemDb) -> MemDb:
    db.mkdir("a", 0, 1)
    db.mkdir("a/b", 0, 1)
    db.create("a/b/f", 0, 1)
    db.write("a/b/f", 0, 1, b"content", 0)
    return db


@pytest.mark.parametrize("path", ["a/b/f", "/a/b/f", "a//b/f", "//a///b//f", "a/b/f/", "/a/b/f//"])
def test_empty_components_ignored(tree: MemDb, path: str) -> None:
    attr = tree.getattr(path)
    assert attr is not None
    assert attr.inode == 4
    assert tree.read_all(path) == b"content"


@pytest.mark.parametrize("path", ["", "/", "//", "///"])
def test_root_paths(tree: MemDb, path: str) -> None:
    attr = tree.getattr(path)
    assert attr is not None
    assert attr.inode == 0
    assert tree.readdir(path) == ("a",)


def test_dot_is_root_for_lookups(tree: MemDb) -> None:
    attr = tree.getattr(".")
    assert attr is not None
    assert attr.inode == 0
    assert tree.readdir(".") == ("a",)


def test_delete_dot_is_root(tree: MemDb) -> None:
    with pytest.raises(AccessDenied):
        tree.delete(".", 0, 2)


def test_rename_dot_is_root(tree: MemDb) -> None:
    with pytest.raises(AccessDenied):
        tree.rename(".", "x", 0, 2)


@pytest.mark.parametrize("path", ["./a", "a/./b", "a/b/../b", "a/..", "a/b/f/.."])
def test_dot_and_dotdot_not_interpreted_inside_paths(tree: MemDb, path: str) -> None:
    assert tree.getattr(path) is None


@pytest.mark.parametrize("path", ["a/b/f/x", "a/b/f/x/y", "a/b/f/."])
def test_lookup_through_file_not_found(tree: MemDb, path: str) -> None:
    assert tree.getattr(path) is None
    with pytest.raises(NotFound):
        tree.read_all(path)


def test_trailing_slashes_stripped_for_changes(db: MemDb) -> None:
    db.mkdir("d/", 0, 1)
    db.create("d/f//", 0, 1)
    db.write("d/f/", 0, 1, b"x", 0)
    db.set_mtime("d/f/", 0, 7)
    assert set(db.readdir("")) == {"d"}
    assert db.readdir("d") == ("f",)
    attr = db.getattr("d/f")
    assert attr is not None
    assert attr.mtime == 7
    with pytest.raises(AlreadyExists):
        db.mkdir("/d//", 0, 1)


@pytest.mark.parametrize(
    "name", ["x" * 300, "tab\there", "colon:semi;", "sp ace", "ünïcödé", "...", ".hidden", "-"]
)
def test_no_other_name_validation(db: MemDb, name: str) -> None:
    db.create(name, 0, 1)
    db.mkdir(name + "_d", 0, 1)
    assert set(db.readdir("")) == {name, name + "_d"}
    assert db.getattr(name) is not None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("x", (".", "x")),
        ("/x", (".", "x")),
        ("a/b", ("a", "b")),
        ("a//b", ("a", "b")),
        ("a/b/", ("a", "b")),
        ("", (".", ".")),
        ("/", (".", ".")),
        (".", (".", ".")),
        ("a/..", ("a", "..")),
    ],
)
def test_split_parent_like_glib(path: str, expected: tuple[str, str]) -> None:
    assert split_parent(path) == expected


def test_components() -> None:
    assert components("/a//b/") == ["a", "b"]
    assert components("") == []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("priv/lock/x", True),
        ("/priv/lock/x", True),
        ("priv/lock/x/y", True),
        ("priv/lock/", False),
        ("priv/lock", False),
        ("priv/locks/x", False),
        ("nodes/n1/priv/lock/x", False),
    ],
)
def test_is_lockdir_path(path: str, expected: bool) -> None:
    assert is_lockdir_path(path) is expected
