"""memdb/snapshot.py: a snapshot made change by change equals one made from the whole tree,
old snapshots never change, and a rename is one step for readers."""

from __future__ import annotations

import random

import pytest

from errors import PmxcfsError
from memdb.snapshot import Published, TreeSnapshot
from memdb.tree import MemDb


def same(a: TreeSnapshot, b: TreeSnapshot) -> None:
    assert dict(a.nodes) == dict(b.nodes)
    assert (a.used_bytes, a.vmlist, a.writable) == (b.used_bytes, b.vmlist, b.writable)


def random_change(memdb: MemDb, rng: random.Random, now: int) -> object:
    """One change of any kind on a small name space, so that names collide often."""
    dirs = ["", "a", "a/b", "nodes", "nodes/n1", "nodes/n1/qemu-server", "priv", "priv/lock"]
    name = rng.choice(["x", "y", "z.cfg", "100.conf", "101.conf", "d"])
    path = f"{rng.choice(dirs)}/{name}".lstrip("/")
    other = f"{rng.choice(dirs)}/{rng.choice(['x', 'y', 'd', '100.conf'])}".lstrip("/")
    data = rng.randbytes(rng.choice([0, 3, 100, 5000]))
    match rng.randrange(7):
        case 0:
            return memdb.mkdir(path, 0, now)
        case 1:
            return memdb.create(path, 0, now)
        case 2:
            return memdb.write(path, 0, now, data, rng.choice([0, 2, 4000]))
        case 3:
            return memdb.truncate(path, 0, now, rng.choice([0, 1, 9000]))
        case 4:
            return memdb.delete(path, 0, now)
        case 5:
            return memdb.rename(path, other, 0, now)
        case _:
            return memdb.set_mtime(path, 0, now + 7)


@pytest.mark.parametrize("seed", range(8))
def test_change_by_change_equals_the_whole_tree(seed: int) -> None:
    rng = random.Random(seed)
    memdb = MemDb()
    memdb.start_fresh(1)
    for path in ("a", "a/b", "nodes", "nodes/n1", "nodes/n1/qemu-server", "priv", "priv/lock"):
        memdb.mkdir(path, 0, 1)
    snapshot = TreeSnapshot.of(memdb, writable=True)
    applied_count = 0
    for step in range(600):
        before = snapshot
        frozen = dict(before.nodes)
        try:
            applied = random_change(memdb, rng, 10 + step)
        except PmxcfsError:
            continue
        applied_count += 1
        change = applied.change  # type: ignore[attr-defined]
        if change is not None:
            snapshot = snapshot.with_change(memdb, change)
        if applied.vmlist_changed:  # type: ignore[attr-defined]
            snapshot = snapshot.with_vmlist(memdb.vmlist.snapshot())
        assert dict(before.nodes) == frozen  # an old snapshot never changes
        if step % 50 == 0:
            same(snapshot, TreeSnapshot.of(memdb, writable=True))
    same(snapshot, TreeSnapshot.of(memdb, writable=True))
    assert snapshot.statfs() == memdb.statfs()
    for entry in memdb.entries():
        assert snapshot.lookup(path_of(memdb, entry.inode)) == snapshot.nodes[entry.inode]
    assert applied_count > 150  # the sequence really changed the tree


def path_of(memdb: MemDb, inode: int) -> str:
    parts = []
    while inode != 0:
        entry = memdb.index[inode]
        parts.append(entry.name)
        inode = entry.parent
    return "/".join(reversed(parts))


def test_reads_answer_as_the_tree() -> None:
    memdb = MemDb()
    memdb.start_fresh(1)
    memdb.mkdir("d", 0, 2)
    memdb.create("d/f", 0, 3)
    memdb.write("d/f", 0, 4, b"hello", 0)
    memdb.create("d/e", 0, 5)
    snap = TreeSnapshot.of(memdb, writable=False)
    assert snap.read("d/f", 3, 1) == memdb.read("d/f", 3, 1) == b"ell"
    assert snap.read("d", 1, 0) is None  # a directory is no file
    assert snap.read("d/missing", 1, 0) is None
    assert snap.read("d/f/below", 1, 0) is None
    assert snap.readdir("d") == memdb.readdir("d") == ("f", "e")
    assert snap.readdir("d/f") == snap.readdir("nowhere") == ()
    assert snap.getattr("d//f") == memdb.getattr("d//f")
    assert snap.writable is False
    assert snap.with_writable(True).writable is True
    assert snap.with_writable(False) is snap


def test_a_published_rename_is_one_step() -> None:
    memdb = MemDb()
    memdb.start_fresh(1)
    memdb.create("old", 0, 2)
    memdb.write("old", 0, 2, b"content", 0)
    cell = Published(TreeSnapshot.of(memdb, writable=True))
    seen = []
    for i in range(50):
        src, dst = ("old", "new") if i % 2 == 0 else ("new", "old")
        applied = memdb.rename(src, dst, 0, 3 + i)
        assert applied.change is not None
        cell.publish(cell.value.with_change(memdb, applied.change))
        snap = cell.value
        seen.append((snap.getattr("old") is None, snap.getattr("new") is None))
        assert snap.read_all(dst) == b"content"
    assert set(seen) == {(True, False), (False, True)}  # always exactly one name
