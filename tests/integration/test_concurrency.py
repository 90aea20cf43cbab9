"""Several threads and processes on one mount at once (reference 1.5: all operations are
serialised; each FUSE write is one memdb write).

Writers of the same file use records of one length, so that any interleaving of the
non-atomic O_TRUNC (open, then truncate) with the writes leaves one complete record; the
atomic pattern of the Perl tools (tmp file + rename) is exercised as well.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from lab.daemon import Daemon
from tests.integration.helpers import entry_count, snapshot_tree, vmlist

pytestmark = pytest.mark.fuse

T = TypeVar("T")

THREADS = 8
PROCESSES = 4
ROUNDS = 40
RECORD = 64


def record(writer: str, round_: int) -> bytes:
    """A fixed-length record naming its writer and round."""
    return f"{writer} round {round_:04d}".encode().ljust(RECORD - 1, b".") + b"\n"


def own_content(writer: str, round_: int) -> bytes:
    """Content of a writer's own file; lengths vary from round to round."""
    return f"{writer} {round_}\n".encode() * (1 + round_ % 7)


def write_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        assert os.write(fd, data) == len(data)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, tmp_tag: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp.{tmp_tag}")
    write_file(tmp, data)
    os.rename(tmp, path)


def run_threads(count: int, work: Callable[[int, threading.Barrier], T]) -> list[T]:
    """Run ``work(i, barrier)`` in ``count`` threads that start together; re-raise failures."""
    barrier = threading.Barrier(count, timeout=30)
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(work, i, barrier) for i in range(count)]
        return [future.result(timeout=120) for future in futures]


def check_consistent(pve: Daemon) -> dict[str, tuple[object, ...]]:
    """statfs counts exactly the entries a walk finds; no hidden or tmp files are left."""
    tree = snapshot_tree(pve.mount)
    assert entry_count(pve.mount) == len(tree) + 1
    for rel, (kind, _, size, _, content) in tree.items():
        assert kind == "dir" or size == len(content), rel
    leftovers = [rel for rel in tree if ".tmp." in rel or ".fuse_hidden" in rel]
    assert leftovers == []
    return tree


def restart_and_compare(pve: Daemon, tree: dict[str, tuple[object, ...]]) -> None:
    assert pve.stop() == 0
    pve.start()
    assert snapshot_tree(pve.mount) == tree


def test_threads_writing_own_and_shared_files(make_daemon) -> None:  # type: ignore[no-untyped-def]
    pve = make_daemon().start()
    os.mkdir(pve.path("own"))
    shared = pve.path("shared")
    atomic = pve.path("atomic")

    def work(i: int, barrier: threading.Barrier) -> None:
        name = f"thread{i}"
        os.mkdir(pve.path(f"own/{name}"))
        barrier.wait()
        for r in range(ROUNDS):
            write_file(pve.path(f"own/{name}/file"), own_content(name, r))
            write_file(shared, record(name, r))
            atomic_write(atomic, record(name, r), name)

    run_threads(THREADS, work)
    everything = {record(f"thread{i}", r) for i in range(THREADS) for r in range(ROUNDS)}
    assert shared.read_bytes() in everything
    assert atomic.read_bytes() in everything
    for i in range(THREADS):
        name = f"thread{i}"
        assert pve.path(f"own/{name}/file").read_bytes() == own_content(name, ROUNDS - 1)
    tree = check_consistent(pve)
    assert len(tree) == 3 + 2 * THREADS
    restart_and_compare(pve, tree)


WRITER = r"""
import os, sys
mount, name, rounds, record_len = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def write_file(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        assert os.write(fd, data) == len(data)
    finally:
        os.close(fd)

sys.stdin.buffer.read(1)  # EOF: start together
os.makedirs(f"{mount}/procs/{name}", exist_ok=True)
for r in range(rounds):
    write_file(f"{mount}/procs/{name}/file", f"{name} {r}\n".encode() * (1 + r % 7))
    rec = f"{name} round {r:04d}".encode().ljust(record_len - 1, b".") + b"\n"
    write_file(f"{mount}/shared", rec)
    write_file(f"{mount}/atomic.tmp.{name}", rec)
    os.rename(f"{mount}/atomic.tmp.{name}", f"{mount}/atomic")
    big = bytes([r % 251]) * 200_000  # more than one FUSE write chunk
    write_file(f"{mount}/procs/{name}/big", big)
print("done")
"""


