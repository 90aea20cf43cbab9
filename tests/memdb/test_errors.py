"""Section 1.5: every errno row of every change, in the documented check order.

Each failing call must also leave the global version, the tree, the vmlist and the
lock table exactly as they were (all checks run before the version bump).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from errors import (
    AccessDenied,
    AlreadyExists,
    DirectoryNotEmpty,
    ErrorLatched,
    FileTooLarge,
    NotADirectory,
    NotFound,
)
from memdb.tree import MemDb
from tests.memdb.helpers import MIB, tree_state

Op = Callable[[MemDb], object]

T = 2000  # op time used by the failing calls


def _case(op: Op, exc: type[Exception], id_: str):
    return pytest.param(op, exc, id=id_)


MKDIR_ERRORS = [
    _case(lambda db: db.mkdir("missing/x", 0, T), NotFound, "parent-missing"),
    _case(lambda db: db.mkdir("f/x", 0, T), NotADirectory, "parent-is-file"),
    _case(lambda db: db.mkdir("f/x/y", 0, T), NotFound, "lookup-through-file"),
    _case(lambda db: db.mkdir("missing/..", 0, T), NotFound, "parent-before-basename"),
    _case(lambda db: db.mkdir("f/..", 0, T), NotADirectory, "notdir-before-basename"),
    _case(lambda db: db.mkdir("", 0, T), AccessDenied, "root-empty"),
    _case(lambda db: db.mkdir("/", 0, T), AccessDenied, "root-slash"),
    _case(lambda db: db.mkdir(".", 0, T), AccessDenied, "root-dot"),
    _case(lambda db: db.mkdir("d/.", 0, T), AccessDenied, "basename-dot"),
    _case(lambda db: db.mkdir("d/..", 0, T), AccessDenied, "basename-dotdot"),
    _case(lambda db: db.mkdir("d/../", 0, T), AccessDenied, "basename-dotdot-trailing-slash"),
    _case(lambda db: db.mkdir("d", 0, T), AlreadyExists, "dir-exists"),
    _case(lambda db: db.mkdir("d/", 0, T), AlreadyExists, "dir-exists-trailing-slash"),
    _case(lambda db: db.mkdir("f", 0, T), AlreadyExists, "file-exists"),
    _case(lambda db: db.mkdir("priv/lock/l1", 0, T), AlreadyExists, "lock-held"),
]

CREATE_ERRORS = [
    _case(lambda db: db.create("missing/x", 0, T), NotFound, "parent-missing"),
    _case(lambda db: db.create("f/x", 0, T), NotADirectory, "parent-is-file"),
    _case(lambda db: db.create("f/x/y", 0, T), NotFound, "lookup-through-file"),
    _case(lambda db: db.create("missing/..", 0, T), NotFound, "parent-before-basename"),
    _case(lambda db: db.create("", 0, T), AccessDenied, "root"),
    _case(lambda db: db.create("d/.", 0, T), AccessDenied, "basename-dot"),
    _case(lambda db: db.create("d/..", 0, T), AccessDenied, "basename-dotdot"),
    _case(lambda db: db.create("nodes/n2/qemu-server/100.conf", 0, T), AlreadyExists, "vmid-other-node"),
    _case(lambda db: db.create("nodes/n1/lxc/100.conf", 0, T), AlreadyExists, "vmid-other-type"),
    _case(lambda db: db.create("nodes/n3/qemu-server/100.conf", 0, T), NotFound, "vmid-check-after-parent"),
    _case(lambda db: db.create("d", 0, T), NotADirectory, "entry-is-dir"),
    _case(lambda db: db.create("f", 0, T), AlreadyExists, "file-exists"),
    _case(lambda db: db.create("nodes/n1/qemu-server/100.conf", 0, T), AlreadyExists, "vm-config-exists"),
]

WRITE_ERRORS = [
    _case(lambda db: db.write("f", 0, T, b"x" * (MIB + 1), 0), FileTooLarge, "too-large"),
    _case(lambda db: db.write("f", 0, T, b"xy", MIB - 1), FileTooLarge, "offset-plus-count"),
    _case(lambda db: db.write("missing/x", 0, T, b"x", MIB), FileTooLarge, "efbig-before-lookup"),
    _case(lambda db: db.write("", 0, T, b"x", MIB), FileTooLarge, "efbig-before-basename"),
    _case(lambda db: db.write("d", 0, T, b"x", MIB), FileTooLarge, "efbig-before-isdir"),
    _case(lambda db: db.write("missing/x", 0, T, b"x", 0), NotFound, "parent-missing"),
    _case(lambda db: db.write("f/x", 0, T, b"x", 0), NotADirectory, "parent-is-file"),
    _case(lambda db: db.write("f/x/y", 0, T, b"x", 0), NotFound, "lookup-through-file"),
    _case(lambda db: db.write("d/..", 0, T, b"x", 0), AccessDenied, "basename-dotdot"),
    _case(lambda db: db.write("/", 0, T, b"x", 0), AccessDenied, "root"),
    _case(
        lambda db: db.write("nodes/n2/qemu-server/100.conf", 0, T, b"x", 0),
        AlreadyExists,
        "vmid-before-enoent",
    ),
    _case(lambda db: db.write("nodes/n1/lxc/100.conf", 0, T, b"x", 0), AlreadyExists, "vmid-other-type"),
    _case(lambda db: db.write("d", 0, T, b"x", 0), NotADirectory, "entry-is-dir"),
    _case(lambda db: db.write("e", 0, T, b"", 0, truncate=True), NotADirectory, "entry-is-empty-dir"),
    _case(lambda db: db.write("nope", 0, T, b"x", 0), NotFound, "write-without-create"),
]

TRUNCATE_ERRORS = [
    _case(lambda db: db.truncate("f", 0, T, MIB + 1), FileTooLarge, "too-large"),
    _case(lambda db: db.truncate("missing/x", 0, T, MIB + 1), FileTooLarge, "efbig-before-lookup"),
    _case(lambda db: db.truncate("missing/x", 0, T, 0), NotFound, "parent-missing"),
    _case(lambda db: db.truncate("f/x", 0, T, 0), NotADirectory, "parent-is-file"),
    _case(lambda db: db.truncate("d/.", 0, T, 0), AccessDenied, "basename-dot"),
    _case(lambda db: db.truncate("nodes/n2/qemu-server/100.conf", 0, T, 0), AlreadyExists, "vmid-other-node"),
    _case(lambda db: db.truncate("d", 0, T, 0), NotADirectory, "entry-is-dir"),
    _case(lambda db: db.truncate("nope", 0, T, 3), NotFound, "missing"),
]

MTIME_ERRORS = [
    _case(lambda db: db.set_mtime("missing/x", 0, T), NotFound, "parent-missing"),
    _case(lambda db: db.set_mtime("f/x", 0, T), NotADirectory, "parent-is-file"),
    _case(lambda db: db.set_mtime("f/x/y", 0, T), NotFound, "lookup-through-file"),
    _case(lambda db: db.set_mtime("missing/..", 0, T), NotFound, "parent-before-basename"),
    _case(lambda db: db.set_mtime("", 0, T), AccessDenied, "root-empty"),
    _case(lambda db: db.set_mtime("/", 0, T), AccessDenied, "root-slash"),
    _case(lambda db: db.set_mtime("d/..", 0, T), AccessDenied, "basename-dotdot"),
    _case(lambda db: db.set_mtime("d/nope", 0, T), NotFound, "entry-missing"),
    _case(lambda db: db.set_mtime("priv/lock/l1", 0, 999), AccessDenied, "lock-mtime-backwards"),
    _case(lambda db: db.set_mtime("priv/lock/l1", 0, 0), AccessDenied, "lock-utime-zero"),
    _case(lambda db: db.set_mtime("priv/lock/l1", 7, T), AccessDenied, "lock-other-writer"),
    _case(lambda db: db.set_mtime("priv/lock/l1", 7, 999), AccessDenied, "lock-both"),
]

RENAME_ERRORS = [
    _case(lambda db: db.rename("nope", "x", 0, T), NotFound, "from-missing"),
    _case(lambda db: db.rename("f/x", "x", 0, T), NotFound, "from-through-file"),
    _case(lambda db: db.rename("", "x", 0, T), AccessDenied, "from-root-empty"),
    _case(lambda db: db.rename("/", "x", 0, T), AccessDenied, "from-root-slash"),
    _case(lambda db: db.rename("f", "nodes/n2/qemu-server/100.conf", 0, T), AlreadyExists, "vmid-other-node"),
    _case(lambda db: db.rename("f", "nodes/n1/lxc/100.conf", 0, T), AlreadyExists, "vmid-other-type"),
    _case(
        lambda db: db.rename("f", "nodes/n3/qemu-server/100.conf", 0, T),
        AlreadyExists,
        "vmid-before-target-parent",
    ),
    _case(lambda db: db.rename("priv/lock/l1", "priv/lock/l2", 0, T), AccessDenied, "lock"),
    _case(lambda db: db.rename("priv/lock/l1", "e2", 0, T), AccessDenied, "lock-out-of-lockdir"),
    _case(lambda db: db.rename("priv/lock/l1", "missing/x", 0, T), AccessDenied, "lock-before-target-parent"),
    _case(lambda db: db.rename("f", "d", 0, T), DirectoryNotEmpty, "target-nonempty-dir"),
    _case(lambda db: db.rename("e", "d", 0, T), DirectoryNotEmpty, "dir-onto-nonempty-dir"),
    _case(lambda db: db.rename("f", "missing/x", 0, T), NotFound, "target-parent-missing"),
    _case(lambda db: db.rename("e", "f/x", 0, T), NotADirectory, "target-parent-is-file"),
    _case(lambda db: db.rename("d", "d2", 0, T), DirectoryNotEmpty, "from-nonempty-dir"),
    _case(lambda db: db.rename("d", "f", 0, T), DirectoryNotEmpty, "from-nonempty-onto-file"),
    _case(lambda db: db.rename("d", "e", 0, T), DirectoryNotEmpty, "from-nonempty-onto-empty-dir"),
    _case(lambda db: db.rename("d", "missing/x", 0, T), NotFound, "target-parent-before-from-nonempty"),
]

DELETE_ERRORS = [
    _case(lambda db: db.delete("nope", 0, T), NotFound, "missing"),
    _case(lambda db: db.delete("f/x", 0, T), NotFound, "through-file"),
    _case(lambda db: db.delete("d/nope", 0, T), NotFound, "missing-in-dir"),
    _case(lambda db: db.delete("", 0, T), AccessDenied, "root-empty"),
    _case(lambda db: db.delete("/", 0, T), AccessDenied, "root-slash"),
    _case(lambda db: db.delete("//", 0, T), AccessDenied, "root-double-slash"),
    _case(lambda db: db.delete("d", 0, T), DirectoryNotEmpty, "nonempty-dir"),
    _case(lambda db: db.delete("priv", 0, T), DirectoryNotEmpty, "nonempty-priv"),
]


def _check_fails_unchanged(db: MemDb, op: Op, exc: type[Exception]) -> None:
    before = tree_state(db)
    with pytest.raises(exc) as info:
        op(db)
    assert type(info.value) is exc
    assert tree_state(db) == before


@pytest.mark.parametrize(("op", "exc"), MKDIR_ERRORS)
def test_mkdir_errors(populated: MemDb, op: Op, exc: type[Exception]) -> None:
    _check_fails_unchanged(populated, op, exc)


@pytest.mark.parametrize(("op", "exc"), CREATE_ERRORS)
def test_create_errors(populated: MemDb, op: Op, exc: type[Exception]) -> None:
    _check_fails_unchanged(populated, op, exc)


@pytest.mark.parametrize(("op", "exc"), WRITE_ERRORS)
def test_write_errors(populated: MemDb, op: Op, exc: type[Exception]) -> None:
    _check_fails_unchanged(populated, op, exc)


@pytest.mark.parametrize(("op", "exc"), TRUNCATE_ERRORS)
def test_truncate_errors(populated: MemDb, op: Op, exc: type[Exception]) -> None:
    _check_fails_unchanged(populated, op, exc)


@pytest.mark.parametrize(("op", "exc"), MTIME_ERRORS)
def test_set_mtime_errors(populated: MemDb, op: Op, exc: type[Exception]) -> None:
    _check_fails_unchanged(populated, op, exc)


@pytest.mark.parametrize(("op", "exc"), RENAME_ERRORS)
def test_rename_errors(populated: MemDb, op: Op, exc: type[Exception]) -> None:
    _check_fails_unchanged(populated, op, exc)


@pytest.mark.parametrize(("op", "exc"), DELETE_ERRORS)
def test_delete_errors(populated: MemDb, op: Op, exc: type[Exception]) -> None:
    _check_fails_unchanged(populated, op, exc)


def test_create_vmid_check_before_entry_is_dir(populated: MemDb) -> None:
    # Step 5 (VMID) runs before step 6 (entry is a directory): a dir at a VM config
    # path of another node gives EEXIST, not ENOTDIR.
    populated.mkdir("nodes/n2/qemu-server/100.conf", 0, 600)
    _check_fails_unchanged(
        populated, lambda db: db.create("nodes/n2/qemu-server/100.conf", 0, T), AlreadyExists
    )
    _check_fails_unchanged(
        populated, lambda db: db.write("nodes/n2/qemu-server/100.conf", 0, T, b"x", 0), AlreadyExists
    )


def test_rename_vmid_check_before_target_not_empty(populated: MemDb) -> None:
    populated.mkdir("nodes/n2/qemu-server/100.conf", 0, 600)
    populated.create("nodes/n2/qemu-server/100.conf/inner", 0, 600)
    _check_fails_unchanged(
        populated, lambda db: db.rename("f", "nodes/n2/qemu-server/100.conf", 0, T), AlreadyExists
    )


def test_rename_nonempty_dir_onto_file_keeps_target(populated: MemDb) -> None:
    # Quirk 3: the C code drops the target before failing; a reimplementation must not.
    with pytest.raises(DirectoryNotEmpty):
        populated.rename("d", "f", 0, T)
    assert populated.read_all("f") == b"hello"
    assert populated.getattr("f") is not None


def test_set_mtime_on_lock_equal_mtime_same_writer_is_allowed(populated: MemDb) -> None:
    # mtime == entry.mtime is not "below current", so the refresh succeeds.
    before = populated.root.version
    populated.set_mtime("priv/lock/l1", 0, 1000)
    assert populated.root.version == before + 1


# ----- the error latch (1.7) -----------------------------------------------------------

LATCHED_CHANGES = [
    pytest.param(lambda db: db.mkdir("new", 0, T), id="mkdir"),
    pytest.param(lambda db: db.mkdir("missing/x", 0, T), id="mkdir-before-enoent"),
    pytest.param(lambda db: db.mkdir("d", 0, T), id="mkdir-before-eexist"),
    pytest.param(lambda db: db.create("new", 0, T), id="create"),
    pytest.param(lambda db: db.create("f", 0, T), id="create-before-eexist"),
    pytest.param(lambda db: db.write("f", 0, T, b"x", 0), id="write"),
    pytest.param(lambda db: db.write("f", 0, T, b"x", MIB), id="write-before-efbig"),
    pytest.param(lambda db: db.truncate("f", 0, T, 0), id="truncate"),
    pytest.param(lambda db: db.truncate("f", 0, T, MIB + 1), id="truncate-before-efbig"),
    pytest.param(lambda db: db.set_mtime("f", 0, T), id="mtime"),
    pytest.param(lambda db: db.set_mtime("", 0, T), id="mtime-before-eacces"),
    pytest.param(lambda db: db.rename("f", "g", 0, T), id="rename"),
    pytest.param(lambda db: db.rename("nope", "g", 0, T), id="rename-before-enoent"),
    pytest.param(lambda db: db.delete("f", 0, T), id="delete"),
    pytest.param(lambda db: db.delete("nope", 0, T), id="delete-before-enoent"),
    pytest.param(lambda db: db.delete("", 0, T), id="delete-before-eacces"),
]


@pytest.mark.parametrize("op", LATCHED_CHANGES)
def test_latch_fails_every_change_first(populated: MemDb, op: Op) -> None:
    populated.latched = True
    _check_fails_unchanged(populated, op, ErrorLatched)


def test_reads_work_while_latched(populated: MemDb) -> None:
    populated.latched = True
    assert populated.read_all("f") == b"hello"
    assert populated.read("f", 3, 1) == b"ell"
    attr = populated.getattr("f")
    assert attr is not None
    assert attr.size == 5
    assert set(populated.readdir("")) == {"d", "e", "f", "nodes", "priv"}
    assert populated.statfs().files - populated.statfs().ffree == len(list(populated.entries()))
    assert populated.lookup("d/sub/x") is not None
    assert len(populated.encode_index()) == 32 + 40 * len(list(populated.entries()))


def test_latch_is_not_cleared_by_failures(populated: MemDb) -> None:
    populated.latched = True
    for _ in range(2):
        with pytest.raises(ErrorLatched):
            populated.create("new", 0, T)
    assert populated.latched is True


# ----- read-only operations ----------------------------------------------------------


@pytest.mark.parametrize("path", ["nope", "d", "d/sub", "f/x", "", "/"])
def test_read_missing_or_dir_is_enoent(populated: MemDb, path: str) -> None:
    with pytest.raises(NotFound):
        populated.read_all(path)
    with pytest.raises(NotFound):
        populated.read(path, 10, 0)


@pytest.mark.parametrize("path", ["nope", "f", "f/x", "d/nope"])
def test_readdir_missing_or_file_is_empty(populated: MemDb, path: str) -> None:
    assert tuple(populated.readdir(path)) == ()


def test_getattr_missing_is_none(populated: MemDb) -> None:
    assert populated.getattr("nope") is None
    assert populated.getattr("f/x") is None
