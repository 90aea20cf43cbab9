"""Replication of the tree (DFSM/DCDB on pve_dcdb_v1) with our daemons on real corosync clusters.

Every daemon runs in cluster mode inside its node's netns (see test_pmxcfs_cluster.py). Replicas
are compared exactly: each node's memdb index is computed from its config.db (opened read-only,
lab.read_index) and the nodes must converge to the same index, whose SHA-256 is the checksum the
nodes compare themselves. A writer returns once its own node applied the change; the other nodes
apply the same message at about the same time, so their state is awaited with a deadline poll.
Reads through a mount that must not come from the kernel's attribute cache use statx with
AT_STATX_FORCE_SYNC.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lab.cluster import (
    CorosyncLab,
    NodeDaemon,
    join_back,
    read_index,
    read_memdb,
    split_off,
    wait_same_index,
)
from lab.nodes import QUORATE_S, start_daemon, start_nodes, wait_writable
from lab.probes import fresh_stat, wait_until, write_errno
from tests.integration.mounts import require_fuse

pytestmark = [pytest.mark.corosync, pytest.mark.fuse]

log = logging.getLogger(__name__)


CONVERGE_S = 30.0
"""Deadline for replicas to agree after the last change (normally well under a second)."""
SYNC_S = 60.0
"""Deadline for a (re)joining node's state sync."""
DETECT_S = 5.0
"""A partition shows within ~1.2 s with token 500 ms; allow for a loaded 2-core box."""


# ----- helpers -----------------------------------------------------------------------------


def dbs(daemons: Iterable[NodeDaemon]) -> list[Path]:
    return [pve.db for pve in daemons]


def converge(daemons: Sequence[NodeDaemon], timeout: float = CONVERGE_S) -> bytes:
    """Wait until all these nodes hold the same memdb index; returns it."""
    return wait_same_index(dbs(daemons), timeout)


def index_version(index: bytes) -> int:
    return int.from_bytes(index[:8], "little")


def tree_files(db: Path) -> dict[str, bytes | None]:
    """Every path in a node's tree: file -> content, directory -> None."""
    memdb = read_memdb(db)
    out: dict[str, bytes | None] = {}
    stack = [("", memdb.root)]
    while stack:
        prefix, entry = stack.pop()
        for name, child in entry.children.items():
            path = f"{prefix}{name}"
            out[path] = None if child.is_dir else bytes(child.data)
            if child.is_dir:
                stack.append((f"{path}/", child))
    return out


def fresh_exists(path: Path) -> bool:
    try:
        fresh_stat(path)
    except FileNotFoundError:
        return False
    return True


def state_on(pve: NodeDaemon, rel: str) -> tuple[bytes, int] | None:
    """A file's content and mtime through node ``pve``'s mount; None if it does not exist."""
    try:
        stat = fresh_stat(pve.path(rel))
        return pve.path(rel).read_bytes(), stat.mtime
    except FileNotFoundError:
        return None


def wait_everywhere(
    daemons: Sequence[NodeDaemon], rel: str, content: bytes | None, timeout: float = CONVERGE_S
) -> int | None:
    """Wait until ``rel`` has ``content`` (None: does not exist) with one mtime on every node.

    Returns that mtime (None for an absent file).
    """
    last: list[Any] = []

    def check() -> tuple[int | None] | None:
        last[:] = [state_on(pve, rel) for pve in daemons]
        if content is None:
            return (None,) if all(s is None for s in last) else None
        if any(s is None or s[0] != content for s in last):
            return None
        mtimes = {s[1] for s in last}
        return (mtimes.pop(),) if len(mtimes) == 1 else None

    return wait_until(check, timeout, lambda: f"{rel}: want {content!r}, nodes have {last}")[0]


def errno_of(func: Callable[..., object], *args: Any) -> int | None:
    try:
        func(*args)
    except OSError as exc:
        return exc.errno
    return None


def log_lines(daemons: Iterable[NodeDaemon], text: str) -> list[str]:
    return [f"{pve.nodename}: {line}" for pve in daemons for line in pve.lines if text in line]