def test_processes_writing_own_and_shared_files(make_daemon) -> None:  # type: ignore[no-untyped-def]
    pve = make_daemon().start()
    os.mkdir(pve.path("procs"))
    procs: list[subprocess.Popen[bytes]] = []
    go_read, go_write = os.pipe()  # closing the write end starts every child at once
    try:
        for i in range(PROCESSES):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", WRITER, str(pve.mount), f"proc{i}", str(ROUNDS), str(RECORD)],
                    stdin=go_read,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
        os.close(go_read)
        os.close(go_write)
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert (proc.returncode, out) == (0, b"done\n"), err.decode()
    finally:
        for fd in (go_read, go_write):
            with contextlib.suppress(OSError):
                os.close(fd)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    everything = {record(f"proc{i}", r) for i in range(PROCESSES) for r in range(ROUNDS)}
    assert pve.path("shared").read_bytes() in everything
    assert pve.path("atomic").read_bytes() in everything
    for i in range(PROCESSES):
        name = f"proc{i}"
        assert pve.path(f"procs/{name}/file").read_bytes() == own_content(name, ROUNDS - 1)
        assert pve.path(f"procs/{name}/big").read_bytes() == bytes([(ROUNDS - 1) % 251]) * 200_000
    tree = check_consistent(pve)
    assert len(tree) == 3 + 3 * PROCESSES
    restart_and_compare(pve, tree)


def test_only_one_of_many_takes_a_lock(pve: Daemon) -> None:
    os.makedirs(pve.path("priv/lock"))
    lock = pve.path("priv/lock/race")

    def work(i: int, barrier: threading.Barrier) -> bool:
        barrier.wait()
        try:
            os.mkdir(lock)
        except FileExistsError:
            return False
        return True

    for _ in range(5):
        assert sum(run_threads(THREADS, work)) == 1
        os.rmdir(lock)


def test_only_one_exclusive_create_wins(pve: Daemon) -> None:
    target = pve.path("exclusive")

    def work(i: int, barrier: threading.Barrier) -> bool:
        barrier.wait()
        try:
            fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        try:
            os.write(fd, f"winner {i}\n".encode())
        finally:
            os.close(fd)
        return True

    for _ in range(5):
        results = run_threads(THREADS, work)
        assert sum(results) == 1
        assert target.read_text() == f"winner {results.index(True)}\n"
        os.unlink(target)


def test_only_one_node_gets_a_vmid(pve: Daemon) -> None:
    for i in range(THREADS):
        os.makedirs(pve.path(f"nodes/node{i}/qemu-server"))

    def work(i: int, barrier: threading.Barrier) -> bool:
        barrier.wait()
        try:
            fd = os.open(pve.path(f"nodes/node{i}/qemu-server/500.conf"), os.O_CREAT | os.O_WRONLY)
        except FileExistsError:
            return False
        os.close(fd)
        return True

    results = run_threads(THREADS, work)
    assert sum(results) == 1
    winner = f"node{results.index(True)}"
    assert vmlist(pve)["ids"]["500"]["node"] == winner
    for i in range(THREADS):
        assert pve.path(f"nodes/node{i}/qemu-server/500.conf").exists() == (f"node{i}" == winner)


def test_status_files_stay_valid_json_under_writes(pve: Daemon) -> None:
    os.makedirs(pve.path("nodes/node1/qemu-server"))
    stop = threading.Event()

    def write(i: int, barrier: threading.Barrier) -> int:
        barrier.wait()
        if i == 0:  # the writer
            try:
                for r in range(ROUNDS * 2):
                    write_file(pve.path(f"nodes/node1/qemu-server/{100 + r}.conf"), b"memory: 512\n")
                    write_file(pve.path("storage.cfg"), record("w", r))
            finally:
                stop.set()
            return 0
        reads = 0
        name = (".vmlist", ".version", ".members", ".clusterlog")[i % 4]
        while not stop.is_set():
            fd = os.open(pve.path(name), os.O_RDONLY)
            try:
                text = os.pread(fd, 1 << 20, 0)  # one read: one snapshot
            finally:
                os.close(fd)
            json.loads(text)
            reads += 1
        return reads

    results = run_threads(5, write)
    assert all(count > 0 for count in results[1:])
    assert len(vmlist(pve)["ids"]) == ROUNDS * 2


STOPPED_WRITER = r"""
import os, sys
path, name, record_len = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(path, os.O_WRONLY)
r = 0
try:
    while True:
        rec = f"{name} round {r:06d}".encode().ljust(record_len - 1, b".") + b"\n"
        os.pwrite(fd, rec, 0)  # one write of a whole record, no truncate
        if r == 0:
            print("ready", flush=True)
        r += 1
except OSError:
    pass  # the mount went away under us
"""


def test_stop_while_processes_write(make_daemon) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM under load: a clean exit, and after a restart every file holds a whole record."""
    pve = make_daemon().start()
    files = [pve.path(f"file{i % 2}") for i in range(PROCESSES)]  # two writers per file
    for path in set(files):
        path.write_bytes(record("initial", 0))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i, path in enumerate(files):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", STOPPED_WRITER, str(path), f"proc{i}", str(RECORD)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"ready\n", proc.stderr.read() if proc.stderr else b""
        assert pve.stop() == 0
        for proc in procs:
            proc.communicate(timeout=60)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    pve.start()
    for path in set(files):
        content = path.read_bytes()
        assert len(content) == RECORD, content
        match = re.fullmatch(rb"(initial|proc\d+) round \d+\.*\n", content)
        assert match is not None, content
    check_consistent(pve)
