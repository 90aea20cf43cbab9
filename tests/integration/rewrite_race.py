"""Writers rewriting one file while readers read it: what a reader may see (issue 13).

Shared by the local-mode test (tests/integration) and the cluster test (tests/cluster). The
writer makes each new content a block of one letter, so any read that is not the empty file
or one whole block of a letter was never written by anyone. Writers and readers are child
processes, each bounded in time; the parent collects what they counted.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path

BLOCK = 4096
LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def content(i: int) -> bytes:
    """The writer's i-th content."""
    return LETTERS[i % len(LETTERS) : i % len(LETTERS) + 1] * BLOCK


def rewrite_in_place(path: Path, seconds: float, start: int = 0) -> int:
    """open(O_TRUNC), one 4 KiB write, close, again and again; returns the rewrites done."""
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, content(start + done))
        finally:
            os.close(fd)
        done += 1
    return done


def replace_by_rename(path: Path, seconds: float, start: int = 0) -> int:
    """Write a temp file and rename it over ``path``, as the Proxmox tools do; returns the count."""
    done = 0
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tmp.write_bytes(content(start + done))
        os.rename(tmp, path)
        done += 1
    return done


@dataclass(frozen=True)
class Seen:
    """What one reader saw."""

    reads: int
    empty: int
    garbage: int
    errors: int
    example: bytes = b""


def read_loop(path: Path, seconds: float) -> Seen:
    """Open, read whole, close, again and again; classify every read."""
    reads = empty = garbage = errors = 0
    example = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            errors += 1
            continue
        reads += 1
        if not data:
            empty += 1
        elif len(data) != BLOCK or data[:1] not in LETTERS or data.count(data[:1]) != BLOCK:
            garbage += 1
            example = example or data[:64]
    return Seen(reads, empty, garbage, errors, example)


@dataclass(frozen=True)
class RaceResult:
    rewrites: int
    seen: tuple[Seen, ...]

    @property
    def reads(self) -> int:
        return sum(s.reads for s in self.seen)

    @property
    def garbage(self) -> int:
        return sum(s.garbage for s in self.seen)

    @property
    def empty(self) -> int:
        return sum(s.empty for s in self.seen)

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.seen)


def race(write_path: Path, read_paths: list[Path], *, rename: bool, seconds: float = 3.0) -> RaceResult:
    """One writer on ``write_path`` and a reader per entry of ``read_paths``, side by side."""
    writer = replace_by_rename if rename else rewrite_in_place
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1 + len(read_paths)) as pool:
        readers = [pool.apply_async(read_loop, (p, seconds)) for p in read_paths]
        written = pool.apply_async(writer, (write_path, seconds))
        limit = seconds + 60
        return RaceResult(written.get(limit), tuple(r.get(limit) for r in readers))