# ----- 1. every change on any node is seen alike on all --------------------------------


def test_changes_on_any_node_are_seen_alike_on_all(cluster3: CorosyncLab, tmp_path: Path) -> None:
    require_fuse()
    nodes = start_nodes(cluster3, tmp_path, (1, 2, 3))
    d1, d2, d3 = nodes

    def every(rel: str, content: bytes | None) -> int | None:
        return wait_everywhere(nodes, rel, content)

    d1.path("sub").mkdir()
    wait_until(lambda: all(fresh_exists(p.path("sub")) for p in nodes), CONVERGE_S, lambda: "sub everywhere")
    assert {fresh_stat(p.path("sub")).mode for p in nodes} == {0o040755}
    d2.path("sub/a.cfg").write_bytes(b"alpha\n")
    every("sub/a.cfg", b"alpha\n")
    fd = os.open(d3.path("sub/a.cfg"), os.O_WRONLY)
    try:
        assert os.pwrite(fd, b"BETA", 2) == 4
    finally:
        os.close(fd)
    every("sub/a.cfg", b"alBETA")
    os.truncate(d1.path("sub/a.cfg"), 4)
    every("sub/a.cfg", b"alBE")
    os.truncate(d2.path("sub/a.cfg"), 6)
    every("sub/a.cfg", b"alBE\0\0")
    os.utime(d3.path("sub/a.cfg"), (1_500_000_000, 1_500_000_000))
    assert every("sub/a.cfg", b"alBE\0\0") == 1_500_000_000
    os.rename(d1.path("sub/a.cfg"), d1.path("b.cfg"))
    every("sub/a.cfg", None)
    every("b.cfg", b"alBE\0\0")
    d2.path("c.cfg").write_bytes(b"gamma\n")
    every("c.cfg", b"gamma\n")
    os.rename(d3.path("b.cfg"), d3.path("c.cfg"))  # replaces c.cfg
    every("b.cfg", None)
    every("c.cfg", b"alBE\0\0")
    os.unlink(d1.path("c.cfg"))
    every("c.cfg", None)
    d3.path("empty").mkdir()
    wait_until(lambda: all(fresh_exists(p.path("empty")) for p in nodes), CONVERGE_S, lambda: "empty/ made")
    os.rmdir(d2.path("empty"))
    wait_until(
        lambda: not any(fresh_exists(p.path("empty")) for p in nodes), CONVERGE_S, lambda: "empty/ gone"
    )
    d3.path("sub/d.cfg").write_bytes(b"delta\n")
    # the mtime of a change is the sender's time, the writer its node id, on every node
    mtime = every("sub/d.cfg", b"delta\n")
    assert mtime is not None
    assert abs(mtime - time.time()) < 60
    converge(nodes)
    for db in dbs(nodes):
        entry = read_memdb(db).lookup("sub/d.cfg")
        assert (entry.writer, entry.mtime) == (3, mtime)

    # refused changes: refused alike, and nothing changes anywhere. A sentinel file written from
    # the same node afterwards is applied after them everywhere (total order): then the version
    # has grown by exactly two (the sentinel's CREATE and WRITE) and the tree is the same but for it.
    def refused_alike(want: int, change: Callable[[], object], sentinel: NodeDaemon) -> None:
        before = converge(nodes)
        files_before = tree_files(sentinel.db)
        assert errno_of(change) == want
        sentinel.path("sentinel.cfg").write_bytes(b"after %d\n" % want)
        after = converge(nodes)
        assert index_version(after) == index_version(before) + 2
        files = tree_files(sentinel.db)
        assert files.pop("sentinel.cfg") == b"after %d\n" % want
        assert files == files_before
        os.unlink(sentinel.path("sentinel.cfg"))
        converge(nodes)

    # rmdir of a folder that is not empty: the tree refuses it (the kernel cannot know)
    refused_alike(errno.ENOTEMPTY, lambda: os.rmdir(d1.path("sub")), d1)
    # rename of a non-empty folder: only empty directories can be renamed (memdb_rename)
    refused_alike(errno.ENOTEMPTY, lambda: os.rename(d2.path("sub"), d2.path("sub2")), d2)

    # ENOENT from the tree: a write through an open file that another node deleted meanwhile
    fd = os.open(d1.path("sub/d.cfg"), os.O_WRONLY)
    try:
        os.unlink(d2.path("sub/d.cfg"))
        wait_until(lambda: "sub/d.cfg" not in tree_files(d1.db), CONVERGE_S, lambda: "delete replicated")
        refused_alike(errno.ENOENT, lambda: os.pwrite(fd, b"late", 0), d1)
    finally:
        os.close(fd)
    assert state_on(d3, "sub/d.cfg") is None

    # EEXIST from the tree: three nodes create the same new file at once (O_EXCL); exactly one
    # CREATE is delivered first, the others are refused by every node alike
    before = converge(nodes)
    barrier = threading.Barrier(3)
    results: dict[str, int | None] = {}

    def racer(pve: NodeDaemon) -> None:
        barrier.wait(10)
        results[pve.nodename] = errno_of(
            lambda: os.close(os.open(pve.path("race.cfg"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        )

    threads = [threading.Thread(target=racer, args=(pve,)) for pve in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results.values(), key=str) == [errno.EEXIST, errno.EEXIST, None], results
    after = converge(nodes)
    assert index_version(after) == index_version(before) + 1  # one CREATE took effect
    every("race.cfg", b"")


# ----- 2. concurrent writers on all nodes converge ---------------------------------------


def test_concurrent_writers_converge(cluster3: CorosyncLab, tmp_path: Path) -> None:
    require_fuse()
    nodes = start_nodes(cluster3, tmp_path, (1, 2, 3))
    shared = [f"shared/s{k}.cfg" for k in range(8)]
    nodes[0].path("shared").mkdir()
    for rel in shared:
        nodes[0].path(rel).write_bytes(b"initial\n")
    for pve in nodes:
        nodes[0].path(f"own-{pve.nodename}").mkdir()
    converge(nodes)

    files_per_writer = 60
    errors: list[str] = []
    barrier = threading.Barrier(len(nodes))

    def writer(pve: NodeDaemon) -> None:
        try:
            barrier.wait(10)
            for k in range(files_per_writer):
                pve.path(f"own-{pve.nodename}/f{k}.cfg").write_bytes(b"%s %d\n" % (pve.nodename.encode(), k))
                if k % 3 == 0:  # a third of the writes go to files every writer overwrites
                    pve.path(shared[k % len(shared)]).write_bytes(
                        b"%s was here %d\n" % (pve.nodename.encode(), k)
                    )
                if k % 10 == 9:
                    os.rename(
                        pve.path(f"own-{pve.nodename}/f{k}.cfg"), pve.path(f"own-{pve.nodename}/r{k}.cfg")
                    )
                if k % 10 == 5:
                    os.unlink(pve.path(f"own-{pve.nodename}/f{k - 1}.cfg"))
        except Exception as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(f"{pve.nodename}: {exc!r}")

    t0 = time.monotonic()
    threads = [threading.Thread(target=writer, args=(pve,)) for pve in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - t0
    assert not errors, errors
    index = converge(nodes)
    log.info(
        "3 writers x %d files done in %.2f s; converged at %s", files_per_writer, elapsed, index[:8].hex()
    )

    files = tree_files(nodes[0].db)
    for pve in nodes:
        name = pve.nodename
        for k in range(files_per_writer):
            rel = f"own-{name}/f{k}.cfg"
            if k % 10 == 9:
                rel = f"own-{name}/r{k}.cfg"
            if k % 10 == 4:
                assert f"own-{name}/f{k}.cfg" not in files
                continue
            assert files[rel] == b"%s %d\n" % (name.encode(), k)
    for rel in shared:
        assert files[rel] is not None
        assert b"was here" in files[rel]
    for pve in nodes:  # and the mounts show the same
        assert pve.path("shared/s0.cfg").read_bytes() == files["shared/s0.cfg"]


# ----- 3. a restarted node catches up -----------------------------------------------------


def test_restarted_node_catches_up(cluster3: CorosyncLab, tmp_path: Path) -> None:
    require_fuse()
    nodes = start_nodes(cluster3, tmp_path, (1, 2, 3))
    d1, d2, _ = nodes
    for sub in ("keep", "gone", "moved"):
        d1.path(sub).mkdir()
    for k in range(10):
        d1.path(f"keep/k{k}.cfg").write_bytes(b"keep %d\n" % k)
        d1.path(f"gone/g{k}.cfg").write_bytes(b"gone %d\n" % k)
    d1.path("moved/m.cfg").write_bytes(b"moved\n")
    d1.path("over.cfg").write_bytes(b"old\n")
    converge(nodes)

    assert cluster3.stop_pmxcfs(3) == 0
    for k in range(10):
        os.unlink((d1 if k % 2 else d2).path(f"gone/g{k}.cfg"))
    os.rmdir(d2.path("gone"))
    os.rename(d1.path("moved/m.cfg"), d1.path("keep/m-renamed.cfg"))
    os.rename(d2.path("moved"), d2.path("moved-dir"))
    os.rename(d1.path("keep/k0.cfg"), d1.path("keep/k1.cfg"))  # over an existing file
    d2.path("over.cfg").write_bytes(b"new content\n")
    os.utime(d1.path("over.cfg"), (1_600_000_000, 1_600_000_000))
    d2.path("new").mkdir()
    d2.path("new/n.cfg").write_bytes(b"new\n")
    majority = converge(nodes[:2])

    t0 = time.monotonic()
    (d3,) = start_nodes(cluster3, tmp_path, (3,))
    index = converge([d1, d2, d3], timeout=SYNC_S)
    log.info("restarted node in sync after %.2f s", time.monotonic() - t0)
    assert index_version(index) > index_version(majority)  # node 3's own probe write came after
    assert not d3.path("gone").exists()
    assert not d3.path("moved").exists()
    assert d3.path("moved-dir").is_dir()
    assert d3.path("keep/m-renamed.cfg").read_bytes() == b"moved\n"
    assert not d3.path("keep/k0.cfg").exists()
    assert d3.path("keep/k1.cfg").read_bytes() == b"keep 0\n"
    assert d3.path("over.cfg").read_bytes() == b"new content\n"
    assert fresh_stat(d3.path("over.cfg")).mtime == 1_600_000_000
    assert d3.path("new/n.cfg").read_bytes() == b"new\n"
    assert tree_files(d3.db) == tree_files(d1.db)


# ----- 4. a node joins a cluster holding 5,000 files -------------------------------------


@pytest.mark.timeout(240)
def test_joining_node_gets_5000_files(cluster3: CorosyncLab, tmp_path: Path) -> None:
    require_fuse()
    count, folders = 5000, 50
    d1, d2 = start_nodes(cluster3, tmp_path, (1, 2))
    for f in range(folders):
        d1.path(f"d{f}").mkdir()

    def create(k: int) -> None:
        d1.path(f"d{k % folders}/f{k}.cfg").write_bytes(b"file %d %s\n" % (k, b"x" * (k % 200)))

    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, range(count)))
    created = time.monotonic() - t0
    converge([d1, d2])
    both = time.monotonic() - t0

    t1 = time.monotonic()
    d3 = cluster3.start_pmxcfs(
        3, tmp_path / "pmxcfs3", ["--corosync-conf", str(cluster3.corosync_conf_path(3))], local=False
    )
    mounted = time.monotonic() - t1
    index = converge([d1, d2, d3], timeout=SYNC_S)
    joined = time.monotonic() - t1
    msg = (
        f"{count} files created on node1 in {created:.1f} s ({count / created:.0f}/s), on both nodes "
        f"after {both:.1f} s; node3 mounted after {mounted:.2f} s, identical index after {joined:.2f} s"
    )
    log.info("%s", msg)
    files = tree_files(d3.db)
    assert sum(1 for rel in files if rel.endswith(".cfg") and rel.startswith("d")) == count
    assert files["d7/f4007.cfg"] == b"file 4007 %s\n" % (b"x" * (4007 % 200))
    assert len(os.listdir(d3.path("d9"))) == count // folders
    assert d3.path("d9/f4009.cfg").read_bytes() == files["d9/f4009.cfg"]
    assert index == read_index(d1.db)


# ----- 5. a partition: the minority is read-only, then converges --------------------------


@pytest.mark.parametrize(
    ("size", "minority"),
    [(3, (3,)), (5, (4, 5))],
    ids=["3-nodes-isolate-1", "5-nodes-split-off-2"],
)
def test_partition_minority_read_only_then_converges(
    corosync_lab_factory: Callable[..., CorosyncLab], tmp_path: Path, size: int, minority: tuple[int, ...]
) -> None:
    """The minority (one isolated node, or two that still see each other) turns read-only; the
    majority keeps writing; after the heal the minority takes the majority's state."""
    require_fuse()
    lab = corosync_lab_factory(size)
    nodes = start_nodes(lab, tmp_path, range(1, size + 1))
    major = [pve for i, pve in enumerate(nodes, 1) if i not in minority]
    minor = [pve for i, pve in enumerate(nodes, 1) if i in minority]
    major[0].path("base").mkdir()
    for k in range(5):
        major[0].path(f"base/b{k}.cfg").write_bytes(b"base %d\n" % k)
    before = converge(nodes)

    if len(minority) == 1:
        lab.isolate(minority[0])
    else:
        split_off(lab, minority)
        lab.wait_members(minority[0], minority, timeout=DETECT_S)  # a membership of their own
    for pve in minor:
        wait_writable(pve, writable=False, timeout=DETECT_S)
        for func, args in (
            (os.mkdir, (pve.path("minority"),)),
            (os.unlink, (pve.path("base/b0.cfg"),)),
            (os.rename, (pve.path("base/b1.cfg"), pve.path("base/x.cfg"))),
            (os.truncate, (pve.path("base/b2.cfg"), 0)),
            (os.utime, (pve.path("base/b3.cfg"), (1, 1))),
        ):
            assert errno_of(func, *args) == errno.EACCES, (func, args)
        assert write_errno(pve.path("minority.cfg")) == errno.EACCES
    # A probe made while the partition was being detected may have gone through (on all nodes, or
    # on the minority alone, as with the original); from read-only on, the minority is frozen.
    frozen = {pve.nodename: read_index(pve.db) for pve in minor}
    log.info("minority changed during the detection: %s", [n for n, ix in frozen.items() if ix != before])
    for pve in major:
        wait_writable(pve, timeout=DETECT_S)
    for k in range(20):
        major[k % len(major)].path(f"base/m{k}.cfg").write_bytes(b"majority %d\n" % k)
    os.unlink(major[0].path("base/b0.cfg"))
    os.rename(major[1].path("base/b1.cfg"), major[1].path("base/b1-renamed.cfg"))
    majority = converge(major)
    for pve in minor:
        assert read_index(pve.db) == frozen[pve.nodename], f"{pve.nodename}: the minority changed its tree"
        assert pve.path("base/b0.cfg").read_bytes() == b"base 0\n"

    if len(minority) == 1:
        lab.heal(minority[0])
    else:
        join_back(lab, minority)
    for pve in minor:
        wait_writable(pve, timeout=QUORATE_S)
    index = converge(nodes, timeout=SYNC_S)
    assert index_version(index) >= index_version(majority)
    for pve in minor:
        files = tree_files(pve.db)
        for k in range(20):
            assert files[f"base/m{k}.cfg"] == b"majority %d\n" % k
            assert pve.path(f"base/m{k}.cfg").read_bytes() == b"majority %d\n" % k
        assert "base/b0.cfg" not in files
        assert files["base/b1-renamed.cfg"] == b"base 1\n"
        assert "minority.cfg" not in files
    assert not log_lines(nodes, "wrong checksum")


# ----- 6. kill -9 during a write storm loses no acknowledged write -------------------------


@dataclass
class Storm:
    """Writer threads on some nodes, each writing new files until stopped."""

    writers: Sequence[NodeDaemon]
    tag: str = "storm"
    ok: dict[str, bytes] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    progress: threading.Condition = field(default_factory=threading.Condition)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, per_node: int = 2) -> None:
        for pve in self.writers:
            for t in range(per_node):
                thread = threading.Thread(target=self._run, args=(pve, t), daemon=True)
                thread.start()
                self.threads.append(thread)

    def _run(self, pve: NodeDaemon, t: int) -> None:
        k = 0
        while not self.stop.is_set():
            rel = f"storm/{self.tag}-{pve.nodename}-{t}-{k}.cfg"
            data = b"%s %d %d\n" % (pve.nodename.encode(), t, k)
            code = write_errno(pve.path(rel), data)
            with self.progress:
                if code is None:
                    self.ok[rel] = data
                else:
                    self.failed.append(f"{rel}: {errno.errorcode.get(code, code)}")
                self.progress.notify_all()
            k += 1

    def wait_successes(self, more: int, timeout: float = 60.0) -> None:
        with self.progress:
            want = len(self.ok) + more
            assert self.progress.wait_for(lambda: len(self.ok) >= want, timeout), (
                f"only {len(self.ok)} successful writes, want {want}; failures: {self.failed[-5:]}"
            )

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
        assert not any(t.is_alive() for t in self.threads), "a writer hangs"


def assert_has_all(pve: NodeDaemon, ok: dict[str, bytes]) -> None:
    files = tree_files(pve.db)
    missing = [rel for rel, data in ok.items() if files.get(rel) != data]
    assert not missing, f"{pve.nodename} lacks {len(missing)} acknowledged writes, e.g. {missing[:5]}"


def test_kill_during_write_storm_loses_no_acknowledged_write(cluster3: CorosyncLab, tmp_path: Path) -> None:
    require_fuse()
    nodes = start_nodes(cluster3, tmp_path, (1, 2, 3))
    d1, d2, d3 = nodes
    d2.path("storm").mkdir()
    converge(nodes)

    # node 1 has the lowest node id: it sends the verify requests and leads a sync among equals
    storm = Storm(writers=(d2, d3))
    storm.start()
    try:
        storm.wait_successes(40)
        assert cluster3.stop_pmxcfs(1, sig=signal.SIGKILL) == -signal.SIGKILL
        at_kill = len(storm.ok)
        storm.wait_successes(40)
    finally:
        storm.finish()
    log.info(
        "kill: %d acknowledged writes (%d before the kill), %d failed: %s",
        len(storm.ok),
        at_kill,
        len(storm.failed),
        storm.failed[:5],
    )
    converge([d2, d3])
    for pve in (d2, d3):
        assert_has_all(pve, storm.ok)
        for rel in list(storm.ok)[-3:]:
            assert pve.path(rel).read_bytes() == storm.ok[rel]

    # the killed node comes back on its old database while the others keep writing; it writes
    # nothing itself during its sync (for that case see test_joiner_writing_during_its_sync...)
    again = Storm(writers=(d2, d3), tag="again")
    again.start()
    try:
        again.wait_successes(20)
        d1 = start_daemon(cluster3, tmp_path, 1)
        d1.wait_for_line(lambda line: "dcdb synced" in line, timeout=SYNC_S)
        at_join = len(again.ok)
        again.wait_successes(40)
    finally:
        again.finish()
    log.info(
        "restart: %d acknowledged writes (%d before node 1 was synced), %d failed: %s",
        len(again.ok),
        at_join,
        len(again.failed),
        again.failed[:5],
    )
    converge([d1, d2, d3], timeout=SYNC_S)
    for pve in (d1, d2, d3):
        assert_has_all(pve, storm.ok | again.ok)
    d1.path("storm/after.cfg").write_bytes(b"after\n")
    wait_everywhere([d1, d2, d3], "storm/after.cfg", b"after\n")


def test_joiner_writing_during_its_sync_is_repaired_by_verify(cluster3: CorosyncLab, tmp_path: Path) -> None:
    """A node that writes while it is still being synced can end up with other inode numbers than
    the rest (the original's queue order, reference 1.7: its own messages wait in msg_queue while
    the synced nodes apply them at once). The periodic verify then finds the wrong checksum and
    the nodes resync; no acknowledged write is lost either way."""
    require_fuse()
    verify = ("--verify-period", "2")
    nodes = start_nodes(cluster3, tmp_path, (1, 2, 3), extra=verify)
    d1, d2, d3 = nodes
    d2.path("storm").mkdir()
    converge(nodes)
    assert cluster3.stop_pmxcfs(1) == 0

    storm = Storm(writers=(d2, d3))
    storm.start()
    joiner: Storm | None = None
    try:
        storm.wait_successes(20)
        d1 = start_daemon(cluster3, tmp_path, 1, extra=verify)
        joiner = Storm(writers=(d1,), tag="joiner")
        joiner.start(per_node=1)  # writes as soon as it is mounted: during its own sync
        joiner.wait_successes(10)
        storm.wait_successes(40)
    finally:
        storm.finish()
        if joiner is not None:
            joiner.finish()
    ok = storm.ok | joiner.ok
    converge([d1, d2, d3], timeout=SYNC_S)
    wrong = log_lines([*nodes, d1], "wrong checksum")
    log.info("%d acknowledged writes; verify found: %s", len(ok), wrong or "nothing")
    for pve in (d1, d2, d3):
        assert_has_all(pve, ok)


# ----- a startup race ------------------------------------------------------------------------


def test_peer_writes_while_nodes_start_nobody_leaves(
    corosync_lab_factory: Callable[..., CorosyncLab], tmp_path: Path
) -> None:
    """Three daemons start together on a quorate cluster while node 1 writes as soon as it can:
    no node may leave the DCDB group (the original sets its quorum flag long before its first sync
    ends: one event loop, and the quorum callback comes right after trackstart)."""
    require_fuse()
    for attempt in range(5):
        lab = corosync_lab_factory(3)
        base = tmp_path / f"attempt{attempt}"
        daemons = [
            lab.start_pmxcfs(
                i,
                base / f"pmxcfs{i}",
                ["--corosync-conf", str(lab.corosync_conf_path(i))],
                local=False,
                wait=False,
            )
            for i in (1, 2, 3)
        ]
        for pve in daemons:
            pve.wait_ready()
        wait_writable(daemons[0])
        storm_dir = daemons[0].path("storm")
        wait_until(lambda d=storm_dir: errno_of(d.mkdir) is None, QUORATE_S, lambda: "mkdir storm")
        storm = Storm(writers=daemons[:1])
        storm.start(per_node=4)
        try:
            for pve in daemons:
                pve.wait_for_line(lambda line: "node has quorum" in line, timeout=QUORATE_S)
            storm.wait_successes(20)
        finally:
            storm.finish()
        converge(daemons)
        left = log_lines(daemons, "leaves the group")
        assert not left, f"attempt {attempt}: {left}"
        lab.down()


# ----- 7. the periodic verification agrees ----------------------------------------------


def test_verify_agrees_on_all_nodes(cluster3: CorosyncLab, tmp_path: Path) -> None:
    require_fuse()
    nodes = start_nodes(cluster3, tmp_path, (1, 2, 3), extra=("--verify-period", "2"))
    for k, pve in enumerate(nodes):
        pve.path(f"v{k}.cfg").write_bytes(b"verify %d\n" % k)
    converge(nodes)
    for pve in nodes:
        pve.wait_for_line(lambda line: "data verification successful" in line, timeout=15)
    assert not log_lines(nodes, "wrong checksum")
    assert not log_lines(nodes, "leaves the group")
